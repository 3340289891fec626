"""The ingest Lambda: S3 ObjectCreated events (capture files, ground truth, drops) through SQS.

Each message's objects go to the ingestion service; a message fails (and SQS retries it) only when
AWS failed, never because of a file's content: such a file is set aside under unrouted/.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import BotoCoreError, ClientError

from sagewatch import container
from sagewatch.errors import ConcurrentUpdate, SourceGone
from sagewatch.services.ingestion import Ingestor, IngestReport
from sagewatch.stores.lake import source_digest

logger = Logger(service="sagewatch-ingest")
metrics = Metrics(namespace="sagewatch", service="ingest")
tracer = Tracer()  # X-Ray in Lambda (boto3 calls as subsegments); off elsewhere
processor = BatchProcessor(event_type=EventType.SQS)


def s3_objects(sqs_body: str) -> list[tuple[str, str, str | None]]:
    """(bucket, key, etag) of each ObjectCreated record in an SQS message from S3.

    Keys arrive URL-encoded; S3's s3:TestEvent (sent when notifications are configured) has none.
    """
    message = json.loads(sqs_body)
    if "Message" in message and "Records" not in message:  # delivered through SNS
        message = json.loads(message["Message"])
    objects = []
    for record in message.get("Records", []):
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record["s3"]
        objects.append((s3["bucket"]["name"], unquote_plus(s3["object"]["key"]), s3["object"].get("eTag")))
    return objects


def ingest_record(record: SQSRecord) -> list[IngestReport]:
    """Ingest every object an SQS message announces; raising marks the message failed (retried)."""
    reports = []
    for bucket, key, etag in s3_objects(record.body):
        report = ingest_safely(container.ingestor(), bucket, key, etag)
        log = logger.warning if report.outcome == "unrouted" else logger.info
        log("ingested" if report.outcome != "unrouted" else "set aside", extra={"report": asdict(report)})
        _count(report)
        reports.append(report)
    return reports


def ingest_safely(ingestor: Ingestor, bucket: str, key: str, etag: str | None) -> IngestReport:
    """Ingest one object; a failure that retrying cannot cure is recorded, never parked silently.

    - AWS refused or failed a call (throttling, a timeout), or a concurrent write to the same
      counters won (ConcurrentUpdate): raise, so SQS retries the message.
    - The object is gone or was overwritten since the event: skipped, with a log line.
    - Anything else is the file's own fault (or a defect its content triggers): the file is set
      aside under unrouted/ with the error as its reason, logged with its traceback, and the
      message succeeds; replaying the file later (after a fix) ingests it, counted once.
    """
    source = f"s3://{bucket}/{key}"
    try:
        return ingestor.ingest_object(bucket, key, etag)
    except SourceGone as gone:
        logger.warning("the object is gone or changed since its event", extra={"source": source})
        return IngestReport(source, "skipped", reason=gone.message)
    except (BotoCoreError, ClientError, ConcurrentUpdate):  # AWS failed, or a concurrent write won
        raise
    except Exception as error:
        logger.exception("the file could not be ingested; set aside", extra={"source": source})
        reason = f"the file could not be ingested ({type(error).__name__}: {str(error)[:300]})"
        digest = source_digest(bucket, key, (etag or "").strip('"'))
        return ingestor.set_aside(source, (etag or "").strip('"'), digest, "unreadable", reason, None)


def _count(report: IngestReport) -> None:
    """CloudWatch metrics (the dashboard's ingest widgets): rows ingested and rejected, files set aside."""
    if report.outcome == "unrouted":
        metrics.add_metric(name="FilesUnrouted", unit=MetricUnit.Count, value=1)
    elif report.outcome == "ingested":
        kind = "GroundTruth" if report.kind == "ground_truth" else "Inferences"
        metrics.add_metric(name=f"{kind}Ingested", unit=MetricUnit.Count, value=report.ingested)
        metrics.add_metric(name=f"{kind}Rejected", unit=MetricUnit.Count, value=report.rejected)


@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The ingest Lambda's entry point."""
    return process_partial_response(
        event=event, record_handler=ingest_record, processor=processor, context=context
    )
