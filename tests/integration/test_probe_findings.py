"""What the probe of the restructured package found (issue 17), one test per finding."""

from __future__ import annotations

import pytest
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
