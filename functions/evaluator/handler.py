"""The evaluator Lambda: evaluates one model's alert rules per message of the evaluate queue."""

from typing import Any

from sagewatch.alerting.service import queue_handler


def handler(event: dict, context: Any) -> dict:
    return queue_handler(event, context)
