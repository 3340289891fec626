"""DriftTest: the p-value of "this window's values come from the reference's distribution", at the
window's own size, so one threshold means the same false-alarm rate for a 150-row hour and a
100,000-row day.

- Bins: the property's bins fitted on the reference (quantile bins, or categories), pooled so that
  every bin expects at least MIN_EXPECTED rows of the window and MIN_EXPECTED_REFERENCE of the
  reference (the chi-square law's tail, read far out at family-wise thresholds, needs the counts):
  adjacent numeric bins are merged left to right; categories rarer than that are grouped, rarest
  first, until each group expects enough, a short remainder joining the group before it. When all
  rare categories together fall short, they are SPARSE: their count is judged by Fisher's exact
  test (upper tail: more of the window in them than the reference's share), and the property's p
  is Bonferroni's over its two tests. Missing values and categories the reference never had are
  left out (the Null Rate and newCategoryRate metrics watch them), so one unseen value never reads
  as a shift. A numeric window of fewer than 2 x MIN_EXPECTED rows has one pooled bin: p = 1.
- Statistic: Pearson's chi-square of homogeneity of the 2 x k table (reference, window) x bin.
- Null distribution at these sizes: given the table's margins, the table of two samples from one
  distribution is multivariate hypergeometric, and the statistic's mean is then exactly
  (k - 1) T / (T - 1), T = reference rows + window rows, k the bins with a row (Haldane, 1940),
  whatever the sizes and shares. The statistic is read as c * chi2(k - 1) with c = T / (T - 1).
  With every bin expecting 5 rows the chi-square law holds in the tail too; tests and
  bench/alert_quality.py check the false-alarm rate by resampling windows of the evaluated size
  from the reference (tests/unit/test_drift_calibration.py also checks that resampled means agree
  with the exact one). p = Q((k-1)/2, x/(2c)), the regularised upper incomplete gamma function.

Across properties, `family_wise` is the Bonferroni-adjusted smallest p (min(1, m * min p)): the
chance that a window with no drift in any of m properties reads below alpha is at most alpha,
whatever the properties' correlation. A model-level rule on it alerts once for all its inputs.
"""

from __future__ import annotations

import math

import numpy as np

from sagewatch.metrics.drift.hypothesis import log_gamma_q

MIN_EXPECTED = 5.0
# the reference's rows each pooled bin expects: the tail read at family-wise thresholds needs more
# than the window's 5, and fewer, wider bins test a small reference's location shifts with more power
MIN_EXPECTED_REFERENCE = 40.0
SPARSE = -1  # the pooled-bin index of rare categories tested apart (Fisher's exact test)


def pooled_bins(base_counts: np.ndarray, rows: int, numeric: bool) -> np.ndarray:
    """A pooled-bin index for each of the reference's bins, so each pooled bin expects MIN_EXPECTED
    of `rows` (the smaller sample's): adjacent bins merged (numeric); categories rarer than that
    grouped, rarest first, until each group expects enough, a short remainder joining the group
    before it. When even all rare categories together fall short, they are SPARSE: tested apart."""
    shares = base_counts / max(base_counts.sum(), 1.0)
    need = MIN_EXPECTED / max(rows, 1)
    groups = np.zeros(len(shares), dtype=np.int64)
    if numeric:
        group, filled = 0, 0.0
        for index, share in enumerate(shares):  # at most num_bins (<= 200) bins: not a row loop
            groups[index] = group
            filled += share
            if filled >= need:
                group, filled = group + 1, 0.0
        if 0 < filled < need and group > 0:  # the last bins fell short: join them to the previous
            groups[groups == group] = group - 1
        return groups
    order = np.argsort(shares, kind="stable")  # rarest first
    rare = [index for index in order if shares[index] < need]
    group, filled = 0, 0.0
    for index in rare:  # categories of the reference: not a row loop
        groups[index] = group
        filled += shares[index]
        if filled >= need:
            group, filled = group + 1, 0.0
    if 0 < filled < need:  # a short remainder: into the group before it, or tested apart
        short = [index for index in rare if groups[index] == group]
        groups[short] = group - 1 if group > 0 else SPARSE
    common = [index for index in order if shares[index] >= need]
    groups[common] = group + np.arange(len(common))  # after the `group` complete rare groups
    return groups


