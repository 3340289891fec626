"""Deepchecks versions as sagewatch schemas, and the JSON schemas the client validates samples with."""

from __future__ import annotations

import jsonschema
import pyarrow as pa
import pytest

from sagewatch.deepchecks import translate
from sagewatch.errors import InvalidInput
from sagewatch.schema import OutputType, Stage, check_spec

VERSION = {
    "features": {"mean radius": "numeric", "plan": "categorical", "visits": "integer"},
    "additional_data": {"region": "text"},
    "classes": ["benign", "malignant"],
}


def version(**changes: object) -> dict:
    found = {**VERSION, **changes}
    found["columns"] = translate.attribute_names([*found["features"], *found.get("additional_data", {})])
    return found


def test_column_names_become_attribute_names_once_each() -> None:
    names = translate.attribute_names(["mean radius", "mean_radius", "2nd", "source", "_dc_x", "a.b"])
    assert names == {
        "mean radius": "mean_radius",
        "mean_radius": "mean_radius_2",
        "2nd": "_2nd",
        "source": "source_2",  # a lake column
        "_dc_x": "col_dc_x",
        "a.b": "a_b",
    }


def test_a_binary_version_is_a_valid_sagewatch_model_in_the_class_form() -> None:
    spec = check_spec(translate.model_spec({"name": "m", "task_type": "binary"}, version()))
    assert spec.output_type is OutputType.BINARY
    assert [a.name for a in spec.by_stage(Stage.PREDICTED_VALUE)] == ["_dc_proba_0", "_dc_proba_1"]
    assert spec.pred_to_ground_truth_map == {"_dc_proba_0": "benign", "_dc_proba_1": "malignant"}
    assert spec.positive_predicted_attribute == "_dc_proba_1"
    assert {a.name: a.label for a in spec.by_stage(Stage.PIPELINE_INPUT)}["mean_radius"] == "mean radius"


def test_a_regression_version_links_prediction_to_label() -> None:
    spec = check_spec(translate.model_spec({"name": "m", "task_type": "regression"}, version(classes=None)))
    assert spec.pred_to_ground_truth_map == {"_dc_prediction": "_dc_label"}


@pytest.mark.parametrize(
    ("task_type", "changes", "field"),
    [
        ("binary", {"classes": None}, "classes"),
        ("binary", {"classes": ["a", "b", "c"]}, "classes"),
        ("regression", {}, "classes"),
        ("binary", {"features": {"image": "array_float"}}, "features.image"),
        ("binary", {"feature_importance": {"plan": 1.0}}, "feature_importance"),
    ],
)
def test_versions_sagewatch_cannot_hold_are_refused_naming_the_field(
    task_type: str, changes: dict, field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        translate.check_version({**VERSION, **changes}, task_type)
    assert refused.value.field == field


def client_sample(**changes: object) -> dict:
    """A sample as deepchecks-client's process_sample builds it."""
    sample = {
        "_dc_sample_id": "s-1",
        "_dc_time": "2026-11-24T10:00:00Z",
        "mean radius": 14.2,
        "plan": "pro",
        "visits": 3,
        "region": None,
        "_dc_prediction": "benign",
        "_dc_prediction_probabilities": [0.8, 0.2],
    }
    return {**sample, **changes}


def test_the_monitor_schema_accepts_the_clients_samples_and_nothing_else() -> None:
    monitor, reference = translate.json_schemas("binary", version())
    jsonschema.validate(client_sample(), monitor)
    jsonschema.validate(client_sample(_dc_prediction_probabilities=None, _dc_prediction=None), monitor)
    for wrong in (
        client_sample(_dc_prediction="unknown"),
        client_sample(_dc_prediction_probabilities=[1.0]),
        client_sample(visits=2.5),
        client_sample(extra=1),
        {k: v for k, v in client_sample().items() if k != "plan"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(wrong, monitor)
    row = {
        k: v
        for k, v in client_sample(_dc_label="malignant").items()
        if not k.startswith(("_dc_sample", "_dc_time"))
    }
    jsonschema.validate(row, reference)


def test_samples_become_records_with_one_hot_probabilities_when_none_are_sent() -> None:
    samples = [
        client_sample(),
        client_sample(_dc_sample_id="s-2", _dc_prediction="malignant", _dc_prediction_probabilities=None),
    ]
    columns = {name: pa.array([s[name] for s in samples]) for name in samples[0]}
    renamed, problem = translate.attribute_columns(columns, 2, "binary", version())
    assert list(problem) == [None, None]
    assert renamed["partner_inference_id"].to_pylist() == ["s-1", "s-2"]
    assert renamed["mean_radius"].to_pylist() == [14.2, 14.2]
    assert renamed["_dc_proba_0"].to_pylist() == [0.8, 0.0]
    assert renamed["_dc_proba_1"].to_pylist() == [0.2, 1.0]


def test_a_wrong_class_or_probability_count_names_the_column() -> None:
    samples = [
        client_sample(_dc_prediction="unknown"),
        client_sample(_dc_prediction_probabilities=[0.1, 0.2, 0.7]),
    ]
    columns = {name: pa.array([s[name] for s in samples]) for name in samples[0]}
    _, problem = translate.attribute_columns(columns, 2, "binary", version())
    assert problem[0].startswith("_dc_prediction: not one of the classes")
    assert problem[1].startswith("_dc_prediction_probabilities: one probability per class")
