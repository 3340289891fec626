"""What the probe of the restructured package found (issue 17), one test per finding."""

from __future__ import annotations

import json

import pytest
from tests import factories
from tests.conftest import Call
from tests.inputs import capture_event, capture_model, put
from tests.lake import lake_rows, notifications

from sagewatch import container, streams
from sagewatch.handlers.ingest import handler
from sagewatch.local.http_bridge import LocalContext
from sagewatch.services import ingestion

REPEATED = "duplicate inference id in this file (the first one is kept)"


def test_an_id_repeated_on_a_last_line_without_newline_is_refused(aws: dict[str, str]) -> None:
    """The unterminated last line came as a chunk of its own, so its repeat went unseen and was stored."""
    model_id = capture_model()
    put(aws, (capture_event(1) + "\n" + capture_event(1)).encode())
    assert handler(notifications(aws), LocalContext()) == {"batchItemFailures": []}
    assert [r["partner_inference_id"] for r in lake_rows("inferences", model_id)] == ["e-1"]
    [rejected] = container.lake_store().rejected(model_id)
    assert rejected["reason"] == REPEATED and rejected["partner_inference_id"] == "e-1"


def test_an_id_repeated_across_chunks_of_a_large_file_is_refused(
    aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingestion, "CHUNK_BYTES", 1_000)  # a few lines a chunk, as a large file has
    monkeypatch.setattr(streams, "CHUNK_BYTES", 1_000)
    model_id = capture_model()
    lines = [capture_event(n) for n in range(12)] + [capture_event(3), capture_event(11)]
    put(aws, ("\n".join(lines) + "\n").encode())
    handler(notifications(aws), LocalContext())
    stored = sorted(r["partner_inference_id"] for r in lake_rows("inferences", model_id))
    assert stored == sorted(f"e-{n}" for n in range(12))
    rejected = container.lake_store().rejected(model_id)
    # a repeat within its chunk is named by its event, one across chunks by its inference id
    assert sorted(r.get("partner_inference_id") or r["event_id"] for r in rejected) == ["e-11", "e-3"]
    assert {r["reason"] for r in rejected} == {REPEATED}
    assert container.ingestion_ledger().counts(model_id)["total"]["inferences_rejected"] == 2


def test_an_uploaded_capture_file_refuses_a_repeated_id_too(api: Call, upload) -> None:
    model_id = capture_model()
    body = (capture_event(1) + "\n" + capture_event(1)).encode()
    answer = upload(
        f"/api/v3/models/{model_id}/inferences/integrations/sagemaker_data_capture",
        {"inference_data": ("c.jsonl", body)},
    )
    assert answer.status == 207
    assert answer.body["counts"] == {"success": 1, "failure": 1, "total": 2}
    assert answer.body["failures"][0]["message"] == REPEATED


def test_json_sent_as_a_form_is_a_415_saying_to_send_json(api: Call) -> None:
    """curl -d @model.json sends a form: it was read as form fields, all reported missing."""
    answer = api(
        "POST", "/api/v3/models", {"partner_model_id": "x"}, content_type="application/x-www-form-urlencoded"
    )
    assert answer.status == 415 and answer.body["field"] == "Content-Type"
    assert "application/json" in answer.body["message"]


def test_the_json_media_type_is_read_whatever_its_case(api: Call) -> None:
    answer = api("POST", "/api/v3/models", factories.binary_probability(), content_type="APPLICATION/JSON")
    assert answer.status == 201, answer.body


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("[" * 40 + "]" * 40, "nested deeper than 32 levels"),
        ('{"partner_model_id": "\\ud800"}', "lone UTF-16 surrogate"),
    ],
)
def test_unreadable_json_says_why(api: Call, body: str, reason: str) -> None:
    answer = api("POST", "/api/v3/models", body.encode())
    assert answer.status == 400 and answer.body["field"] == "body"
    assert reason in answer.body["message"]


@pytest.mark.parametrize("body", [None, [], "text"])
def test_a_body_of_the_wrong_shape_is_named_as_the_body(api: Call, body: object) -> None:
    answer = api("POST", "/api/v3/models", b"" if body is None else json.dumps(body).encode())
    assert answer.status == 400 and answer.body["field"] == "body", answer.body
    assert answer.body["message"].startswith("body: ")
