"""DriftScore: Deepchecks' per-feature drift score, and its aggregates over features.

- Numeric: the Kolmogorov-Smirnov statistic D, the largest gap between the two empirical CDFs, at
  the base's KS_BINS (1,000) quantile edges (`hypothesis.ks_statistic`: exact up to the largest
  share of either sample in one bin). Missing values are left out.
- Categorical: Cramér's V of the 2 x k table (base, target) x category with Bergsma's bias
  correction, as Deepchecks computes it: the larger sample's counts are first scaled down to the
  smaller one's total and rounded; then with chi2 Pearson's statistic (with Yates' continuity
  correction when there are two categories, as scipy's chi2_contingency applies it), n the table's total,
  phi2 = max(0, chi2/n - (k-1)(r-1)/(n-1)), r~ = r - (r-1)^2/(n-1), k~ = k - (k-1)^2/(n-1),
  V = sqrt(phi2 / min(k~-1, r~-1)). One category in all: 0. Missing values are left out.
- Aggregates over features with weights w (feature importance, normalised to sum 1 over the
  features that have a score): mean, max, weighted sum(w d), l3_weighted (sum(w d^3))^(1/3) and
  l5_weighted (sum(w d^5))^(1/5), Deepchecks' `feature_reduce`. Without weights: the mean.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from sagewatch.metrics.drift.hypothesis import ks_statistic

Aggregate = Literal["mean", "max", "weighted", "l3_weighted", "l5_weighted"]


def cramers_v(base_counts: np.ndarray, target_counts: np.ndarray) -> float:
    """Bias-corrected Cramér's V between two count vectors over the same categories."""
    base = np.asarray(base_counts, dtype=float)
    target = np.asarray(target_counts, dtype=float)
    if base.sum() == 0 or target.sum() == 0:
        return float("nan")
    if base.sum() > target.sum():
        base = base * (target.sum() / base.sum())
    elif target.sum() > base.sum():
        target = target * (base.sum() / target.sum())
    table = np.round(np.vstack([base, target]))
    table = table[:, (table != 0).any(axis=0)]
    rows, columns = table.shape
    if columns <= 1:
        return 0.0
    n = table.sum()
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    if columns == 2:  # one degree of freedom: Yates' correction, as scipy's chi2_contingency applies
        gap = expected - table
        table = table + np.sign(gap) * np.minimum(0.5, np.abs(gap))
    chi2 = float((((table - expected) ** 2) / np.where(expected > 0, expected, 1)).sum())
    phi2 = max(0.0, chi2 / n - (columns - 1) * (rows - 1) / (n - 1))
    rows_corrected = rows - (rows - 1) ** 2 / (n - 1)
    columns_corrected = columns - (columns - 1) ** 2 / (n - 1)
    denominator = min(columns_corrected - 1, rows_corrected - 1)
    return math.sqrt(phi2 / denominator) if denominator > 0 else 0.0


def drift_score(base_counts: np.ndarray, target_counts: np.ndarray, numeric: bool) -> float:
    """KS D for a numeric property (counts over ordered bins), Cramér's V for a categorical one."""
    if target_counts.sum() == 0 or base_counts.sum() == 0:
        return float("nan")
    if numeric:
        return ks_statistic(base_counts, target_counts)[0]
    return cramers_v(base_counts, target_counts)


def aggregate(
    scores: dict[str, float | None], method: Aggregate, weights: dict[str, float] | None
) -> float | None:
    """One value for all features (see the module's docstring); None when no feature has a score."""
    present = {k: v for k, v in scores.items() if v is not None and not math.isnan(v)}
    if not present:
        return None
    values = np.array(list(present.values()))
    if method == "max":
        return float(values.max())
    if method == "mean" or not weights:
        return float(values.mean())
    raw = np.array([max(float(weights.get(k, 0.0)), 0.0) for k in present])
    if raw.sum() == 0:
        return float(values.mean())
    w = raw / raw.sum()
    power = {"weighted": 1, "l3_weighted": 3, "l5_weighted": 5}[method]
    return float(np.sum(w * values**power) ** (1.0 / power))
