"""The REST API (Powertools resolver) behind API Gateway and the local runtime."""

from sagewatch.api.app import app, handler

__all__ = ["app", "handler"]