def fisher_upper(window_count: int, window_rows: int, base_count: int, base_rows: int) -> float:
    """P(at least `window_count` of the window's rows fall in a class) given both samples' totals:
    Fisher's exact test, upper tail (hypergeometric), summed in log space."""
    total, successes = window_rows + base_rows, window_count + base_count
    top = min(successes, window_rows)
    if window_count <= 0:
        return 1.0

    def log_choose(n: int, k: int) -> float:
        return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)

    whole = log_choose(total, window_rows)
    terms = [  # at most min(window rows, base count + 1) terms (module docstring)
        log_choose(successes, k) + log_choose(total - successes, window_rows - k) - whole
        for k in range(window_count, top + 1)
    ]
    peak = max(terms)
    return min(1.0, math.exp(peak) * math.fsum(math.exp(t - peak) for t in terms))


def pearson(base: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Pearson's chi-square of homogeneity of each (base, target) pair of count rows (last axis: bins)."""
    base, target = np.atleast_2d(base).astype(float), np.atleast_2d(target).astype(float)
    n_base = base.sum(axis=-1, keepdims=True)
    n_target = target.sum(axis=-1, keepdims=True)
    column = base + target
    total = n_base + n_target
    with np.errstate(divide="ignore", invalid="ignore"):
        expected_base = column * n_base / total
        expected_target = column * n_target / total
        terms = np.where(
            column > 0,
            (base - expected_base) ** 2 / expected_base + (target - expected_target) ** 2 / expected_target,
            0.0,
        )
    return terms.sum(axis=-1)


def drift_test(base_counts: np.ndarray, target_counts: np.ndarray, numeric: bool) -> float:
    """The p-value of the window's counts under the reference's distribution (module docstring).

    Both count vectors are over the reference's bins (missing values and new categories left out);
    NaN when the window has no rows in them."""
    base = np.asarray(base_counts, dtype=float)
    target = np.asarray(target_counts, dtype=float)[: len(base)]
    base_rows, window_rows = int(base.sum()), int(target.sum())
    if base_rows == 0 or window_rows == 0:
        return math.nan
    groups = pooled_bins(base, min(window_rows, base_rows * MIN_EXPECTED // MIN_EXPECTED_REFERENCE), numeric)
    sparse = groups == SPARSE
    tests = []
    if sparse.any():
        tests.append(fisher_upper(int(target[sparse].sum()), window_rows, int(base[sparse].sum()), base_rows))
    size = int(groups.max()) + 1
    if size >= 2:
        pooled_base = np.bincount(groups[~sparse], weights=base[~sparse], minlength=size)
        pooled_target = np.bincount(groups[~sparse], weights=target[~sparse], minlength=size)
        freedom = int(((pooled_base + pooled_target) > 0).sum()) - 1
        total = pooled_base.sum() + pooled_target.sum()
        if freedom >= 1 and pooled_target.sum() > 0:
            observed = float(pearson(pooled_base, pooled_target)[0])
            scale = total / (total - 1)  # the exact null mean over k - 1 (module docstring)
            tests.append(math.exp(log_gamma_q(freedom / 2, observed / (2 * scale))))
    return min(1.0, len(tests) * min(tests)) if tests else 1.0


def family_wise(p_values: list[float]) -> float | None:
    """Bonferroni's adjusted smallest p over the properties that have one: min(1, m * min p)."""
    present = [p for p in p_values if p is not None and not math.isnan(p)]
    if not present:
        return None
    return min(1.0, len(present) * min(present))
