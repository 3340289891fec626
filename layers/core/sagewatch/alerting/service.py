"""The evaluator's Lambdas: the schedule fans out one message per model; each message evaluates one model."""

from __future__ import annotations

import functools
import json
import time
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from sagewatch import aws, stores
from sagewatch.alerting.evaluator import Evaluator, Report, as_dict
from sagewatch.alerting.notify import Notifier
from sagewatch.settings import Settings
from sagewatch.stores.alerting import AlertStore, MetricStore, NotificationStore, RuleStore

logger = Logger(service="sagewatch-evaluator")
metrics = Metrics(namespace="sagewatch", service="evaluator")
tracer = Tracer()  # X-Ray in Lambda (boto3 calls as subsegments); off elsewhere
processor = BatchProcessor(event_type=EventType.SQS)


@functools.cache
def evaluator() -> Evaluator:
    from sagewatch.api.query import lake_loader

    settings = Settings.from_env()
    return Evaluator(
        models=stores.model_store(),
        metrics=MetricStore.from_settings(settings),
        rules=RuleStore.from_settings(settings),
        alerts=AlertStore.from_settings(settings),
        notifications=NotificationStore.from_settings(settings),
        ledger=stores.ingestion_ledger(),
        loader_for=lake_loader,
        notifier=Notifier(),
    )


def reset() -> None:
    evaluator.cache_clear()


def fan_out(now: datetime | None = None) -> int:
    """One evaluate message per active model; returns how many were sent."""
    settings = Settings.from_env()
    sqs = aws.client("sqs")
    queue_url = sqs.get_queue_url(QueueName=settings.name("evaluate"))["QueueUrl"]
    moment = (now or datetime.now(UTC)).isoformat()
    models = stores.model_store().list()
    unsent: list[str] = []
    for start in range(0, len(models), 10):
        chunk = models[start : start + 10]
        entries = [
            {"Id": str(i), "MessageBody": json.dumps({"model_id": m.id, "scheduled_at": moment})}
            for i, m in enumerate(chunk)
        ]
        unsent += [chunk[int(e["Id"])].id for e in send_all(sqs, queue_url, entries)]
    if unsent:  # the invocation fails, so EventBridge retries it; evaluations are idempotent per window
        raise FanOutFailed(f"{len(unsent)} of {len(models)} models were not queued: {', '.join(unsent)}")
    return len(models)


class FanOutFailed(RuntimeError):
    """Some models' evaluate messages could not be sent."""


SEND_ATTEMPTS = 4


def send_all(
    sqs: Any, queue_url: str, entries: list[dict[str, str]], pause: Any = time.sleep
) -> list[dict[str, str]]:
    """Send a batch, resending the entries SQS reports as Failed (a batch call succeeds even when
    some of its messages do not); returns the entries still unsent after SEND_ATTEMPTS."""
    pending = entries
    for attempt in range(SEND_ATTEMPTS):
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=pending)
        failed = {failure["Id"] for failure in response.get("Failed", [])}
        if failed:
            logger.warning("SQS refused some evaluate messages", extra={"failed": response["Failed"]})
        pending = [entry for entry in pending if entry["Id"] in failed]
        if not pending:
            return []
        if attempt < SEND_ATTEMPTS - 1:
            pause(0.2 * 2**attempt)
    return pending


@tracer.capture_lambda_handler(capture_response=False)
def schedule_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """EventBridge schedule -> one message per model on the evaluate queue."""
    sent = fan_out()
    logger.info("evaluation fanned out", extra={"models": sent})
    return {"models": sent}


def evaluate_record(record: SQSRecord) -> Report:
    report = evaluator().evaluate_model(json.loads(record.body)["model_id"])
    metrics.add_metric(name="AlertsRaised", unit=MetricUnit.Count, value=len(report.alerts))
    metrics.add_metric(name="RuleErrors", unit=MetricUnit.Count, value=len(report.errors))
    metrics.add_metric(name="NotificationsPending", unit=MetricUnit.Count, value=report.pending)
    log = logger.warning if report.errors else logger.info
    log("model evaluated", extra={"report": as_dict(report)})
    return report


@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def queue_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The evaluate queue -> one model evaluated per message (failures retried, then dead-lettered)."""
    return process_partial_response(
        event=event, record_handler=evaluate_record, processor=processor, context=context
    )
