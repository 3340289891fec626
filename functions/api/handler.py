"""The api Lambda: API Gateway proxy events to sagewatch's REST API."""

from sagewatch.handlers.api import handler

__all__ = ["handler"]
