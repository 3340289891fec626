"""The scheduler Lambda: the EventBridge schedule fans out one evaluation per model."""

from sagewatch.handlers.scheduler import handler

__all__ = ["handler"]
