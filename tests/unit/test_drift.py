"""Drift statistics against scipy and hand-worked cases; the drift engine on whole windows."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon
from tests import factories

from sagewatch.errors import InvalidInput
from sagewatch.metrics.drift import DriftQuery, binning, run_drift
from sagewatch.metrics.drift.hellinger import hellinger
from sagewatch.metrics.drift.hypothesis import (
    chi_square_test,
    kolmogorov_log_sf,
    ks_statistic,
    ks_test,
    log_gamma_q,
)
from sagewatch.metrics.drift.js import js_divergence
from sagewatch.metrics.drift.kl import kl_divergence
from sagewatch.metrics.drift.psi import psi

START = datetime(2026, 11, 25, tzinfo=UTC)
BINARY = factories.model_of(factories.binary_probability())


def test_psi_by_hand() -> None:
    # base 50/50, target 80/20: (0.8-0.5)ln(0.8/0.5) + (0.2-0.5)ln(0.2/0.5)
    expected = 0.3 * math.log(1.6) + (-0.3) * math.log(0.4)
    assert psi(np.array([50.0, 50.0]), np.array([80.0, 20.0])) == pytest.approx(expected)
    assert psi(np.array([10.0, 30.0]), np.array([1.0, 3.0])) == pytest.approx(0.0)


def test_empty_bins_get_epsilon_before_normalising() -> None:
    # target has nothing in bin 2: its share becomes 1e-4, then both sides are renormalised
    b = np.array([0.5, 0.5])
    t = np.array([1.0, 1e-4]) / (1.0 + 1e-4)
    expected = float(np.sum((t - b) * np.log(t / b)))
    assert psi(np.array([5.0, 5.0]), np.array([7.0, 0.0])) == pytest.approx(expected)


COUNTS = [
    (np.array([120.0, 80.0, 40.0, 10.0]), np.array([60.0, 90.0, 70.0, 30.0])),
    (np.array([5.0, 0.0, 9.0]), np.array([1.0, 4.0, 0.0])),
    (np.array([1000.0, 1.0]), np.array([1.0, 1000.0])),
]


@pytest.mark.parametrize(("base", "target"), COUNTS)
def test_kl_js_and_hellinger_against_scipy_on_the_same_proportions(
    base: np.ndarray, target: np.ndarray
) -> None:
    b, t = binning.proportions(base), binning.proportions(target)
    assert kl_divergence(base, target) == pytest.approx(stats.entropy(t, b))
    assert js_divergence(base, target) == pytest.approx(jensenshannon(b, t) ** 2)
    assert hellinger(base, target) == pytest.approx(np.sqrt(1 - np.sum(np.sqrt(b * t))))
    assert psi(base, target) == pytest.approx(stats.entropy(t, b) + stats.entropy(b, t))


def test_ks_on_reference_quantile_bins_is_within_its_bound_of_scipy() -> None:
    rng = np.random.default_rng(11)
    base = rng.normal(0, 1, 20_000)
    target = rng.normal(0.1, 1.1, 7_000)
    profile = binning.fit(pa.array(base), binning.KS_BINS)
    base_counts, _ = binning.counts(profile, pa.array(base))
    target_counts, _ = binning.counts(profile, pa.array(target))
    statistic, bound = ks_statistic(base_counts[:-1], target_counts[:-1])
    exact = stats.ks_2samp(base, target, method="asymp")
    assert abs(statistic - exact.statistic) <= bound
    assert bound < 0.01
    ours = ks_test(base_counts[:-1], target_counts[:-1])
    assert ours == pytest.approx(-math.log10(exact.pvalue), rel=0.15)


def test_chi_square_by_hand() -> None:
    # 2x2 table [[10, 20], [20, 10]]: expected 15 everywhere, chi2 = 4 * 25/15 = 20/3, 1 degree of freedom
    p_value = stats.chi2.sf(20 / 3, 1)
    assert chi_square_test(np.array([10.0, 20.0]), np.array([20.0, 10.0])) == pytest.approx(
        -math.log10(p_value)
    )


def test_numeric_bins_are_base_quantiles_and_missing_values_are_a_bin() -> None:
    profile = binning.fit(pa.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]), num_bins=4)
    assert profile.edges.tolist() == [2.75, 4.5, 6.25]
    counts, new = binning.counts(profile, pa.array([0.0, 3.0, 5.0, 100.0, None, float("nan")]))
    assert counts.tolist() == [1, 1, 1, 1, 2] and new == []


def test_categories_are_the_union_of_base_and_target() -> None:
    profile = binning.fit(pa.array(["a", "b", "b"]), num_bins=20)
    counts, new = binning.counts(profile, pa.array(["b", "c", None, "c"]))
    assert profile.categories == ("a", "b")
    assert new == ["c"]
    assert counts.tolist() == [0, 1, 1, 2]  # a, b, missing, c


def table(n: int, shift: float = 0.0, seed: int = 0, regions=("north", "south")) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "partner_inference_id": [f"{seed}-{i}" for i in range(n)],
            "inference_timestamp": pa.array(
                [START + timedelta(hours=int(h)) for h in rng.integers(0, 48, n)],
                pa.timestamp("us", tz="UTC"),
            ),
            "batch_id": pa.array(rng.choice(["b1", "b2"], n)),
            "age": rng.integers(18, 90, n),
            "income": rng.normal(50_000 + shift, 10_000, n),
            "region": rng.choice(list(regions), n),
            "predicted_probability": rng.random(n),
            "churned": rng.integers(0, 2, n),
        }
    )


def drift(body: dict, reference: pa.Table, target: pa.Table, files: int = 3) -> list[dict]:
    edges = np.linspace(0, target.num_rows, files + 1).astype(int)
    parts = [target.slice(a, b - a) for a, b in pairwise(edges)]

    def load(source, columns, first, last, truth):
        return [reference] if source == "reference" else parts

    return run_drift(DriftQuery.model_validate(body), BINARY, load)


def direct_psi(reference: np.ndarray, target: np.ndarray, bins: int = 20) -> float:
    """PSI computed here from scratch, with numpy's quantiles and histogram."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    b = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1).astype(float)
    t = np.bincount(np.searchsorted(edges, target, side="right"), minlength=len(edges) + 1).astype(float)
    b, t = b / b.sum(), t / t.sum()
    b, t = np.where(b == 0, 1e-4, b), np.where(t == 0, 1e-4, t)
    b, t = b / b.sum(), t / t.sum()
    return float(np.sum((t - b) * np.log(t / b)))


