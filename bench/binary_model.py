"""The benchmarks' model: a binary classifier over given inputs, its `score` and its `label`."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "core"))

from sagewatch.schema import Model, ModelSpec, check_spec


def binary_model(inputs: list[dict[str, Any]]) -> Model:
    """A registered binary model with these PIPELINE_INPUT attributes, a score and a 0/1 label."""
    attributes = [
        *({"stage": "PIPELINE_INPUT", **attribute} for attribute in inputs),
        {"name": "score", "stage": "PREDICTED_VALUE", "value_type": "FLOAT"},
        {
            "name": "label",
            "stage": "GROUND_TRUTH",
            "value_type": "INTEGER",
            "categorical": True,
            "categories": ["0", "1"],
        },
    ]
    body = {
        "partner_model_id": "bench",
        "output_type": "BINARY",
        "attributes": attributes,
        "pred_to_ground_truth_map": {"score": 1},
    }
    spec = check_spec(ModelSpec.model_validate(body))
    now = datetime.now(UTC)
    return Model(**spec.model_dump(), id="bench", created_at=now, updated_at=now)
