"""Metrics, alert rules, alerts and notification configurations (Arthur v3; metrics also at v4)."""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, Field, ValidationError

from sagewatch.alerting import catalog
from sagewatch.alerting.service import evaluator
from sagewatch.alerting.types import (
    Alert,
    AlertStatus,
    Metric,
    MetricSpec,
    MetricType,
    NotificationConfig,
    NotificationSpec,
    Rule,
    RuleSpec,
    RuleUpdate,
)
from sagewatch.api.query import lake_loader
from sagewatch.auth import Role
from sagewatch.errors import Forbidden, InvalidInput, SagewatchError, invalid_input
from sagewatch.schema import Model
from sagewatch.stores import model_store
from sagewatch.webhooks import WebhookRefused, check_url

router = Router()
metrics_v4 = Router()


def _now() -> datetime:
    return datetime.now(UTC)


def _pages(items: list[Any], page: int, page_size: int) -> tuple[list[Any], dict[str, int]]:
    start = (page - 1) * page_size
    return items[start : start + page_size], {
        "page": page,
        "page_size": page_size,
        "total_pages": max(1, math.ceil(len(items) / page_size)),
        "total_count": len(items),
    }


# -- metrics ----------------------------------------------------------------------------------------


class MetricPage(BaseModel):
    metrics: list[Metric]
    page: int
    page_size: int
    total_pages: int
    total_count: int


_ENDPOINT = re.compile(
    r"^(?:https?://[^/]+)?(?:/api/v[34])?/models/(?P<model>[^/]+)/inferences/query(?P<drift>/data_drift)?/?$"
)


def _metric_endpoint(spec: MetricSpec, model: Model) -> tuple[str, bool]:
    """The metric's endpoint as this model's query or data_drift path (by id or partner_model_id)."""
    if not spec.endpoint:
        return catalog.query_path(model), False
    found = _ENDPOINT.match(spec.endpoint)
    if found is None or found["model"] not in (model.id, model.partner_model_id):
        raise InvalidInput(
            f"endpoint is this model's query or data_drift path: {catalog.query_path(model)}[/data_drift]",
            field="endpoint",
        )
    drift = found["drift"] is not None
    return (catalog.drift_path(model) if drift else catalog.query_path(model)), drift


def create_metric_for(model_id: str, spec: MetricSpec) -> Metric:
    """A custom metric, checked by running it once (a missing reference is fine)."""
    model = model_store().get_active(model_id)
    endpoint, drift = _metric_endpoint(spec, model)
    metric = Metric(
        **spec.model_dump(exclude={"endpoint", "type"}),
        id=str(uuid.uuid4()),
        model_id=model.id,
        endpoint=endpoint,
        type=catalog.metric_type_of(spec, model, drift),
        created_at=_now(),
    )
    if spec.query.get("group_by") or spec.query.get("rollup"):
        raise InvalidInput("a metric returns one value: no group_by or rollup", field="query")
    try:  # a metric is checked by running it once
        catalog.measure(metric, model, lake_loader(model))
    except ValidationError as error:
        raise invalid_input(error.errors(), prefix="query") from None
    except SagewatchError as error:
        if "has no rows to compare with" not in error.message:  # no reference yet is fine
            raise InvalidInput(f"the metric's query fails: {error.message}", field="query") from None
    return evaluator().metrics.put(metric)


def _list_metrics(
    model_id: str,
    page: int,
    page_size: int,
    default: bool | None,
    metric_type: str | None,
    metric_name: str | None,
    attribute_name: str | None,
) -> MetricPage:
    model = model_store().get(model_id)
    found = [*catalog.default_metrics(model), *evaluator().metrics.list(model.id)]
    if default is not None:
        found = [m for m in found if m.is_default == default]
    if metric_type:
        found = [m for m in found if m.type == metric_type]
    if metric_name:
        found = [m for m in found if metric_name.lower() in m.name.lower()]
    if attribute_name:
        found = [m for m in found if m.attribute == attribute_name]
    chosen, paging = _pages(found, page, page_size)
    return MetricPage(metrics=chosen, **paging)


