"""The scheduler Lambda: the EventBridge schedule fans out one evaluate message per active model."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer

from sagewatch.container import evaluate_queue, model_store
from sagewatch.services.evaluation import fan_out

logger = Logger(service="sagewatch-scheduler")
tracer = Tracer()  # X-Ray in Lambda (boto3 calls as subsegments); off elsewhere


def schedule(now: datetime | None = None) -> int:
    """Fan out now (or at `now`): one evaluate message per active model; returns how many."""
    return fan_out(model_store(), evaluate_queue(), now or datetime.now(UTC))


@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """EventBridge schedule -> one message per model on the evaluate queue."""
    sent = schedule()
    logger.info("evaluation fanned out", extra={"models": sent})
    return {"models": sent}
