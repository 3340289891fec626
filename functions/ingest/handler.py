"""The ingest Lambda: S3 ObjectCreated events (capture files, ground truth, drops) through SQS."""

from typing import Any

from sagewatch.ingest import handler as ingest_handler


def handler(event: dict, context: Any) -> dict:
    return ingest_handler(event, context)
