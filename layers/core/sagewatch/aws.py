"""boto3 clients, created once per process and shared by every store.

Lambda keeps a process warm between invocations, so creating clients here (not per call) saves
their start-up on every request. Tests that switch AWS backends call `reset()`.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.loaders import create_loader

_CONFIG = Config(retries={"max_attempts": 5, "mode": "adaptive"}, connect_timeout=5, read_timeout=30)
# S3 refuses SigV2 for buckets made since June 2020, and botocore still presigns with it in some
# regions: every S3 request and presigned URL is SigV4 (X-Amz-Algorithm=AWS4-HMAC-SHA256).
# sagemaker-runtime: no botocore retries (stores/invocations.py retries throttling, a model not
# ready and 5xx itself, with backoff), and 70 s to read, as an endpoint may take 60 s to answer.
_SERVICE_CONFIG = {
    "s3": Config(signature_version="s3v4"),
    "sagemaker-runtime": Config(retries={"max_attempts": 0, "mode": "standard"}, read_timeout=70),
}


# botocore's service and endpoint descriptions (large JSON files), read once per process: every
# session made by `client` shares this loader, so creating a client costs milliseconds, not a parse.
_LOADER = create_loader()


def _session() -> boto3.session.Session:
    """A fresh session (credentials and region as the environment says now) sharing _LOADER."""
    core = botocore.session.Session()
    core.register_component("data_loader", _LOADER)
    return boto3.session.Session(botocore_session=core)


def region() -> str:
    """AWS_REGION, else AWS_DEFAULT_REGION, else the profile's region (boto3's own resolution)."""
    return (
        os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or boto3.session.Session().region_name
        or "us-east-1"
    )


@functools.cache
def client(service: str) -> Any:
    """The process-wide boto3 client for `service` (endpoint from AWS_ENDPOINT_URL when set)."""
    config = _CONFIG.merge(_SERVICE_CONFIG[service]) if service in _SERVICE_CONFIG else _CONFIG
    if service == "s3" and not os.environ.get("AWS_ENDPOINT_URL"):
        # the bucket's regional host: a new bucket outside us-east-1 answers the global host with a
        # 307 for up to a day, which a presigned PUT cannot follow (its signature names the host)
        config = config.merge(
            Config(s3={"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"})
        )
    return _session().client(service, region_name=region(), config=config)


def reset() -> None:
    """Forget every cached client (after the endpoint or credentials changed)."""
    client.cache_clear()
