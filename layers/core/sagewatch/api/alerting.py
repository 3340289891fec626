"""Metrics, alert rules, alerts and notification configurations (Arthur v3; metrics also at v4)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel

from sagewatch.alerting.types import (
    AlertStatus,
    Metric,
    MetricSpec,
    MetricType,
    NotificationConfig,
    NotificationSpec,
    RuleSpec,
    RuleUpdate,
)
from sagewatch.container import monitoring
from sagewatch.services.monitoring import (
    AlertPage,
    AlertView,
    MetricPage,
    NotificationPage,
    RulePage,
    RuleView,
)

router = Router()
metrics_v4 = Router()


# -- metrics ----------------------------------------------------------------------------------------


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
        return monitoring().create_metric(model_id, spec)

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
        return monitoring().metrics_page(
            model_id, page, page_size, default, type, metric_name, attribute_name
        )

    @target.get(
        "/models/<model_id>/metrics/<metric_id>",
        summary=f"A metric ({version})",
        tags=tags,
        operation_id=f"get_metric_{version}",
    )
    def get_metric(model_id: str, metric_id: str) -> Metric:
        return monitoring().get_metric(model_id, metric_id)

    @target.put(
        "/models/<model_id>/metrics/<metric_id>",
        summary=f"Replace a custom metric ({version})",
        tags=tags,
        operation_id=f"replace_metric_{version}",
    )
    def replace_metric(model_id: str, metric_id: str, spec: Annotated[MetricSpec, Body()]) -> Metric:
        return monitoring().replace_metric(model_id, metric_id, spec)

    @target.delete(
        "/models/<model_id>/metrics/<metric_id>",
        status_code=204,
        summary=f"Delete a custom metric ({version})",
        tags=tags,
        operation_id=f"delete_metric_{version}",
    )
    def delete_metric(model_id: str, metric_id: str) -> None:
        monitoring().delete_metric(model_id, metric_id)


_register_metric_routes(router, "v3")
_register_metric_routes(metrics_v4, "v4")


# -- alert rules ------------------------------------------------------------------------------------


@router.post(
    "/models/<model_id>/alert_rules", summary="Create an alert rule on a metric", tags=["alert rules"]
)
def create_rule(model_id: str, spec: Annotated[RuleSpec, Body()]) -> RuleView:
    return monitoring().create_rule(model_id, spec)


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
    return monitoring().rules_page(model_id, page, page_size)


@router.get("/models/<model_id>/alert_rules/<rule_id>", summary="An alert rule", tags=["alert rules"])
def get_rule(model_id: str, rule_id: str) -> RuleView:
    return monitoring().get_rule(model_id, rule_id)


@router.patch(
    "/models/<model_id>/alert_rules/<rule_id>", summary="Change an alert rule", tags=["alert rules"]
)
def update_rule(model_id: str, rule_id: str, update: Annotated[RuleUpdate, Body()]) -> RuleView:
    return monitoring().update_rule(model_id, rule_id, update.model_dump(exclude_unset=True))


@router.delete(
    "/models/<model_id>/alert_rules/<rule_id>",
    status_code=204,
    summary="Delete an alert rule",
    tags=["alert rules"],
)
def delete_rule(model_id: str, rule_id: str) -> None:
    monitoring().delete_rule(model_id, rule_id)


# -- alerts -----------------------------------------------------------------------------------------


class AlertUpdate(BaseModel):
    """PATCH /alerts/{id}: the alert's new status."""

    status: AlertStatus


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
    return monitoring().alerts_page(
        page, page_size, model_id, status, alert_rule_id, batch_id, start_time, end_time
    )


@router.get("/alerts/<alert_id>", summary="An alert", tags=["alerts"])
def get_alert(alert_id: str) -> AlertView:
    return monitoring().get_alert(alert_id)


@router.patch("/alerts/<alert_id>", summary="Acknowledge or resolve an alert", tags=["alerts"])
def update_alert(alert_id: str, update: Annotated[AlertUpdate, Body()]) -> AlertView:
    return monitoring().update_alert(alert_id, update.status)


# -- notification configurations ---------------------------------------------------------------------


def _caller() -> Any:
    """The request's token (None when routes run without the handler's authentication)."""
    return router.context.get("token")


class NotificationUpdate(BaseModel):
    """PATCH /alert_notification_configurations/{id}: the fields to change."""

    destination: str | None = None
    enabled: bool | None = None
    user_id: str | None = None


@router.post(
    "/alert_notification_configurations",
    status_code=201,
    summary="Send a model's alerts somewhere",
    tags=["notifications"],
)
def create_notification(spec: Annotated[NotificationSpec, Body()]) -> NotificationConfig:
    return monitoring().create_notification(spec, _caller())


@router.get(
    "/alert_notification_configurations", summary="Notification configurations", tags=["notifications"]
)
def list_notifications(
    model_id: Annotated[str | None, Query(min_length=1)] = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> NotificationPage:
    return monitoring().notifications_page(model_id, page, page_size)


@router.get(
    "/alert_notification_configurations/<config_id>",
    summary="A notification configuration",
    tags=["notifications"],
)
def get_notification(config_id: str) -> NotificationConfig:
    return monitoring().get_notification(config_id)


@router.patch(
    "/alert_notification_configurations/<config_id>",
    summary="Change a notification configuration",
    tags=["notifications"],
)
def update_notification(config_id: str, update: Annotated[NotificationUpdate, Body()]) -> NotificationConfig:
    changes = update.model_dump(exclude_unset=True, exclude_none=True)
    return monitoring().update_notification(config_id, changes, _caller())


@router.delete(
    "/alert_notification_configurations/<config_id>",
    status_code=204,
    summary="Delete a notification configuration",
    tags=["notifications"],
)
def delete_notification(config_id: str) -> None:
    monitoring().delete_notification(config_id, _caller())
