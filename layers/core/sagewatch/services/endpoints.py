"""The IT side of a model: is its SageMaker endpoint up, how many calls, how many errors, how fast,
per production variant (the champion and its challengers). Read from DescribeEndpoint and CloudWatch;
rules can watch these as metrics (`endpoint_metric`), through `measure_metric`.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sagewatch.alerting import catalog
from sagewatch.alerting.types import EndpointMetric, Metric
from sagewatch.errors import InvalidInput
from sagewatch.metrics.query import Loader
from sagewatch.schema import Model
from sagewatch.stores.endpoints import SERIES, EndpointMetrics
from sagewatch.stores.ingestion import IngestionLedger
from sagewatch.stores.models import ModelStore


class Endpoints:
    """Health and CloudWatch series of the models' endpoints."""

    def __init__(self, models: ModelStore, metrics: EndpointMetrics, ledger: IngestionLedger) -> None:
        self.models, self.metrics, self.ledger = models, metrics, ledger

    def series(self, model_id: str, start: datetime, end: datetime, period: int) -> dict[str, Any]:
        """Each variant's calls, errors (counts and rates) and latencies by period."""
        model = self.models.get(model_id)
        if end <= start:
            raise InvalidInput("end_time must be after start_time", field="end_time")
        if (end - start).total_seconds() / period > 1440:
            raise InvalidInput(
                "at most 1,440 points per series: a longer period, or a shorter range", field="period"
            )
        endpoint = _endpoint(model)
        found = self.metrics.series(endpoint, self._watched(model, endpoint), start, end, period)
        return {
            "endpoint": endpoint,
            "period": period,
            "variants": {variant: _points(values) for variant, values in found.items()},
        }

    def health(self, model_id: str, now: datetime) -> dict[str, Any]:
        """The endpoint's state, and each variant's last hour: calls, error rates, mean latency."""
        model = self.models.get(model_id)
        endpoint = _endpoint(model)
        described = self.metrics.check_monitored(endpoint)
        names = self._allowed(model, [v["variant"] for v in described["variants"]])
        hour = self.metrics.series(endpoint, names, now - timedelta(hours=1), now, 3600)
        for variant in described["variants"]:
            totals = _totals(hour.get(variant["variant"], {}))
            variant.update(totals)
        described["variants"] = [v for v in described["variants"] if v["variant"] in names]
        return described

    def measure(
        self, model: Model, spec: EndpointMetric, start: datetime, end: datetime
    ) -> catalog.Measurement:
        """An endpoint metric over [start, end): calls, an error rate or a latency (one or all variants)."""
        endpoint = _endpoint(model)
        allowed = self._watched(model, endpoint)
        if spec.variant is not None and spec.variant not in allowed:
            raise InvalidInput(
                f"endpoint {endpoint!r} has no variant {spec.variant!r} this model watches: one of {allowed}",
                field="endpoint_metric.variant",
            )
        variants = [spec.variant] if spec.variant else allowed
        period = max(60, math.ceil((end - start).total_seconds() / 60) * 60)
        found = self.metrics.series(endpoint, variants, start, end, period)
        merged: dict[str, dict[Any, float]] = {name: {} for name in SERIES}
        for variant, values in found.items():  # every variant's points, keyed by (variant, time)
            for name, points in values.items():
                for moment, value in points.items():
                    merged[name][(variant, moment)] = value
        totals = _totals(merged)
        return catalog.Measurement(totals[spec.name], int(totals["invocations"] or 0), 0)

    def measure_metric(
        self,
        metric: Metric,
        model: Model,
        load: Loader,
        window: catalog.Window | None = None,
        values: dict[str, Any] | None = None,
        filters: list[dict[str, Any]] | None = None,
    ) -> catalog.Measurement:
        """catalog.measure, and endpoint metrics from CloudWatch (the window's [start, end), or the last hour)."""
        if metric.endpoint_metric is None:
            return catalog.measure(metric, model, load, window, values, filters)
        end = window.end if window and window.end else datetime.now().astimezone()
        start = window.start if window and window.start else end - timedelta(hours=1)
        return self.measure(model, metric.endpoint_metric, start, end)

    def _watched(self, model: Model, endpoint: str) -> list[str]:
        """The variants of the endpoint (tagged for sagewatch) that the model watches."""
        described = self.metrics.check_monitored(endpoint)
        return self._allowed(model, [v["variant"] for v in described["variants"]])

    @staticmethod
    def _allowed(model: Model, names: list[str]) -> list[str]:
        wanted = model.sagemaker.variants if model.sagemaker and model.sagemaker.variants else None
        return [n for n in names if wanted is None or n in wanted]


def _endpoint(model: Model) -> str:
    if model.sagemaker is None:
        raise InvalidInput(
            "the model names no SageMaker endpoint: set sagemaker.endpoint_name",
            field="sagemaker.endpoint_name",
        )
    return model.sagemaker.endpoint_name


def _points(values: dict[str, dict[datetime, float]]) -> list[dict[str, Any]]:
    moments = sorted({m for points in values.values() for m in points})
    rows = []
    for moment in moments:
        row: dict[str, Any] = {"time": moment.isoformat()}
        for name in SERIES:
            row[name] = values[name].get(moment)
        calls = row["invocations"] or 0
        row["error_4xx_rate"] = (row["errors_4xx"] or 0) / calls if calls else None
        row["error_5xx_rate"] = (row["errors_5xx"] or 0) / calls if calls else None
        rows.append(row)
    return rows


def _totals(values: dict[str, dict[Any, float]]) -> dict[str, float | None]:
    """Sums of calls and errors, their rates, latencies weighted by the calls of their periods."""
    calls = sum(values.get("invocations", {}).values())
    weights = values.get("invocations", {})

    def weighted(name: str) -> float | None:
        points = values.get(name, {})
        known = [(value, weights.get(key, 0.0)) for key, value in points.items()]
        total = sum(w for _, w in known)
        if not known:
            return None
        return sum(v * w for v, w in known) / total if total else sum(v for v, _ in known) / len(known)

    latest_max = values.get("model_latency_max_ms", {})
    return {
        "invocations": calls,
        "error_4xx_rate": sum(values.get("errors_4xx", {}).values()) / calls if calls else None,
        "error_5xx_rate": sum(values.get("errors_5xx", {}).values()) / calls if calls else None,
        "model_latency_ms": weighted("model_latency_ms"),
        "overhead_latency_ms": weighted("overhead_latency_ms"),
        "model_latency_max_ms": max(latest_max.values()) if latest_max else None,
    }
