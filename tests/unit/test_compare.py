"""Champion against challenger: values against scikit-learn, tests against scipy, intervals against
the normal approximation they should agree with on large samples."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, precision_score, recall_score
from tests import factories

from sagewatch.metrics.compare import MIN_LABELLED, binomial_two_sided, compare

BINARY = factories.model_of(factories.binary_probability())
REGRESSION = factories.model_of(factories.regression())


def binary_rows(ids: list[str], truth: np.ndarray, score: np.ndarray) -> pa.Table:
    return pa.table({"partner_inference_id": ids, "predicted_probability": score, "churned": truth})


def by_metric(answer: dict) -> dict[str, dict]:
    return {m["metric"]: m for m in answer["metrics"]}


@pytest.mark.parametrize(("k", "n"), [(0, 1), (3, 20), (10, 21), (47, 120), (250, 500)])
def test_mcnemars_exact_p_value_is_scipys_binomial_test(k: int, n: int) -> None:
    assert binomial_two_sided(k, n) == pytest.approx(stats.binomtest(k, n, 0.5).pvalue, rel=1e-9)


def test_a_shadow_pair_is_compared_pair_by_pair() -> None:
    rng = np.random.default_rng(4)
    n = 600
    ids = [f"r{i}" for i in range(n)]
    truth = rng.integers(0, 2, n)
    champion = np.clip(0.5 + (truth - 0.5) * rng.normal(0.25, 0.3, n), 0, 1)  # right about 80%
    challenger = np.clip(0.5 + (truth - 0.5) * rng.normal(0.45, 0.3, n), 0, 1)  # right more often
    answer = compare(
        BINARY,
        binary_rows(ids, truth, champion),
        binary_rows(ids[::-1], truth[::-1], challenger[::-1]),
        "A",
        "B",
    ).as_dict()
    assert answer["paired"] and answer["pairs"] == n
    metrics = by_metric(answer)
    predicted_a, predicted_b = champion >= 0.5, challenger >= 0.5
    assert metrics["accuracy"]["champion"] == pytest.approx(accuracy_score(truth, predicted_a))
    assert metrics["accuracy"]["challenger"] == pytest.approx(accuracy_score(truth, predicted_b))
    assert metrics["precision"]["challenger"] == pytest.approx(precision_score(truth, predicted_b))
    assert metrics["recall"]["challenger"] == pytest.approx(recall_score(truth, predicted_b))
    assert metrics["f1"]["challenger"] == pytest.approx(f1_score(truth, predicted_b))
    right_a, right_b = predicted_a == truth, predicted_b == truth
    only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    expected = stats.binomtest(min(only_a, only_b), only_a + only_b, 0.5).pvalue
    assert metrics["accuracy"]["test"] == "McNemar's exact test"
    assert metrics["accuracy"]["p_value"] == pytest.approx(expected, rel=1e-9)
    # the paired interval of the accuracy difference, against its normal approximation
    difference = right_b.astype(float) - right_a.astype(float)
    spread = 1.96 * difference.std(ddof=1) / np.sqrt(n)
    low, high = metrics["accuracy"]["interval"]
    assert low == pytest.approx(difference.mean() - spread, abs=0.01)
    assert high == pytest.approx(difference.mean() + spread, abs=0.01)
    assert answer["verdict"] == "challenger better"


def test_an_ab_split_is_compared_as_two_samples() -> None:
    rng = np.random.default_rng(5)
    truth_a, truth_b = rng.integers(0, 2, 3000), rng.integers(0, 2, 2500)
    right_a, right_b = rng.random(3000) < 0.8, rng.random(2500) < 0.8
    score_a = np.where(right_a, truth_a, 1 - truth_a) * 0.8 + 0.1
    score_b = np.where(right_b, truth_b, 1 - truth_b) * 0.8 + 0.1
    a = binary_rows([f"a{i}" for i in range(3000)], truth_a, score_a)
    b = binary_rows([f"b{i}" for i in range(2500)], truth_b, score_b)
    answer = compare(BINARY, a, b, "A", "B").as_dict()
    accuracy = by_metric(answer)["accuracy"]
    assert not answer["paired"] and answer["pairs"] == 0
    p_a, p_b = right_a.mean(), right_b.mean()
    pooled = (right_a.sum() + right_b.sum()) / 5500
    z = (p_b - p_a) / np.sqrt(pooled * (1 - pooled) * (1 / 3000 + 1 / 2500))
    assert accuracy["test"] == "two-proportion z-test"
    assert accuracy["p_value"] == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-6)
    wald = 1.96 * np.sqrt(p_a * (1 - p_a) / 3000 + p_b * (1 - p_b) / 2500)
    assert accuracy["interval"][0] == pytest.approx(p_b - p_a - wald, abs=0.005)
    assert accuracy["interval"][1] == pytest.approx(p_b - p_a + wald, abs=0.005)
    assert answer["verdict"] == "no difference shown"  # both right 80% of the time


def test_paired_regression_errors_are_tested_on_their_differences() -> None:
    rng = np.random.default_rng(6)
    n = 400
    ids = [f"h{i}" for i in range(n)]
    price = rng.normal(300, 50, n)
    champion = price + rng.normal(0, 20, n)
    challenger = price + rng.normal(0, 15, n)
    a = pa.table({"partner_inference_id": ids, "predicted_value": champion, "ground_truth_value": price})
    b = pa.table({"partner_inference_id": ids, "predicted_value": challenger, "ground_truth_value": price})
    metrics = by_metric(compare(REGRESSION, a, b, "A", "B").as_dict())
    assert metrics["mae"]["champion"] == pytest.approx(mean_absolute_error(price, champion))
    assert metrics["rmse"]["challenger"] == pytest.approx(np.sqrt(np.mean((challenger - price) ** 2)))
    # the paired z on |error| differences, against scipy's paired t-test (close at n = 400)
    t_test = stats.ttest_rel(np.abs(challenger - price), np.abs(champion - price))
    assert metrics["mae"]["p_value"] == pytest.approx(t_test.pvalue, rel=0.05, abs=1e-4)
    assert metrics["rmse"]["higher_is_better"] is False


def test_too_few_labels_say_so_instead_of_a_verdict() -> None:
    n = MIN_LABELLED - 1
    ids = [f"r{i}" for i in range(n)]
    truth = np.tile([0, 1], n)[:n]
    answer = compare(
        BINARY, binary_rows(ids, truth, truth * 0.9), binary_rows(ids, truth, truth * 0.2), "A", "B"
    ).as_dict()
    assert answer["verdict"] == "not enough labelled data"
    assert f"at least {MIN_LABELLED}" in answer["reason"]


def test_a_window_past_the_bootstrap_rows_keeps_the_normal_approximations_interval() -> None:
    """Large sides are resampled from a subsample, the spread shrunk to the whole side's size."""
    rng = np.random.default_rng(8)
    n_a, n_b = 60_000, 45_000
    truth_a, truth_b = rng.integers(0, 2, n_a), rng.integers(0, 2, n_b)
    right_a, right_b = rng.random(n_a) < 0.80, rng.random(n_b) < 0.82
    a = binary_rows(
        [f"a{i}" for i in range(n_a)], truth_a, np.where(right_a, truth_a, 1 - truth_a) * 0.8 + 0.1
    )
    b = binary_rows(
        [f"b{i}" for i in range(n_b)], truth_b, np.where(right_b, truth_b, 1 - truth_b) * 0.8 + 0.1
    )
    accuracy = by_metric(compare(BINARY, a, b, "A", "B").as_dict())["accuracy"]
    p_a, p_b = right_a.mean(), right_b.mean()
    wald = 1.96 * np.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    assert accuracy["difference"] == pytest.approx(p_b - p_a)
    assert accuracy["interval"][0] == pytest.approx(p_b - p_a - wald, abs=0.0015)
    assert accuracy["interval"][1] == pytest.approx(p_b - p_a + wald, abs=0.0015)
