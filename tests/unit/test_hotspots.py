"""Hotspot search (sagewatch.metrics.hotspots): planted segments recovered, the root split checked
against scikit-learn's tree, no hotspot where errors are uniform, values checked against
scikit-learn's metrics on the hotspot's rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from sklearn import metrics as skm
from sklearn.tree import DecisionTreeClassifier
from tests import factories

from sagewatch.metrics import hotspots
from sagewatch.metrics.hotspots import Feature, StoppingRules

NOISE = [f"n{i}" for i in range(5)]


def _model(output_type: str = "BINARY"):
    inputs = [
        {"name": "x1", "stage": "PIPELINE_INPUT", "value_type": "FLOAT"},
        {
            "name": "cat",
            "stage": "PIPELINE_INPUT",
            "value_type": "STRING",
            "categorical": True,
            "categories": [{"value": v} for v in "abcd"],
        },
        *({"name": name, "stage": "PIPELINE_INPUT", "value_type": "FLOAT"} for name in NOISE),
    ]
    if output_type == "REGRESSION":
        body = factories.regression()
    elif output_type == "MULTICLASS":
        body = factories.multiclass_class_column()
    else:
        body = factories.binary_probability()
    body["attributes"] = inputs + [a for a in body["attributes"] if a["stage"] != "PIPELINE_INPUT"]
    return factories.model_of(body)


def _inputs(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "x1": rng.random(n),
        "cat": rng.choice(list("abcd"), n),
        **{name: rng.normal(size=n) for name in NOISE},
    }


def _binary(n: int, seed: int, planted_wrong: float = 0.7, base_wrong: float = 0.15):
    """A binary model wrong on `base_wrong` of rows, and on `planted_wrong` where x1 > 0.7 and cat == b."""
    rng = np.random.default_rng(seed)
    columns = _inputs(rng, n)
    truth = rng.integers(0, 2, n)
    planted = (columns["x1"] > 0.7) & (columns["cat"] == "b")
    wrong = rng.random(n) < np.where(planted, planted_wrong, base_wrong)
    predicted = np.where(wrong, 1 - truth, truth)
    score = np.where(predicted == 1, rng.uniform(0.5, 1, n), rng.uniform(0, 0.49, n))
    table = pa.table({**columns, "predicted_probability": score, "churned": truth})
    return table, planted, truth, predicted


def _jaccard(rows: np.ndarray, planted: np.ndarray) -> float:
    found = np.zeros(len(planted), dtype=bool)
    found[rows] = True
    return (found & planted).sum() / (found | planted).sum()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_planted_segment_of_wrong_predictions_is_the_top_hotspot(seed: int) -> None:
    # GIVEN a binary model wrong on 15% of rows, and on 70% where x1 > 0.7 and cat == "b"
    table, planted, truth, predicted = _binary(6000, seed)

    # WHEN the window is searched
    result = hotspots.search(_model(), table)

    # THEN the top hotspot's rows are the planted rows (Jaccard >= 0.8), described by x1 and cat
    top = result["hotspots"][0]
    assert _jaccard(top["rows"], planted) >= 0.8
    assert set(top["rules"]) == {"x1", "cat"}
    assert top["rules"]["cat"]["in"] == ["b"]
    assert top["rules"]["x1"]["gt"] == pytest.approx(0.7, abs=0.03)

    # THEN its values are scikit-learn's over its rows, and the overall values over all rows
    rows = top["rows"]
    assert top["n_samples"] == len(rows)
    assert top["support"] == pytest.approx(len(rows) / len(truth))
    assert top["accuracy"] == pytest.approx(skm.accuracy_score(truth[rows], predicted[rows]))
    assert top["precision"] == pytest.approx(skm.precision_score(truth[rows], predicted[rows]))
    assert top["recall"] == pytest.approx(skm.recall_score(truth[rows], predicted[rows]))
    assert top["f1"] == pytest.approx(skm.f1_score(truth[rows], predicted[rows]))
    assert top["overall"]["accuracy"] == pytest.approx(skm.accuracy_score(truth, predicted))
    matrix = skm.confusion_matrix(truth[rows], predicted[rows], labels=[0, 1])
    assert top["gt_to_info"]["1"]["count"] == matrix[1].sum()
    assert top["gt_to_info"]["1"]["pred_to_count"] == {"0": matrix[1, 0], "1": matrix[1, 1]}
    errors = 1 - top["accuracy"]
    assert top["impurity"] == pytest.approx(2 * errors * (1 - errors))
    assert top["excess_errors"] == pytest.approx(len(rows) * (errors - (1 - top["overall"]["accuracy"])))


def test_the_conditions_select_exactly_the_hotspots_rows() -> None:
    table, _, _, _ = _binary(6000, 4)
    top = hotspots.search(_model(), table)["hotspots"][0]
    selected = np.ones(table.num_rows, dtype=bool)
    for condition in top["conditions"]:
        values = np.array(table.column(condition["attribute"]).to_pylist(), dtype=object)
        if condition["op"] == "in":
            selected &= np.isin(values, condition["value"])
        elif condition["op"] == "not in":
            selected &= ~np.isin(values, condition["value"])
        elif condition["op"] == ">":
            selected &= values.astype(float) > condition["value"]
        else:
            selected &= values.astype(float) <= condition["value"]
    assert np.array_equal(np.flatnonzero(selected), top["rows"])


def test_the_root_split_is_scikit_learns() -> None:
    # GIVEN numeric inputs and an error indicator depending on two of them
    rng = np.random.default_rng(7)
    n = 3000
    x = rng.normal(size=(n, 4))
    error = (rng.random(n) < np.where((x[:, 2] > 0.3) | (x[:, 0] < -1.2), 0.5, 0.1)).astype(float)
    features = [Feature(f"f{i}", True, x[:, i]) for i in range(4)]

    # WHEN one split is grown on every row, and scikit-learn's depth-1 Gini tree is fitted
    rules = StoppingRules(max_depth=1, min_leaf_rows=30, min_leaf_share=0.0, min_decrease=0.0)
    nodes = hotspots.grow(error, features, np.ones(n, dtype=bool), rules)
    tree = DecisionTreeClassifier(max_depth=1, criterion="gini", min_samples_leaf=30).fit(x, error)

    # THEN both split on the same input into the same two sets of rows
    condition = nodes[1].conditions[0]
    assert condition["attribute"] == f"f{tree.tree_.feature[0]}"
    assert np.array_equal(nodes[1].rows, x[:, tree.tree_.feature[0]] <= tree.tree_.threshold[0])


def test_categories_are_split_as_a_set_by_breimans_order() -> None:
    # GIVEN categories whose error rates are, by hand: a 0.1, b 0.6, c 0.2, d 0.5, null 0.55
    counts = {"a": 400, "b": 400, "c": 400, "d": 400, None: 400}
    rates = {"a": 0.1, "b": 0.6, "c": 0.2, "d": 0.5, None: 0.55}
    values = [v for v, k in counts.items() for _ in range(k)]
    error = np.concatenate([np.arange(k) < rates[v] * k for v, k in counts.items()]).astype(float)
    categories = ["a", "b", "c", "d"]
    codes = np.array([-1 if v is None else categories.index(v) for v in values])
    feature = Feature("cat", False, codes, categories)

    # WHEN the best set split is sought
    split = hotspots.best_categorical_split(feature, error, np.ones(len(error), dtype=bool), 25)

    # THEN the worse categories (b, null, d) go one way, a and c the other, as the sum of squares
    # computed by hand says: the gain of {b, null, d} against {a, c}
    assert split.left_condition == {"attribute": "cat", "op": "in", "value": ["b", "d", None]}
    assert split.right_condition["op"] == "not in"
    left, right = error[np.isin(codes, [1, 3, -1])], error[np.isin(codes, [0, 2])]
    by_hand = left.sum() ** 2 / len(left) + right.sum() ** 2 / len(right) - error.sum() ** 2 / len(error)
    assert split.gain == pytest.approx(by_hand)


def test_null_values_of_a_number_can_be_the_hotspot() -> None:
    # GIVEN a model wrong on 60% of the rows whose x1 is missing, on 10% of the others
    rng = np.random.default_rng(5)
    table, _, truth, _ = _binary(4000, 5, planted_wrong=0.15)
    missing = rng.random(table.num_rows) < 0.1
    wrong = rng.random(table.num_rows) < np.where(missing, 0.6, 0.1)
    score = np.where(wrong, 1 - truth, truth) * 0.8 + 0.1
    x1 = pa.array(np.array(table.column("x1")), mask=missing)
    table = table.set_column(0, "x1", x1).set_column(7, "predicted_probability", pa.array(score))

    # WHEN searched, THEN the top hotspot is the rows with x1 missing
    top = hotspots.search(_model(), table)["hotspots"][0]
    assert top["conditions"] == [{"attribute": "x1", "op": "is null"}]
    assert np.array_equal(top["rows"], np.flatnonzero(missing))


def test_a_number_without_nulls_gives_rules_that_claim_no_nulls() -> None:
    # GIVEN a window with no null anywhere and a planted segment
    table, _, _, _ = _binary(4000, 5, planted_wrong=0.7)
    # WHEN searched, THEN no numeric condition says nulls belong to it (none were seen)
    found = hotspots.search(_model(), table)["hotspots"]
    assert found
    numeric = [c for h in found for c in h["conditions"] if c["op"] in ("<=", ">")]
    assert numeric and not any(c["nulls"] for c in numeric)


def test_uniform_errors_show_no_hotspot() -> None:
    # GIVEN a model wrong on 20% of rows everywhere, over 20 fixed seeds
    found = []
    for seed in range(20):
        table, _, _, _ = _binary(4000, 100 + seed, planted_wrong=0.2, base_wrong=0.2)
        # WHEN searched
        found.append(len(hotspots.search(_model(), table)["hotspots"]))
    # THEN no hotspot in any of them (the level is 1% per search)
    assert found == [0] * 20


def test_a_regression_segment_with_large_errors_is_found() -> None:
    # GIVEN a regression model whose absolute error is 4 times larger where cat is c or d and x1 <= 0.3
    rng = np.random.default_rng(9)
    n = 5000
    columns = _inputs(rng, n)
    truth = rng.normal(100, 10, n)
    planted = np.isin(columns["cat"], ["c", "d"]) & (columns["x1"] <= 0.3)
    prediction = truth + rng.normal(0, np.where(planted, 8, 2), n)
    table = pa.table({**columns, "predicted_value": prediction, "ground_truth_value": truth})

    # WHEN searched, THEN the top hotspot is the planted rows, its MAE scikit-learn's
    result = hotspots.search(_model("REGRESSION"), table, metric="mae", threshold=3.0)
    top = result["hotspots"][0]
    assert _jaccard(top["rows"], planted) >= 0.8
    assert top["rules"]["cat"]["in"] == ["c", "d"]
    rows = top["rows"]
    assert top["mae"] == pytest.approx(skm.mean_absolute_error(truth[rows], prediction[rows]))
    assert top["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(truth[rows], prediction[rows])))
    assert result["overall"]["mae"] == pytest.approx(skm.mean_absolute_error(truth, prediction))


def test_a_multiclass_hotspot_counts_classes_as_scikit_learn() -> None:
    # GIVEN a three-class model that confuses dogs with cats where cat == "a"
    rng = np.random.default_rng(3)
    n = 5000
    columns = _inputs(rng, n)
    classes = np.array(["dog", "cat", "bird"])
    truth = rng.integers(0, 3, n)
    planted = columns["cat"] == "a"
    wrong = rng.random(n) < np.where(planted, 0.5, 0.1)
    predicted = np.where(wrong, (truth + 1) % 3, truth)
    scores = np.full((n, 3), 0.1)
    scores[np.arange(n), predicted] = 0.8
    table = pa.table(
        {
            **columns,
            "probability_dog": scores[:, 0],
            "probability_cat": scores[:, 1],
            "probability_bird": scores[:, 2],
            "animal": classes[truth],
        }
    )

    # WHEN searched
    top = hotspots.search(_model("MULTICLASS"), table)["hotspots"][0]

    # THEN the hotspot is cat == a, its accuracy, macro F1 and per-class counts scikit-learn's
    assert top["conditions"] == [{"attribute": "cat", "op": "in", "value": ["a"]}]
    rows = top["rows"]
    assert np.array_equal(rows, np.flatnonzero(planted))
    assert top["accuracy"] == pytest.approx(skm.accuracy_score(truth[rows], predicted[rows]))
    assert top["f1"] == pytest.approx(skm.f1_score(truth[rows], predicted[rows], average="macro"))
    matrix = skm.confusion_matrix(truth[rows], predicted[rows], labels=[0, 1, 2])
    assert top["gt_to_info"]["dog"]["count"] == matrix[0].sum()
    assert top["gt_to_info"]["dog"]["pred_to_count"]["cat"] == matrix[0, 1]


def test_a_threshold_keeps_only_hotspots_below_it() -> None:
    table, _, _, _ = _binary(6000, 1)
    found = hotspots.search(_model(), table, metric="accuracy", threshold=0.6)["hotspots"]
    assert found and all(h["accuracy"] < 0.6 for h in found)
    assert hotspots.search(_model(), table, metric="accuracy", threshold=0.2)["hotspots"] == []
