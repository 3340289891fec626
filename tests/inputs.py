"""What tests send: model registrations and REST records through the api fixture, SageMaker Data
Capture events and files put in the capture bucket (moto)."""

from __future__ import annotations

import json

import numpy as np

from sagewatch import aws as sagewatch_aws
from sagewatch import container
from sagewatch.schema import ModelSpec
from tests import factories
from tests.conftest import Call

HOUR = "2026/11/25/10"


def register(api: Call, body: dict | None = None) -> str:
    """Register a model through the API (a binary probability model by default); its id."""
    answer = api("POST", "/api/v3/models", body or factories.binary_probability())
    assert answer.status == 201, answer.body
    return answer.body["id"]


def record(age=30, income=1000.5, region="north", p=0.4, **extra) -> dict:
    return {
        "inference_data": {"age": age, "income": income, "region": region, "predicted_probability": p},
        **extra,
    }


def capture_event(number: int, time: str = "2026-11-25T10:00:00Z", data: str = "34,52000.5,north") -> str:
    """A capture line with event id e-<number>, no inferenceId, answered 0.1."""
    return capture_call(None, data, "0.1", f"e-{number}", time)


def capture_model() -> str:
    """A binary model monitoring the SageMaker endpoint churn-endpoint; its id."""
    body = factories.binary_probability()
    body["sagemaker"] = {"endpoint_name": "churn-endpoint"}
    return container.model_store().create(ModelSpec.model_validate(body)).id


def put(aws: dict[str, str], body: bytes, name: str = "capture.jsonl") -> str:
    """Put a capture file where churn-endpoint's Data Capture writes; its key."""
    key = f"datacapture/churn-endpoint/AllTraffic/{HOUR}/{name}"
    sagewatch_aws.client("s3").put_object(Bucket=aws["capture"], Key=key, Body=body)
    return key


def records(n: int, seed: int, shift: float = 0.0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = int(rng.integers(0, 2))
        rows.append(
            {
                "partner_inference_id": f"{seed}-{i}",
                "inference_timestamp": f"2026-11-{25 + i % 2}T{i % 24:02d}:00:00Z",
                "inference_data": {
                    "age": int(rng.integers(18, 90)),
                    "income": float(rng.normal(1000 + shift, 100)),
                    "region": ["north", "south"][i % 2],
                    "predicted_probability": float(np.clip(rng.normal(0.3 + 0.4 * label, 0.2), 0, 1)),
                },
                "ground_truth_data": {"churned": label},
            }
        )
    return rows


def capture_call(
    request_id: str | None, data: str, output: str, event_id: str, time: str = "2026-11-25T10:15:00Z"
) -> str:
    """One SageMaker Data Capture line: a CSV request and its CSV answer, named by the caller's
    inferenceId when there is one."""
    metadata = {
        "eventId": event_id,
        "inferenceTime": time,
        **({"inferenceId": request_id} if request_id else {}),
    }
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": "text/csv",
                    "mode": "INPUT",
                    "data": data,
                    "encoding": "CSV",
                },
                "endpointOutput": {
                    "observedContentType": "text/csv; charset=utf-8",
                    "mode": "OUTPUT",
                    "data": output,
                    "encoding": "CSV",
                },
            },
            "eventMetadata": metadata,
            "eventVersion": "0",
        }
    )
