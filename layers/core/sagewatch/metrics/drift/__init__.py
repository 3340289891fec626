"""The data_drift API's engine: a base fitted once (bins per property), target windows counted per
file and merged, a statistic per property and window.

Statistics, one small module each (formulas in their docstrings): PSI (psi.py), KLDivergence
(kl.py), JSDivergence (js.py), HellingerDistance (hellinger.py), HypothesisTest (hypothesis.py:
-log10 p of KS or chi-square), DriftScore (score.py: Deepchecks' KS D or Cramér's V, optionally
aggregated over the properties with `aggregate` and `weights`), DriftTest (calibrated.py: the
p-value of the window under the reference's distribution at the window's size; `aggregate:
"family_wise"` gives the Bonferroni-adjusted smallest p over the properties), and Thresholds: per
property, the 99th percentile of a statistic (PSI unless threshold_metric says otherwise) between
the base and random base subsamples of a typical target window's size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from sagewatch.errors import InvalidInput, NothingToCompare
from sagewatch.metrics import filters
from sagewatch.metrics.drift import binning
from sagewatch.metrics.drift.calibrated import drift_test, family_wise
from sagewatch.metrics.drift.hellinger import hellinger
from sagewatch.metrics.drift.hypothesis import chi_square_test, ks_test
from sagewatch.metrics.drift.js import js_divergence
from sagewatch.metrics.drift.kl import kl_divergence
from sagewatch.metrics.drift.psi import psi
from sagewatch.metrics.drift.score import Aggregate, aggregate, drift_score
from sagewatch.metrics.filters import Condition
from sagewatch.metrics.query import INTERVALS, Loader, column_types
from sagewatch.schema import GROUND_TRUTH_STAGES, Model

Statistic = Callable[[np.ndarray, np.ndarray], float]
STATISTICS: dict[str, Statistic] = {
    "PSI": psi,
    "KLDivergence": kl_divergence,
    "JSDivergence": js_divergence,
    "HellingerDistance": hellinger,
}
METRICS = (*STATISTICS, "HypothesisTest", "DriftScore", "DriftTest", "Thresholds")
BINNED_KS = ("HypothesisTest", "DriftScore")
THRESHOLD_SAMPLES = 100
THRESHOLD_QUANTILE = 0.99
MISSING = "\x00missing"


DriftAggregate = Literal[(*get_args(Aggregate), "family_wise")]  # one Literal: a 400 names `aggregate`


class Side(BaseModel):
    """One side of a comparison: reference or inference rows, with filters."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["reference", "inference"]
    filter: list[Condition] = Field(default_factory=list)


class DriftQuery(BaseModel):
    """POST /api/v3/models/{id}/inferences/query/data_drift."""

    model_config = ConfigDict(extra="forbid")

    properties: list[str] = Field(min_length=1)
    metric: Literal[
        "PSI",
        "KLDivergence",
        "JSDivergence",
        "HellingerDistance",
        "HypothesisTest",
        "DriftScore",
        "DriftTest",
        "Thresholds",
    ] = "PSI"
    num_bins: int = Field(default=20, ge=2, le=200)
    base: Side = Field(default_factory=lambda: Side(source="reference"))
    target: Side = Field(default_factory=lambda: Side(source="inference"))
    group_by: list[dict[str, str]] = Field(default_factory=list)
    rollup: Literal["minute", "hour", "day", "week", "month", "year", "batch_id"] | None = None
    threshold_metric: Literal["PSI", "KLDivergence", "JSDivergence", "HellingerDistance"] = "PSI"
    window_size: int | None = Field(default=None, ge=1)
    aggregate: DriftAggregate | None = Field(
        default=None,
        description="one value per window for all properties, under the key `aggregate` "
        "(family_wise: DriftTest's Bonferroni-adjusted smallest p-value)",
    )
    weights: dict[str, Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)]] | None = Field(
        default=None, description="per property (0 to 1,000,000), for weighted aggregates"
    )


def run_drift(query: DriftQuery, model: Model, load: Loader) -> list[dict[str, Any]]:
    """One row per target window (rollup and group_by values), a value per property."""
    types = column_types(model, "inference")
    reference_types = column_types(model, "reference")
    for index, name in enumerate(query.properties):
        if name not in reference_types:
            raise InvalidInput(f"unknown property {name!r}", field=f"properties[{index}]")
    groups = [g.get("property") for g in query.group_by]
    for index, name in enumerate(groups):
        if name not in types:
            raise InvalidInput(f"unknown property {name!r}", field=f"group_by[{index}].property")
        if name in groups[:index] or name in query.properties:
            raise InvalidInput(
                f"{name!r} is grouped twice, or grouped and measured: each column has one role",
                field=f"group_by[{index}].property",
            )
    if (query.aggregate == "family_wise") != (query.metric == "DriftTest" and query.aggregate is not None):
        raise InvalidInput(
            "the family_wise aggregate is DriftTest's (p-values); other statistics aggregate by "
            "mean, max or the weighted forms",
            field="aggregate",
        )
    if query.aggregate == "family_wise" and query.weights:
        raise InvalidInput(
            "the family_wise aggregate weighs every property alike (Bonferroni): drop weights",
            field="weights",
        )
    categorical = {a.name: a.categorical for a in model.attributes}
    for side, name in ((query.base, "base"), (query.target, "target")):
        filters.check(side.filter, types if side.source == "inference" else reference_types, f"{name}.filter")

    base = _load(
        load,
        query.base,
        query.properties,
        types if query.base.source == "inference" else reference_types,
        "base",
        model,
    )
    profiles = {
        p: binning.fit(_column(base, p), query.num_bins, categorical.get(p, False)) for p in query.properties
    }

    if query.metric == "Thresholds":
        sizes = _target_sizes(load, query, types) if query.window_size is None else [query.window_size]
        size = int(np.median(sizes)) if sizes else 1000
        row: dict[str, Any] = {
            p: _threshold(_column(base, p), profiles[p], query, size) for p in query.properties
        }
        return [row | {"window_size": size}]

    ks_profiles = {
        p: binning.fit(_column(base, p), binning.KS_BINS, False)
        for p in query.properties
        if query.metric in BINNED_KS and profiles[p].numeric
    }
    target_columns = [
        *query.properties,
        *[g for g in groups if g],
        *[c.property for c in query.target.filter],
    ]
    if query.rollup in INTERVALS:
        target_columns.append("inference_timestamp")
    elif query.rollup == "batch_id":
        target_columns.append("batch_id")
    target_types = types if query.target.source == "inference" else reference_types
    first, last = (
        filters.date_range(query.target.filter) if query.target.source == "inference" else (None, None)
    )
    with_truth = query.target.source == "inference" and _needs_truth(
        model, [*query.properties, *[g for g in groups if g], *[c.property for c in query.target.filter]]
    )
    tables = load(query.target.source, _known(target_columns, target_types), first, last, with_truth)
    tables = [filters.apply(t, query.target.filter, target_types, "target.filter") for t in tables]
    keys = [f"__group_{g}" for g in groups] + (["__rollup"] if query.rollup else [])
    keyed = [_with_keys(t, groups, query.rollup) for t in tables]

    windows: dict[tuple, dict[str, Any]] = {}
    for name in query.properties:
        profile = ks_profiles.get(name, profiles[name])
        base_counts = _base_counts(profile, _column(base, name))
        partials = [_partial(t, name, profile, keys) for t in keyed]
        merged = _merge(partials, keys)
        for group, target in _per_group(merged, keys).items():
            window = windows.setdefault(group, _labels(group, groups, query.rollup))
            window[name] = _value(query.metric, profile, base_counts, target)
    if not windows:
        empty = {**{p: None for p in query.properties}, "reason": "the target window has no rows"}
        return [empty | ({"aggregate": None} if query.aggregate else {})]
    if query.aggregate:
        for window in windows.values():
            scores = {p: window.get(p) for p in query.properties}
            window["aggregate"] = (
                family_wise(list(scores.values()))
                if query.aggregate == "family_wise"
                else aggregate(scores, query.aggregate, query.weights)
            )
    rows = sorted(windows.values(), key=lambda r: tuple(str(r.get(k)) for k in [*groups, "rollup"] if k))
    return [_clean(r) for r in rows]


def _known(columns: list[str], types: dict[str, Any]) -> list[str]:
    return [c for c in dict.fromkeys(columns) if c in types or c in ("inference_timestamp", "batch_id")]


def _needs_truth(model: Model, names: list[str]) -> bool:
    """Whether a side reads a ground-truth attribute (joined to the inferences only when it does)."""
    truths = {a.name for a in model.by_stage(*GROUND_TRUTH_STAGES)} | {"ground_truth_timestamp"}
    return any(name in truths for name in names)


def _load(
    load: Loader, side: Side, properties: list[str], types: dict[str, Any], field: str, model: Model
) -> pa.Table:
    columns = _known([*properties, *[c.property for c in side.filter]], types)
    first, last = filters.date_range(side.filter) if side.source == "inference" else (None, None)
    with_truth = side.source == "inference" and _needs_truth(model, columns)
    tables = load(side.source, columns, first, last, with_truth)
    tables = [filters.apply(t, side.filter, types, f"{field}.filter") for t in tables]
    if not tables or sum(t.num_rows for t in tables) == 0:
        raise NothingToCompare(f"the {field} ({side.source}) has no rows to compare with", field=field)
    return pa.concat_tables(tables, promote_options="default")


def _column(table: pa.Table, name: str) -> pa.Array:
    if name not in table.column_names:
        return pa.nulls(table.num_rows)
    return table.column(name).combine_chunks()


def _with_keys(table: pa.Table, groups: list[str | None], rollup: str | None) -> pa.Table:
    for name in groups:
        table = table.append_column(f"__group_{name}", _column(table, name))
    if rollup == "batch_id":
        table = table.append_column("__rollup", _column(table, "batch_id"))
    elif rollup:
        table = table.append_column(
            "__rollup", pc.floor_temporal(_column(table, "inference_timestamp"), unit=INTERVALS[rollup])
        )
    return table


def _bin_labels(profile: binning.Profile, values: pa.Array) -> pa.Array:
    """Each value's bin as a label that merges across files: an index (numeric) or the category."""
    if profile.numeric:
        index, _ = binning.bin_index(profile, values)
        return pa.array(index.astype(np.int64))
    text = pc.cast(values, pa.string()) if not pa.types.is_string(values.type) else values
    return pc.fill_null(text, MISSING)


def _partial(table: pa.Table, name: str, profile: binning.Profile, keys: list[str]) -> pa.Table:
    """Counts per window (keys) and bin of one file's rows."""
    labels = _bin_labels(profile, _column(table, name))
    if not keys:  # one window: count without grouping
        if profile.numeric:
            counted = np.bincount(labels.to_numpy(), minlength=profile.size + 1)
            used = np.flatnonzero(counted)
            return pa.table({"__bin": pa.array(used.astype(np.int64)), "__n_sum": pa.array(counted[used])})
        found = pc.value_counts(labels)
        return pa.table({"__bin": found.field("values"), "__n_sum": found.field("counts")})
    work = table.select(keys).append_column("__bin", labels)
    work = work.append_column("__n", pa.array(np.ones(table.num_rows, dtype=np.int64)))
    return work.group_by([*keys, "__bin"], use_threads=False).aggregate([("__n", "sum")])


def _merge(partials: list[pa.Table], keys: list[str]) -> pa.Table | None:
    if not partials:
        return None
    table = pa.concat_tables(partials)
    return table.group_by([*keys, "__bin"], use_threads=False).aggregate([("__n_sum", "sum")])


def _per_group(merged: pa.Table | None, keys: list[str]) -> dict[tuple, dict[str, float]]:
    if merged is None or merged.num_rows == 0:
        return {}
    columns = [merged.column(k).to_pylist() for k in keys]
    bins = merged.column("__bin").to_pylist()
    counts = merged.column("__n_sum_sum").to_pylist()
    result: dict[tuple, dict[str, float]] = {}
    for index, (label, count) in enumerate(zip(bins, counts, strict=True)):
        group = tuple(column[index] for column in columns)
        result.setdefault(group, {})[label] = result.get(group, {}).get(label, 0) + count
    return result


def _base_counts(profile: binning.Profile, values: pa.Array) -> dict[str, float]:
    labels = _bin_labels(profile, values)
    counted = pc.value_counts(labels)
    return dict(
        zip(counted.field("values").to_pylist(), map(float, counted.field("counts").to_pylist()), strict=True)
    )


def _vectors(
    profile: binning.Profile, base: dict[str, float], target: dict[str, float], missing: bool = True
):
    """Base and target counts over the union of bins, in bin order (numeric) or label order."""
    if profile.numeric:
        labels = list(range(profile.size + (1 if missing else 0)))
    else:
        labels = sorted(set(base) | set(target) - ({MISSING} if not missing else set()))
        labels = [label for label in labels if missing or label != MISSING]
    b = np.array([base.get(label, 0.0) for label in labels])
    t = np.array([target.get(label, 0.0) for label in labels])
    return binning.aligned(b, t) if missing else (b, t)


def _value(
    metric: str, profile: binning.Profile, base: dict[str, float], target: dict[str, float]
) -> float | None:
    if sum(target.values()) == 0:
        return None
    if metric == "DriftTest":  # over the reference's own bins: missing values and new categories left out
        labels = list(range(profile.size)) if profile.numeric else [k for k in sorted(base) if k != MISSING]
        b = np.array([base.get(label, 0.0) for label in labels])
        t = np.array([target.get(label, 0.0) for label in labels])
        return drift_test(b, t, profile.numeric)
    if metric in BINNED_KS:
        b, t = _vectors(profile, base, target, missing=False)
        if metric == "DriftScore":
            return drift_score(b, t, profile.numeric)
        return ks_test(b, t) if profile.numeric else chi_square_test(b, t)
    b, t = _vectors(profile, base, target)
    return STATISTICS[metric](b, t)


def _target_sizes(load: Loader, query: DriftQuery, types: dict[str, Any]) -> list[int]:
    columns = _known([*query.properties[:1], *[c.property for c in query.target.filter]], types)
    first, last = (
        filters.date_range(query.target.filter) if query.target.source == "inference" else (None, None)
    )
    tables = load(query.target.source, columns, first, last, False)
    total = sum(filters.apply(t, query.target.filter, types, "target.filter").num_rows for t in tables)
    return [total] if total else []


def _threshold(values: pa.Array, profile: binning.Profile, query: DriftQuery, size: int) -> float | None:
    """The 99th percentile of the statistic between the base and random base subsamples of `size` rows."""
    rows = len(values)
    if rows == 0:
        return None
    base = _base_counts(profile, values)
    statistic = STATISTICS[query.threshold_metric]
    labels = _bin_labels(profile, values)
    generator = np.random.default_rng(0)
    samples = []
    for _ in range(THRESHOLD_SAMPLES):
        chosen = labels.take(pa.array(generator.integers(0, rows, size=min(size, rows))))
        counted = pc.value_counts(chosen)
        target = dict(
            zip(
                counted.field("values").to_pylist(),
                map(float, counted.field("counts").to_pylist()),
                strict=True,
            )
        )
        b, t = _vectors(profile, base, target)
        samples.append(statistic(b, t))
    return float(np.quantile(samples, THRESHOLD_QUANTILE))


def _labels(group: tuple, groups: list[str | None], rollup: str | None) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name, value in zip([*groups, *(["rollup"] if rollup else [])], group, strict=True):
        row[str(name)] = value.isoformat() if hasattr(value, "isoformat") else value
    return row


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
