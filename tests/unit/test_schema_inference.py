"""Schema inference from hand-made frames whose right answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sagewatch.client.schema_inference import REVIEW_COLUMNS, infer_attribute, infer_schema, review_table
from sagewatch.errors import InvalidSchema
from sagewatch.schema import OutputType, Stage, ValueType


def column(values: list, name: str = "x", stage: Stage = Stage.PIPELINE_INPUT, dtype: str | None = None):
    return infer_attribute(pd.Series(values, dtype=dtype), name, stage)


def test_integers_with_twenty_distinct_values_are_categorical() -> None:
    attribute = column(list(range(20)) * 3)
    assert (attribute.value_type, attribute.categorical) == (ValueType.INTEGER, True)
    assert [c.value for c in attribute.categories] == [str(i) for i in range(20)]
    assert (attribute.min_range, attribute.max_range) == (0, 19)


def test_integers_with_twenty_one_distinct_values_are_continuous() -> None:
    attribute = column(list(range(21)) * 3)
    assert (attribute.value_type, attribute.categorical, attribute.categories) == (
        ValueType.INTEGER,
        False,
        None,
    )


def test_whole_number_floats_are_integers_categorical_up_to_twenty_five() -> None:
    values = [float(i) for i in range(25)] * 2 + [np.nan]
    attribute = column(values)
    assert (attribute.value_type, attribute.categorical) == (ValueType.INTEGER, True)
    assert attribute.categories[-1].value == "24"


def test_whole_number_floats_with_twenty_six_values_are_continuous() -> None:
    attribute = column([float(i) for i in range(26)] * 2)
    assert (attribute.value_type, attribute.categorical) == (ValueType.INTEGER, False)


def test_fractional_floats_are_continuous_with_their_range() -> None:
    attribute = column([0.5, 1.25, -3.0, np.nan])
    assert (attribute.value_type, attribute.categorical) == (ValueType.FLOAT, False)
    assert (attribute.min_range, attribute.max_range) == (-3.0, 1.25)


def test_strings_are_categorical_with_sorted_categories() -> None:
    attribute = column(["b", "a", "b", None, "c"])
    assert (attribute.value_type, attribute.categorical) == (ValueType.STRING, True)
    assert [c.value for c in attribute.categories] == ["a", "b", "c"]
    assert attribute.min_range is None
    assert not attribute.is_unique


def test_unique_strings_are_unique_and_carry_no_categories() -> None:
    attribute = column([f"id-{i}" for i in range(50)])
    assert attribute.is_unique and attribute.categorical
    assert attribute.categories is None


def test_unique_integers_are_flagged_unique() -> None:
    assert column(list(range(100))).is_unique


def test_booleans_and_timestamps() -> None:
    flag = column([True, False, True])
    assert (flag.value_type, flag.categorical, [c.value for c in flag.categories]) == (
        ValueType.BOOLEAN,
        True,
        ["False", "True"],
    )
    when = column(list(pd.date_range("2026-01-01", periods=3, freq="h", tz="UTC")))
    assert (when.value_type, when.categorical) == (ValueType.TIMESTAMP, False)


def test_pandas_category_of_strings_is_string() -> None:
    attribute = column(["x", "y", "x"], dtype="category")
    assert attribute.value_type is ValueType.STRING


def test_predictions_are_never_categorical() -> None:
    attribute = column([0, 1, 2, 1], stage=Stage.PREDICTED_VALUE)
    assert not attribute.categorical


def reference(rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, rows),
            "plan": rng.choice(["basic", "pro"], rows),
            "customer_id": [f"c{i}" for i in range(rows)],
            "score": rng.random(rows),
            "churned": rng.integers(0, 2, rows),
        }
    )


def test_binary_class_form_from_a_frame() -> None:
    spec = infer_schema(
        reference(),
        {"score": 1},
        partner_model_id="churn",
        ground_truth_column="churned",
        non_input_columns=["customer_id"],
    )
    stages = {a.name: a.stage for a in spec.attributes}
    assert stages == {
        "age": Stage.PIPELINE_INPUT,
        "plan": Stage.PIPELINE_INPUT,
        "customer_id": Stage.NON_INPUT_DATA,
        "score": Stage.PREDICTED_VALUE,
        "churned": Stage.GROUND_TRUTH,
    }
    assert spec.output_type is OutputType.BINARY
    assert spec.positive_predicted_attribute == "score"
    assert (spec.attribute("score").min_range, spec.attribute("score").max_range) == (0.0, 1.0)
    assert [c.value for c in spec.attribute("churned").categories] == ["0", "1"]
    assert [a.position for a in spec.by_stage(Stage.PIPELINE_INPUT)] == [0, 1]


def test_regression_from_a_frame_keeps_ground_truth_continuous() -> None:
    frame = pd.DataFrame({"rooms": [1, 2, 3, 4], "predicted": [1.0, 2.5, 3.0, 4.5], "actual": [1, 2, 3, 5]})
    spec = infer_schema(frame, {"predicted": "actual"}, partner_model_id="price")
    assert spec.output_type is OutputType.REGRESSION
    assert spec.attribute("actual").stage is Stage.GROUND_TRUTH
    assert not spec.attribute("actual").categorical
    assert spec.attribute("predicted").attribute_link == "actual"


def test_one_hot_binary_from_a_frame() -> None:
    frame = pd.DataFrame(
        {"x": [0.1, 0.2, 0.3], "p0": [0.9, 0.2, 0.6], "p1": [0.1, 0.8, 0.4], "g0": [1, 0, 1], "g1": [0, 1, 0]}
    )
    spec = infer_schema(frame, {"p0": "g0", "p1": "g1"}, partner_model_id="onehot")
    assert spec.output_type is OutputType.BINARY
    assert {a.name for a in spec.by_stage(Stage.GROUND_TRUTH)} == {"g0", "g1"}


def test_multiclass_class_column_adds_map_classes_to_categories() -> None:
    frame = pd.DataFrame(
        {
            "x": [1.5, 2.5, 3.5],
            "p_dog": [0.7, 0.2, 0.1],
            "p_cat": [0.2, 0.7, 0.1],
            "p_bird": [0.1, 0.1, 0.8],
            "animal": ["dog", "cat", "dog"],  # no bird in the reference sample
        }
    )
    spec = infer_schema(
        frame,
        {"p_dog": "dog", "p_cat": "cat", "p_bird": "bird"},
        partner_model_id="pets",
        ground_truth_column="animal",
    )
    assert spec.output_type is OutputType.MULTICLASS
    assert sorted(c.value for c in spec.attribute("animal").categories) == ["bird", "cat", "dog"]


def test_class_form_without_ground_truth_column_is_explained() -> None:
    with pytest.raises(InvalidSchema) as caught:
        infer_schema(reference(), {"score": 1}, partner_model_id="churn")
    assert caught.value.field == "ground_truth_column"


def test_unknown_column_in_the_map() -> None:
    with pytest.raises(InvalidSchema) as caught:
        infer_schema(reference(), {"nope": 1}, partner_model_id="churn", ground_truth_column="churned")
    assert "'nope' is not in the reference data" in caught.value.message


def test_review_table_lists_every_attribute_by_stage() -> None:
    spec = infer_schema(reference(), {"score": 1}, partner_model_id="churn", ground_truth_column="churned")
    table = review_table(spec)
    assert list(table.columns) == REVIEW_COLUMNS
    assert list(table["name"]) == ["age", "plan", "customer_id", "score", "churned"]
    row = table.set_index("name").loc["plan"]
    assert row["categories"] == ["basic", "pro"]
    assert row["stage"] == "PIPELINE_INPUT"
    assert table.set_index("name").loc["score", "range"] == [0.0, 1.0]
