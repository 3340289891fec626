"""docs/openapi.json is what the code generates: regenerate it with `make openapi` when routes change."""

from __future__ import annotations

import json
from pathlib import Path

from sagewatch.handlers.openapi import openapi_document

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


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
