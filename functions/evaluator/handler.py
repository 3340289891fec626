"""The evaluator Lambda: evaluates one model's alert rules per message of the evaluate queue."""

from sagewatch.handlers.evaluator import handler

__all__ = ["handler"]
