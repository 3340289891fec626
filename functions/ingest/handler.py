"""The ingest Lambda: S3 ObjectCreated events (capture files, ground truth, drops) through SQS."""

from sagewatch.handlers.ingest import handler

__all__ = ["handler"]
