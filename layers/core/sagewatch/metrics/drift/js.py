"""Jensen-Shannon divergence, natural log.

JSDivergence = 1/2 KL(b || m) + 1/2 KL(t || m) with m = (b + t) / 2, in nats; equals
scipy.spatial.distance.jensenshannon(b, t) ** 2. Proportions as in binning.proportions
(empty bins EPSILON = 1e-4, renormalised). Bounded by ln 2.
"""

from __future__ import annotations

import numpy as np

from sagewatch.metrics.drift.binning import proportions


def js_divergence(base_counts: np.ndarray, target_counts: np.ndarray) -> float:
    """The Jensen-Shannon divergence between the base's and the target's counts per bin."""
    b, t = proportions(base_counts), proportions(target_counts)
    m = (b + t) / 2
    return float(0.5 * np.sum(b * np.log(b / m)) + 0.5 * np.sum(t * np.log(t / m)))