def test_psi_of_a_shifted_window_equals_a_direct_computation() -> None:
    reference, target = table(5000, seed=1), table(3000, shift=4000, seed=2)
    [row] = drift({"properties": ["income", "age"], "metric": "PSI"}, reference, target)
    assert row["income"] == pytest.approx(
        direct_psi(reference.column("income").to_numpy(), target.column("income").to_numpy())
    )
    assert row["income"] > 0.05 > row["age"]


def test_rollup_by_day_and_group_by_a_category() -> None:
    reference, target = table(4000, seed=1), table(3000, seed=2)
    rows = drift(
        {
            "properties": ["income"],
            "metric": "JSDivergence",
            "rollup": "day",
            "group_by": [{"property": "region"}],
        },
        reference,
        target,
    )
    assert [(r["region"], r["rollup"]) for r in rows] == [
        ("north", "2026-11-25T00:00:00+00:00"),
        ("north", "2026-11-26T00:00:00+00:00"),
        ("south", "2026-11-25T00:00:00+00:00"),
        ("south", "2026-11-26T00:00:00+00:00"),
    ]
    records = target.to_pylist()
    row = rows[0]
    window = np.array(
        [
            r["income"]
            for r in records
            if r["region"] == "north" and r["inference_timestamp"] < START + timedelta(days=1)
        ]
    )
    edges = np.unique(np.quantile(reference.column("income").to_numpy(), np.linspace(0, 1, 21)[1:-1]))
    b = np.bincount(np.searchsorted(edges, reference.column("income").to_numpy(), side="right"), minlength=20)
    t = np.bincount(np.searchsorted(edges, window, side="right"), minlength=20)
    assert row["income"] == pytest.approx(jensenshannon(binning.proportions(b), binning.proportions(t)) ** 2)


def test_rollup_by_batch() -> None:
    rows = drift(
        {"properties": ["region"], "metric": "HellingerDistance", "rollup": "batch_id"},
        table(2000, seed=1),
        table(2000, seed=2, regions=("north", "south", "east")),
    )
    assert [r["rollup"] for r in rows] == ["b1", "b2"]
    assert all(r["region"] > 0.3 for r in rows)  # a third of the target is a new category


def test_hypothesis_test_for_numbers_and_categories() -> None:
    same = drift(
        {"properties": ["income", "region"], "metric": "HypothesisTest"},
        table(5000, seed=1),
        table(5000, seed=2),
    )[0]
    moved = drift(
        {"properties": ["income", "region"], "metric": "HypothesisTest"},
        table(5000, seed=1),
        table(5000, shift=2000, seed=2, regions=("north", "north", "south")),
    )[0]
    assert same["income"] < 2 and same["region"] < 2  # p > 0.01
    assert moved["income"] > 10 and moved["region"] > 10


