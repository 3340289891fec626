"""The calibrated drift test (DriftTest): its false-alarm rate on seeded data without drift, its
p-values against scipy's chi-square test, its pooling by hand; family-wise control; Student's t."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sagewatch.alerting.catalog import student_t
from sagewatch.metrics.drift.calibrated import SPARSE, drift_test, family_wise, pearson, pooled_bins


def quantile_counts(
    reference: np.ndarray, values: np.ndarray, bins: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    size = len(edges) + 1
    base = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=size)
    return base.astype(float), np.bincount(np.searchsorted(edges, values, side="right"), minlength=size)


@pytest.mark.parametrize(("window", "reference"), [(150, 3000), (10_000, 50_000), (40, 1000)])
def test_without_drift_the_false_alarm_rate_is_the_threshold(window: int, reference: int) -> None:
    # GIVEN 2,000 seeded pairs of a reference and a window drawn from the same distribution
    rng = np.random.default_rng(window)
    p_values = []
    for _ in range(2000):
        base, target = quantile_counts(rng.normal(size=reference), rng.normal(size=window))
        p_values.append(drift_test(base, target, numeric=True))
    p_values = np.array(p_values)

    # THEN the share of windows below each threshold is that threshold, within binomial noise
    for alpha in (0.05, 0.01):
        expected = 2000 * alpha
        spread = 3 * math.sqrt(expected * (1 - alpha))
        assert abs((p_values < alpha).sum() - expected) <= spread, (alpha, (p_values < alpha).sum())


def test_large_samples_agree_with_scipys_chi_square_test() -> None:
    # GIVEN large samples with a small shift (expected counts in the hundreds, where the asymptotic holds)
    rng = np.random.default_rng(3)
    for shift in (0.03, 0.05, 0.08):
        base, target = quantile_counts(rng.normal(size=40_000), rng.normal(shift, 1, size=20_000), bins=10)

        # THEN the calibrated p is scipy's chi-square test of homogeneity, within the resampling's noise
        expected = stats.chi2_contingency(np.vstack([base, target]), correction=False).pvalue
        found = drift_test(base, target, numeric=True)
        assert found == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize(
    ("shares", "base_rows", "window_rows"),
    [(np.full(20, 0.05), 340, 150), ((0.5, 0.3, 0.15, 0.05), 3000, 150), (np.full(10, 0.1), 400, 40)],
)
def test_the_null_mean_is_the_exact_one_resampling_finds(shares, base_rows: int, window_rows: int) -> None:
    # GIVEN 4,000 resampled pairs of a reference and a window of these sizes from one distribution
    rng = np.random.default_rng(base_rows)
    shares = np.asarray(shares, dtype=float)
    base = rng.multinomial(base_rows, shares, size=4000)
    target = rng.multinomial(window_rows, shares, size=4000)
    statistics = pearson(base, target)
    # THEN their mean is (k - 1) T / (T - 1), within three standard errors
    total = base_rows + window_rows
    exact = (len(shares) - 1) * total / (total - 1)
    assert abs(statistics.mean() - exact) < 3 * statistics.std() / math.sqrt(4000)


def test_a_half_sd_shift_in_a_thousand_rows_reads_far_below_the_default_threshold() -> None:
    rng = np.random.default_rng(5)
    base, target = quantile_counts(rng.normal(size=5000), rng.normal(0.5, 1, size=1000))
    assert drift_test(base, target, numeric=True) < 1e-3 / 30  # past Bonferroni's bar for 30 inputs
    assert stats.ks_2samp(rng.normal(size=5000), rng.normal(0.5, 1, size=1000)).pvalue < 1e-6


def test_the_same_window_always_gets_the_same_p() -> None:
    base, target = np.array([50.0, 30.0, 20.0]), np.array([10.0, 12.0, 3.0])
    assert drift_test(base, target, numeric=False) == drift_test(base, target, numeric=False)


def test_bins_are_pooled_until_each_expects_five_rows() -> None:
    shares = np.array([1.0, 1.0, 50.0, 48.0])  # 100 rows expect 1, 1, 50, 48
    # numeric: adjacent bins merged left to right
    assert pooled_bins(shares, 100, numeric=True).tolist() == [0, 0, 0, 1]
    # a short last run joins the one before it
    assert pooled_bins(np.array([50.0, 48.0, 2.0]), 100, numeric=True).tolist() == [0, 1, 1]
    # categorical: rare ones grouped until a group expects five; all of them short of it: tested apart
    assert pooled_bins(shares, 100, numeric=False).tolist() == [SPARSE, SPARSE, 1, 0]
    assert pooled_bins(np.full(50, 60.0), 150, numeric=False).tolist() == [i // 2 for i in range(50)]


def test_a_rare_category_is_judged_by_fishers_exact_test() -> None:
    # a "yes" seen 9 times in 3,000: 0.45 expected in 150 rows, too few for the chi-square law
    base = np.array([2991.0, 9.0])
    assert drift_test(base, np.array([146.0, 4.0]), numeric=False) == pytest.approx(
        stats.fisher_exact([[4, 146], [9, 2991]], alternative="greater").pvalue, rel=1e-9
    )
    assert drift_test(base, np.array([0.0, 150.0]), numeric=False) < 1e-100  # every row "yes": drift
    assert drift_test(base, np.array([150.0, 0.0]), numeric=False) == 1.0  # none: as expected


def test_both_tests_of_one_input_are_bonferroni_combined() -> None:
    # common categories by chi-square, the rare pair by Fisher's test: the input's p is 2 x the smaller
    base, target = np.array([500.0, 490.0, 5.0, 5.0]), np.array([70.0, 80.0, 0.0, 0.0])
    common = stats.chi2_contingency(np.array([[500.0, 490.0], [70.0, 80.0]]), correction=False)
    total = 990 + 150
    scaled = stats.chi2.sf(common.statistic / (total / (total - 1)), 1)
    assert drift_test(base, target, numeric=False) == pytest.approx(min(1.0, 2 * min(scaled, 1.0)), rel=1e-6)


def test_an_empty_window_or_one_bin_has_no_evidence() -> None:
    assert math.isnan(drift_test(np.array([5.0, 5.0]), np.array([0.0, 0.0]), numeric=True))
    assert drift_test(np.array([10.0]), np.array([4.0]), numeric=False) == 1.0


def test_family_wise_is_bonferronis_adjusted_smallest_p() -> None:
    assert family_wise([0.2, 0.001, None, float("nan"), 0.5]) == pytest.approx(3 * 0.001)
    assert family_wise([0.9, 0.8]) == 1.0
    assert family_wise([None]) is None


@pytest.mark.parametrize("freedom", [4, 5, 9, 19, 39, 100])
def test_student_t_quantile_is_scipys(freedom: int) -> None:
    assert student_t(0.95, freedom) == pytest.approx(stats.t.ppf(0.975, freedom), abs=1e-3)
