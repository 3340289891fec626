"""DriftScore against scipy: KS D (ks_2samp) and bias-corrected Cramér's V (chi2_contingency)."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from scipy.stats import chi2_contingency, ks_2samp

from sagewatch.metrics.drift import binning
from sagewatch.metrics.drift.score import aggregate, cramers_v, drift_score


def bergsma_v(base: np.ndarray, target: np.ndarray) -> float:
    """Deepchecks' formula, written out with scipy's chi-square (sizes already equal)."""
    table = np.vstack([base, target])
    chi2 = chi2_contingency(table)[0]
    n = table.sum()
    r, k = table.shape
    phi2 = max(0.0, chi2 / n - (k - 1) * (r - 1) / (n - 1))
    return math.sqrt(phi2 / min(k - (k - 1) ** 2 / (n - 1) - 1, r - (r - 1) ** 2 / (n - 1) - 1))


@pytest.mark.parametrize(
    ("base", "target"),
    [
        ([146, 154], [146, 154]),
        ([146, 154], [60, 240]),
        ([50, 30, 20], [20, 30, 50]),
        ([10, 0, 90, 400], [30, 5, 60, 405]),
    ],
)
def test_cramers_v_is_bergsma_corrected_with_scipys_chi_square(base: list[int], target: list[int]) -> None:
    assert cramers_v(np.array(base, float), np.array(target, float)) == pytest.approx(
        bergsma_v(np.array(base, float), np.array(target, float)), abs=1e-12
    )


def test_cramers_v_scales_the_larger_sample_down_first() -> None:
    # 600 vs 300: the base is halved (and rounded) before the table is formed
    assert cramers_v(np.array([292.0, 308.0]), np.array([60.0, 240.0])) == pytest.approx(
        bergsma_v(np.array([146.0, 154.0]), np.array([60.0, 240.0])), abs=1e-12
    )


def test_one_category_in_all_is_no_drift() -> None:
    assert cramers_v(np.array([10.0, 0.0]), np.array([7.0, 0.0])) == 0.0


def test_ks_d_from_fine_bins_is_within_one_bins_share_of_scipy() -> None:
    rng = np.random.default_rng(3)
    base, target = rng.normal(0, 1, 5000), rng.normal(0.3, 1.2, 800)
    profile = binning.fit(pa.array(base), binning.KS_BINS)
    base_counts, _ = binning.counts(profile, pa.array(base))
    target_counts, _ = binning.counts(profile, pa.array(target))
    ours = drift_score(base_counts, target_counts, numeric=True)
    exact = ks_2samp(base, target).statistic
    bound = max(base_counts.max() / base_counts.sum(), target_counts.max() / target_counts.sum())
    assert abs(ours - exact) <= bound
    assert exact > 0.1


def test_aggregates_follow_deepchecks_feature_reduce() -> None:
    scores = {"a": 0.1, "b": 0.4, "c": None}
    weights = {"a": 3.0, "b": 1.0, "c": 5.0}  # c has no score: the weights of a and b are renormalised
    assert aggregate(scores, "l3_weighted", weights) == pytest.approx(
        (0.75 * 0.1**3 + 0.25 * 0.4**3) ** (1 / 3)
    )
    assert aggregate(scores, "weighted", weights) == pytest.approx(0.75 * 0.1 + 0.25 * 0.4)
    assert aggregate(scores, "max", weights) == 0.4
    assert aggregate(scores, "l3_weighted", None) == pytest.approx(0.25)  # no weights: the mean
    assert aggregate({"a": None}, "mean", None) is None
