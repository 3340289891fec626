"""A model's metrics: defaults derived from its schema, custom ones stored; and measuring them in a window.

Default metrics exist for every model without being stored (so they follow its schema): inference
count, the average of each prediction, the performance metric of its output type (accuracyRate or
rmse), the null rate of each attribute, PSI of each input against the reference, and Input Drift:
the family-wise p-value of the calibrated drift test over all inputs (one number for the model, so
one rule and one alert cover every input), and Anomalous Inferences: the p-value (rateTest) of as
many inferences scoring above `{{cutoff}}` when each does with probability `{{share}}`, a share
seen in `{{share_rows}}` reference rows. Its rule (services.evaluation) sets them from the model's
detector (sagewatch.metrics.anomaly): its reference's out-of-bag 99th percentile score, and how many
of its reference scores are above it; without a rule's values they are ANOMALY_CUTOFF,
ANOMALY_SHARE and 0 (the share taken as exact). Their ids are stable (uuid5 of model id and name),
so rules can point at them.

A performance metric's value in a window comes with an interval (`interval`): the metric on FOLDS
random parts of the window's rows (a seeded permutation dealt round, so parts differ by a row at
most), the batch-means standard error of a ratio, sqrt(sum(w_g^2 (v_g - v)^2) G / (G - 1)) with w_g
a part's share of the labelled rows (sd / sqrt(G) for equal parts), and Student's t at LEVEL. A
rule fires only when the interval is past its threshold; the labels a window needs for that follow
from the interval's width (`Interval.labels_needed`).
"""

from __future__ import annotations

import copy
import json
import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import ValidationError

from sagewatch.alerting.types import Metric, MetricSpec, MetricType
from sagewatch.alerting.windows import SCHEDULE_MINUTES
from sagewatch.errors import InvalidInput, NotFound, SagewatchError, invalid_input
from sagewatch.metrics import filters
from sagewatch.metrics.drift import DriftQuery, run_drift
from sagewatch.metrics.filters import Condition
from sagewatch.metrics.functions import FUNCTIONS
from sagewatch.metrics.partials import Result, Spec, drift_spec, query_spec
from sagewatch.metrics.query import Loader, Plan, Query, Select, column_types, fold_values, run
from sagewatch.schema import GROUND_TRUTH_STAGES, Model, OutputType, Stage

DEFAULTS = uuid.UUID("5b0cf3b4-6f49-4a3c-9d51-9e1e3f6c7a10")
HIDDEN = ("labelled_count", "sagewatch_rows")
INPUT_DRIFT = "Input Drift"
ANOMALOUS_INFERENCES = "Anomalous Inferences"
# An isolation forest score past which a row is isolated well before an ordinary one (Liu et al.);
# the default rule replaces it with its detector's calibrated cutoff.
ANOMALY_CUTOFF = 0.6
ANOMALY_SHARE = 0.02  # the share of inferences above the cutoff to expect, without a detector's count
FOLDS = 40
MIN_FOLDS = 5
ROWS_PER_FOLD = 5  # labelled rows a part needs, at least: fewer labels, fewer parts
MIN_LABELLED = MIN_FOLDS * ROWS_PER_FOLD  # the fewest labelled rows an interval is read from
LEVEL = 0.95


def query_path(model: Model) -> str:
    """The path of the model's query API: a metric's endpoint."""
    return f"/api/v3/models/{model.id}/inferences/query"


def drift_path(model: Model) -> str:
    """The path of the model's data_drift API: a drift metric's endpoint."""
    return f"/api/v3/models/{model.id}/inferences/query/data_drift"


def _default(
    model: Model,
    name: str,
    query: dict[str, Any],
    kind: MetricType,
    attribute: str | None = None,
    drift: bool = False,
) -> Metric:
    return Metric(
        id=str(uuid.uuid5(DEFAULTS, f"{model.id}/{name}")),
        model_id=model.id,
        name=name,
        query=query,
        endpoint=drift_path(model) if drift else query_path(model),
        type=kind,
        is_default=True,
        attribute=attribute,
    )


