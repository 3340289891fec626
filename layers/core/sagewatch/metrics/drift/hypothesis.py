"""HypothesisTest: -log10 of a two-sample test's p-value (Arthur's convention: larger = more drift).

- Numeric: Kolmogorov-Smirnov. D is the largest gap between the two empirical CDFs evaluated at the
  base's KS_BINS (1,000) quantile edges; the p-value is scipy's asymptotic one for two samples,
  kstwo.sf(D, round(n*m/(n+m))), as scipy.stats.ks_2samp(method="asymp") computes it. Evaluating
  the CDFs only at edges can miss part of the gap: D is exact up to the largest share of either
  sample in one bin (`ks_statistic` returns that bound).
- Categorical: chi-square on the category counts (a 2 x k contingency table over the union of
  categories), scipy.stats.chi2_contingency.
p-values are floored at 1e-300 so the value stays finite.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

FLOOR = 1e-300


def ks_statistic(base_counts: np.ndarray, target_counts: np.ndarray) -> tuple[float, float]:
    """(D, bound on |D - exact D|) from counts over the same ordered bins (missing values excluded)."""
    base_cdf = np.cumsum(base_counts) / max(base_counts.sum(), 1)
    target_cdf = np.cumsum(target_counts) / max(target_counts.sum(), 1)
    bound = max(
        (base_counts / max(base_counts.sum(), 1)).max(initial=0),
        (target_counts / max(target_counts.sum(), 1)).max(initial=0),
    )
    return float(np.max(np.abs(base_cdf - target_cdf), initial=0.0)), float(bound)


def ks_test(base_counts: np.ndarray, target_counts: np.ndarray) -> float:
    """-log10 p of the KS test from binned counts."""
    n, m = base_counts.sum(), target_counts.sum()
    if n == 0 or m == 0:
        return float("nan")
    statistic, _ = ks_statistic(base_counts, target_counts)
    effective = round(n * m / (n + m))
    p_value = stats.distributions.kstwo.sf(statistic, effective)
    return float(-np.log10(max(p_value, FLOOR)))


def chi_square_test(base_counts: np.ndarray, target_counts: np.ndarray) -> float:
    """-log10 p of the chi-square test of independence of the two category count vectors."""
    used = (base_counts > 0) | (target_counts > 0)
    table = np.vstack([base_counts[used], target_counts[used]])
    if table.shape[1] < 2 or table.sum(axis=1).min() == 0:
        return 0.0 if table.shape[1] < 2 else float("nan")
    _, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    return float(-np.log10(max(p_value, FLOOR)))
