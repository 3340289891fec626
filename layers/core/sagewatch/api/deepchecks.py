"""/api/v1: the routes deepchecks-client 0.19 calls for tabular models (see docs/deepchecks.md).

Thin: each route reads the request and calls sagewatch.services.deepchecks. Bodies are taken as the
client sends them and checked there, so errors name the Deepchecks field or column.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, Literal
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, ConfigDict, Field

from sagewatch import jsonl
from sagewatch.api.inferences import raw_body
from sagewatch.api.multipart import parse_multipart
from sagewatch.container import deepchecks
from sagewatch.errors import InvalidInput
from sagewatch.schema import MAX_ALERTS_DELAY_SECONDS, FiniteFloat
from sagewatch.services.deepchecks import version_view

router = Router()

# deepchecks-client warns when the backend's major version differs from its own (0).
PROTOCOL_VERSION = "0.19.2"
TAGS = ["deepchecks"]
ListBody = Annotated[list[Any], Body()]


class Note(BaseModel):
    """A note on a model: a title and an optional text."""

    title: str = Field(min_length=1)
    text: str | None = None


class ModelCreate(BaseModel):
    """POST /api/v1/models: a model's name, task type, label-delay settings and notes."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=255)
    task_type: Literal["binary", "multiclass", "regression"]
    description: str | None = Field(default=None, max_length=4000)
    alerts_delay_labels_ratio: float = Field(default=1.0, ge=0, le=1)
    alerts_delay_seconds: int = Field(default=3 * 24 * 3600, ge=0, le=MAX_ALERTS_DELAY_SECONDS)
    notes: list[Note] | None = None
    obj_store_path: str | None = None


class VersionCreate(BaseModel):
    """POST /api/v1/models/{id}/version: the columns with their types, the classes, feature importance."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=255)
    features: dict[str, str] = Field(min_length=1)
    additional_data: dict[str, str] | None = None
    feature_importance: dict[str, FiniteFloat] | None = None
    classes: list[str | int | float | bool] | None = None
    label_map: dict[str, str] | None = None


class VersionUpdate(BaseModel):
    """PUT /api/v1/model-versions/{id}: a new feature importance."""

    feature_importance: dict[str, FiniteFloat] | None = None


class CheckCreate(BaseModel):
    """A check to add to a model: its name and its Deepchecks config."""

    name: str = Field(min_length=1, max_length=255)
    config: dict[str, Any]


class MonitorCreate(BaseModel):
    """POST /api/v1/checks/{id}/monitors: how often, and over what lookback, the check is run."""

    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    description: str | None = None
    lookback: int | None = Field(default=None, ge=0, le=366 * 86400)
    frequency: Literal["HOUR", "DAY", "WEEK", "MONTH", "hour", "day", "week", "month"] = "DAY"
    aggregation_window: int = Field(default=1, ge=1, le=1000)
    dashboard_id: int | str | None = None
    additional_kwargs: dict[str, Any] | None = None


class RuleCondition(BaseModel):
    """When an alert rule fires: the monitor's value compared with `value` by `operator`."""

    operator: Literal["greater_than", "less_than", "greater_than_equals", "less_than_equals"]
    value: FiniteFloat


class AlertRuleCreate(BaseModel):
    """POST /api/v1/monitors/{id}/alert-rules: a severity and a condition."""

    model_config = ConfigDict(extra="ignore")

    alert_severity: Literal["low", "medium", "high", "critical"] = "medium"
    condition: RuleCondition


class WebhookCreate(BaseModel):
    """POST /api/v1/alert-webhooks: a webhook to store (sagewatch does not call it)."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1)
    http_url: str = Field(pattern=r"^https?://")
    http_method: Literal["GET", "POST"] = "POST"
    description: str | None = None
    kind: str = "STANDARD"


class DataFilter(BaseModel):
    """A condition on a column of the rows asked for (Deepchecks' operators)."""

    column: str
    operator: Literal[
        "greater_than_equals", "greater_than", "less_than_equals", "less_than", "in", "equals", "not_equals"
    ]
    value: Any = None


class FilterSet(BaseModel):
    """The conditions of a data request, all of which a row meets."""

    filters: list[DataFilter] = Field(default_factory=list)


class DataRequest(BaseModel):
    """POST .../get-ref-data or .../get-prod-data: how many rows, which, and (samples) from when to when."""

    model_config = ConfigDict(extra="ignore")

    rows_count: int = Field(default=10_000, ge=1, le=100_000)
    filter: FilterSet | None = None
    start_time: str | None = None
    end_time: str | None = None


class ScheduleTime(BaseModel):
    """POST .../monitors-set-schedule-time: when the model's monitors start."""

    timestamp: str = Field(min_length=1)


def _request_id() -> str:
    return router.current_event.request_context.request_id or str(uuid.uuid4())


def _by_name(identifier_kind: str | None) -> bool:
    if identifier_kind not in (None, "id", "name"):
        raise InvalidInput("identifier_kind: id or name", field="identifier_kind")
    return identifier_kind == "name"


def _json_string(text: str) -> Response[str]:
    """A JSON document holding a string of JSON: the client decodes the response twice."""
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=json.dumps(text))


