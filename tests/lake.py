"""What tests read back from the emulated account: S3 notifications as the ingest Lambda gets them, lake rows."""

from __future__ import annotations

from sagewatch import aws as sagewatch_aws
from sagewatch import container
from sagewatch.local.pollers import sqs_event
from sagewatch.stores.lake import GROUND_TRUTH_AREAS


def notifications(aws: dict[str, str]) -> dict:
    """The messages S3 put on the ingest queue, as the SQS event Lambda would receive."""
    sqs = sagewatch_aws.client("sqs")
    messages = []
    while batch := sqs.receive_message(QueueUrl=aws["ingest_url"], MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        messages += batch
    return sqs_event(messages, "arn:aws:sqs:us-east-1:123456789012:test-ingest", "us-east-1")


def lake_rows(area: str, model_id: str) -> list[dict]:
    """The rows of a model's area; "ground_truth" is all of its ground truth (GROUND_TRUTH_AREAS)."""
    lake = container.lake_store()
    areas = GROUND_TRUTH_AREAS if area == "ground_truth" else (area,)
    return [
        row
        for name in areas
        for key in lake.keys(f"{name}/model_id={model_id}/")
        for row in lake.read_table(key).to_pylist()
    ]


def lake_keys() -> set[str]:
    """Every object in the data lake bucket."""
    lake = container.lake_store()
    return set(lake.keys(""))
