"""The unit tier's guard holds: an AWS call from a unit test fails instead of reaching AWS."""

from __future__ import annotations

import pytest

from sagewatch import aws


def test_an_aws_call_in_a_unit_test_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    aws.reset()
    try:
        # botocore wraps what its HTTP client raised; the message says what was reached for
        with pytest.raises(
            Exception,
            match=r"unit tests use no network; this one tried to reach s3\.us-east-1\.amazonaws\.com",
        ):
            aws.client("s3").list_buckets()
    finally:
        aws.reset()
