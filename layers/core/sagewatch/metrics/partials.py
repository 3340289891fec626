"""A metric's states per minute of one file, and its value in many windows from them at once.

Every metric is states that merge (sagewatch.metrics.aggregates, and the drift engine's bin counts),
so a file's rows can be reduced once to its states per minute of inference_timestamp, and any window
aligned to minutes is the merge of its minutes' states. A `Spec` is a metric's query as a rule
measures it (its filters and the rule's, its parameters, for drift the reference's bins) without
the window's time bounds:

- `partial(table)`: a file's kept rows (first writes) as states per minute (`MINUTE`), one block of
  rows per aggregate (`PART`), its state columns prefixed with the block's number;
- `measure(partials, windows)`: every window's value from the files' partials in one pass: each
  minute row is assigned to the windows holding it (several for sliding windows), then one group_by
  per aggregate over (window, extra keys) merges them, and finalize gives a value per window.

Integer states (counts, rateTest, drift bins) merge exactly, so those values equal the raw path's
bit for bit; float sums may differ from it in their last bits (another order of addition). A window
without rows is measured by the engines themselves over no rows, as the raw path does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sagewatch.errors import InvalidInput
from sagewatch.metrics import drift, filters
from sagewatch.metrics.aggregates import Aggregate
from sagewatch.metrics.drift import DriftQuery, binning
from sagewatch.metrics.drift.calibrated import family_wise
from sagewatch.metrics.drift.score import aggregate as aggregate_scores
from sagewatch.metrics.filters import Condition
from sagewatch.metrics.query import Loader, Plan, Query, Select, _one_row_per_group, column_types, run
from sagewatch.schema import Model
from sagewatch.values import ARROW_TYPES

FORMAT = 1  # bumped when what a partial holds changes, so older partials are not read
TIME = "inference_timestamp"
MINUTE = "__minute"
PART = "__part"
WINDOW = "__window"
ROWS = "sagewatch_rows"  # the count every measurement carries (catalog.measure's)
Span = tuple[datetime, datetime]  # a window [start, end), both on whole minutes


@dataclass(frozen=True)
class Result:
    """A metric's value in one window, with its rows and, for a drift aggregate, each property's."""

    value: float | None
    rows: int
    details: dict[str, float | None] | None = None


class Spec:
    """What a rule's metric keeps of a file (module docstring)."""

    digest: str
    columns: list[str]  # the lake columns read

    def partial(self, table: pa.Table) -> pa.Table:
        """A file's kept rows as states per minute."""
        raise NotImplementedError

    def measure(self, partials: list[pa.Table], windows: list[Span]) -> list[Result]:
        """Each window's result from the partials of every file with rows in it."""
        raise NotImplementedError


