"""The calibrated drift test (DriftTest): its false-alarm rate on seeded data without drift, its
p-values against scipy's chi-square test, its pooling by hand; family-wise control; Student's t."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sagewatch.alerting.catalog import student_t
from sagewatch.metrics.drift.calibrated import drift_test, family_wise, pooled_bins


def quantile_counts(
    reference: np.ndarray, values: np.ndarray, bins: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    size = len(edges) + 1
    base = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=size)
    return base.astype(float), np.bincount(np.searchsorted(edges, values, side="right"), minlength=size)


@pytest.mark.parametrize(("window", "reference"), [(150, 3000), (10_000, 50_000), (40, 400)])
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
        assert -math.log10(found) == pytest.approx(-math.log10(expected), rel=0.15, abs=0.1)


def test_a_half_sd_shift_in_a_thousand_rows_reads_far_below_the_default_threshold() -> None:
    rng = np.random.default_rng(5)
    base, target = quantile_counts(rng.normal(size=5000), rng.normal(0.5, 1, size=1000))
    assert drift_test(base, target, numeric=True) < 1e-3 / 30  # past Bonferroni's bar for 30 inputs
    assert stats.ks_2samp(rng.normal(size=5000), rng.normal(0.5, 1, size=1000)).pvalue < 1e-6


def test_the_same_window_always_gets_the_same_p() -> None:
    base, target = np.array([50.0, 30.0, 20.0]), np.array([10.0, 12.0, 3.0])
    assert drift_test(base, target, numeric=False) == drift_test(base, target, numeric=False)


def test_bins_are_pooled_until_each_expects_five_window_rows() -> None:
    shares = np.array([1.0, 1.0, 50.0, 48.0])  # a window of 100 rows expects 1, 1, 50, 48
    # numeric: adjacent bins merged left to right
    assert pooled_bins(shares, 100, numeric=True).tolist() == [0, 0, 0, 1]
    # categorical: the rare ones together, after the common ones
    assert pooled_bins(shares, 100, numeric=False).tolist() == [2, 2, 0, 1]
    # a short last run joins the one before it
    assert pooled_bins(np.array([50.0, 48.0, 2.0]), 100, numeric=True).tolist() == [0, 1, 1]


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
