"""Every example of Arthur's onboarding guide, with the unmodified arthurai 3.33.3 SDK, against sagewatch.

    python arthurai_shapes_flow.py <api url> <token> <data dir>

For each of the eight shapes (tests/compat/shapes.py wrote their frames): register it (build, or
attributes added by hand), review(), save(), send the stream, update its ground truth by partner id,
query its performance metric, and get the model back by partner id. What the SDK returned goes to
<data dir>/results.json, for test_arthurai_shapes.py to check against scikit-learn.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import pandas as pd
from arthurai import ArthurAI
from arthurai.common.constants import InputType, OutputType, Stage, ValueType

URL, TOKEN, DATA = sys.argv[1], sys.argv[2], Path(sys.argv[3])
config = json.loads((DATA / "config.json").read_text())
arthur = ArthurAI(url=URL, access_key=TOKEN, allow_insecure=URL.startswith("http://"))
ANIMALS = ["dog", "cat", "bird"]


def frame(shape: str, part: str) -> pd.DataFrame:
    return pd.read_parquet(DATA / shape / f"{part}.parquet")


def new_model(shape: str, output_type: OutputType):
    return arthur.model(
        partner_model_id=config[shape],
        display_name=shape,
        input_type=InputType.Tabular,
        output_type=output_type,
    )


PROPS = ["value_type", "categorical", "categories", "range", "monitor_for_bias"]


def reviewed(model) -> dict:
    """review() as the guide shows it: per attribute, stage, type, categorical, categories, range."""
    table = model.review(props=PROPS)
    rows = {}
    for row in table.to_dict("records"):
        # categories print as "{value: red}" (or "{label: ..., value: ...}"): the values, sorted
        row["categories"] = sorted(c.rsplit("value: ", 1)[-1].rstrip("}") for c in row["categories"])
        rows[row.pop("name")] = {k: str(v) if k in ("stage", "value_type") else v for k, v in row.items()}
    return rows


def stream_and_label(shape: str, model, ground_truth_columns: list[str]) -> None:
    stream = frame(shape, "stream")
    model.send_inferences(stream)
    labels = frame(shape, "ground_truth")
    model.update_inference_ground_truths(
        labels[["partner_inference_id", *ground_truth_columns, "ground_truth_timestamp"]]
    )


def query(model, select: list[dict], **extra) -> list[dict]:
    return json.loads(json.dumps(model.query({"select": select, **extra}), default=str))


def fetched(shape: str) -> dict:
    """The model as get_model returns it by partner id, reviewed as the guide does after saving."""
    model = arthur.get_model(config[shape], id_type="partner_model_id")
    return {"id": model.id, "partner_model_id": model.partner_model_id, "review": reviewed(model)}


ACCURACY = [{"function": "accuracyRate", "parameters": {"threshold": 0.5}}]
# shape -> (output type, build()'s arguments besides the reference, ground-truth columns, metric)
BUILT = {
    "binary_one_column": (
        OutputType.Multiclass,
        {
            "pred_to_ground_truth_map": {"predicted_probability": 1},
            "positive_predicted_attr": "predicted_probability",
            "ground_truth_column": "ground_truth_label",
        },
        ["ground_truth_label"],
        ("accuracy", ACCURACY),
    ),
    "binary_one_hot": (
        OutputType.Multiclass,
        {
            "pred_to_ground_truth_map": {"pred_0": "gt_0", "pred_1": "gt_1"},
            "positive_predicted_attr": "pred_1",
        },
        ["gt_0", "gt_1"],
        ("accuracy", ACCURACY),
    ),
    "multiclass_one_hot": (
        OutputType.Multiclass,
        {"pred_to_ground_truth_map": {f"probability_{a}": f"{a}_ground_truth" for a in ANIMALS}},
        [f"{a}_ground_truth" for a in ANIMALS],
        ("accuracy", [{"function": "accuracyRateMulticlass"}]),
    ),
    "multiclass_class_column": (
        OutputType.Multiclass,
        {
            "pred_to_ground_truth_map": {f"probability_{a}": a for a in ANIMALS},
            "ground_truth_column": "animal",
        },
        ["animal"],
        ("accuracy", [{"function": "accuracyRateMulticlass"}]),
    ),
    "regression": (
        OutputType.Regression,
        {"pred_to_ground_truth_map": {"predicted_value": "ground_truth_value"}},
        ["ground_truth_value"],
        ("rmse", [{"function": "rmse"}]),
    ),
}


def built(shape: str) -> dict:
    """The guide's plainest path: build from the reference, review, save, send, label, query."""
    output_type, arguments, truths, (key, select) = BUILT[shape]
    model = new_model(shape, output_type)
    model.build(frame(shape, "reference"), **arguments)
    review = reviewed(model)
    model.save()
    stream_and_label(shape, model, truths)
    return {"review": review, key: query(model, select)}