def test_thresholds_separate_noise_from_drift() -> None:
    reference = table(8000, seed=1)
    [threshold] = drift({"properties": ["income"], "metric": "Thresholds"}, reference, table(1000, seed=2))
    [quiet] = drift({"properties": ["income"], "metric": "PSI"}, reference, table(1000, seed=3))
    [moved] = drift({"properties": ["income"], "metric": "PSI"}, reference, table(1000, shift=5000, seed=4))
    assert threshold["window_size"] == 1000
    assert quiet["income"] < threshold["income"] < moved["income"]


def test_missing_values_count_as_drift_and_an_empty_window_is_null_with_a_reason() -> None:
    reference = table(1000, seed=1)
    target = table(1000, seed=2)
    holes = target.set_column(4, "income", pa.array(np.where(np.arange(1000) % 2 == 0, np.nan, 1.0)))
    [row] = drift({"properties": ["income"], "metric": "PSI"}, reference, holes)
    assert row["income"] > 1
    [empty] = drift(
        {
            "properties": ["income"],
            "metric": "PSI",
            "target": {
                "source": "inference",
                "filter": [{"property": "region", "comparator": "eq", "value": "nowhere"}],
            },
        },
        reference,
        target,
    )
    assert empty == {"income": None, "reason": "the target window has no rows"}


def test_unknown_properties_are_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        drift({"properties": ["income", "height"]}, table(10), table(10))
    assert caught.value.field == "properties[1]"


def test_drift_merged_over_files_equals_one_file() -> None:
    reference, target = table(3000, seed=1), table(2000, shift=1000, seed=2)
    body = {"properties": ["income", "region"], "metric": "KLDivergence", "rollup": "day"}
    assert drift(body, reference, target, files=7) == drift(body, reference, target, files=1)


def test_reference_filters_and_inference_bases() -> None:
    reference = table(3000, seed=1)
    target = table(3000, seed=2)
    body = {
        "properties": ["income"],
        "base": {
            "source": "inference",
            "filter": [
                {
                    "property": "inference_timestamp",
                    "comparator": "lt",
                    "value": (START + timedelta(days=1)).isoformat(),
                }
            ],
        },
        "target": {
            "source": "inference",
            "filter": [
                {
                    "property": "inference_timestamp",
                    "comparator": "gte",
                    "value": (START + timedelta(days=1)).isoformat(),
                }
            ],
        },
    }
    [row] = drift(body, reference, target)
    incomes = target.column("income").to_numpy()
    early = np.array(
        [t < START + timedelta(days=1) for t in target.column("inference_timestamp").to_pylist()]
    )
    assert row["income"] == pytest.approx(direct_psi(incomes[early], incomes[~early]))


@pytest.mark.parametrize("shape", [0.5, 1.0, 2.5, 10.0, 150.0])
@pytest.mark.parametrize("x", [0.01, 0.7, 3.0, 20.0, 90.0, 700.0])
def test_upper_incomplete_gamma_against_scipy(shape: float, x: float) -> None:
    assert log_gamma_q(shape, x) == pytest.approx(stats.gamma.logsf(x, shape), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize(
    ("n", "statistic"), [(50, 0.2), (300, 0.1), (3000, 0.05), (3000, 0.2), (100_000, 0.02)]
)
def test_kolmogorov_tail_against_scipys_exact_distribution(n: int, statistic: float) -> None:
    root = math.sqrt(n)
    ours = -kolmogorov_log_sf((root + 0.12 + 0.11 / root) * statistic) / math.log(10)
    assert ours == pytest.approx(-math.log10(stats.kstwo.sf(statistic, n)), rel=0.02)


def test_chi_square_against_scipy_on_several_categories() -> None:
    base, target = np.array([120.0, 80.0, 40.0, 10.0, 0.0]), np.array([60.0, 90.0, 70.0, 30.0, 5.0])
    _, p_value, _, _ = stats.chi2_contingency(np.vstack([base, target]), correction=False)
    assert chi_square_test(base, target) == pytest.approx(-math.log10(p_value), rel=1e-9)


def test_tiny_p_values_stay_finite_and_exact() -> None:
    base, target = np.array([5000.0, 10.0]), np.array([10.0, 5000.0])
    value = chi_square_test(base, target)
    assert 1000 < value < math.inf
