"""What a failed Athena query answers (sagewatch.stores.athena.failure): the query's fault is the
caller's (400), a cancelled query a conflict (409), anything else Athena's (502), each with its reason."""

from __future__ import annotations

from sagewatch.errors import Conflict, InvalidInput
from sagewatch.stores.athena import Execution, QueryFailed, failure


def test_each_failure_answers_the_status_its_cause_means() -> None:
    refused = failure(Execution("q", "FAILED", "COLUMN_NOT_FOUND: line 1:8", category=2))
    assert isinstance(refused, InvalidInput) and refused.status == 400
    assert "COLUMN_NOT_FOUND" in refused.message
    cancelled = failure(Execution("q", "CANCELLED", "stopped by a user"))
    assert isinstance(cancelled, Conflict) and cancelled.status == 409
    broken = failure(Execution("q", "FAILED", "INTERNAL_ERROR", category=1))
    assert isinstance(broken, QueryFailed) and broken.status == 502 and "INTERNAL_ERROR" in broken.message
    assert "no reason given" in failure(Execution("q", "FAILED")).message
