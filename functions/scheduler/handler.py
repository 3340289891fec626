"""The scheduler Lambda: the EventBridge schedule fans out one evaluation per model."""

from typing import Any

from sagewatch.alerting.service import schedule_handler


def handler(event: dict, context: Any) -> dict:
    return schedule_handler(event, context)