def _register_metric_routes(target: Router, version: str) -> None:
    tags = ["metrics"]

    @target.post(
        "/models/<model_id>/metrics",
        status_code=201,
        summary=f"Create a custom metric ({version})",
        tags=tags,
        operation_id=f"create_metric_{version}",
    )
    def create_metric(model_id: str, spec: Annotated[MetricSpec, Body()]) -> Metric:
        return create_metric_for(model_id, spec)

    @target.get(
        "/models/<model_id>/metrics",
        summary=f"List default and custom metrics ({version})",
        tags=tags,
        operation_id=f"list_metrics_{version}",
    )
    def list_metrics(
        model_id: str,
        page: Annotated[int, Query(ge=1)] = 1,
        page_size: Annotated[int, Query(ge=1, le=500)] = 50,
        default: Annotated[bool | None, Query()] = None,
        type: Annotated[MetricType | None, Query()] = None,
        metric_name: Annotated[str | None, Query()] = None,
        attribute_name: Annotated[str | None, Query()] = None,
        expand: Annotated[str | None, Query()] = None,
    ) -> MetricPage:
        return _list_metrics(model_id, page, page_size, default, type, metric_name, attribute_name)

    @target.get(
        "/models/<model_id>/metrics/<metric_id>",
        summary=f"A metric ({version})",
        tags=tags,
        operation_id=f"get_metric_{version}",
    )
    def get_metric(model_id: str, metric_id: str) -> Metric:
        model = model_store().get(model_id)
        return catalog.find_metric(model, metric_id, evaluator().metrics.list(model.id))

    @target.put(
        "/models/<model_id>/metrics/<metric_id>",
        summary=f"Replace a custom metric ({version})",
        tags=tags,
        operation_id=f"replace_metric_{version}",
    )
    def replace_metric(model_id: str, metric_id: str, spec: Annotated[MetricSpec, Body()]) -> Metric:
        model = model_store().get_active(model_id)
        current = catalog.find_metric(model, metric_id, evaluator().metrics.list(model.id))
        if current.is_default:
            raise InvalidInput("default metrics cannot be changed; create a custom metric", field="metric_id")
        created = create_metric_for(model.id, spec)
        evaluator().metrics.delete(model.id, created.id)
        return evaluator().metrics.put(
            created.model_copy(update={"id": current.id, "created_at": current.created_at})
        )

    @target.delete(
        "/models/<model_id>/metrics/<metric_id>",
        status_code=204,
        summary=f"Delete a custom metric ({version})",
        tags=tags,
        operation_id=f"delete_metric_{version}",
    )
    def delete_metric(model_id: str, metric_id: str) -> None:
        model = model_store().get(model_id)
        if any(r.metric_id == metric_id for r in evaluator().rules.list(model.id)):
            raise InvalidInput("alert rules use this metric: delete them first", field="metric_id")
        evaluator().metrics.delete(model.id, metric_id)


_register_metric_routes(router, "v3")
_register_metric_routes(metrics_v4, "v4")


# -- alert rules ------------------------------------------------------------------------------------


class RuleView(Rule):
    """A rule with what it has done: alerts by status, the last value and trigger."""

    alert_counts: dict[str, int] = Field(default_factory=dict)


class RulePage(BaseModel):
    data: list[RuleView]
    page: int
    page_size: int
    total_pages: int
    total_count: int


def _view(rule: Rule, alerts: list[Alert]) -> RuleView:
    counts = {status: 0 for status in ("new", "acknowledged", "resolved")}
    for alert in alerts:
        if alert.alert_rule_id == rule.id:
            counts[alert.status] += 1
    return RuleView(**rule.model_dump(), alert_counts=counts)


@router.post(
    "/models/<model_id>/alert_rules", summary="Create an alert rule on a metric", tags=["alert rules"]
)
def create_rule(model_id: str, spec: Annotated[RuleSpec, Body()]) -> RuleView:
    return _view(add_rule(model_id, spec), [])


