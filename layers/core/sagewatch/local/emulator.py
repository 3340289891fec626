"""Make moto's DynamoDB behave like DynamoDB under concurrency.

DynamoDB applies each request (a conditional put, a transaction) atomically. moto's backend is
plain Python objects: two threads can both pass a condition check, or break a transaction's
snapshot. Serialising moto's DynamoDB request handling restores per-request atomicity, which is
what sagewatch's conditional writes rely on (a check-then-write in two requests still races, as it
would on AWS).
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_lock = threading.RLock()
_installed = False


def serialize_dynamodb_requests() -> None:
    """Install once per process; affects both mock_aws and moto's server in this process."""
    global _installed
    if _installed:
        return
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action

    @functools.wraps(original)
    def call_action(self: Any) -> Any:
        with _lock:
            return original(self)

    DynamoHandler.call_action = call_action  # type: ignore[method-assign]
    _installed = True
