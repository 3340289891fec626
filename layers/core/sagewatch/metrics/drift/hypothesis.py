"""HypothesisTest: -log10 of a two-sample test's p-value (Arthur's convention: larger = more drift).

- Numeric: Kolmogorov-Smirnov. D is the largest gap between the two empirical CDFs evaluated at the
  base's KS_BINS (1,000) quantile edges, exact up to the largest share of either sample in one bin
  (`ks_statistic` returns that bound). The p-value is Kolmogorov's limiting distribution with
  Stephens' small-sample correction: p = Q((sqrt(n_e) + 0.12 + 0.11/sqrt(n_e)) * D), where
  Q(x) = 2 * sum_{j>=1} (-1)^(j-1) exp(-2 j^2 x^2) and n_e = n*m/(n+m).
- Categorical: Pearson's chi-square test of independence on the 2 x k table of category counts
  (union of categories, no continuity correction); p = Q_gamma(dof/2, chi2/2), the regularised
  upper incomplete gamma function.
Both are computed in log space, so a p-value far below 1e-300 still gives a finite, exact -log10 p.
They are written here with numpy (the Lambda runtime carries no scipy) and checked against scipy's
kstwo and chi2_contingency in the tests.
"""

from __future__ import annotations

import math

import numpy as np

LN10 = math.log(10.0)


def ks_statistic(base_counts: np.ndarray, target_counts: np.ndarray) -> tuple[float, float]:
    """(D, bound on |D - exact D|) from counts over the same ordered bins (missing values excluded)."""
    base_share = base_counts / max(base_counts.sum(), 1)
    target_share = target_counts / max(target_counts.sum(), 1)
    gap = np.abs(np.cumsum(base_share) - np.cumsum(target_share))
    bound = max(base_share.max(initial=0), target_share.max(initial=0))
    return float(gap.max(initial=0.0)), float(bound)


def kolmogorov_log_sf(x: float) -> float:
    """ln Q(x), Q the survival function of Kolmogorov's limiting distribution."""
    if x <= 0.2:
        return 0.0  # Q(0.2) = 1 - 6e-11
    if x > 3.0:  # the first term is all that is left: ln(2) - 2x^2 (relative error below 1e-30)
        return math.log(2.0) - 2.0 * x * x
    total = 0.0
    for j in range(1, 101):
        term = math.exp(-2.0 * j * j * x * x)
        total += term if j % 2 else -term
        if term < 1e-17 * total:
            break
    return math.log(min(max(2.0 * total, 1e-300), 1.0))


def ks_test(base_counts: np.ndarray, target_counts: np.ndarray) -> float:
    """-log10 p of the KS test from binned counts."""
    n, m = float(base_counts.sum()), float(target_counts.sum())
    if n == 0 or m == 0:
        return float("nan")
    statistic, _ = ks_statistic(base_counts, target_counts)
    root = math.sqrt(n * m / (n + m))
    return -kolmogorov_log_sf((root + 0.12 + 0.11 / root) * statistic) / LN10


def log_gamma_q(a: float, x: float) -> float:
    """ln Q(a, x), the regularised upper incomplete gamma function (series below a+1, else a
    continued fraction, as in Numerical Recipes' gammq)."""
    if x <= 0:
        return 0.0
    prefix = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        denominator = a
        for _ in range(10_000):
            denominator += 1
            term *= x / denominator
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        lower = math.exp(prefix) * total
        return math.log1p(-lower) if lower < 1 else -math.inf
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    fraction = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        step = d * c
        fraction *= step
        if abs(step - 1) < 1e-16:
            break
    return prefix + math.log(fraction)


def chi_square_test(base_counts: np.ndarray, target_counts: np.ndarray) -> float:
    """-log10 p of the chi-square test of independence of the two category count vectors."""
    used = (base_counts > 0) | (target_counts > 0)
    table = np.vstack([base_counts[used], target_counts[used]]).astype(float)
    if table.shape[1] < 2:
        return 0.0
    rows, columns = table.sum(axis=1), table.sum(axis=0)
    if rows.min() == 0:
        return float("nan")
    expected = np.outer(rows, columns) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    freedom = table.shape[1] - 1
    return -log_gamma_q(freedom / 2, statistic / 2) / LN10