def add_rule(model_id: str, spec: RuleSpec) -> Rule:
    """A new rule on one of the model's metrics (default or custom)."""
    model = model_store().get_active(model_id)
    metric = catalog.find_metric(model, spec.metric_id, evaluator().metrics.list(model.id))
    catalog.check_rule_inputs(metric, model, spec.metric_parameters, spec.filters)
    name = spec.name or f"{metric.name} {'above' if spec.bound == 'upper' else 'below'} {spec.threshold:g}"
    rule = Rule(
        **spec.model_dump(exclude={"name"}),
        id=str(uuid.uuid4()),
        model_id=model.id,
        name=name,
        metric_name=metric.name,
        created_at=_now(),
    )
    return evaluator().rules.put(rule)


@router.get(
    "/models/<model_id>/alert_rules",
    summary="Alert rules, paged, with their alert counts",
    tags=["alert rules"],
)
def list_rules(
    model_id: str,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> RulePage:
    model = model_store().get(model_id)
    alerts = evaluator().alerts.list(model.id)
    chosen, paging = _pages(evaluator().rules.list(model.id), page, page_size)
    return RulePage(data=[_view(r, alerts) for r in chosen], **paging)


@router.get("/models/<model_id>/alert_rules/<rule_id>", summary="An alert rule", tags=["alert rules"])
def get_rule(model_id: str, rule_id: str) -> RuleView:
    return _view(evaluator().rules.get(model_id, rule_id), evaluator().alerts.list(model_id))


@router.patch(
    "/models/<model_id>/alert_rules/<rule_id>", summary="Change an alert rule", tags=["alert rules"]
)
def update_rule(model_id: str, rule_id: str, update: Annotated[RuleUpdate, Body()]) -> RuleView:
    current = evaluator().rules.get(model_id, rule_id)
    changes = update.model_dump(exclude_unset=True)
    try:
        rule = Rule.model_validate({**current.model_dump(), **changes, "version": current.version + 1})
    except ValidationError as error:  # e.g. a null threshold: a rule cannot lose a required field
        raise invalid_input(error.errors()) from None
    model = model_store().get(model_id)
    metric = catalog.find_metric(model, rule.metric_id, evaluator().metrics.list(model.id))
    catalog.check_rule_inputs(metric, model, rule.metric_parameters, rule.filters)  # as when created
    return _view(
        evaluator().rules.put(rule, expected_version=current.version),
        evaluator().alerts.list(model_id),
    )


@router.delete(
    "/models/<model_id>/alert_rules/<rule_id>",
    status_code=204,
    summary="Delete an alert rule",
    tags=["alert rules"],
)
def delete_rule(model_id: str, rule_id: str) -> None:
    evaluator().rules.delete(model_id, rule_id)


# -- alerts -----------------------------------------------------------------------------------------


class AlertView(Alert):
    alert_rule: dict[str, Any]


class AlertPage(BaseModel):
    data: list[AlertView]
    page: int
    page_size: int
    total_pages: int
    total_count: int


class AlertUpdate(BaseModel):
    status: AlertStatus


def _alert_view(alert: Alert) -> AlertView:
    try:
        rule = evaluator().rules.get(alert.model_id, alert.alert_rule_id).model_dump(mode="json")
    except SagewatchError:  # the rule was deleted since
        rule = {
            "id": alert.alert_rule_id,
            "name": alert.rule_name,
            "metric_id": alert.metric_id,
            "bound": alert.bound,
            "threshold": alert.threshold,
            "severity": alert.severity,
        }
    return AlertView(**alert.model_dump(), alert_rule=rule)


@router.get("/alerts", summary="Alerts, newest first, filtered and paged", tags=["alerts"])
def list_alerts(
    model_id: Annotated[str | None, Query(min_length=1)] = None,
    status: Annotated[AlertStatus | None, Query()] = None,
    alert_rule_id: Annotated[str | None, Query(min_length=1)] = None,
    batch_id: Annotated[str | None, Query(min_length=1)] = None,
    start_time: Annotated[datetime | None, Query()] = None,
    end_time: Annotated[datetime | None, Query()] = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AlertPage:
    found = evaluator().alerts.list(model_id)
    if status:
        found = [a for a in found if a.status == status]
    if alert_rule_id:
        found = [a for a in found if a.alert_rule_id == alert_rule_id]
    if batch_id:
        found = [a for a in found if a.batch_id == batch_id]
    if start_time:
        found = [a for a in found if a.timestamp >= _aware(start_time)]
    if end_time:
        found = [a for a in found if a.timestamp < _aware(end_time)]
    chosen, paging = _pages(found, page, page_size)
    return AlertPage(data=[_alert_view(a) for a in chosen], **paging)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("/alerts/<alert_id>", summary="An alert", tags=["alerts"])
def get_alert(alert_id: str) -> AlertView:
    return _alert_view(evaluator().alerts.get(alert_id))


@router.patch("/alerts/<alert_id>", summary="Acknowledge or resolve an alert", tags=["alerts"])
def update_alert(alert_id: str, update: Annotated[AlertUpdate, Body()]) -> AlertView:
    alert = evaluator().alerts.get(alert_id)
    return _alert_view(
        evaluator().alerts.save(alert.model_copy(update={"status": update.status, "updated_at": _now()}))
    )


# -- notification configurations ---------------------------------------------------------------------


class NotificationPage(BaseModel):
    data: list[NotificationConfig]
    page: int
    page_size: int
    total_pages: int
    total_count: int


class NotificationUpdate(BaseModel):
    destination: str | None = None
    enabled: bool | None = None
    user_id: str | None = None


def _caller() -> Any:
    return router.context.get("token")


def _may_change(config: NotificationConfig) -> None:
    """A writer changes the configurations it made; an admin any."""
    token = _caller()
    if token is not None and token.role is not Role.ADMIN and config.created_by != token.token_id:
        raise Forbidden("a writer changes only the notification configurations it created; ask an admin")


def _check_destination(spec: NotificationSpec | NotificationConfig) -> None:
    if spec.type == "email" and ("@" not in spec.destination or " " in spec.destination):
        raise InvalidInput(f"{spec.destination!r} is not an email address", field="destination")
    if spec.type == "webhook":
        try:
            check_url(spec.destination)
        except WebhookRefused as refused:
            raise InvalidInput(f"webhook destination refused: {refused}", field="destination") from None


@router.post(
    "/alert_notification_configurations",
    status_code=201,
    summary="Send a model's alerts somewhere",
    tags=["notifications"],
)
def create_notification(spec: Annotated[NotificationSpec, Body()]) -> NotificationConfig:
    model_store().get_active(spec.model_id)
    _check_destination(spec)
    token = _caller()
    config = NotificationConfig(
        **spec.model_dump(),
        id=str(uuid.uuid4()),
        created_at=_now(),
        created_by=token.token_id if token is not None else None,
    )
    return evaluator().notifications.put(config)


@router.get(
    "/alert_notification_configurations", summary="Notification configurations", tags=["notifications"]
)
def list_notifications(
    model_id: Annotated[str | None, Query(min_length=1)] = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> NotificationPage:
    chosen, paging = _pages(evaluator().notifications.list(model_id), page, page_size)
    return NotificationPage(data=chosen, **paging)


@router.get(
    "/alert_notification_configurations/<config_id>",
    summary="A notification configuration",
    tags=["notifications"],
)
def get_notification(config_id: str) -> NotificationConfig:
    return evaluator().notifications.get(config_id)


@router.patch(
    "/alert_notification_configurations/<config_id>",
    summary="Change a notification configuration",
    tags=["notifications"],
)
def update_notification(config_id: str, update: Annotated[NotificationUpdate, Body()]) -> NotificationConfig:
    config = evaluator().notifications.get(config_id)
    _may_change(config)
    changed = config.model_copy(update=update.model_dump(exclude_unset=True, exclude_none=True))
    _check_destination(changed)
    return evaluator().notifications.put(changed)


@router.delete(
    "/alert_notification_configurations/<config_id>",
    status_code=204,
    summary="Delete a notification configuration",
    tags=["notifications"],
)
def delete_notification(config_id: str) -> None:
    _may_change(evaluator().notifications.get(config_id))
    evaluator().notifications.delete(config_id)
