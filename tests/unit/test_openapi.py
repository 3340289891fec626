"""docs/openapi.json is what the code generates: regenerate it with `make openapi` when routes change."""

from __future__ import annotations

import json
from pathlib import Path

from sagewatch.errors import Throttled
from sagewatch.handlers.openapi import openapi_document, with_error_responses
from sagewatch.services.explanations import EndpointFailing, ExplanationFailed

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def test_committed_openapi_document_is_current() -> None:
    assert json.loads(COMMITTED.read_text()) == json.loads(openapi_document()), (
        "docs/openapi.json is stale: run `make openapi`"
    )


def test_every_route_declares_the_token_scheme() -> None:
    document = json.loads(openapi_document())
    assert document["components"]["securitySchemes"]["token"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
    }
    assert document["security"] == [{"token": []}]
    assert "/api/v3/models/{model_id}" in document["paths"]


def test_the_query_routes_keep_their_own_error_descriptions() -> None:
    """The query routes' 409 and 413 say what those routes mean by them (a query cancelled, a result
    past what an answer holds), not the generic write errors (an upload URL for a large body)."""
    document = json.loads(openapi_document())
    for path in (
        "/api/v3/models/{model_id}/inferences/query",
        "/api/v3/models/{model_id}/inferences/query/data_drift",
    ):
        responses = document["paths"][path]["post"]["responses"]
        assert "result rows" in responses["413"]["description"], responses["413"]
        assert "upload URL" not in responses["413"]["description"]
        assert "cancelled in Athena" in responses["409"]["description"]
        assert responses["400"]["description"] == "invalid request: the message names the field"


def test_a_route_keeps_its_own_422_and_loses_powertools_validation_error() -> None:
    """sagewatch answers a validation error as a 400; a 422 a route describes itself (an inference
    that could not be explained) is one it answers."""
    own = {"description": "could not be explained", "content": ERROR_CONTENT}
    generated = {
        "description": "Validation Error",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}},
    }
    document = with_error_responses(
        {
            "paths": {
                "/own": {"get": {"responses": {"422": own}}},
                "/generated": {"post": {"responses": {"422": generated}}},
            },
            "components": {"schemas": {"HTTPValidationError": {}}},
        }
    )
    assert document["paths"]["/own"]["get"]["responses"]["422"] == own
    assert "422" not in document["paths"]["/generated"]["post"]["responses"]
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_a_get_describes_the_413_it_answers_past_6_mb() -> None:
    """handlers/api.py answers 413 to any request whose answer is past Lambda's 6 MB, a GET's too
    (a page of inferences, a metric's values): described, without telling to use an upload URL."""
    document = json.loads(openapi_document())
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert "413" in operation["responses"], (method, path)
            if method == "get" and not path.endswith("/inferences/query/{query_id}"):
                assert "6 MB" in operation["responses"]["413"]["description"], (method, path)
                assert "upload URL" not in operation["responses"]["413"]["description"], (method, path)


def test_a_poll_describes_the_409_of_a_query_an_earlier_version_started() -> None:
    document = json.loads(openapi_document())
    poll = document["paths"]["/api/v3/models/{model_id}/inferences/query/{query_id}"]["get"]["responses"]
    assert "earlier version" in poll["409"]["description"]
    for path in (
        "/api/v3/models/{model_id}/inferences/query",
        "/api/v3/models/{model_id}/inferences/query/data_drift",
    ):
        assert "request body" in document["paths"][path]["post"]["responses"]["413"]["description"]


def test_the_explanation_route_describes_the_errors_it_answers() -> None:
    """An inference's explanation answers 422 (not explainable, with the reason), 429 (budget spent or
    endpoint throttled) and 503 (endpoint failing): sagewatch.services.explanations raises them."""
    document = json.loads(openapi_document())
    path = "/api/v3/models/{model_id}/inferences/{partner_inference_id}/explanation"
    responses = document["paths"][path]["get"]["responses"]
    for error in (ExplanationFailed, Throttled, EndpointFailing):
        described = responses[str(error.status)]
        assert described["content"] == ERROR_CONTENT
