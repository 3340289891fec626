"""Hellinger distance.

HellingerDistance = sqrt(1 - sum over bins of sqrt(b * t)), with proportions as in
binning.proportions (empty bins EPSILON = 1e-4, renormalised). From 0 (same) to 1 (disjoint).
"""

from __future__ import annotations

import numpy as np

from sagewatch.metrics.drift.binning import proportions


def hellinger(base_counts: np.ndarray, target_counts: np.ndarray) -> float:
    """The Hellinger distance between the base's and the target's counts per bin."""
    b, t = proportions(base_counts), proportions(target_counts)
    return float(np.sqrt(max(0.0, 1.0 - np.sum(np.sqrt(b * t)))))
