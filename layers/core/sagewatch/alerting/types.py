"""Metrics, alert rules, alerts and notification configurations, in Arthur's shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sagewatch.schema import FiniteFloat

MetricType = Literal[
    "model_output_metric", "model_input_data_metric", "model_performance_metric", "model_data_drift_metric"
]
Bound = Literal["upper", "lower"]
Severity = Literal["warning", "critical"]
AlertStatus = Literal["new", "acknowledged", "resolved"]
WindowMode = Literal["aligned", "sliding"]


class VariantDifference(BaseModel):
    """Two variants of the model: the metric's value is the challenger's minus the champion's."""

    model_config = ConfigDict(extra="forbid")

    champion: str = Field(min_length=1, max_length=255)
    challenger: str = Field(min_length=1, max_length=255)


EndpointSeries = Literal[
    "invocations",
    "error_4xx_rate",
    "error_5xx_rate",
    "model_latency_ms",
    "overhead_latency_ms",
    "model_latency_max_ms",
]


class EndpointMetric(BaseModel):
    """An IT metric of the model's SageMaker endpoint (CloudWatch's AWS/SageMaker), for one variant or all."""

    model_config = ConfigDict(extra="forbid")

    name: EndpointSeries
    variant: str | None = Field(default=None, min_length=1, max_length=63)


class MetricSpec(BaseModel):
    """POST .../metrics: a query (or data_drift query) that returns one value."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=255)
    query: dict[str, Any]
    endpoint: str | None = Field(default=None, description="the query or data_drift path; query if absent")
    parameters: list[dict[str, Any]] = Field(
        default_factory=list,
        description='[{"name", "default"?}]: {{name}} in the query takes a rule\'s value',
    )
    type: MetricType | None = None
    variant_difference: VariantDifference | None = Field(
        default=None,
        description="measure the query on two variants' rows: the value is challenger minus champion",
    )
    endpoint_metric: EndpointMetric | None = Field(
        default=None,
        description="measure the model's SageMaker endpoint from CloudWatch instead of a query (the query is ignored)",
    )


class Metric(MetricSpec):
    """A model's metric: its spec, an id, the endpoint it queries and its type (`is_default` if built in)."""

    id: str
    model_id: str
    endpoint: str
    type: MetricType
    is_default: bool = False
    attribute: str | None = None
    created_at: datetime | None = None

    @property
    def is_drift(self) -> bool:
        """Whether the metric is a data_drift query (its endpoint ends in /data_drift)."""
        return self.endpoint.rstrip("/").endswith("/data_drift")


MAX_WAIT_MINUTES = 60 * 24 * 366  # a rule silent for more than a year is a disabled rule


class RuleSpec(BaseModel):
    """POST .../alert_rules."""

    model_config = ConfigDict(extra="ignore")

    metric_id: str
    name: str | None = Field(default=None, max_length=255)
    bound: Bound
    threshold: FiniteFloat
    severity: Severity = "warning"
    lookback_period: int = Field(default=5, ge=1, le=60 * 24 * 31, description="minutes")
    window_mode: WindowMode = Field(
        default="aligned",
        description="aligned: windows [k*L, (k+1)*L) from the epoch; sliding: the lookback ending at each "
        "scheduled run (metrics that need no ground truth)",
    )
    subsequent_alert_wait_time: int = Field(default=0, ge=0, le=MAX_WAIT_MINUTES, description="minutes")
    enabled: bool = True
    filters: list[dict[str, Any]] | None = None
    metric_parameters: dict[str, Any] | None = None


class RuleUpdate(BaseModel):
    """PATCH .../alert_rules/{id}: the fields to change."""

    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    bound: Bound | None = None
    threshold: FiniteFloat | None = None
    severity: Severity | None = None
    lookback_period: int | None = Field(default=None, ge=1, le=60 * 24 * 31)
    window_mode: WindowMode | None = None
    subsequent_alert_wait_time: int | None = Field(default=None, ge=0, le=MAX_WAIT_MINUTES)
    enabled: bool | None = None
    filters: list[dict[str, Any]] | None = None
    metric_parameters: dict[str, Any] | None = None


class Rule(RuleSpec):
    """An alert rule as stored: its spec, a version for concurrent updates, its last value and trigger."""

    id: str
    model_id: str
    name: str
    metric_name: str | None = None
    is_default: bool = False
    created_at: datetime
    last_value: float | None = None
    last_evaluated_at: datetime | None = None
    last_triggered_at: datetime | None = None
    incident_alert_id: str | None = Field(
        default=None, description="the alert of the rule's latest incident, which adjacent crossings extend"
    )
    incident_end: datetime | None = Field(
        default=None,
        description="the end of that incident's last window; none once a quiet window followed it",
    )
    last_decision: str | None = Field(
        default=None,
        description="what the latest evaluated window decided: quiet, fire, continued, suppressed, "
        "uncertain (a performance metric whose interval still holds the threshold)",
    )
    labels_needed: int | None = Field(
        default=None,
        description="a performance rule's labels to tell its latest crossing from the threshold",
    )
    version: int = 1


class Alert(BaseModel):
    """A rule's metric past its threshold in one window or batch: its status and notifications' state."""

    id: str
    model_id: str
    alert_rule_id: str
    rule_name: str
    metric_id: str
    window_start: datetime | None = None
    window_end: datetime | None = None
    batch_id: str | None = None
    metric_value: float
    threshold: float
    bound: Bound
    severity: Severity
    message: str
    windows: int = Field(
        default=1, description="windows of the incident: adjacent crossings extend one alert"
    )
    incident_end: datetime | None = Field(
        default=None,
        description="the end of the incident's latest window (window_start and window_end stay those of "
        "the first window, where metric_value was measured)",
    )
    latest_value: float | None = Field(default=None, description="the metric in the incident's latest window")
    details: dict[str, Any] | None = Field(
        default=None,
        description="drifted: {input: p-value} of a model-level drift alert; interval, labelled and "
        "labels_needed of a performance alert",
    )
    status: AlertStatus = "new"
    timestamp: datetime
    updated_at: datetime
    notifications: dict[str, str] = Field(
        default_factory=dict, description="configuration id -> pending | sent | failed: <reason>"
    )


class NotificationSpec(BaseModel):
    """Where a model's alerts are sent: an email address or a webhook URL."""

    model_config = ConfigDict(extra="ignore")

    model_id: str
    type: Literal["email", "webhook"]
    destination: str = Field(min_length=3, max_length=2048)
    user_id: str | None = None
    enabled: bool = True


class NotificationConfig(NotificationSpec):
    """A notification configuration as stored: its spec, its id, who created it and when."""

    id: str
    created_by: str | None = None
    created_at: datetime
