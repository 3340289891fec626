"""The api function serves the dashboard's files before authentication, and nothing else that way."""

from __future__ import annotations

from sagewatch.handlers.api import handler
from sagewatch.local.http_bridge import LocalContext, proxy_event


def get(path: str, method: str = "GET") -> dict:
    return handler(proxy_event(method, path, {}, b""), LocalContext())


def test_the_page_loads_without_a_token_and_allows_only_its_own_files(aws: dict[str, str]) -> None:
    page = get("/")
    assert page["statusCode"] == 200
    assert page["headers"]["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in page["headers"]["Content-Security-Policy"]
    assert '<script type="module" src="/dashboard/app.js">' in page["body"]
    script = get("/dashboard/app.js")
    assert (script["statusCode"], script["headers"]["Content-Type"]) == (
        200,
        "text/javascript; charset=utf-8",
    )


def test_no_other_file_and_no_api_route_is_reached_without_a_token(aws: dict[str, str]) -> None:
    for path in (
        "/dashboard/../handlers/api.py",
        "/dashboard/__init__.py",
        "/dashboard/static/app.js",
        "/dashboard/x.js",
    ):
        assert get(path)["statusCode"] == 404, path
    assert get("/", method="POST")["statusCode"] == 401
    assert get("/api/v3/models")["statusCode"] == 401
