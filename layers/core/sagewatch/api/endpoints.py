"""The IT side of a model: its SageMaker endpoint's state, and its calls, errors and latency by variant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel, Field

from sagewatch.container import endpoints

router = Router()


class VariantHealth(BaseModel):
    """A variant of the endpoint: instances, and its last hour."""

    variant: str
    instances: int | None = None
    desired_instances: int | None = None
    shadow: bool = False
    invocations: float | None = None
    error_4xx_rate: float | None = None
    error_5xx_rate: float | None = None
    model_latency_ms: float | None = None
    overhead_latency_ms: float | None = None
    model_latency_max_ms: float | None = None


class EndpointHealth(BaseModel):
    """Is the endpoint up (DescribeEndpoint), and each variant's last hour (CloudWatch)."""

    endpoint: str
    status: str
    last_modified: datetime | None = None
    failure_reason: str | None = None
    variants: list[VariantHealth]


class EndpointPoint(BaseModel):
    """One period of one variant."""

    time: datetime
    invocations: float | None = None
    errors_4xx: float | None = None
    errors_5xx: float | None = None
    error_4xx_rate: float | None = None
    error_5xx_rate: float | None = None
    model_latency_ms: float | None = None
    model_latency_max_ms: float | None = None
    overhead_latency_ms: float | None = None


class EndpointSeries(BaseModel):
    """Each variant's points, one per period (CloudWatch's AWS/SageMaker)."""

    endpoint: str
    period: int = Field(description="seconds")
    variants: dict[str, list[EndpointPoint]]


@router.get(
    "/models/<model_id>/endpoint",
    summary="Is the model's SageMaker endpoint up? Its state and last hour",
    tags=["endpoint"],
)
def endpoint_health(model_id: str) -> EndpointHealth:
    return EndpointHealth(**endpoints().health(model_id, datetime.now(UTC)))


@router.get(
    "/models/<model_id>/endpoint/metrics",
    summary="Calls, errors and latency by variant, from CloudWatch",
    tags=["endpoint"],
)
def endpoint_metrics(
    model_id: str,
    start_time: Annotated[datetime | None, Query()] = None,
    end_time: Annotated[datetime | None, Query()] = None,
    period: Annotated[int, Query(ge=60, le=86_400, multiple_of=60)] = 300,
) -> EndpointSeries:
    end = _aware(end_time) if end_time else datetime.now(UTC)
    start = _aware(start_time) if start_time else end - timedelta(hours=24)
    answer: dict[str, Any] = endpoints().series(model_id, start, end, period)
    return EndpointSeries(**answer)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
