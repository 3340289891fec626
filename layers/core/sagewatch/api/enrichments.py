"""/api/v3/models/{id}/enrichments: anomaly detection, explainability and hotspots, on or off, in
Arthur's shapes (the arthurai SDK's get_enrichments, update_enrichment(s), enable_hotspots)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import BaseModel, Field

from sagewatch.api.inferences import raw_body
from sagewatch.api.multipart import parse_multipart
from sagewatch.container import enrichments
from sagewatch.enrichments import Status
from sagewatch.errors import InvalidInput

router = Router()
TAGS = ["enrichments"]
CHANGES = (
    'a JSON body {"<enrichment>": {"enabled": bool, "config": {...}}}, or the form field config '
    "holding that JSON (the arthurai SDK's form)"
)


class EnrichmentView(BaseModel):
    """One enrichment: on or off, its readiness (Arthur's EnrichmentStatus) and its settings."""

    enabled: bool
    status: Status
    config: dict[str, Any] = Field(default_factory=dict)


class EnrichmentsView(BaseModel):
    """Every enrichment of a model."""

    anomaly_detection: EnrichmentView
    explainability: EnrichmentView
    hotspots: EnrichmentView
    bias_mitigation: EnrichmentView


@router.get("/models/<model_id>/enrichments", summary="Every enrichment's state and settings", tags=TAGS)
def get_enrichments(model_id: str) -> EnrichmentsView:
    return EnrichmentsView(**enrichments().view(model_id))


@router.get(
    "/models/<model_id>/enrichments/<enrichment>", summary="One enrichment's state and settings", tags=TAGS
)
def get_enrichment(model_id: str, enrichment: str) -> EnrichmentView:
    return EnrichmentView(**enrichments().view_one(model_id, enrichment))


@router.patch(
    "/models/<model_id>/enrichments",
    status_code=202,
    summary="Turn enrichments on or off and set them: " + CHANGES,
    tags=TAGS,
)
def update_enrichments(model_id: str) -> EnrichmentsView:
    changes, uploaded = _changes()
    return EnrichmentsView(**enrichments().update(model_id, changes, uploaded))


@router.patch(
    "/models/<model_id>/enrichments/<enrichment>",
    status_code=202,
    summary='Turn one enrichment on or off and set it: {"enabled": bool, "config": {...}}',
    tags=TAGS,
)
def update_enrichment(model_id: str, enrichment: str) -> EnrichmentView:
    change, uploaded = _changes(one=True)
    return EnrichmentView(**enrichments().update(model_id, {enrichment: change}, uploaded)[enrichment])


def _changes(one: bool = False) -> tuple[Any, bool]:
    """The requested changes, and whether files came with them (an uploaded model package).

    A form's config field holds the JSON of the changes (the arthurai SDK's form). A JSON body
    {"config": "<JSON>"} is that form sent as JSON; to one enrichment, it is the enrichment's config.
    """
    headers = router.current_event.headers
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
    if content_type and content_type.lower().startswith("multipart/form-data"):
        parts = parse_multipart(raw_body(), content_type)
        uploaded = any(part.filename for name, part in parts.items() if name != "config")
        if "config" not in parts:
            raise InvalidInput("send " + CHANGES, field="config")
        return _json(parts["config"].data.decode("utf-8", errors="replace"), "config"), uploaded
    body = _json(raw_body().decode("utf-8", errors="replace") or "null", "body")
    if isinstance(body, dict) and isinstance(body.get("config"), str):
        if one:
            return {**body, "config": _json(body["config"], "config")}, False
        if set(body) == {"config"}:
            return _json(body["config"], "config"), False
    return body, False


def _json(text: str, field: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise InvalidInput(f"{field} is not JSON: {error}", field=field) from None
