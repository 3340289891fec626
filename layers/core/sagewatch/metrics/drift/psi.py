"""Population Stability Index.

PSI = sum over bins of (t - b) * ln(t / b), natural log, with b and t the base and target
proportions after empty bins get EPSILON (1e-4) and each side is renormalised (binning.proportions).
Symmetric; 0 for identical distributions. Common reading: < 0.1 stable, 0.1-0.25 moderate, > 0.25 large.
"""

from __future__ import annotations

import numpy as np

from sagewatch.metrics.drift.binning import proportions


def psi(base_counts: np.ndarray, target_counts: np.ndarray) -> float:
    """The PSI between the base's and the target's counts per bin."""
    b, t = proportions(base_counts), proportions(target_counts)
    return float(np.sum((t - b) * np.log(t / b)))