def _json_body() -> Any:
    """The body of a GET (time-window-statistics sends one), or {}."""
    body = raw_body()
    return jsonl.loads(body.decode("utf-8")) if body.strip() else {}


@router.get("/say-hello", summary="Connectivity check", tags=TAGS)
def say_hello() -> dict[str, str]:
    return {"message": "hello from sagewatch"}


@router.get("/backend-version", summary="The Deepchecks protocol version sagewatch speaks", tags=TAGS)
def backend_version() -> dict[str, str]:
    return {"version": PROTOCOL_VERSION}


# -- models ----------------------------------------------------------------------------------------


@router.post("/models", summary="Create a model (task type, label-delay settings, notes)", tags=TAGS)
def create_model(body: Annotated[ModelCreate, Body()]) -> dict[str, Any]:
    return deepchecks().create_model(body.model_dump())


@router.get("/models/<model_id>", summary="A model by id, or by name with identifier_kind=name", tags=TAGS)
def get_model(model_id: str, identifier_kind: Annotated[str | None, Query()] = None) -> dict[str, Any]:
    return deepchecks().get_model(unquote(model_id), _by_name(identifier_kind))


@router.delete("/models/<model_id>", summary="Delete a model (its sagewatch model is archived)", tags=TAGS)
def delete_model(model_id: str, identifier_kind: Annotated[str | None, Query()] = None) -> dict[str, Any]:
    deepchecks().delete_model(unquote(model_id), _by_name(identifier_kind))
    return {}


@router.get("/models/<model_id>/versions", summary="A model's versions", tags=TAGS)
def list_versions(model_id: str) -> list[dict[str, Any]]:
    return deepchecks().get_model(model_id)["versions"]


@router.post(
    "/models/<model_id>/version", summary="Create a version (features, classes, importance)", tags=TAGS
)
def create_version(model_id: str, body: Annotated[VersionCreate, Body()]) -> dict[str, Any]:
    return deepchecks().create_version(model_id, body.model_dump())


@router.post("/models/<model_id>/notes", summary="Add notes to a model", tags=TAGS)
def create_notes(model_id: str, body: Annotated[list[Note], Body()]) -> list[dict[str, Any]]:
    return deepchecks().create_notes(model_id, [n.model_dump() for n in body])


@router.get("/models/<model_id>/notes", summary="A model's notes", tags=TAGS)
def list_notes(model_id: str) -> list[dict[str, Any]]:
    return deepchecks().list_notes(model_id)


@router.delete("/models-notes/<note_id>", summary="Delete a note", tags=TAGS)
def delete_note(note_id: str) -> dict[str, Any]:
    deepchecks().delete_note(note_id)
    return {}


@router.get("/models/<model_name>/model-versions/<version_name>", summary="A version by names", tags=TAGS)
def get_version_by_name(model_name: str, version_name: str) -> dict[str, Any]:
    return version_view(deepchecks().get_version_by_name(unquote(model_name), unquote(version_name)))


@router.delete(
    "/models/<model_name>/model-versions/<version_name>", summary="Delete a version by names", tags=TAGS
)
def delete_version_by_name(model_name: str, version_name: str) -> dict[str, Any]:
    deepchecks().delete_version(
        deepchecks().get_version_by_name(unquote(model_name), unquote(version_name))["id"]
    )
    return {}


@router.put("/model/<model_id>/labels", summary="Labels by sample id (any time)", tags=TAGS)
def log_labels(model_id: str, body: ListBody) -> dict[str, Any]:
    return deepchecks().log_labels(model_id, body, _request_id())


@router.post("/models/<model_id>/monitors-set-schedule-time", summary="Where monitors start", tags=TAGS)
def set_schedule_time(model_id: str, body: Annotated[ScheduleTime, Body()]) -> dict[str, Any]:
    return deepchecks().set_schedule_time(model_id, body.timestamp)


# -- versions and data -----------------------------------------------------------------------------


@router.get("/model-versions/<version_id>", summary="A version", tags=TAGS)
def get_version(version_id: str) -> dict[str, Any]:
    return version_view(deepchecks().get_version(version_id))


@router.put("/model-versions/<version_id>", summary="Update a version's feature importance", tags=TAGS)
def update_version(version_id: str, body: Annotated[VersionUpdate, Body()]) -> dict[str, Any]:
    return deepchecks().update_version(version_id, body.model_dump(exclude_unset=True))


@router.delete("/model-versions/<version_id>", summary="Delete a version (its data stays)", tags=TAGS)
def delete_version(version_id: str) -> dict[str, Any]:
    deepchecks().delete_version(version_id)
    return {}