def default_metrics(model: Model) -> list[Metric]:
    """The metrics every model has without storing them, from its schema (listed in the module docstring)."""
    metrics = [_default(model, "Inference Count", {"select": [{"function": "count"}]}, "model_output_metric")]
    for prediction in model.by_stage(Stage.PREDICTED_VALUE):
        metrics.append(
            _default(
                model,
                f"Average {prediction.name}",
                {"select": [{"function": "avg", "parameters": {"property": prediction.name}}]},
                "model_output_metric",
                prediction.name,
            )
        )
    performance = (
        "rmse"
        if model.output_type is OutputType.REGRESSION
        else ("accuracyRateMulticlass" if len(model.by_stage(Stage.PREDICTED_VALUE)) > 2 else "accuracyRate")
    )
    metrics.append(
        _default(
            model,
            {"rmse": "RMSE", "accuracyRate": "Accuracy Rate"}.get(performance, "Accuracy Rate"),
            {"select": [{"function": performance}]},
            "model_performance_metric",
        )
    )
    for attribute in model.by_stage(Stage.PIPELINE_INPUT, Stage.NON_INPUT_DATA, Stage.PREDICTED_VALUE):
        metrics.append(
            _default(
                model,
                f"Null Rate {attribute.name}",
                {"select": [{"function": "nullRate", "parameters": {"property": attribute.name}}]},
                "model_input_data_metric",
                attribute.name,
            )
        )
    for attribute in model.by_stage(Stage.PIPELINE_INPUT):
        metrics.append(
            _default(
                model,
                f"PSI {attribute.name}",
                {
                    "properties": [attribute.name],
                    "metric": "PSI",
                    "base": {"source": "reference"},
                    "target": {"source": "inference"},
                },
                "model_data_drift_metric",
                attribute.name,
                drift=True,
            )
        )
    inputs = [a.name for a in model.by_stage(Stage.PIPELINE_INPUT)]
    if inputs:
        metrics.append(
            _default(
                model,
                INPUT_DRIFT,
                {
                    "properties": inputs,
                    "metric": "DriftTest",
                    "aggregate": "family_wise",
                    "base": {"source": "reference"},
                    "target": {"source": "inference"},
                },
                "model_data_drift_metric",
                drift=True,
            )
        )
        anomalous = _default(
            model,
            ANOMALOUS_INFERENCES,
            {
                "select": [
                    {
                        "function": "rateTest",
                        "parameters": {
                            "property": "anomaly_score",
                            "comparator": "gt",
                            "value": "{{cutoff}}",
                            "share": "{{share}}",
                            "share_rows": "{{share_rows}}",
                        },
                    }
                ]
            },
            "model_input_data_metric",
        )
        metrics.append(
            anomalous.model_copy(
                update={
                    "parameters": [
                        {"name": "cutoff", "default": ANOMALY_CUTOFF},
                        {"name": "share", "default": ANOMALY_SHARE},
                        {"name": "share_rows", "default": 0},
                    ]
                }
            )
        )
    return metrics


def needs_ground_truth(metric: Metric) -> bool:
    """Whether the metric's value depends on ground truth (so its rules wait for labels)."""
    if metric.is_drift:
        return False
    functions = [s.get("function") for s in metric.query.get("select", []) if isinstance(s, dict)]
    return any(f in FUNCTIONS and FUNCTIONS[f].needs_ground_truth for f in functions)


def substitute(
    query: dict[str, Any], parameters: list[dict[str, Any]], values: dict[str, Any] | None
) -> dict[str, Any]:
    """The query with every "{{name}}" string replaced by the rule's value or the parameter's default."""
    chosen = {p["name"]: p.get("default") for p in parameters if "name" in p}
    chosen.update(values or {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str) and node.startswith("{{") and node.endswith("}}"):
            name = node[2:-2].strip()
            if name not in chosen or chosen[name] is None:
                raise InvalidInput(f"the metric's parameter {name!r} has no value", field="metric_parameters")
            return chosen[name]
        return node

    return walk(copy.deepcopy(query))


@dataclass(frozen=True)
class Window:
    """Where a metric is measured: a time range of inferences, or one batch."""

    start: datetime | None = None
    end: datetime | None = None
    batch_id: str | None = None

    def conditions(self) -> list[dict[str, Any]]:
        """The window as filter conditions: its batch, or [start, end) of inference_timestamp."""
        if self.batch_id is not None:
            return [{"property": "batch_id", "comparator": "eq", "value": self.batch_id}]
        found = []
        if self.start is not None:
            found.append(
                {"property": "inference_timestamp", "comparator": "gte", "value": self.start.isoformat()}
            )
        if self.end is not None:
            found.append(
                {"property": "inference_timestamp", "comparator": "lt", "value": self.end.isoformat()}
            )
        return found


@dataclass(frozen=True)
class Measurement:
    """A metric's value in a window, with the rows it was computed over and those with ground truth."""

    value: float | None
    rows: int
    labelled: int
    details: dict[str, float | None] | None = None  # a drift aggregate's value per property


def measure(
    metric: Metric,
    model: Model,
    load: Loader,
    window: Window | None = None,
    values: dict[str, Any] | None = None,
    filters: list[dict[str, Any]] | None = None,
) -> Measurement:
    """The metric's one value in a window (with the rule's parameter values and extra filters).

    A variant difference is the metric on the challenger's rows minus the metric on the champion's;
    its row and label counts are the smaller side's, so a rule waits for the less labelled variant.
    """
    if metric.variant_difference is not None:
        pair = metric.variant_difference
        if pair.champion == pair.challenger:
            raise InvalidInput(
                "the challenger is another variant than the champion", field="variant_difference"
            )
        plain = metric.model_copy(update={"variant_difference": None})
        sides = [
            measure(
                plain,
                model,
                load,
                window,
                values,
                [*(filters or []), {"property": "variant", "comparator": "eq", "value": name}],
            )
            for name in (pair.champion, pair.challenger)
        ]
        champion, challenger = sides
        value = (
            None if champion.value is None or challenger.value is None else challenger.value - champion.value
        )
        return Measurement(value, min(s.rows for s in sides), min(s.labelled for s in sides))
    query = substitute(metric.query, metric.parameters, values)
    extra = [Condition(**c) for c in (window.conditions() if window else []) + list(filters or [])]
    if metric.is_drift:
        body = DriftQuery.model_validate(query)
        body.target.filter = [*body.target.filter, *extra]
        rows = run_drift(body, model, load)
        details = {p: rows[0].get(p) for p in body.properties} if body.aggregate and len(rows) == 1 else None
        keys = ["aggregate"] if body.aggregate else body.properties
        found = [v for k, v in rows[0].items() if k in keys] if len(rows) == 1 else []
        if len(found) != 1:
            raise InvalidInput(
                "a metric's data_drift query returns one value: one property (or an aggregate), "
                "no group_by or rollup",
                field="query",
            )
        counted = run(Query(select=[Select(function="count")], filter=extra), model, load)
        return Measurement(found[0], counted[0]["count"], 0, details)
    parsed = Query.model_validate(query)
    parsed.filter = [*parsed.filter, *extra]
    parsed.select = [*parsed.select, Select(function="count", alias="sagewatch_rows")]
    rows = run(parsed, model, load)
    if len(rows) != 1:
        raise InvalidInput("a metric's query returns one row: no group_by", field="query")
    found = {k: v for k, v in rows[0].items() if k not in HIDDEN}
    value = next(iter(found.values()), None)
    if len(found) != 1 or isinstance(value, bool) or not (value is None or isinstance(value, int | float)):
        raise InvalidInput(
            f"a metric's query returns one number; this one returned {json.dumps(found)}", field="query"
        )
    return Measurement(
        None if value is None else float(value), rows[0]["sagewatch_rows"], rows[0].get("labelled_count", 0)
    )


def partial_spec(
    metric: Metric,
    model: Model,
    load: Loader,
    values: dict[str, Any] | None = None,
    filters: list[dict[str, Any]] | None = None,
) -> Spec | None:
    """The metric as a rule measures it (its parameter values and extra filters) from per-file
    partial aggregates (sagewatch.metrics.partials), or None where only the raw rows can: a variant
    difference, an endpoint metric, ground truth, group_by, or a query that fails (measure then says
    why). The window's bounds are not in it: partials are per minute."""
    if metric.variant_difference is not None or metric.endpoint_metric is not None:
        return None
    if needs_ground_truth(metric) or model.is_batch:
        return None
    try:
        query = substitute(metric.query, metric.parameters, values)
        extra = [Condition(**c) for c in filters or []]
        if metric.is_drift:
            return drift_spec(query, model, extra, load)
        return query_spec(query, model, extra)
    except (SagewatchError, ValidationError, TypeError):
        return None


def measurement(result: Result) -> Measurement:
    """A window's result from partials as measure gives it."""
    return Measurement(result.value, result.rows, 0, result.details)


@dataclass(frozen=True)
class Interval:
    """A LEVEL interval of a metric's value in a window, from `labelled` labelled rows."""

    low: float
    high: float
    labelled: int

    def excludes(self, threshold: float, bound: str) -> bool:
        """Whether the whole interval is past the threshold (the rule's crossing is not noise)."""
        return self.high < threshold if bound == "lower" else self.low > threshold

    def labels_needed(self, value: float, threshold: float) -> int | None:
        """Labelled rows at which an interval around `value` would just exclude the threshold (its
        width shrinks as 1/sqrt(labelled)); None when the value is on the threshold."""
        gap = abs(value - threshold)
        if gap == 0:
            return None
        return math.ceil(self.labelled * ((self.high - self.low) / 2 / gap) ** 2)


def student_t(level: float, freedom: int) -> float:
    """Student's t two-sided quantile (Cornish-Fisher expansion in 1/freedom; within 1e-3 of the
    exact value from 4 degrees of freedom): the Lambda runtime carries no scipy."""
    z = NORMAL_QUANTILES[level]
    nu = float(freedom)
    return (
        z
        + (z**3 + z) / (4 * nu)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * nu**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * nu**3)
        + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * nu**4)
    )


NORMAL_QUANTILES = {0.95: 1.959963984540054, 0.99: 2.5758293035489004}


def interval(
    metric: Metric,
    model: Model,
    load: Loader,
    window: Window | None,
    measured: Measurement,
    values: dict[str, Any] | None = None,
    filters: list[dict[str, Any]] | None = None,
) -> Interval | None:
    """The LEVEL interval around a query metric's measured value in a window (module docstring),
    the same value's spread over random parts of its rows; None with fewer
    than MIN_FOLDS * ROWS_PER_FOLD labelled rows, where no interval is worth reading."""
    labelled, value = measured.labelled, measured.value
    folds = min(FOLDS, labelled // ROWS_PER_FOLD)
    if folds < MIN_FOLDS or value is None:
        return None
    parsed = Query.model_validate(substitute(metric.query, metric.parameters, values))
    extra = [Condition(**c) for c in (window.conditions() if window else []) + list(filters or [])]
    parsed.filter = [*parsed.filter, *extra]
    found, weights = fold_values(parsed, model, load, folds)
    present = ~np.isnan(found) & (weights > 0)
    if present.sum() < MIN_FOLDS:
        return None
    found, weights = found[present], weights[present] / weights[present].sum()
    parts = len(found)
    # the batch-means variance of a ratio over parts of unequal size: sum(w^2 (v_g - v)^2) G / (G - 1)
    error = math.sqrt(float((weights**2 * (found - value) ** 2).sum()) * parts / (parts - 1))
    half = student_t(LEVEL, parts - 1) * error
    return Interval(value - half, value + half, labelled)


def check_rule_inputs(
    metric: Metric, model: Model, values: dict[str, Any] | None, extra_filters: list[Any] | None
) -> None:
    """A rule's parameter values and extra filters make a valid query of its metric.

    Checked when the rule is saved, without reading data, so a bad value is a 400 then rather than
    an evaluation that fails on every run.
    """
    declared = {p.get("name") for p in metric.parameters}
    unknown = sorted(set(values or {}) - declared)
    if unknown:
        raise InvalidInput(
            f"the metric has no parameter {unknown[0]!r} (it takes: {', '.join(sorted(map(str, declared))) or 'none'})",
            field=f"metric_parameters.{unknown[0]}",
        )
    if metric.variant_difference is not None and any(
        isinstance(c, dict) and c.get("property") == "variant" for c in extra_filters or []
    ):
        raise InvalidInput(
            "a variant difference picks its variants itself: filter on other properties", field="filters"
        )
    if metric.endpoint_metric is not None:  # measured from CloudWatch: no query to filter
        if extra_filters:
            raise InvalidInput(
                "an endpoint metric takes no filters: name its variant in the metric", field="filters"
            )
        return
    query = substitute(metric.query, metric.parameters, values)
    try:
        conditions = [Condition.model_validate(c) for c in extra_filters or []]
    except ValidationError as error:
        raise invalid_input(error.errors(), prefix="filters") from None
    filters.check(conditions, column_types(model, "inference"), "filters")
    try:
        if metric.is_drift:
            body = DriftQuery.model_validate(query)
            known = column_types(model, "reference")
            for index, name in enumerate(body.properties):
                if name not in known:
                    raise InvalidInput(f"unknown property {name!r}", field=f"metric_parameters ({index})")
        else:
            Plan(Query.model_validate(query), model)
    except ValidationError as error:
        raise invalid_input(error.errors(), prefix="metric_parameters") from None


def check_threshold(metric: Metric, bound: str, threshold: float) -> None:
    """A rule on a p-value (a DriftTest metric, such as Input Drift) can fire: a lower bound in (0, 1],
    an upper bound in [0, 1); a 400 naming threshold otherwise."""
    if not metric.is_drift or metric.query.get("metric") != "DriftTest":
        return
    possible = 0 < threshold <= 1 if bound == "lower" else 0 <= threshold < 1
    if not possible:
        raise InvalidInput(
            f"{metric.name} is a p-value, from 0 to 1: a rule {'below' if bound == 'lower' else 'above'} "
            f"{threshold:g} can never fire",
            field="threshold",
        )


def check_window_mode(metric: Metric, mode: str, lookback_minutes: int) -> None:
    """Sliding windows are for metrics that need no ground truth (labels arrive late, so the lookback
    ending now has none), and look back at least one schedule step (else minutes between runs go
    unseen); a 400 naming the field otherwise."""
    if mode == "sliding" and lookback_minutes < SCHEDULE_MINUTES:
        raise InvalidInput(
            f"a sliding window looks back at least the schedule's {SCHEDULE_MINUTES} minutes, or the "
            "minutes between runs are never seen",
            field="lookback_period",
        )
    if mode == "sliding" and needs_ground_truth(metric):
        raise InvalidInput(
            f"{metric.name} needs ground truth, which arrives late: its rules look at aligned windows "
            "as labels arrive (window_mode aligned)",
            field="window_mode",
        )


def metric_type_of(spec: MetricSpec, model: Model, drift: bool) -> MetricType:
    """A new metric's type: the one given, else drift, performance (needs ground truth), input or output."""
    if spec.type:
        return spec.type
    if drift:
        return "model_data_drift_metric"
    functions = [s.get("function") for s in spec.query.get("select", []) if isinstance(s, dict)]
    if any(f in FUNCTIONS and FUNCTIONS[f].needs_ground_truth for f in functions):
        return "model_performance_metric"
    if any(f in ("nullRate", "outOfRangeRate", "newCategoryRate") for f in functions):
        return "model_input_data_metric"
    return "model_output_metric"


def find_metric(model: Model, metric_id: str, custom: list[Metric]) -> Metric:
    """A model's metric by id, among its defaults and its custom metrics; NotFound otherwise."""
    for metric in [*default_metrics(model), *custom]:
        if metric.id == metric_id:
            return metric
    raise NotFound(f"model {model.id} has no metric {metric_id!r}", field="metric_id")


def truth_attributes(model: Model) -> list[str]:
    """The names of the model's ground truth attributes."""
    return [a.name for a in model.by_stage(*GROUND_TRUTH_STAGES)]
