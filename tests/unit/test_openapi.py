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
