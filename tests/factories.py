"""Model bodies for tests: one per pred_to_ground_truth_map form in DESIGN.md; a settable clock."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from sagewatch.schema import Model, ModelSpec, check_spec

REGISTERED_AT = datetime(2026, 11, 25, tzinfo=UTC)


def _inputs() -> list[dict[str, Any]]:
    return [
        {"name": "age", "stage": "PIPELINE_INPUT", "value_type": "INTEGER", "position": 0},
        {"name": "income", "stage": "PIPELINE_INPUT", "value_type": "FLOAT", "position": 1},
        {
            "name": "region",
            "stage": "PIPELINE_INPUT",
            "value_type": "STRING",
            "position": 2,
            "categorical": True,
            "categories": [{"value": "north"}, {"value": "south"}],
        },
    ]


def binary_probability(partner_model_id: str = "churn") -> dict[str, Any]:
    """Binary, one probability column: {"predicted_probability": 1} -> the value of the single GT column."""
    return {
        "partner_model_id": partner_model_id,
        "output_type": "BINARY",
        "attributes": [
            *_inputs(),
            {"name": "predicted_probability", "stage": "PREDICTED_VALUE", "value_type": "FLOAT"},
            {
                "name": "churned",
                "stage": "GROUND_TRUTH",
                "value_type": "INTEGER",
                "categorical": True,
                "categories": [{"value": "0"}, {"value": "1"}],
            },
        ],
        "pred_to_ground_truth_map": {"predicted_probability": 1},
    }


def binary_one_hot(partner_model_id: str = "churn-onehot") -> dict[str, Any]:
    """Binary with one-hot ground truth columns: {"pred_0": "gt_0", "pred_1": "gt_1"}."""
    return {
        "partner_model_id": partner_model_id,
        "output_type": "BINARY",
        "attributes": [
            *_inputs(),
            {"name": "pred_0", "stage": "PREDICTED_VALUE", "value_type": "FLOAT"},
            {"name": "pred_1", "stage": "PREDICTED_VALUE", "value_type": "FLOAT"},
            {"name": "gt_0", "stage": "GROUND_TRUTH", "value_type": "INTEGER"},
            {"name": "gt_1", "stage": "GROUND_TRUTH", "value_type": "INTEGER"},
        ],
        "pred_to_ground_truth_map": {"pred_0": "gt_0", "pred_1": "gt_1"},
    }


def multiclass_class_column(partner_model_id: str = "pets") -> dict[str, Any]:
    """Multiclass, one GT column holding the class: {"probability_dog": "dog", ...}."""
    return {
        "partner_model_id": partner_model_id,
        "output_type": "MULTICLASS",
        "attributes": [
            *_inputs(),
            {"name": "probability_dog", "stage": "PREDICTED_VALUE", "value_type": "FLOAT"},
            {"name": "probability_cat", "stage": "PREDICTED_VALUE", "value_type": "FLOAT"},
            {"name": "probability_bird", "stage": "PREDICTED_VALUE", "value_type": "FLOAT"},
            {
                "name": "animal",
                "stage": "GROUND_TRUTH",
                "value_type": "STRING",
                "categorical": True,
                "categories": [{"value": "dog"}, {"value": "cat"}, {"value": "bird"}],
            },
        ],
        "pred_to_ground_truth_map": {
            "probability_dog": "dog",
            "probability_cat": "cat",
            "probability_bird": "bird",
        },
    }


def regression(partner_model_id: str = "price") -> dict[str, Any]:
    """Regression: {"predicted_value": "ground_truth_value"}."""
    return {
        "partner_model_id": partner_model_id,
        "output_type": "REGRESSION",
        "attributes": [
            *_inputs(),
            {"name": "predicted_value", "stage": "PREDICTED_VALUE", "value_type": "FLOAT"},
            {"name": "ground_truth_value", "stage": "GROUND_TRUTH", "value_type": "FLOAT"},
        ],
        "pred_to_ground_truth_map": {"predicted_value": "ground_truth_value"},
    }


ALL_FORMS = {
    "binary_probability": binary_probability,
    "binary_one_hot": binary_one_hot,
    "multiclass_class_column": multiclass_class_column,
    "regression": regression,
}


def attribute(body: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in body["attributes"] if a["name"] == name)


def edited(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    result = copy.deepcopy(body)
    result.update(changes)
    return result


def model_of(body: dict[str, Any] | None = None, model_id: str = "model-1") -> Model:
    """A registered model (checked as the registry checks it) from a body; binary_probability() by default."""
    spec = check_spec(ModelSpec.model_validate(body or binary_probability()))
    return Model(**spec.model_dump(), id=model_id, created_at=REGISTERED_AT, updated_at=REGISTERED_AT)


class Clock:
    """A clock that says `moment` (services take a clock; tests move it)."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment
