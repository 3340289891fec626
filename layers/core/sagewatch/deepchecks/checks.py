"""Deepchecks checks as sagewatch metrics: what each check measures here, or why it is not evaluated.

A Deepchecks monitor (a check over time) becomes one or more sagewatch metrics, and an alert rule on
the monitor becomes a sagewatch rule on each (see docs/deepchecks.md for every mapping and formula).
Checks Deepchecks reduces with `max` over columns become one metric per column: "the max is above
t" is "some column is above t", so one rule per column alerts exactly when Deepchecks' would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sagewatch.deepchecks.translate import LABEL, PREDICTION, is_classification
from sagewatch.schema import Model, Stage, ValueType

DRIFT_AGGREGATES = ("mean", "max", "weighted", "l3_weighted", "l5_weighted")
SCORERS = {
    "accuracy": "accuracyRate",
    "rmse": "rmse",
    "mae": "mae",
    "r2": "rSquared",
    "precision": "precision",
    "recall": "recall",
    "f1": "f1",
}
NOT_EVALUATED = {
    "MixedNulls": "sagewatch stores every form of null (None, NaN, 'null'...) as one null, so mixed null "
    "types cannot be told apart",
    "StringMismatch": "sagewatch keeps string values as sent and has no variant-of-the-same-string "
    "comparison",
}


@dataclass
class Plan:
    """The sagewatch metrics (name suffix, query, drift or not) that measure a check, or why none do."""

    evaluated: bool
    reason: str
    metrics: list[tuple[str, dict[str, Any], bool]] = field(default_factory=list)
    pending: bool = False


def _drift(
    properties: list[str], aggregate: str | None = None, weights: dict[str, float] | None = None
) -> dict:
    query: dict[str, Any] = {
        "properties": properties,
        "metric": "DriftScore",
        "base": {"source": "reference"},
        "target": {"source": "inference"},
    }
    if aggregate:
        query["aggregate"] = aggregate
        if weights:
            query["weights"] = weights
    return query


def _aggregation(config: dict[str, Any], monitor_kwargs: dict[str, Any] | None, default: str) -> str:
    conf = ((monitor_kwargs or {}).get("check_conf") or {}).get("aggregation method")
    if isinstance(conf, list) and conf:
        return str(conf[0])
    return str(config.get("params", {}).get("aggregation_method") or default)


def plan(
    config: dict[str, Any],
    monitor_kwargs: dict[str, Any] | None,
    task_type: str,
    version: dict[str, Any] | None,
    model: Model | None,
) -> Plan:
    """How sagewatch evaluates this check for this model version (pure: no AWS calls)."""
    name = str(config.get("class_name", ""))
    if name in NOT_EVALUATED:
        return Plan(False, NOT_EVALUATED[name])
    if version is None or model is None:
        return Plan(True, "evaluated once the model has a version (its schema)", pending=True)
    columns = version["columns"]
    features = [columns[c] for c in version.get("features", {})]
    attributes = {a.name: a for a in model.attributes}
    params = config.get("params", {})
    if name == "FeatureDrift":
        method = _aggregation(config, monitor_kwargs, "l3_weighted")
        drifting = [f for f in features if attributes[f].value_type is not ValueType.TIMESTAMP]
        if method in ("none", "None"):
            return Plan(
                True,
                "drift score per feature",
                [(f" {attributes[f].label or f}", _drift([f]), True) for f in drifting],
            )
        if method not in DRIFT_AGGREGATES:
            return Plan(False, f"aggregation method {method!r} is not one of {list(DRIFT_AGGREGATES)}")
        importance = version.get("feature_importance") or {}
        weights = {columns[c]: float(v) for c, v in importance.items()}
        return Plan(
            True, f"{method} of per-feature drift scores", [("", _drift(drifting, method, weights), True)]
        )
    if name == "PredictionDrift":
        return Plan(True, f"drift score of {PREDICTION}", [("", _drift([PREDICTION]), True)])
    if name == "LabelDrift":
        return Plan(True, f"drift score of {LABEL}", [("", _drift([LABEL]), True)])
    if name in ("NewCategoryTrainTest", "PercentOfNulls"):
        function = "newCategoryRate" if name == "NewCategoryTrainTest" else "nullRate"
        chosen = params.get("columns") or list(version.get("features", {}))
        chosen = [columns[c] for c in chosen if c in columns]
        if function == "newCategoryRate":
            categorical = [c for c, kind in version.get("features", {}).items() if kind == "categorical"]
            if categorical and not version.get("categories"):
                return Plan(True, "evaluated once reference data gives the categories", pending=True)
            chosen = [columns[c] for c in categorical if columns[c] in chosen]
            if not chosen:
                return Plan(False, "the version has no categorical features")
        return Plan(
            True,
            f"{function} per feature (Deepchecks' max over features)",
            [
                (
                    f" {attributes[c].label or c}",
                    {"select": [{"function": function, "parameters": {"property": c}}]},
                    False,
                )
                for c in chosen
            ],
        )
    if name == "NewLabelTrainTest":
        return Plan(
            False, "labels outside the model's classes are refused at ingestion, so the rate is always 0"
        )
    if name == "SingleDatasetPerformance":
        scorers = params.get("scorers") or []
        scorer = str(scorers[0] if isinstance(scorers, list) and scorers else "").lower().replace(" ", "_")
        function = SCORERS.get(scorer)
        if function is None or len(scorers) != 1:
            return Plan(False, f"scorers {scorers}: sagewatch evaluates one of {sorted(SCORERS)}")
        if function == "accuracyRate" and len(model.by_stage(Stage.PREDICTED_VALUE)) > 2:
            function = "accuracyRateMulticlass"
        if (function in ("rmse", "mae", "rSquared")) == is_classification(task_type):
            return Plan(False, f"scorer {scorer} does not apply to a {task_type} model")
        return Plan(True, function, [("", {"select": [{"function": function}]}, False)])
    return Plan(False, f"check {name or config!r} has no sagewatch equivalent")


SEVERITIES = {"low": "warning", "medium": "warning", "high": "critical", "critical": "critical"}
FREQUENCY_MINUTES = {"HOUR": 60, "DAY": 1440, "WEEK": 10080, "MONTH": 43200}


def lookback_minutes(monitor: dict[str, Any]) -> int:
    """A rule's window: the monitor's frequency times its aggregation window (at most 31 days)."""
    minutes = FREQUENCY_MINUTES.get(str(monitor.get("frequency", "DAY")).upper(), 1440)
    return min(minutes * max(int(monitor.get("aggregation_window") or 1), 1), 60 * 24 * 31)
