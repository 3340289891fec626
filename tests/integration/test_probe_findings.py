"""What the probe of the restructured package found (issue 17), one test per finding."""

from __future__ import annotations

import json

import pytest
from tests import factories
from tests.conftest import Call
from tests.deepchecks_api import version as deepchecks_version
from tests.inputs import capture_event, capture_model, put, record, register
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


def test_a_file_upload_with_both_inferences_and_ground_truth_is_refused(api: Call, upload) -> None:
    """The ground-truth part was dropped without a word."""
    model_id = register(api)
    rows = json.dumps([{"partner_inference_id": "a", **record()["inference_data"]}]).encode()
    truth = json.dumps([{"partner_inference_id": "a", "churned": 1}]).encode()
    answer = upload(
        f"/api/v3/models/{model_id}/inferences/file",
        {"inference_data": ("i.json", rows), "ground_truth_data": ("g.json", truth)},
    )
    assert (answer.status, answer.body["field"]) == (400, "ground_truth_data")
    assert lake_rows("inferences", model_id) == []


def test_reference_labels_outside_the_classes_are_refused_as_rest_labels_are(api: Call, upload) -> None:
    model_id = register(api)
    reference = [{**record()["inference_data"], "churned": 1}, {**record()["inference_data"], "churned": 3}]
    answer = upload(
        f"/api/v3/models/{model_id}/reference_data",
        {"reference_data": ("r.json", json.dumps(reference).encode())},
    )
    assert answer.body["counts"] == {"success": 1, "failure": 1, "total": 2}
    [failure] = answer.body["failures"]
    assert (failure["row"], failure["message"]) == (1, "churned: 3 is not one of the classes (0, 1)")


def test_a_deepchecks_sample_without_an_id_is_refused(api: Call) -> None:
    """A sample stored under a generated id could never be labelled."""
    version = deepchecks_version(api, "dc", {"x": "numeric"}, ["a", "b"])
    sample = {"_dc_sample_id": None, "_dc_time": "2026-11-24T10:00:00Z", "x": 1.0, "_dc_prediction": "a"}
    answer = api("POST", f"/api/v1/model-versions/{version['id']}/data", [sample])
    assert (answer.status, answer.body["field"]) == (400, "_dc_sample_id"), answer.body


@pytest.mark.parametrize("partner_model_id", ["ctl\u0001id", "line\nbreak", "   "])
def test_a_partner_model_id_with_control_characters_or_blank_is_refused(
    api: Call, partner_model_id: str
) -> None:
    answer = api("POST", "/api/v3/models", factories.binary_probability(partner_model_id))
    assert (answer.status, answer.body["field"]) == (400, "partner_model_id"), answer.body


@pytest.mark.parametrize(
    "url", ["https://example.com/\r\nX: y", "https://ex ample.com/", "https://example.com/\t"]
)
def test_a_webhook_url_with_spaces_or_controls_is_refused_when_saved(api: Call, url: str) -> None:
    """It was saved, and failed only when an alert was sent."""
    model_id = register(api)
    spec = {"model_id": model_id, "type": "webhook", "destination": url}
    answer = api("POST", "/api/v3/alert_notification_configurations", spec)
    assert (answer.status, answer.body["field"]) == (400, "destination"), answer.body


def test_the_status_tells_when_ground_truth_last_arrived(api: Call) -> None:
    """ground_truth.latest_timestamp was always null."""
    model_id = register(api)
    api("POST", f"/api/v3/models/{model_id}/inferences", [record(partner_inference_id="a")])
    labels = [
        {
            "partner_inference_id": "a",
            "ground_truth_timestamp": "2026-11-26T08:00:00Z",
            "ground_truth_data": {"churned": 1},
        },
        {
            "partner_inference_id": "b",
            "ground_truth_timestamp": "2026-11-27T09:30:00Z",
            "ground_truth_data": {"churned": 0},
        },
    ]
    api("PATCH", f"/api/v3/models/{model_id}/inferences", labels)
    status = api("GET", f"/api/v3/models/{model_id}/inferences/status").body
    assert status["ground_truth"]["latest_timestamp"].startswith("2026-11-27T09:30:00")


@pytest.mark.parametrize("field", ["start_time", "end_time"])
def test_a_bad_deepchecks_window_time_is_named_as_the_client_sent_it(api: Call, field: str) -> None:
    """It was named filter[0].value, a field the client never sent."""
    version = deepchecks_version(api, "dc", {"x": "numeric"}, ["a", "b"])
    statistics = api(
        "GET", f"/api/v1/model-versions/{version['id']}/time-window-statistics", {field: "garbage"}
    )
    assert (statistics.status, statistics.body["field"]) == (400, field), statistics.body
    data = api("POST", f"/api/v1/model-versions/{version['id']}/get-prod-data", {field: "garbage"})
    assert (data.status, data.body["field"]) == (400, field), data.body
