"""The evaluator Lambda: evaluates one model's alert rules per message of the evaluate queue."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from sagewatch.container import evaluator, hotspots
from sagewatch.services.evaluation import Report, as_dict

logger = Logger(service="sagewatch-evaluator")
metrics = Metrics(namespace="sagewatch", service="evaluator")
tracer = Tracer()  # X-Ray in Lambda (boto3 calls as subsegments); off elsewhere
processor = BatchProcessor(event_type=EventType.SQS)


def evaluate_record(record: SQSRecord) -> Report:
    """Evaluate the model a message names; its report logged and counted as CloudWatch metrics."""
    report = evaluator().evaluate_model(json.loads(record.body)["model_id"])
    searched = hotspots().run_scheduled(report.model_id)  # never raises: a failure is in its report
    (logger.warning if searched.errors else logger.info)(
        "hotspots searched", extra={"report": searched.as_dict()}
    )
    metrics.add_metric(name="AlertsRaised", unit=MetricUnit.Count, value=len(report.alerts))
    metrics.add_metric(name="RuleErrors", unit=MetricUnit.Count, value=len(report.errors))
    metrics.add_metric(name="NotificationsPending", unit=MetricUnit.Count, value=report.pending)
    log = logger.warning if report.errors else logger.info
    log("model evaluated", extra={"report": as_dict(report)})
    return report


@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The evaluate queue -> one model evaluated per message (failures retried, then dead-lettered)."""
    return process_partial_response(
        event=event, record_handler=evaluate_record, processor=processor, context=context
    )
