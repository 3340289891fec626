"""The evaluator Lambda: evaluates one model's alert rules per message of the evaluate queue."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
from dataclasses import asdict
from typing import Any

import pyarrow as pa
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from sagewatch.container import evaluator, explanations, hotspots
from sagewatch.errors import SagewatchError
from sagewatch.services.evaluation import Report, as_dict
from sagewatch.services.explanations import RUN_SECONDS

logger = Logger(service="sagewatch-evaluator")
metrics = Metrics(namespace="sagewatch", service="evaluator")
tracer = Tracer()  # X-Ray in Lambda (boto3 calls as subsegments); off elsewhere
processor = BatchProcessor(event_type=EventType.SQS)


# Seconds kept free at the end of the Lambda's time after explaining (writing what was done, logging).
EXPLAIN_MARGIN_SECONDS = 30.0


def _libc() -> Any:
    """The C library (malloc_trim where glibc has it); None where it cannot be loaded."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


_LIBC = _libc()


def evaluate_record(record: SQSRecord, lambda_context: Any = None) -> Report:
    """Evaluate the model a message names; its report logged and counted as CloudWatch metrics. The
    memory the evaluation freed is given back after it (release_memory), failed or not."""
    try:
        return _evaluate(record, lambda_context)
    finally:
        release_memory()


def release_memory() -> None:
    """Give the memory freed since back to the system: pyarrow's pool and glibc's malloc keep what a
    run freed (a day's decoded columns: GBs at 10 M rows a day), so a warm container would start
    the next model from this one's peak. Harmless where there is no malloc_trim."""
    pa.default_memory_pool().release_unused()
    trim = getattr(_LIBC, "malloc_trim", None)
    if trim is not None:
        trim(0)


def _evaluate(record: SQSRecord, lambda_context: Any) -> Report:
    """evaluate_record's work: the model evaluated, its due inferences explained, hotspots searched."""
    report = evaluator().evaluate_model(json.loads(record.body)["model_id"])
    explain_due(report.model_id, lambda_context)
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


def explain_due(model_id: str, lambda_context: Any = None) -> None:
    """Explain the model's due inferences within the Lambda's time left; a failing endpoint is
    logged (its explanations wait for the next run), never failing the evaluation."""
    seconds = RUN_SECONDS
    if lambda_context is not None and hasattr(lambda_context, "get_remaining_time_in_millis"):
        seconds = min(seconds, lambda_context.get_remaining_time_in_millis() / 1000 - EXPLAIN_MARGIN_SECONDS)
    try:
        explained = explanations().explain_due(model_id, seconds=max(seconds, 0.0))
    except SagewatchError as error:
        logger.warning("explanations failed", extra={"model_id": model_id, "error": error.to_dict()})
        return
    except Exception:  # an unforeseen failure of the endpoint or the lake: logged, alerts unharmed
        logger.exception("explanations failed", extra={"model_id": model_id})
        return
    if explained.enabled:
        logger.info("inferences explained", extra={"report": asdict(explained)})
        metrics.add_metric(name="InferencesExplained", unit=MetricUnit.Count, value=explained.explained)


@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The evaluate queue -> one model evaluated per message (failures retried, then dead-lettered)."""
    return process_partial_response(
        event=event, record_handler=evaluate_record, processor=processor, context=context
    )