def non_input(shape: str) -> dict:
    model = new_model(shape, OutputType.Regression)
    model.build(
        frame(shape, "reference"),
        pred_to_ground_truth_map={"predicted_value": "ground_truth_value"},
        non_input_columns=["age", "sex"],
    )
    model.get_attribute("sex").monitor_for_bias = True
    review = reviewed(model)
    model.save()
    stream_and_label(shape, model, ["ground_truth_value"])
    return {
        "review": review,
        "rmse": query(model, [{"function": "rmse"}]),
        "rmse_by_sex": query(
            model, [{"property": "sex"}, {"function": "rmse"}], group_by=[{"property": "sex"}]
        ),
        "count_over_50": query(
            model, [{"function": "count"}], filter=[{"property": "age", "comparator": "gt", "value": 50}]
        ),
    }


def by_hand(shape: str) -> dict:
    """Attributes registered one by one, and the typed helper for a binary classifier's outputs."""
    model = new_model(shape, OutputType.Multiclass)
    model.add_attribute(name="x1", stage=Stage.ModelPipelineInput, value_type=ValueType.Float, position=0)
    model.add_attribute(
        name="x2",
        stage=Stage.ModelPipelineInput,
        value_type=ValueType.Integer,
        position=1,
        categorical=True,
        categories=["0", "1", "2", "3", "4"],
    )
    model.add_attribute(
        name="color",
        stage=Stage.ModelPipelineInput,
        value_type=ValueType.String,
        position=2,
        categorical=True,
        categories=["red", "blue", "green"],
    )
    model.add_binary_classifier_output_attributes(
        positive_predicted_attr="pred_1",
        pred_to_ground_truth_map={"pred_0": "gt_0", "pred_1": "gt_1"},
        threshold=0.5,
    )
    review = reviewed(model)
    model.save()
    stream = frame(shape, "stream")
    model.send_inferences(stream)
    labels = frame(shape, "ground_truth")
    model.update_inference_ground_truths(
        labels[["partner_inference_id", "gt_0", "gt_1", "ground_truth_timestamp"]]
    )
    return {
        "review": review,
        "accuracy": query(model, ACCURACY),
    }


def reference_directory(shape: str) -> dict:
    """Built without reference data; the reference set later, from a directory of Parquet parts."""
    model = new_model(shape, OutputType.Multiclass)
    model.build(
        frame(shape, "reference"),
        pred_to_ground_truth_map={"predicted_probability": 1},
        positive_predicted_attr="predicted_probability",
        ground_truth_column="ground_truth_label",
        set_reference_data=False,
    )
    model.save()
    model.set_reference_data(directory_path=str(DATA / shape / "reference_parts"))
    review = reviewed(model)
    stream_and_label(shape, model, ["ground_truth_label"])
    drift = json.loads(
        json.dumps(
            model.query(
                {
                    "properties": ["x1"],
                    "base": {"source": "reference"},
                    "target": {"source": "inference"},
                    "metric": "PSI",
                },
                query_type="drift",
            ),
            default=str,
        )
    )
    return {
        "review": review,
        "accuracy": query(model, ACCURACY),
        "reference_count": query(model, [{"function": "count"}], **{"from": "reference"}),
        "drift": drift,
    }


results: dict = {}
for shape in config:
    try:
        results[shape] = built(shape) if shape in BUILT else globals()[shape](shape)
        results[shape]["fetched"] = fetched(shape)
    except Exception as error:  # one shape failing must not hide the others' results
        results[shape] = {
            "error": f"{type(error).__name__}: {error}",
            "traceback": traceback.format_exc()[-3000:],
        }
(DATA / "results.json").write_text(json.dumps(results, indent=2, default=str))
print(json.dumps({k: v.get("error", "ok") for k, v in results.items()}, indent=1))
