"""Arthur's onboarding guide, every example, through the unmodified arthurai 3.33.3 SDK (its own venv).

arthurai_shapes_flow.py registers each of the eight shapes (tests/compat/shapes.py) as the guide
does, sends its stream, labels it by partner id and queries it. Checked here: the schema review()
shows after saving is the one the guide shows (and the SDK built), and each performance metric
equals scikit-learn's on the same rows.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, mean_squared_error
from tests.compat.shapes import ANIMALS, SHAPES, Shape, write_shapes
from tests.compat.venvs import compat_python
from tests.local_stack import clean_env, cli

pytestmark = pytest.mark.e2e

SDK = "arthurai==3.33.3"


@pytest.fixture(scope="module")
def shapes_flow(stack: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """Run every shape once with a writer token; (the frames sent, what the SDK returned)."""
    python = compat_python("arthurai-3.33.3", [SDK, "numpy<2"])
    token = re.search(r"token: (\S+)", cli(stack, "token", "create", "--role", "writer"))[1]
    directory = tmp_path_factory.mktemp("arthur-shapes")
    shapes = write_shapes(directory)
    done = subprocess.run(
        [
            str(python),
            str(Path(__file__).with_name("arthurai_shapes_flow.py")),
            stack["api_url"],
            token,
            str(directory),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=clean_env(),
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return shapes, json.loads((directory / "results.json").read_text())


def result(flow: tuple, shape: str) -> dict:
    _, results = flow
    found = results[shape]
    assert "error" not in found, found.get("traceback")
    return found


def labelled(shape: Shape) -> Any:
    return shape.stream.merge(shape.ground_truth, on="partner_inference_id")


def expected_metric(shape: Shape) -> float:
    """The shape's performance metric, computed by scikit-learn from the frames sent."""
    rows = labelled(shape)
    if shape.name in ("binary_one_column", "reference_directory"):
        return accuracy_score(rows["ground_truth_label"], rows["predicted_probability"] >= 0.5)
    if shape.name in ("binary_one_hot", "by_hand"):
        return accuracy_score(rows["gt_1"], rows["pred_1"] >= 0.5)
    probabilities = (
        rows[[f"probability_{a}" for a in ANIMALS]].to_numpy() if "probability_dog" in rows else None
    )
    if shape.name == "multiclass_one_hot":
        truth = rows[[f"{a}_ground_truth" for a in ANIMALS]].to_numpy().argmax(axis=1)
        return accuracy_score(truth, probabilities.argmax(axis=1))
    if shape.name == "multiclass_class_column":
        return accuracy_score(rows["animal"], np.array(ANIMALS)[probabilities.argmax(axis=1)])
    return float(np.sqrt(mean_squared_error(rows["ground_truth_value"], rows["predicted_value"])))


@pytest.mark.parametrize("name", SHAPES)
def test_each_shape_goes_through_the_sdk_and_its_metric_is_scikit_learns(
    shapes_flow: tuple, name: str
) -> None:
    shapes, _ = shapes_flow
    found = result(shapes_flow, name)
    [row] = found["rmse"] if "rmse" in found else found["accuracy"]
    value = next(v for k, v in row.items() if k != "labelled_count")
    assert value == pytest.approx(expected_metric(shapes[name]), abs=1e-9)
    assert row["labelled_count"] == len(shapes[name].stream)


def _comparable(review: dict) -> dict:
    """A review's rows with ranges as numbers ("[0, 1]" and "[0.0, 1.0]" say the same)."""
    rows = {}
    for name, row in review.items():
        low, high = (None if v.strip() == "None" else float(v) for v in row["range"].strip("[]").split(","))
        rows[name] = {**{k: v for k, v in row.items() if k not in ("range", "name")}, "range": (low, high)}
    return rows


@pytest.mark.parametrize("name", SHAPES)
def test_the_model_got_back_by_partner_id_reviews_as_the_guide_shows(shapes_flow: tuple, name: str) -> None:
    found = result(shapes_flow, name)
    assert _comparable(found["fetched"]["review"]) == _comparable(found["review"])


GUIDE_STAGES = {
    "binary_one_column": {
        "ground_truth_label": ("GROUND_TRUTH_CLASS", "INTEGER", ["0", "1"]),
        "predicted_probability": ("PREDICTED_VALUE", "FLOAT", []),
    },
    "binary_one_hot": {
        "gt_0": ("GROUND_TRUTH", "INTEGER", ["0", "1"]),
        "pred_1": ("PREDICTED_VALUE", "FLOAT", []),
    },
    "multiclass_one_hot": {
        "bird_ground_truth": ("GROUND_TRUTH", "INTEGER", ["0", "1"]),
        "probability_bird": ("PREDICTED_VALUE", "FLOAT", []),
    },
    "multiclass_class_column": {
        "animal": ("GROUND_TRUTH_CLASS", "STRING", ["bird", "cat", "dog"]),
        "probability_bird": ("PREDICTED_VALUE", "FLOAT", []),
    },
    "regression": {
        "ground_truth_value": ("GROUND_TRUTH", "FLOAT", []),
        "predicted_value": ("PREDICTED_VALUE", "FLOAT", []),
    },
    "non_input": {"age": ("NON_INPUT_DATA", "INTEGER", []), "sex": ("NON_INPUT_DATA", "STRING", ["f", "m"])},
    "by_hand": {
        "x2": ("PIPELINE_INPUT", "INTEGER", ["0", "1", "2", "3", "4"]),
        "gt_1": ("GROUND_TRUTH", "INTEGER", ["0", "1"]),
    },
    "reference_directory": {
        "ground_truth_label": ("GROUND_TRUTH_CLASS", "INTEGER", ["0", "1"]),
        "x1": ("PIPELINE_INPUT", "FLOAT", []),
    },
}


@pytest.mark.parametrize("name", SHAPES)
def test_stages_types_and_categories_are_the_guides(shapes_flow: tuple, name: str) -> None:
    review = result(shapes_flow, name)["fetched"]["review"]
    for attribute, (stage, value_type, categories) in GUIDE_STAGES[name].items():
        row = review[attribute]
        assert (row["stage"], row["value_type"], row["categories"]) == (stage, value_type, categories), (
            attribute
        )
    predictions = [row for row in review.values() if row["stage"] == "PREDICTED_VALUE"]
    if name not in ("regression", "non_input"):  # a probability lies in [0, 1]
        assert all(_comparable({"p": p})["p"]["range"] == (0.0, 1.0) for p in predictions)


def test_non_input_attributes_filter_group_and_keep_their_bias_flag(shapes_flow: tuple) -> None:
    shapes, _ = shapes_flow
    found = result(shapes_flow, "non_input")
    assert found["fetched"]["review"]["sex"]["monitor_for_bias"] is True
    assert found["fetched"]["review"]["age"]["monitor_for_bias"] is False
    rows = labelled(shapes["non_input"])
    by_sex = {r["sex"]: r["rmse"] for r in found["rmse_by_sex"]}
    for sex, group in rows.groupby("sex"):
        assert by_sex[sex] == pytest.approx(
            np.sqrt(mean_squared_error(group["ground_truth_value"], group["predicted_value"]))
        )
    assert found["count_over_50"] == [{"count": int((shapes["non_input"].stream["age"] > 50).sum())}]


def test_a_reference_set_from_a_directory_of_parts_is_whole(shapes_flow: tuple) -> None:
    shapes, _ = shapes_flow
    found = result(shapes_flow, "reference_directory")
    assert found["reference_count"] == [{"count": len(shapes["reference_directory"].reference)}]
    [drift] = found["drift"]
    assert drift["x1"] > 0
