"""Upload URLs are SigV4: S3 refuses SigV2 for every bucket created since June 2020 (moto does not)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from sagewatch import aws


@pytest.mark.parametrize(
    "region", ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2", "sa-east-1"]
)
def test_presigned_put_urls_are_signed_with_sigv4(monkeypatch: pytest.MonkeyPatch, region: str) -> None:
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", region)
    aws.reset()
    try:
        url = aws.client("s3").generate_presigned_url(
            "put_object",
            Params={"Bucket": "sagewatch-data", "Key": "drops/m/inferences/x.parquet"},
            ExpiresIn=3600,
        )
    finally:
        aws.reset()
    parts = urlsplit(url)
    # the regional host: a new bucket answers the global one with a 307 a presigned PUT cannot follow
    assert parts.hostname == f"sagewatch-data.s3.{region}.amazonaws.com"
    query = parse_qs(parts.query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert f"/{region}/s3/aws4_request" in query["X-Amz-Credential"][0]
    assert "Signature" not in query and "AWSAccessKeyId" not in query  # SigV2's parameters
