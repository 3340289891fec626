"""Capture and ground-truth files through the ingest Lambda on moto: S3 -> SQS -> handler -> lake."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError
from tests import factories
from tests.conftest import Call
from tests.lake import lake_rows, notifications

from sagewatch import aws as sagewatch_aws
from sagewatch import container, streams
from sagewatch.handlers.ingest import handler
from sagewatch.local.http_bridge import LocalContext
from sagewatch.local.pollers import sqs_event
from sagewatch.schema import ModelSpec
from sagewatch.services import ingestion
from sagewatch.services.ingestion import Ingestor

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
HOUR = "2026/11/25/10"


def register(
    endpoint: str = "churn-endpoint", variants: list[str] | None = None, partner: str = "churn"
) -> str:
    body = factories.binary_probability(partner)
    body["sagemaker"] = {"endpoint_name": endpoint, "variants": variants}
    return container.model_store().create(ModelSpec.model_validate(body)).id


def put_capture(
    aws: dict[str, str], name: str, endpoint: str = "churn-endpoint", variant: str = "AllTraffic"
) -> str:
    key = f"datacapture/{endpoint}/{variant}/{HOUR}/{name}"
    body = (EVENTS / "capture" / name).read_bytes()
    sagewatch_aws.client("s3").put_object(Bucket=aws["capture"], Key=key, Body=body)
    return key


def test_a_capture_file_lands_in_the_lake_and_is_counted(aws: dict[str, str]) -> None:
    model_id = register()
    put_capture(aws, "csv_multi_rows.jsonl")
    result = handler(notifications(aws), LocalContext())
    assert result == {"batchItemFailures": []}
    rows = lake_rows("inferences", model_id)
    assert sorted(r["partner_inference_id"] for r in rows) == [
        "5e0c-multi-1_0",
        "5e0c-multi-1_1",
        "5e0c-multi-1_2",
        "batch-77_0",
        "batch-77_1",
    ]
    assert {r["variant"] for r in rows} == {"AllTraffic"}
    keys = container.lake_store().keys(f"inferences/model_id={model_id}/")
    assert [k.split("/")[2] for k in keys] == ["date=2026-11-25"]
    counts = container.ingestion_ledger().counts(model_id)
    assert (counts["total"]["inferences_ingested"], counts["total"]["inferences_rejected"]) == (5, 0)
    assert counts["by_variant"]["AllTraffic"]["inferences_ingested"] == 5


def test_replaying_the_same_batch_three_times_counts_once(aws: dict[str, str]) -> None:
    model_id = register()
    put_capture(aws, "csv_single.jsonl")
    put_capture(aws, "corrupted.jsonl")
    event = notifications(aws)
    for _ in range(3):
        assert handler(event, LocalContext()) == {"batchItemFailures": []}
    total = container.ingestion_ledger().counts(model_id)["total"]
    assert (total["inferences_ingested"], total["inferences_rejected"], total["inferences_files"]) == (
        5,
        6,
        2,
    )
    assert len(lake_rows("inferences", model_id)) == 5
    assert len(container.lake_store().keys(f"inferences/model_id={model_id}/")) == 2


def test_corrupted_lines_go_to_rejected_with_their_reason(aws: dict[str, str]) -> None:
    model_id = register()
    key = put_capture(aws, "corrupted.jsonl")
    handler(notifications(aws), LocalContext())
    [rejected_key] = container.lake_store().keys(f"rejected/model_id={model_id}/date=2026-11-25/")
    body = sagewatch_aws.client("s3").get_object(Bucket=aws["data"], Key=rejected_key)["Body"].read()
    records = [json.loads(line) for line in body.decode().splitlines()]
    assert {r["source"] for r in records} == {f"s3://{aws['capture']}/{key}"}
    assert sorted(r["line"] for r in records) == [2, 3, 4, 4, 5, 6]
    assert any(r["reason"] == "age: 'sixty' is not an INTEGER" and r["event_id"] == "bad-3" for r in records)
    assert sorted(r["partner_inference_id"] for r in lake_rows("inferences", model_id)) == ["bad-1", "bad-7"]


def test_a_file_for_an_unknown_endpoint_is_kept_aside_and_listed(aws: dict[str, str], api: Call) -> None:
    register()
    key = put_capture(aws, "csv_single.jsonl", endpoint="someone-elses-endpoint")
    assert handler(notifications(aws), LocalContext()) == {"batchItemFailures": []}
    assert container.lake_store().keys("inferences/") == []
    listed = api("GET", "/api/v3/ingestion/unrouted")
    assert listed.status == 200
    [record] = listed.body["data"]
    assert record["source"] == f"s3://{aws['capture']}/{key}"
    assert record["endpoint"] == "someone-elses-endpoint"
    assert "no model monitors endpoint 'someone-elses-endpoint'" in record["reason"]


def test_variants_route_to_the_model_registered_for_them(aws: dict[str, str]) -> None:
    default = register(partner="champion")
    challenger = register(variants=["Challenger"], partner="challenger")
    put_capture(aws, "csv_single.jsonl", variant="Champion")
    put_capture(aws, "csv_multi_rows.jsonl", variant="Challenger")
    handler(notifications(aws), LocalContext())
    assert {r["variant"] for r in lake_rows("inferences", default)} == {"Champion"}
    assert {r["variant"] for r in lake_rows("inferences", challenger)} == {"Challenger"}


def test_ground_truth_files_are_joined_later_by_partner_id(aws: dict[str, str]) -> None:
    model_id = register()
    body = (EVENTS / "ground_truth" / "ground_truth.jsonl").read_bytes()
    sagewatch_aws.client("s3").put_object(
        Bucket=aws["capture"], Key="ground-truth/churn-endpoint/2026/11/26/09/labels.jsonl", Body=body
    )
    handler(notifications(aws), LocalContext())
    rows = lake_rows("ground_truth", model_id)
    assert sorted((r["partner_inference_id"], r["churned"]) for r in rows) == [
        ("0b1f6c1e-0001-4c9a-9e1b-7c6f2a000001", 0),
        ("0b1f6c1e-0002-4c9a-9e1b-7c6f2a000002", 1),
        ("5e0c-multi-1_0", 0),
        ("5e0c-multi-1_1", 1),
        ("5e0c-multi-1_2", 0),
        ("batch-77_0", 1),
        ("batch-77_1", 0),
    ]
    total = container.ingestion_ledger().counts(model_id)["total"]
    assert (total["ground_truth_ingested"], total["ground_truth_rejected"]) == (7, 1)


def test_one_failing_message_fails_alone(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """An AWS failure (here S3 throttling one object's read) fails that message only, to be retried."""
    model_id = register()
    put_capture(aws, "csv_single.jsonl")
    throttled = put_capture(aws, "csv_multi_rows.jsonl")
    event = notifications(aws)
    real_read = Ingestor.ingest_object

    def read(self, bucket: str, key: str, etag: str | None = None):
        if key == throttled:
            raise ClientError(
                {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "GetObject"
            )
        return real_read(self, bucket, key, etag)

    monkeypatch.setattr(Ingestor, "ingest_object", read)
    result = handler(event, LocalContext())
    failed = [r["messageId"] for r in event["Records"] if throttled.split("/")[-1] in r["body"]]
    assert result == {"batchItemFailures": [{"itemIdentifier": failed[0]}]}
    assert len(lake_rows("inferences", model_id)) == 3


def test_an_object_deleted_before_its_event_is_handled_is_skipped_not_retried(aws: dict[str, str]) -> None:
    model_id = register()
    put_capture(aws, "csv_single.jsonl")
    gone = put_capture(aws, "csv_multi_rows.jsonl")
    event = notifications(aws)
    sagewatch_aws.client("s3").delete_object(Bucket=aws["capture"], Key=gone)
    assert handler(event, LocalContext()) == {"batchItemFailures": []}
    assert len(lake_rows("inferences", model_id)) == 3


def test_s3_test_events_are_ignored(aws: dict[str, str]) -> None:
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": aws["capture"]}
    event = sqs_event(
        [{"MessageId": "m1", "ReceiptHandle": "r", "Body": json.dumps(test_event)}],
        "arn:aws:sqs:::q",
        "us-east-1",
    )
    assert handler(event, LocalContext()) == {"batchItemFailures": []}


def test_large_files_are_streamed_in_chunks_with_line_numbers_kept(
    aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingestion, "CHUNK_BYTES", 700)  # a few lines a chunk
    monkeypatch.setattr(streams, "CHUNK_BYTES", 700)
    model_id = register()
    put_capture(aws, "corrupted.jsonl")
    handler(notifications(aws), LocalContext())
    keys = container.lake_store().keys(f"inferences/model_id={model_id}/")
    assert len(keys) > 1, "the file should have been written in several parts"
    assert sorted(r["partner_inference_id"] for r in lake_rows("inferences", model_id)) == ["bad-1", "bad-7"]
    rejected = [
        json.loads(line)
        for key in container.lake_store().keys(f"rejected/model_id={model_id}/")
        for line in sagewatch_aws.client("s3")
        .get_object(Bucket=aws["data"], Key=key)["Body"]
        .read()
        .splitlines()
    ]
    assert sorted(r["line"] for r in rejected) == [2, 3, 4, 4, 5, 6]


def test_status_api_reports_the_counts(aws: dict[str, str], api: Call) -> None:
    model_id = register()
    put_capture(aws, "corrupted.jsonl", variant="Blue")
    handler(notifications(aws), LocalContext())
    status = api("GET", f"/api/v3/models/{model_id}/inferences/status")
    assert status.status == 200
    assert status.body["inferences"] == {
        "ingested": 2,
        "rejected": 6,
        "files": 1,
        "latest_timestamp": "2026-11-25T16:00:06+00:00",
    }
    assert status.body["by_variant"]["Blue"]["inferences"]["ingested"] == 2
    assert status.body["ground_truth"] == {"ingested": 0, "rejected": 0, "files": 0, "latest_timestamp": None}


def test_parquet_is_typed_per_the_models_attributes(aws: dict[str, str]) -> None:
    model_id = register()
    put_capture(aws, "csv_single.jsonl")
    handler(notifications(aws), LocalContext())
    [key] = container.lake_store().keys(f"inferences/model_id={model_id}/")
    body = sagewatch_aws.client("s3").get_object(Bucket=aws["data"], Key=key)["Body"].read()
    schema = pq.read_schema(pa.BufferReader(body))
    assert [(f.name, str(f.type)) for f in schema] == [
        ("partner_inference_id", "string"),
        ("inference_timestamp", "timestamp[us, tz=UTC]"),
        ("batch_id", "string"),
        ("source", "string"),
        ("variant", "string"),
        ("ingested_at", "timestamp[us, tz=UTC]"),
        ("age", "int64"),
        ("income", "double"),
        ("region", "string"),
        ("predicted_probability", "double"),
        ("anomaly_score", "double"),  # null: the model has no reference, so no detector
    ]


def test_sample_sqs_event_with_an_encoded_key(aws: dict[str, str]) -> None:
    # GIVEN the capture file at the key the sample event names (URL-encoded there: %2B is "+")
    model_id = register()
    event = json.loads((EVENTS / "sqs" / "capture_object_created.json").read_text())
    key = "datacapture/churn-endpoint/AllTraffic/2026/11/25/10/59-12-345+3f1e0c52.jsonl"
    body = (EVENTS / "capture" / "csv_single.jsonl").read_bytes()
    sagewatch_aws.client("s3").put_object(Bucket=aws["capture"], Key=key, Body=body)
    # WHEN the ingest function's own handler module receives the event
    spec = importlib.util.spec_from_file_location(
        "ingest_function", ROOT / "functions" / "ingest" / "handler.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.handler(event, LocalContext()) == {"batchItemFailures": []}
    # THEN its inferences are in the lake
    assert len(lake_rows("inferences", model_id)) == 3
