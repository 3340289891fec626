"""Kullback-Leibler divergence of the target from the base.

KLDivergence = sum over bins of t * ln(t / b), natural log (nats), with proportions after empty bins
get EPSILON (1e-4) and renormalisation (binning.proportions). Equals scipy.stats.entropy(t, b).
"""

from __future__ import annotations

import numpy as np

from sagewatch.metrics.drift.binning import proportions


def kl_divergence(base_counts: np.ndarray, target_counts: np.ndarray) -> float:
    """The KL divergence of the target's counts per bin from the base's."""
    b, t = proportions(base_counts), proportions(target_counts)
    return float(np.sum(t * np.log(t / b)))