def _digest(*parts: Any) -> str:
    text = json.dumps([FORMAT, *parts], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _minutes(table: pa.Table) -> pa.Array:
    """Each row's minute of inference_timestamp (UTC)."""
    values = table.column(TIME)
    return pc.floor_temporal(
        values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values, unit="minute"
    )


def _with_minute(table: pa.Table) -> pa.Table:
    """The rows with a time, and their minute."""
    if table.column(TIME).null_count:
        table = table.filter(pc.is_valid(table.column(TIME)))
    return table.append_column(MINUTE, _minutes(table))


def _blocks(parts: list[pa.Table]) -> pa.Table:
    """Each aggregate's states as one table: its columns (other than MINUTE) prefixed `<n>|`, PART = n."""
    tables = []
    for number, part in enumerate(parts):
        names = [name if name == MINUTE else f"{number}|{name}" for name in part.column_names]
        part = part.rename_columns(names)
        tables.append(part.append_column(PART, pa.array(np.full(part.num_rows, number, dtype=np.int32))))
    return pa.concat_tables(tables, promote_options="default")


def _block(table: pa.Table, number: int) -> pa.Table:
    """One aggregate's states out of assigned partials (its columns unprefixed, WINDOW kept)."""
    rows = table.filter(pc.equal(table.column(PART), number))
    prefix = f"{number}|"
    names = [name for name in rows.column_names if name.startswith(prefix)]
    picked = rows.select([WINDOW, *names])
    return picked.rename_columns([WINDOW, *(name[len(prefix) :] for name in names)])


def assign(partials: list[pa.Table], windows: list[Span]) -> pa.Table:
    """The partials' minute rows once per window holding them, with the window's number (WINDOW)."""
    table = pa.concat_tables(partials, promote_options="default") if partials else None
    if table is None or table.num_rows == 0 or not windows:
        return pa.table({WINDOW: pa.array([], pa.int64()), PART: pa.array([], pa.int32())})
    minutes = pc.cast(table.column(MINUTE), pa.int64()).to_numpy(zero_copy_only=False)
    unit = table.column(MINUTE).type
    order = np.argsort(minutes, kind="stable")
    ordered = minutes[order]
    bounds = np.array(
        [[pa.scalar(moment, unit).cast(pa.int64()).as_py() for moment in span] for span in windows],
        dtype=np.int64,
    )
    low = np.searchsorted(ordered, bounds[:, 0], side="left")
    high = np.searchsorted(ordered, bounds[:, 1], side="left")
    counts = high - low
    number = np.repeat(np.arange(len(windows), dtype=np.int64), counts)
    starts = np.repeat(low - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    rows = order[starts + np.arange(int(counts.sum()))]
    return table.take(pa.array(rows)).append_column(WINDOW, pa.array(number))


# -- query metrics -------------------------------------------------------------------------------


class QuerySpec(Spec):
    """A query metric (one function, no group_by, no ground truth), with its filters and the rule's."""

    def __init__(self, query: Query, model: Model, empty: Callable[[Span], Result]) -> None:
        """`query` selects the metric's function and the count ROWS, filtered as the rule asks;
        `empty` measures a window without rows (the engine over none)."""
        self.query, self.model, self.empty = query, model, empty
        self.plan = Plan(query, model)
        if self.plan.keys or self.plan.rounded or self.plan.properties or self.plan.needs_ground_truth:
            raise InvalidInput("partials hold one value per window, without ground truth", field="query")
        self.aggregates: dict[str, Aggregate] = dict(self.plan.functions)
        if len(self.aggregates) != 2:
            raise InvalidInput("a metric's query returns one number", field="query")
        self.columns = [c for c in dict.fromkeys([*self.plan.columns(), TIME]) if c in self.plan.types]
        self.digest = _digest(
            "query", query.model_dump(mode="json", by_alias=True), _schema(model, self.columns)
        )

    def partial(self, table: pa.Table) -> pa.Table:
        """The filtered rows' states of each aggregate, per minute."""
        table = _with_minute(filters.apply(table, self.query.filter, self.plan.types, "filter"))
        return _blocks([aggregate.partial(table, [MINUTE]) for aggregate in self.aggregates.values()])

    def measure(self, partials: list[pa.Table], windows: list[Span]) -> list[Result]:
        """Each window's function value and row count; windows without rows as the engine gives them."""
        assigned = assign(partials, windows)
        values: dict[str, dict[int, Any]] = {}
        for number, (alias, aggregate) in enumerate(self.aggregates.items()):
            block = _block(assigned, number) if assigned.num_rows else None
            if block is None or block.num_rows == 0:
                values[alias] = {}
                continue
            merged = _one_row_per_group(aggregate.merge([block], [WINDOW]), [WINDOW])
            found = aggregate.finalize(merged, [WINDOW]).to_pylist()
            values[alias] = dict(zip(merged.column(WINDOW).to_pylist(), found, strict=True))
        results = []
        (alias,) = [a for a in self.aggregates if a != ROWS]
        for number, span in enumerate(windows):
            rows = values[ROWS].get(number)
            if not rows:
                results.append(self.empty(span))
                continue
            value = values[alias].get(number)
            results.append(Result(_number(value, alias), int(rows)))
        return results


def _number(value: Any, alias: str) -> float | None:
    """A metric's one value as catalog.measure checks it."""
    if isinstance(value, float) and np.isnan(value):
        value = None
    if isinstance(value, bool) or not (value is None or isinstance(value, int | float)):
        raise InvalidInput(
            f"a metric's query returns one number; this one returned {json.dumps({alias: value})}",
            field="query",
        )
    return None if value is None else float(value)


# What of a model its functions read besides the columns' types (ranges, categories, bins of each
# attribute, the threshold and the maps of a classifier): an edit of any makes other partials.
COMPUTED_FROM = {
    "attributes",
    "output_type",
    "classifier_threshold",
    "pred_to_ground_truth_map",
    "positive_predicted_attribute",
}


def _schema(model: Model, columns: list[str]) -> list[Any]:
    """What a spec's values depend on in the model: the types of the columns it reads and every
    attribute's definition (a range or category edit changes outOfRangeRate, newCategoryRate, ...)."""
    types = column_types(model, "inference")
    return [
        [(name, str(ARROW_TYPES[types[name]])) for name in columns if name in types],
        model.model_dump(mode="json", include=COMPUTED_FROM),
    ]


def query_spec(query: dict[str, Any], model: Model, extra: list[Condition]) -> QuerySpec:
    """A query metric's spec: its query (parameters substituted) with the rule's filters `extra`."""
    parsed = Query.model_validate(query)
    parsed.filter = [*parsed.filter, *extra]
    parsed.select = [*parsed.select, Select(function="count", alias=ROWS)]

    def empty(span: Span) -> Result:
        bounded = parsed.model_copy(update={"filter": [*parsed.filter, *_bounds(span)]})
        rows = run(bounded, model, lambda *_: [])
        if len(rows) != 1:
            raise InvalidInput("a metric's query returns one row: no group_by", field="query")
        found = {k: v for k, v in rows[0].items() if k not in ("labelled_count", ROWS)}
        (alias,) = found
        return Result(_number(found[alias], alias), rows[0][ROWS])

    return QuerySpec(parsed, model, empty)


def _bounds(span: Span) -> list[Condition]:
    return [
        Condition(property=TIME, comparator="gte", value=span[0].isoformat()),
        Condition(property=TIME, comparator="lt", value=span[1].isoformat()),
    ]


# -- drift metrics -------------------------------------------------------------------------------


class DriftSpec(Spec):
    """A data_drift metric of the inferences against the reference (no group_by, rollup or ground
    truth; one value: one property or an aggregate), the rule's filters on its target."""

    def __init__(self, body: DriftQuery, model: Model, extra: list[Condition], load: Loader) -> None:
        self.body, self.model, self.extra = body, model, extra
        groups_or_truth = body.group_by or body.rollup or body.metric == "Thresholds"
        if body.base.source != "reference" or body.target.source != "inference" or groups_or_truth:
            raise InvalidInput("partials hold a target window's bins against the reference", field="query")
        if not body.aggregate and len(body.properties) != 1:
            raise InvalidInput("a metric's data_drift query returns one value", field="query")
        self.types = column_types(model, "inference")
        reference = column_types(model, "reference")
        target_columns = [
            *body.properties,
            *(c.property for c in body.target.filter),
            *(c.property for c in extra),
        ]
        if drift._needs_truth(model, target_columns):
            raise InvalidInput("partials hold no ground truth", field="query")
        for index, name in enumerate(body.properties):
            if name not in reference:
                raise InvalidInput(f"unknown property {name!r}", field=f"properties[{index}]")
        filters.check(body.target.filter, self.types, "target.filter")
        filters.check(body.base.filter, reference, "base.filter")
        base = drift._load(load, body.base, body.properties, reference, "base", model)
        categorical = {a.name: a.categorical for a in model.attributes}
        self.profiles: dict[str, binning.Profile] = {}
        self.base_counts: dict[str, dict[Any, float]] = {}
        for name in body.properties:
            profile = binning.fit(drift._column(base, name), body.num_bins, categorical.get(name, False))
            if body.metric in drift.BINNED_KS and profile.numeric:
                profile = binning.fit(drift._column(base, name), binning.KS_BINS, False)
            self.profiles[name] = profile
            self.base_counts[name] = drift._base_counts(profile, drift._column(base, name))
        self.columns = [c for c in dict.fromkeys([*target_columns, TIME]) if c in self.types]
        self.digest = _digest(
            "drift",
            body.model_dump(mode="json"),
            [c.model_dump(mode="json") for c in extra],
            {name: _profile(profile) for name, profile in self.profiles.items()},
            _schema(model, self.columns),
        )

    def partial(self, table: pa.Table) -> pa.Table:
        """The rows the rule counts (its filters) per minute, then each property's bin counts per
        minute of the rows the target keeps (the metric's and the rule's filters)."""
        counted = _with_minute(filters.apply(table, self.extra, self.types, "filters"))
        rows = _renamed(
            counted.group_by([MINUTE], use_threads=False).aggregate([([], "count_all")]), n="count_all"
        )
        target = _with_minute(
            filters.apply(table, [*self.body.target.filter, *self.extra], self.types, "target.filter")
        )
        bins = [
            _renamed(drift._partial(target, name, profile, [MINUTE]), bin="__bin", n="__n_sum")
            for name, profile in self.profiles.items()
        ]
        return _blocks([rows, *bins])

    def measure(self, partials: list[pa.Table], windows: list[Span]) -> list[Result]:
        """Each window's statistic (or aggregate over the properties) and row count, as run_drift
        and catalog.measure give them."""
        assigned = assign(partials, windows)
        counts = _sums(_block(assigned, 0), [WINDOW]) if assigned.num_rows else {}
        per_property: dict[str, dict[int, dict[Any, float]]] = {}
        for number, name in enumerate(self.profiles, start=1):
            block = _block(assigned, number) if assigned.num_rows else None
            found: dict[int, dict[Any, float]] = {}
            if block is not None and block.num_rows:
                summed = block.group_by([WINDOW, "bin"], use_threads=False).aggregate([("n", "sum")])
                for window, label, count in zip(
                    summed.column(WINDOW).to_pylist(),
                    summed.column("bin").to_pylist(),
                    summed.column("n_sum").to_pylist(),
                    strict=True,
                ):
                    found.setdefault(window, {})[label] = count
            per_property[name] = found
        results = []
        for number in range(len(windows)):
            row: dict[str, Any] = {}
            present = any(number in found for found in per_property.values())
            for name, profile in self.profiles.items():
                if present:
                    target = per_property[name].get(number, {})
                    row[name] = drift._value(self.body.metric, profile, self.base_counts[name], target)
                else:
                    row[name] = None
            if self.body.aggregate:
                scores = {p: row.get(p) for p in self.body.properties}
                row["aggregate"] = (
                    None
                    if not present
                    else family_wise(list(scores.values()))
                    if self.body.aggregate == "family_wise"
                    else aggregate_scores(scores, self.body.aggregate, self.body.weights)
                )
            row = drift._clean(row)
            details = {p: row.get(p) for p in self.body.properties} if self.body.aggregate else None
            value = row["aggregate"] if self.body.aggregate else row[self.body.properties[0]]
            results.append(Result(value, int(counts.get(number, 0)), details))
        return results


def _renamed(table: pa.Table, **names: str) -> pa.Table:
    """The table with columns renamed (new=old)."""
    old = {source: new for new, source in names.items()}
    return table.rename_columns([old.get(name, name) for name in table.column_names])


def _sums(table: pa.Table, keys: list[str]) -> dict[int, int]:
    summed = table.group_by(keys, use_threads=False).aggregate([("n", "sum")])
    return dict(zip(summed.column(keys[0]).to_pylist(), summed.column("n_sum").to_pylist(), strict=True))


def _profile(profile: binning.Profile) -> Any:
    """A profile as JSON: its bins (edges by their exact bits)."""
    edges = None if profile.edges is None else profile.edges.astype("<f8").tobytes().hex()
    return [profile.numeric, edges, list(profile.categories)]


def drift_spec(query: dict[str, Any], model: Model, extra: list[Condition], load: Loader) -> DriftSpec:
    """A drift metric's spec: its data_drift query (parameters substituted), the rule's filters `extra`
    on its target and its count, the reference read through `load`."""
    return DriftSpec(DriftQuery.model_validate(query), model, extra, load)