@router.get(
    "/model-versions/<version_id>/schema", summary="JSON schemas the client validates with", tags=TAGS
)
def version_schema(version_id: str) -> dict[str, Any]:
    return deepchecks().schema(version_id)


@router.get(
    "/model-versions/<version_id>/count-samples", summary="Samples and reference rows stored", tags=TAGS
)
def count_samples(version_id: str) -> dict[str, int]:
    return deepchecks().count_samples(version_id)


@router.get(
    "/model-versions/<version_id>/time-window-statistics",
    summary="Samples and labelled samples in [start_time, end_time) (a GET with a JSON body)",
    tags=TAGS,
)
def time_window_statistics(version_id: str) -> dict[str, int]:
    body = _json_body()
    if not isinstance(body, dict):
        raise InvalidInput("body: {start_time, end_time}", field="body")
    for name in ("start_time", "end_time"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise InvalidInput(f"{name}: an ISO 8601 time", field=name)
    return deepchecks().time_window_statistics(version_id, body.get("start_time"), body.get("end_time"))


@router.post("/model-versions/<version_id>/data", summary="Production samples: all stored or none", tags=TAGS)
def log_samples(version_id: str, body: ListBody) -> dict[str, Any]:
    return deepchecks().log_samples(version_id, body, _request_id())


@router.post(
    "/model-versions/<version_id>/reference", summary="A reference batch (form field batch)", tags=TAGS
)
def upload_reference(version_id: str) -> dict[str, Any]:
    parts = parse_multipart(raw_body(), router.current_event.headers.get("content-type"))
    if "batch" not in parts:
        raise InvalidInput("send the reference in the form field batch", field="batch")
    return deepchecks().upload_reference(version_id, parts["batch"].data, _request_id())


@router.post("/model-versions/<version_id>/get-ref-data", summary="Reference rows (a JSON string)", tags=TAGS)
def get_reference_data(version_id: str, body: Annotated[DataRequest, Body()]) -> Response[str]:
    return _json_string(deepchecks().data_frame_json(version_id, "reference", body.model_dump()))


@router.post(
    "/model-versions/<version_id>/get-prod-data",
    summary="Samples of a time window (a JSON string)",
    tags=TAGS,
)
def get_production_data(version_id: str, body: Annotated[DataRequest, Body()]) -> Response[str]:
    return _json_string(
        deepchecks().data_frame_json(
            version_id, "inference", body.model_dump(), body.start_time, body.end_time
        )
    )


# -- checks, monitors, alert rules, webhooks, dashboards ------------------------------------------


@router.post("/models/<model_id>/checks", summary="Add checks (name and Deepchecks config)", tags=TAGS)
def create_checks(model_id: str, body: Annotated[list[CheckCreate], Body()]) -> list[dict[str, Any]]:
    return deepchecks().create_checks(model_id, [c.model_dump() for c in body])


@router.get("/models/<model_id>/checks", summary="Checks, each with how sagewatch evaluates it", tags=TAGS)
def list_checks(model_id: str) -> list[dict[str, Any]]:
    return deepchecks().list_checks(model_id)


@router.delete("/models/<model_id>/checks", summary="Delete checks by name", tags=TAGS)
def delete_checks(model_id: str, names: Annotated[list[str], Query()]) -> dict[str, Any]:
    deepchecks().delete_checks(model_id, names)
    return {}


@router.post("/checks/<check_id>/monitors", summary="A monitor: the check over time", tags=TAGS)
def create_monitor(check_id: str, body: Annotated[MonitorCreate, Body()]) -> dict[str, Any]:
    return deepchecks().create_monitor(check_id, body.model_dump())


@router.get("/monitors/<monitor_id>", summary="A monitor with its check", tags=TAGS)
def get_monitor(monitor_id: str) -> dict[str, Any]:
    return deepchecks().get_monitor(monitor_id)


@router.post("/monitors/<monitor_id>/alert-rules", summary="An alert rule on a monitor", tags=TAGS)
def create_alert_rule(monitor_id: str, body: Annotated[AlertRuleCreate, Body()]) -> dict[str, Any]:
    return deepchecks().create_alert_rule(monitor_id, body.model_dump())


@router.get("/alert-rules/<rule_id>", summary="An alert rule, with the sagewatch rules it became", tags=TAGS)
def get_alert_rule(rule_id: str) -> dict[str, Any]:
    return deepchecks().get_alert_rule(rule_id)


@router.post("/alert-webhooks", summary="Store an alert webhook (not called: see docs)", tags=TAGS)
def create_webhook(body: Annotated[WebhookCreate, Body()]) -> dict[str, Any]:
    return deepchecks().create_webhook(body.model_dump())


@router.get("/dashboards", summary="The one dashboard: monitors added to it", tags=TAGS)
def dashboards() -> dict[str, Any]:
    return deepchecks().dashboard()
