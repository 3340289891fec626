"""What the API answers to malformed requests: a 4xx naming the problem, never a 500.

Each case here is one schemathesis found (tests/e2e/test_fuzzing.py), kept as a fast regression.
"""

from __future__ import annotations

import json

from tests.conftest import Call
from tests.inputs import register

from sagewatch.auth import Role
from sagewatch.handlers.api import handler
from sagewatch.local.http_bridge import LocalContext, proxy_event


def raw_call(
    tokens: dict[Role, str], method: str, path: str, body: bytes, content_type: str
) -> tuple[int, dict]:
    headers = {"Content-Type": content_type, "Authorization": f"Bearer {tokens[Role.WRITER]}"}
    result = handler(proxy_event(method, path, headers, body), LocalContext())
    return result["statusCode"], json.loads(result["body"]) if result.get("body") else {}


def test_bodies_that_are_not_json_are_400s_or_415s(api: Call, tokens: dict[Role, str]) -> None:
    model_id = register(api)
    path = f"/api/v3/models/{model_id}/inferences/query"
    assert raw_call(tokens, "POST", path, b"{not json", "application/json") == (
        400,
        {
            "message": "body: not valid JSON (Expecting property name enclosed in double quotes)",
            "field": "body",
        },
    )
    status, body = raw_call(tokens, "POST", path, b"\xff\xfe\x00", "application/json")
    assert (status, body["field"]) == (400, "body")
    status, body = raw_call(tokens, "POST", path, b'{"select": []}', "text/plain")
    assert status == 415
    assert body["message"] == "Content-Type 'text/plain' is not accepted here: send application/json"
    status, body = raw_call(tokens, "POST", path, b'{"select": []}', "multipart/form-data")
    assert (status, body["message"]) == (
        400,
        "Content-Type multipart/form-data needs its boundary= parameter",
    )


def test_no_content_means_an_empty_body(api: Call) -> None:
    model_id = register(api)
    deleted = api("DELETE", f"/api/v3/models/{model_id}")
    assert (deleted.status, deleted.body) == (204, None)
    assert "Content-Type" not in deleted.headers


def test_empty_filter_values_are_400s_naming_the_parameter(api: Call) -> None:
    for path in ("/api/v3/alerts", "/api/v3/alert_notification_configurations"):
        response = api("GET", path, query="model_id=")
        assert response.status == 400
        assert response.body["field"] == "model_id"


def test_a_metric_whose_query_is_not_a_query_is_a_400_naming_the_field(api: Call) -> None:
    model_id = register(api)
    response = api("POST", f"/api/v4/models/{model_id}/metrics", {"name": "empty", "query": {}})
    assert (response.status, response.body) == (
        400,
        {"message": "query.select: Field required", "field": "query.select"},
    )


def test_a_rule_cannot_lose_a_required_field(api: Call) -> None:
    model_id = register(api)
    metric = api("GET", f"/api/v4/models/{model_id}/metrics").body["metrics"][0]
    rule = api(
        "POST",
        f"/api/v3/models/{model_id}/alert_rules",
        {"metric_id": metric["id"], "bound": "upper", "threshold": 1},
    ).body
    response = api("PATCH", f"/api/v3/models/{model_id}/alert_rules/{rule['id']}", {"threshold": None})
    assert response.status == 400
    assert response.body["field"] == "threshold"
    assert api("GET", f"/api/v3/models/{model_id}/alert_rules/{rule['id']}").body["threshold"] == 1
