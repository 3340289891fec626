"""Fuzzing the S3 -> SQS -> ingest Lambda path on moto: faults cost their own rows, nothing else.

Each example is a capture file of clean events mixed with events carrying one fault
(tests.strategies), put in the capture bucket for a model of its own. The Lambda must take every
message (no retry, no dead-letter queue), ingest exactly the clean inferences, reject every fault
with a reason, and its counters must equal what the lake holds.
"""

from __future__ import annotations

import gzip
import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from tests import factories
from tests.lake import lake_rows, notifications
from tests.strategies import CorruptedFile, corrupted_capture_files

from sagewatch import aws as sagewatch_aws
from sagewatch import container
from sagewatch.handlers.ingest import handler
from sagewatch.local.http_bridge import LocalContext
from sagewatch.schema import ModelSpec

pytestmark = pytest.mark.fuzz

_numbers = itertools.count()
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _model_for_new_endpoint() -> tuple[str, str]:
    number = next(_numbers)
    body = factories.binary_probability(f"fuzz-{number}")
    body["sagemaker"] = {"endpoint_name": f"fuzz-endpoint-{number}"}
    return container.model_store().create(ModelSpec.model_validate(body)).id, f"fuzz-endpoint-{number}"


def _rejected(model_id: str) -> list[dict]:
    lake = container.lake_store()
    rows = []
    for key in lake.keys(f"rejected/model_id={model_id}/"):
        body = sagewatch_aws.client("s3").get_object(Bucket=lake.bucket, Key=key)["Body"].read()
        rows += [json.loads(line) for line in body.splitlines()]
    return rows


@FUZZ
@given(capture=corrupted_capture_files(), compressed=...)
def test_the_ingest_lambda_keeps_every_clean_row_and_rejects_every_fault(
    aws: dict[str, str], capture: CorruptedFile, compressed: bool
) -> None:
    model_id, endpoint = _model_for_new_endpoint()
    name = "capture.jsonl.gz" if compressed else "capture.jsonl"
    body = gzip.compress(capture.data) if compressed else capture.data
    key = f"datacapture/{endpoint}/AllTraffic/2026/11/25/10/{name}"
    sagewatch_aws.client("s3").put_object(Bucket=aws["capture"], Key=key, Body=body)

    assert handler(notifications(aws), LocalContext()) == {"batchItemFailures": []}

    stored = lake_rows("inferences", model_id)
    assert {r["partner_inference_id"] for r in stored} == capture.kept
    assert len(stored) == len(capture.kept)
    rejected = _rejected(model_id)
    assert {r["line"] for r in rejected} == set(capture.refused), capture.faults
    assert all(r["reason"] and r["source"] == f"s3://{aws['capture']}/{key}" for r in rejected)
    total = container.ingestion_ledger().counts(model_id)["total"]
    assert total.get("inferences_ingested", 0) == len(stored)
    assert total.get("inferences_rejected", 0) == len(rejected)
