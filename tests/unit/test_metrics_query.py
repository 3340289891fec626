"""The query engine against scikit-learn, numpy and hand-computed cases, on the same rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from tests import factories

from sagewatch.errors import InvalidInput
from sagewatch.metrics.functions import AUC_BINS, auc_by_group
from sagewatch.metrics.query import Query, run
from sagewatch.schema import Model

START = datetime(2026, 11, 25, tzinfo=UTC)


def binary_rows(n: int = 2000, seed: int = 1) -> pa.Table:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, n)
    score = np.clip(rng.normal(0.35 + 0.3 * label, 0.2), 0, 1)
    churned = pa.array(label, mask=rng.random(n) < 0.1)  # 10% unlabelled
    age = pa.array(rng.integers(18, 90, n), mask=rng.random(n) < 0.05)
    return pa.table(
        {
            "partner_inference_id": [f"id-{i}" for i in range(n)],
            "inference_timestamp": pa.array(
                [START + timedelta(hours=int(h)) for h in rng.integers(0, 72, n)],
                pa.timestamp("us", tz="UTC"),
            ),
            "batch_id": pa.nulls(n, pa.string()),
            "variant": pa.nulls(n, pa.string()),
            "age": age,
            "income": rng.normal(50_000, 10_000, n),
            "region": rng.choice(["north", "south", "west"], n),
            "predicted_probability": score,
            "churned": churned,
        }
    )


def loader(table: pa.Table, files: int = 3):
    edges = np.linspace(0, table.num_rows, files + 1).astype(int)
    parts = [table.slice(a, b - a) for a, b in pairwise(edges)]
    return lambda source, columns, first, last, truth: parts


def query(model: Model, table: pa.Table, body: dict, files: int = 3) -> list[dict]:
    return run(Query.model_validate(body), model, loader(table, files))


BINARY = factories.model_of(factories.binary_probability())


def labelled(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    known = table.column("churned").is_valid().to_numpy(zero_copy_only=False)
    y = table.column("churned").to_numpy(zero_copy_only=False)[known].astype(int)
    score = table.column("predicted_probability").to_numpy()[known]
    return y, score


@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_binary_classification_metrics_match_scikit_learn(threshold: float) -> None:
    table = binary_rows()
    y, score = labelled(table)
    predicted = (score >= threshold).astype(int)
    names = [
        "accuracyRate",
        "precision",
        "recall",
        "f1",
        "specificity",
        "balancedAccuracyRate",
        "falsePositiveRate",
        "falseNegativeRate",
        "truePositiveRate",
        "trueNegativeRate",
        "sensitivity",
    ]
    [row] = query(
        BINARY, table, {"select": [{"function": n, "parameters": {"threshold": threshold}} for n in names]}
    )
    tn, fp, fn, tp = skm.confusion_matrix(y, predicted).ravel()
    expected = {
        "accuracyRate": skm.accuracy_score(y, predicted),
        "precision": skm.precision_score(y, predicted),
        "recall": skm.recall_score(y, predicted),
        "sensitivity": skm.recall_score(y, predicted),
        "truePositiveRate": skm.recall_score(y, predicted),
        "f1": skm.f1_score(y, predicted),
        "specificity": skm.recall_score(y, predicted, pos_label=0),
        "trueNegativeRate": skm.recall_score(y, predicted, pos_label=0),
        "balancedAccuracyRate": skm.balanced_accuracy_score(y, predicted),
        "falsePositiveRate": fp / (fp + tn),
        "falseNegativeRate": fn / (fn + tp),
    }
    for name, value in expected.items():
        assert row[name] == pytest.approx(value, abs=1e-12), name
    assert row["labelled_count"] == len(y)


def test_the_models_threshold_is_the_default() -> None:
    table = binary_rows()
    y, score = labelled(table)
    model = factories.model_of(factories.edited(factories.binary_probability(), classifier_threshold=0.62))
    [row] = query(model, table, {"select": [{"function": "accuracyRate"}]})
    assert row["accuracyRate"] == pytest.approx(skm.accuracy_score(y, (score >= 0.62).astype(int)))


def test_auc_is_within_its_stated_bound_of_scikit_learn() -> None:
    table = binary_rows(5000)
    y, score = labelled(table)
    [row] = query(BINARY, table, {"select": [{"function": "auc"}]})
    exact = skm.roc_auc_score(y, score)
    positives, _ = np.histogram(score[y == 1], bins=AUC_BINS, range=(0, 1))
    negatives, _ = np.histogram(score[y == 0], bins=AUC_BINS, range=(0, 1))
    bound = 0.5 * (positives * negatives).sum() / (positives.sum() * negatives.sum())
    assert abs(row["auc"] - exact) <= bound + 1e-12
    assert abs(row["auc"] - exact) < 1e-3


def test_auc_bound_is_what_the_partial_reports() -> None:
    states = pa.table({"s_pos__sum": [[3, 1]], "s_neg__sum": [[1, 2]], "__score_bin": [[900, 100]]})
    value, bound = auc_by_group(states, [])
    # positives: 3 at bin 900, 1 at bin 100; negatives: 1 at 900, 2 at 100
    # pairs won: 3 positives above the 2 negatives at 100 = 6; ties in bin 900: 3*1, in bin 100: 1*2
    assert value[0] == pytest.approx((6 + 0.5 * (3 + 2)) / (4 * 3))
    assert bound[0] == pytest.approx(0.5 * 5 / 12)


def test_confusion_matrix_rates() -> None:
    table = binary_rows()
    y, score = labelled(table)
    tn, fp, fn, tp = skm.confusion_matrix(y, (score >= 0.5).astype(int)).ravel()
    [row] = query(BINARY, table, {"select": [{"function": "confusionMatrixRate"}]})
    assert row["confusionMatrixRate"] == pytest.approx(
        {
            "true_positive": tp / len(y),
            "false_positive": fp / len(y),
            "true_negative": tn / len(y),
            "false_negative": fn / len(y),
        }
    )


def regression_rows(n: int = 1000) -> tuple[Model, pa.Table]:
    rng = np.random.default_rng(3)
    truth = rng.normal(100, 20, n)
    prediction = truth + rng.normal(0, 5, n)
    table = pa.table(
        {
            "partner_inference_id": [str(i) for i in range(n)],
            "inference_timestamp": pa.array([START] * n, pa.timestamp("us", tz="UTC")),
            "age": rng.integers(0, 9, n),
            "income": rng.random(n),
            "region": ["north"] * n,
            "predicted_value": prediction,
            "ground_truth_value": pa.array(truth, mask=np.arange(n) % 7 == 0),
        }
    )
    return factories.model_of(factories.regression()), table


def test_regression_metrics_match_scikit_learn() -> None:
    model, table = regression_rows()
    known = table.column("ground_truth_value").is_valid().to_numpy(zero_copy_only=False)
    y = table.column("ground_truth_value").to_numpy(zero_copy_only=False)[known].astype(float)
    p = table.column("predicted_value").to_numpy()[known]
    [row] = query(
        model, table, {"select": [{"function": "rmse"}, {"function": "mae"}, {"function": "rSquared"}]}
    )
    assert row["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)), rel=1e-12)
    assert row["mae"] == pytest.approx(skm.mean_absolute_error(y, p), rel=1e-12)
    assert row["rSquared"] == pytest.approx(skm.r2_score(y, p), rel=1e-9)
    assert row["labelled_count"] == known.sum()


def multiclass_rows(n: int = 3000) -> tuple[Model, pa.Table, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    classes = np.array(["dog", "cat", "bird"])
    truth = rng.integers(0, 3, n)
    logits = rng.normal(0, 1, (n, 3)) + np.eye(3)[truth] * 1.2
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    table = pa.table(
        {
            "partner_inference_id": [str(i) for i in range(n)],
            "inference_timestamp": pa.array([START] * n, pa.timestamp("us", tz="UTC")),
            "age": np.zeros(n, dtype=int),
            "income": np.zeros(n),
            "region": ["north"] * n,
            "probability_dog": probabilities[:, 0],
            "probability_cat": probabilities[:, 1],
            "probability_bird": probabilities[:, 2],
            "animal": classes[truth],
        }
    )
    return factories.model_of(factories.multiclass_class_column()), table, truth, probabilities.argmax(axis=1)


def test_multiclass_metrics_match_scikit_learn_macro_and_per_class() -> None:
    model, table, truth, predicted = multiclass_rows()
    [row] = query(
        model,
        table,
        {
            "select": [
                {"function": "accuracyRateMulticlass"},
                {"function": "precisionMulticlass"},
                {"function": "recallMulticlass"},
                {"function": "f1Multiclass"},
                {
                    "function": "f1Multiclass",
                    "alias": "f1_cat",
                    "parameters": {"predicted_property": "probability_cat"},
                },
            ]
        },
    )
    assert row["accuracyRateMulticlass"] == pytest.approx(skm.accuracy_score(truth, predicted))
    assert row["precisionMulticlass"] == pytest.approx(skm.precision_score(truth, predicted, average="macro"))
    assert row["recallMulticlass"] == pytest.approx(skm.recall_score(truth, predicted, average="macro"))
    assert row["f1Multiclass"] == pytest.approx(skm.f1_score(truth, predicted, average="macro"))
    assert row["f1_cat"] == pytest.approx(skm.f1_score(truth, predicted, average=None)[1])


def test_plain_aggregates_and_integrity_rates_by_hand() -> None:
    table = pa.table(
        {
            "partner_inference_id": ["a", "b", "c", "d", "e"],
            "inference_timestamp": pa.array([START] * 5, pa.timestamp("us", tz="UTC")),
            "age": pa.array([10, None, 30, 200, -5]),
            "income": [1.0, 2.0, 3.0, 4.0, 5.0],
            "region": ["north", "south", "mars", None, "north"],
            "predicted_probability": [0.1, 0.2, 0.3, 0.4, 0.5],
        }
    )
    body = factories.binary_probability()
    body["attributes"][0].update(min_range=0, max_range=120)
    [row] = query(
        factories.model_of(body),
        table,
        {
            "select": [
                {"function": "count"},
                {"function": "sum", "parameters": {"property": "income"}},
                {"function": "avg", "parameters": {"property": "age"}},
                {"function": "min", "parameters": {"property": "age"}},
                {"function": "max", "parameters": {"property": "age"}},
                {"function": "nullRate", "alias": "null_age", "parameters": {"property": "age"}},
                {"function": "outOfRangeRate", "parameters": {"property": "age"}},
                {"function": "newCategoryRate", "parameters": {"property": "region"}},
                {"function": "rate", "parameters": {"property": "income", "comparator": "gte", "value": 4}},
            ]
        },
        files=2,
    )
    assert row == {
        "count": 5,
        "sum": 15.0,
        "avg": (10 + 30 + 200 - 5) / 4,
        "min": -5.0,
        "max": 200.0,
        "null_age": 0.2,
        "outOfRangeRate": 2 / 4,
        "newCategoryRate": 1 / 4,
        "rate": 2 / 5,
    }


def test_distribution_counts_per_category_and_per_bin() -> None:
    table = binary_rows(500)
    body = factories.binary_probability()
    body["attributes"][1].update(min_range=0, max_range=100_000)
    [row] = query(
        factories.model_of(body),
        table,
        {
            "select": [
                {"function": "distribution", "alias": "regions", "parameters": {"property": "region"}},
                {
                    "function": "distribution",
                    "alias": "incomes",
                    "parameters": {"property": "income", "num_bins": 4},
                },
            ]
        },
    )
    regions = table.column("region").to_numpy(zero_copy_only=False)
    assert row["regions"] == [
        {"value": v, "count": int((regions == v).sum())} for v in ["north", "south", "west"]
    ]
    expected, edges = np.histogram(
        np.clip(table.column("income").to_numpy(), 0, 100_000), bins=4, range=(0, 100_000)
    )
    got = [(b["lower"], b["upper"], b["count"]) for b in row["incomes"]]
    assert got == [(edges[i], edges[i + 1], int(expected[i])) for i in range(4) if expected[i]]


def test_a_daily_time_series_grouped_by_a_category_matches_a_direct_computation() -> None:
    table = binary_rows(3000)
    rows = query(
        BINARY,
        table,
        {
            "select": [
                {
                    "function": "roundTimestamp",
                    "alias": "day",
                    "parameters": {"property": "inference_timestamp", "time_interval": "day"},
                },
                {"property": "region"},
                {"function": "count"},
                {"function": "accuracyRate"},
            ],
            "group_by": [{"alias": "day"}, {"property": "region"}],
        },
    )
    assert len(rows) == 9
    records = table.to_pylist()
    for row in rows:
        day = datetime.fromisoformat(row["day"])
        members = [
            r
            for r in records
            if r["region"] == row["region"] and r["inference_timestamp"].date() == day.date()
        ]
        known = [r for r in members if r["churned"] is not None]
        y = [r["churned"] for r in known]
        p = [int(r["predicted_probability"] >= 0.5) for r in known]
        assert row["count"] == len(members)
        assert row["accuracyRate"] == pytest.approx(skm.accuracy_score(y, p))
        assert row["labelled_count"] == len(known)
    assert [r["day"] for r in rows][:3] == ["2026-11-25T00:00:00+00:00"] * 3


@pytest.mark.parametrize(
    ("condition", "keep"),
    [
        ({"property": "region", "comparator": "eq", "value": "north"}, lambda r: r["region"] == "north"),
        ({"property": "region", "comparator": "ne", "value": "north"}, lambda r: r["region"] != "north"),
        ({"property": "income", "comparator": "lt", "value": 50000}, lambda r: r["income"] < 50000),
        ({"property": "income", "comparator": "lte", "value": "50000"}, lambda r: r["income"] <= 50000),
        (
            {"property": "age", "comparator": "gt", "value": 60},
            lambda r: r["age"] is not None and r["age"] > 60,
        ),
        (
            {"property": "age", "comparator": "gte", "value": 60},
            lambda r: r["age"] is not None and r["age"] >= 60,
        ),
        (
            {"property": "region", "comparator": "in", "value": ["south", "west"]},
            lambda r: r["region"] in ("south", "west"),
        ),
        ({"property": "region", "comparator": "notin", "value": ["south"]}, lambda r: r["region"] != "south"),
        ({"property": "region", "comparator": "like", "value": "%th"}, lambda r: r["region"].endswith("th")),
        ({"property": "age", "comparator": "IsNull"}, lambda r: r["age"] is None),
        ({"property": "churned", "comparator": "NotNull"}, lambda r: r["churned"] is not None),
        (
            {"property": "inference_timestamp", "comparator": "gte", "value": "2026-11-26T12:00:00Z"},
            lambda r: r["inference_timestamp"] >= datetime(2026, 11, 26, 12, tzinfo=UTC),
        ),
    ],
)
def test_every_comparator_filters_as_written(condition: dict, keep) -> None:
    table = binary_rows(800)
    [row] = query(BINARY, table, {"select": [{"function": "count"}], "filter": [condition]})
    assert row["count"] == sum(1 for r in table.to_pylist() if keep(r))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"select": [{"function": "median"}]}, "select[0].function"),
        ({"select": [{"property": "shoe_size"}]}, "select[0].property"),
        (
            {"select": [{"function": "avg", "parameters": {"property": "height"}}]},
            "select[0].parameters.property",
        ),
        (
            {
                "select": [{"function": "count"}],
                "filter": [{"property": "x", "comparator": "eq", "value": 1}],
            },
            "filter[0].property",
        ),
        (
            {
                "select": [{"function": "count"}],
                "filter": [{"property": "age", "comparator": "contains", "value": 1}],
            },
            "filter[0].comparator",
        ),
        (
            {
                "select": [{"function": "count"}],
                "filter": [{"property": "age", "comparator": "gt", "value": "old"}],
            },
            "filter[0].value",
        ),
        ({"select": [{"function": "count"}, {"property": "region"}]}, "group_by"),
        ({"select": [{"function": "rmse"}]}, "select[0].function"),
        (
            {"select": [{"function": "avg", "parameters": {"property": "region"}}]},
            "select[0].parameters.property",
        ),
    ],
)
def test_unknown_names_are_refused_naming_the_field(body: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        query(BINARY, binary_rows(10), body)
    assert caught.value.field == field


def test_plain_rows_with_order_and_limit() -> None:
    table = binary_rows(50)
    rows = query(
        BINARY,
        table,
        {
            "select": [{"property": "partner_inference_id"}, {"property": "income"}],
            "order_by": [{"property": "income", "direction": "desc"}],
            "limit": 3,
        },
    )
    top = sorted(table.to_pylist(), key=lambda r: -r["income"])[:3]
    assert rows == [{"partner_inference_id": r["partner_inference_id"], "income": r["income"]} for r in top]


def test_an_empty_window_gives_nulls_not_errors() -> None:
    table = binary_rows(10).slice(0, 0)
    [row] = query(
        BINARY, table, {"select": [{"function": "count"}, {"function": "accuracyRate"}, {"function": "auc"}]}
    )
    assert row == {"count": 0, "accuracyRate": None, "auc": None, "labelled_count": 0}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=600), min_size=1, max_size=6))
def test_per_file_partials_merged_equal_all_at_once(cuts: list[int]) -> None:
    table = binary_rows(600, seed=9)
    edges = sorted({0, 600, *cuts})
    parts = [table.slice(a, b - a) for a, b in pairwise(edges)]
    body = {
        "select": [
            {"function": "roundTimestamp", "alias": "day", "parameters": {"property": "inference_timestamp"}},
            {"function": "count"},
            {"function": "avg", "parameters": {"property": "age"}},
            {"function": "max", "parameters": {"property": "income"}},
            {"function": "f1"},
            {"function": "auc"},
            {"function": "nullRate", "parameters": {"property": "age"}},
        ],
        "group_by": [{"alias": "day"}],
    }
    split = run(Query.model_validate(body), BINARY, lambda *_: parts)
    whole = run(Query.model_validate(body), BINARY, lambda *_: [table])
    assert len(split) == len(whole)
    for a, b in zip(split, whole, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert (
                a[key] == pytest.approx(b[key], rel=1e-12, abs=1e-12)
                if isinstance(a[key], float)
                else a[key] == b[key]
            )


def test_a_distribution_over_given_bounds_counts_as_numpy_histogram_does() -> None:
    """A numeric attribute without a declared range is binned over the lower and upper a caller gives
    (the dashboard gives the reference's min and max)."""
    table = binary_rows(500, seed=3)
    [row] = query(
        BINARY,
        table,
        {
            "select": [
                {
                    "function": "distribution",
                    "parameters": {"property": "income", "num_bins": 8, "lower": 20_000, "upper": 80_000},
                }
            ]
        },
    )
    income = table.column("income").to_numpy()
    inside = np.clip(income, 20_000, 80_000)  # values outside fall in the first or last bin
    expected, edges = np.histogram(inside, bins=8, range=(20_000, 80_000))
    assert [b["count"] for b in row["distribution"]] == expected.tolist()
    assert [b["lower"] for b in row["distribution"]] == pytest.approx(edges[:-1].tolist())


@pytest.mark.parametrize(
    ("parameters", "field"),
    [({"lower": 1}, "select[0].parameters"), ({"lower": 5, "upper": 5}, "select[0].parameters.upper")],
)
def test_distribution_bounds_are_both_given_and_ordered(parameters: dict, field: str) -> None:
    body = {"select": [{"function": "distribution", "parameters": {"property": "income", **parameters}}]}
    with pytest.raises(InvalidInput) as refused:
        query(BINARY, binary_rows(50), body)
    assert refused.value.field == field
