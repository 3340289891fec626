"""Shared fixtures: moto-backed AWS with sagewatch's declared resources, and the real API handler."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from sagewatch import container
from sagewatch.auth import Role
from sagewatch.local.emulator import serialize_dynamodb_requests
from sagewatch.local.http_bridge import LocalContext, proxy_event
from sagewatch.local.lambda_limits import LambdaImports, api_limits
from sagewatch.local.provision import provision
from sagewatch.settings import environment_for, physical_names
from tests.forms import multipart

TIERS = ("unit", "integration", "infra", "e2e", "compat")
TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test carries its tier's marker, from its folder (tests/<tier>/...)."""
    for item in items:
        tier = item.path.relative_to(TESTS).parts[0]
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """moto in-process with every declared resource created; yields logical -> physical names."""
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    serialize_dynamodb_requests()
    names = physical_names("test")
    for key, value in environment_for(names).items():
        monkeypatch.setenv(key, value)
    container.reset()
    with mock_aws():
        created = provision(names)
        yield created
    container.reset()


@dataclass
class ApiResponse:
    status: int
    body: Any
    headers: dict[str, str]


Call = Callable[..., ApiResponse]


@pytest.fixture
def tokens(aws: dict[str, str]) -> dict[Role, str]:
    """One fresh token per role."""
    return {role: container.token_store().create(role, description=f"test {role}")[1] for role in Role}


LAMBDA_IMPORTS = LambdaImports()


def as_in_lambda() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The real api handler behind Lambda's limits: 6 MB each way, 29 s, and only the packages the
    Lambda layers ship importable while it runs (pandas, scipy, scikit-learn are not)."""
    from sagewatch.handlers.api import handler

    return api_limits(handler, LAMBDA_IMPORTS, report=lambda line: None)


@pytest.fixture
def api(aws: dict[str, str], tokens: dict[Role, str]) -> Call:
    """Call the real api handler as API Gateway would; the default token is a writer's."""
    handler = as_in_lambda()

    def call(
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = tokens[Role.WRITER],
        query: str = "",
        content_type: str = "application/json",
    ) -> ApiResponse:
        headers = {"Content-Type": content_type}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        event = proxy_event(method, path + (f"?{query}" if query else ""), headers, raw)
        result = handler(event, LocalContext())
        text = result.get("body") or ""
        return ApiResponse(
            result["statusCode"], json.loads(text) if text else None, result.get("headers") or {}
        )

    return call


@pytest.fixture
def upload(api: Call, tokens):
    """POST a multipart form through the handler, as API Gateway passes binary bodies (base64)."""
    api_handler = as_in_lambda()

    def send(path: str, fields: dict) -> ApiResponse:
        body, content_type = multipart(fields)
        headers = {"Content-Type": content_type, "Authorization": f"Bearer {tokens[Role.WRITER]}"}
        result = api_handler(proxy_event("POST", path, headers, body), LocalContext())
        return ApiResponse(
            result["statusCode"], json.loads(result["body"]) if result.get("body") else None, {}
        )

    return send
