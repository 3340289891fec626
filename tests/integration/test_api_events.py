"""Sample events from events/ through the api Lambda's own handler module."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from sagewatch.auth import Role
from sagewatch.local.http_bridge import LocalContext

ROOT = Path(__file__).resolve().parents[2]


def load_handler():
    spec = importlib.util.spec_from_file_location("api_function", ROOT / "functions" / "api" / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


def test_create_model_event_registers_the_model(tokens: dict[Role, str]) -> None:
    # GIVEN an API Gateway event as deployed (stage "prod"), carrying a writer token
    event = json.loads((ROOT / "events" / "api" / "create_model.json").read_text())
    event["headers"]["Authorization"] = f"Bearer {tokens[Role.WRITER]}"
    # WHEN the api function handles it
    response = load_handler()(event, LocalContext())
    # THEN the model is registered with its boolean class link and the positive prediction
    assert response["statusCode"] == 201, response["body"]
    model = json.loads(response["body"])
    assert model["partner_model_id"] == "credit-default-v3"
    assert model["pred_to_ground_truth_map"] == {"default_probability": True}
    assert model["positive_predicted_attribute"] == "default_probability"
    assert model["sagemaker"] == {"endpoint_name": "credit-default", "variants": None}
