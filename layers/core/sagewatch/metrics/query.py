"""The query API's engine, Arthur's shape: select / filter / group_by / order_by / limit over a window.

Pure over Arrow tables: the caller supplies a loader that returns the window one table per file;
every selected function is computed as partial aggregates per table and merged
(sagewatch.metrics.aggregates), so the result equals computing over all rows at once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from sagewatch.errors import InvalidInput
from sagewatch.metrics import filters
from sagewatch.metrics.aggregates import Aggregate, Contributions, indicator, ones, state
from sagewatch.metrics.filters import Condition
from sagewatch.metrics.functions import FUNCTIONS, Function
from sagewatch.metrics.shap import absolute_name
from sagewatch.schema import GROUND_TRUTH_STAGES, Model, Stage, ValueType
from sagewatch.values import ARROW_TYPES

Source = Literal["inference", "reference", "ground_truth", "explanation"]
# Sources whose rows live in day folders of inference_timestamp (queries over a window read its days only).
DAILY_SOURCES = ("inference", "explanation")
INTERVALS = {
    "minute": "minute",
    "hour": "hour",
    "day": "day",
    "week": "week",
    "month": "month",
    "year": "year",
}
DEFAULT_ROW_LIMIT = 1000


class Select(BaseModel):
    """One output of a query: a property, or a function with its parameters, named by `alias`."""

    model_config = ConfigDict(extra="forbid")

    property: str | None = None
    function: str | None = None
    alias: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)


class GroupBy(BaseModel):
    """A key to group by: a property, or the alias of a selected one (such as a rounded timestamp)."""

    model_config = ConfigDict(extra="forbid")

    property: str | None = None
    alias: str | None = None


class OrderBy(BaseModel):
    """A key to order by: a property or an alias, ascending or descending."""

    model_config = ConfigDict(extra="forbid")

    property: str | None = None
    alias: str | None = None
    direction: Literal["asc", "desc"] = "asc"


class Query(BaseModel):
    """POST /api/v3/models/{id}/inferences/query."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    select: list[Select] = Field(min_length=1)
    filter: list[Condition] = Field(default_factory=list)
    group_by: list[GroupBy] = Field(default_factory=list)
    order_by: list[OrderBy] = Field(default_factory=list)
    limit: int | None = Field(default=None, ge=1, le=100_000)
    from_: Source = Field(default="inference", alias="from")


Loader = Callable[[Source, list[str], date | None, date | None, bool], list[pa.Table]]


def column_types(model: Model, source: Source) -> dict[str, ValueType]:
    """The columns a query over `source` can name, with their types."""
    truths = {a.name: a.value_type for a in model.by_stage(*GROUND_TRUTH_STAGES)}
    if source == "reference":
        return {a.name: a.value_type for a in model.attributes}
    identity = {"partner_inference_id": ValueType.STRING, "ground_truth_timestamp": ValueType.TIMESTAMP}
    if source == "ground_truth":
        return {**identity, **truths}
    if source == "explanation":  # services/explanations.py: attributions and their absolute values
        inputs = [a.name for a in model.by_stage(Stage.PIPELINE_INPUT)]
        return {
            "partner_inference_id": ValueType.STRING,
            "inference_timestamp": ValueType.TIMESTAMP,
            "variant": ValueType.STRING,
            "explained_at": ValueType.TIMESTAMP,
            "predicted_attribute_name": ValueType.STRING,
            "expected_value": ValueType.FLOAT,
            "prediction": ValueType.FLOAT,
            **{name: ValueType.FLOAT for name in inputs},
            **{absolute_name(name): ValueType.FLOAT for name in inputs},
        }
    stored = model.by_stage(Stage.PIPELINE_INPUT, Stage.NON_INPUT_DATA, Stage.PREDICTED_VALUE)
    return {
        **identity,
        "inference_timestamp": ValueType.TIMESTAMP,
        "batch_id": ValueType.STRING,
        "variant": ValueType.STRING,
        **{a.name: a.value_type for a in stored},
        "anomaly_score": ValueType.FLOAT,  # the enrichment scored at ingest (sagewatch.metrics.anomaly)
        **truths,
    }


class LabelledCount(Aggregate):
    """How many rows a performance function could use: rows with ground truth."""

    def __init__(self, truths: list[str]) -> None:
        self.truths = truths

    def contributions(self, table: pa.Table) -> Contributions:
        """A 1 per row with any ground truth value."""
        if not self.truths:
            return Contributions({"n": (pa.array(np.zeros(table.num_rows, dtype=np.int64)), "sum")})
        present = None
        for name in self.truths:
            valid = (
                pc.is_valid(table.column(name))
                if name in table.column_names
                else pa.array(np.zeros(table.num_rows, dtype=bool))
            )
            present = valid if present is None else pc.or_(present, valid)
        return Contributions({"n": (indicator(present), "sum")})

    def finalize(self, states: pa.Table, keys: list[str]) -> pa.Array:
        """The rows with ground truth, as integers."""
        return pa.array(state(states, "n").astype(np.int64))


class Plan:
    """A query checked against the model: functions built, keys and columns known."""

    def __init__(self, query: Query, model: Model) -> None:
        self.query, self.model = query, model
        self.types = column_types(model, query.from_)
        self.functions: dict[str, Function] = {}
        self.rounded: dict[
            str, tuple[str, str, int]
        ] = {}  # alias -> (timestamp property, interval, multiple)
        self.properties: list[tuple[str, str]] = []  # (output name, property)
        for index, select in enumerate(query.select):
            self._add_select(select, f"select[{index}]")
        self.keys: list[tuple[str, str]] = []  # (key column, output name)
        for index, group in enumerate(query.group_by):
            key = self._group_key(group, f"group_by[{index}]")
            if key in self.keys:
                raise InvalidInput(f"group_by names {key[1]!r} twice", field=f"group_by[{index}]")
            self.keys.append(key)
        outputs = [alias for alias in self.functions] + [alias for alias in self.rounded]
        taken = {output for _, output in self.keys} | {output for output, _ in self.properties}
        for alias in outputs:
            if alias in taken and alias not in self.rounded:
                raise InvalidInput(
                    f"alias {alias!r} is also a grouped or selected property: name the function otherwise",
                    field="select",
                )
        filters.check(query.filter, self.types, "filter")
        if self.functions:
            grouped = {output for _, output in self.keys}
            for output, _ in self.properties:
                if output not in grouped:
                    raise InvalidInput(
                        f"property {output!r} is selected beside functions, so it must be in group_by",
                        field="group_by",
                    )
        self.needs_ground_truth = query.from_ == "inference" and (
            any(f.needs_ground_truth for f in self.functions.values())
            or any(name in self._truth_names() for name in self.columns())
        )
        for function in self.functions.values():  # parameters are checked before reading any data
            function.contributions(self.empty())

    def _truth_names(self) -> set[str]:
        return {a.name for a in self.model.by_stage(*GROUND_TRUTH_STAGES)} | {"ground_truth_timestamp"}

    def _add_select(self, select: Select, field: str) -> None:
        if select.function is None:
            if select.property is None:
                raise InvalidInput("a select names a property or a function", field=field)
            if select.property != "*" and select.property not in self.types:
                raise InvalidInput(f"unknown property {select.property!r}", field=f"{field}.property")
            self.properties.append((select.alias or select.property, select.property))
            return
        alias = select.alias or select.function
        if alias in self.functions or alias in self.rounded:
            raise InvalidInput(f"alias {alias!r} is used twice", field=f"{field}.alias")
        if select.function == "roundTimestamp":
            prop = select.parameters.get("property", "inference_timestamp")
            if not isinstance(prop, str) or self.types.get(prop) is not ValueType.TIMESTAMP:
                raise InvalidInput(
                    f"roundTimestamp needs a timestamp property, not {prop!r}",
                    field=f"{field}.parameters.property",
                )
            interval = select.parameters.get("time_interval", "day")
            if not isinstance(interval, str) or interval not in INTERVALS:
                raise InvalidInput(
                    f"time_interval is one of {', '.join(INTERVALS)}",
                    field=f"{field}.parameters.time_interval",
                )
            unknown = sorted(set(select.parameters) - {"property", "time_interval", "multiple"})
            if unknown:
                raise InvalidInput(
                    f"roundTimestamp has no parameter {unknown[0]!r} (it takes: property, time_interval, multiple)",
                    field=f"{field}.parameters.{unknown[0]}",
                )
            multiple = select.parameters.get("multiple", 1)
            if not isinstance(multiple, int) or multiple < 1:
                raise InvalidInput("multiple is a whole number >= 1", field=f"{field}.parameters.multiple")
            self.rounded[alias] = (prop, interval, multiple)
            return
        if select.function not in FUNCTIONS:
            raise InvalidInput(f"unknown function {select.function!r}", field=f"{field}.function")
        cls = FUNCTIONS[select.function]
        self.functions[alias] = cls(select.function, self.model, select.parameters, self.types, field)

    def _group_key(self, group: GroupBy, field: str) -> tuple[str, str]:
        name = group.alias or group.property
        if name is None:
            raise InvalidInput("group_by names a property or an alias", field=field)
        if name in self.rounded:
            return f"__round_{name}", name
        selected = dict(self.properties)
        prop = selected.get(name, name)
        if prop not in self.types:
            raise InvalidInput(f"unknown property or alias {name!r}", field=f"{field}")
        return f"__key_{prop}", name

    def columns(self) -> list[str]:
        """The lake columns the query reads."""
        wanted = [c.property for c in self.query.filter]
        wanted += [p for _, p in self.properties if p != "*"]
        if any(p == "*" for _, p in self.properties):
            wanted += list(self.types)
        wanted += [prop for prop, _, _ in self.rounded.values()]
        wanted += [key.removeprefix("__key_") for key, _ in self.keys if key.startswith("__key_")]
        for function in self.functions.values():
            wanted += [
                v for k, v in function.parameters.items() if k.endswith("property") and isinstance(v, str)
            ]
            wanted += _columns_of(function, self.model)
        return [c for c in dict.fromkeys(wanted) if c in self.types]

    def empty(self) -> pa.Table:
        """No rows, in the columns and types a load would give."""
        return pa.schema([(n, ARROW_TYPES[t]) for n, t in self.types.items()]).empty_table()

    def with_keys(self, table: pa.Table) -> pa.Table:
        """The table with its group key columns added (rounded times, copies of properties)."""
        for key, output in self.keys:
            if key.startswith("__round_"):
                prop, interval, multiple = self.rounded[output]
                values = table.column(prop) if prop in table.column_names else pa.nulls(table.num_rows)
                keyed = pc.floor_temporal(
                    values, multiple=multiple, unit=INTERVALS[interval], week_starts_monday=True
                )
            else:
                prop = key.removeprefix("__key_")
                keyed = table.column(prop) if prop in table.column_names else pa.nulls(table.num_rows)
            table = table.append_column(key, keyed)
        return table


def _columns_of(function: Function, model: Model) -> list[str]:
    """Columns a function reads besides its explicit parameters: predictions and ground truths."""
    if function.needs_ground_truth:
        return [a.name for a in model.by_stage(Stage.PREDICTED_VALUE, *GROUND_TRUTH_STAGES)]
    return []


def run(query: Query, model: Model, load: Loader) -> list[dict[str, Any]]:
    """The query's result rows (Arthur's query_result)."""
    plan = Plan(query, model)
    first, last = filters.date_range(query.filter) if query.from_ in DAILY_SOURCES else (None, None)
    tables = load(query.from_, plan.columns(), first, last, plan.needs_ground_truth)
    tables = [filters.apply(t, query.filter, plan.types, "filter") for t in tables]
    if not plan.functions and not plan.rounded:
        return _rows(plan, tables)
    keys = [key for key, _ in plan.keys]
    aggregates: dict[str, Aggregate] = dict(plan.functions)
    if any(f.needs_ground_truth for f in plan.functions.values()) and "labelled_count" not in aggregates:
        aggregates["labelled_count"] = LabelledCount([a.name for a in model.by_stage(*GROUND_TRUTH_STAGES)])
    if not aggregates:
        aggregates["__rows"] = LabelledCount([])
    keyed = [plan.with_keys(t) for t in tables] or [plan.with_keys(plan.empty())]
    return _assemble(plan, _aggregate(aggregates, keyed, keys), keys)


def _aggregate(
    aggregates: dict[str, Aggregate], keyed: list[pa.Table], keys: list[str]
) -> dict[str, pa.Table]:
    """Each aggregate's value per group: partials per table, merged, finalized."""
    results: dict[str, pa.Table] = {}
    for alias, aggregate in aggregates.items():
        partials = [aggregate.partial(t, keys) for t in keyed]
        merged = aggregate.merge(partials, keys)
        merged = _one_row_per_group(merged, keys)
        results[alias] = merged.select(keys).append_column("__value", aggregate.finalize(merged, keys))
    return results


FOLD = "__fold"


def fold_values(query: Query, model: Model, load: Loader, folds: int) -> tuple[np.ndarray, np.ndarray]:
    """The query's one function on each of `folds` random parts of its rows (seeded by each file's
    place, so the same rows always split the same way), and the labelled rows of each part: the
    batch means an interval of the whole value is read from. No group_by."""
    plan = Plan(query, model)
    if len(plan.functions) != 1 or plan.keys:
        raise InvalidInput("an interval is of one function over all rows: no group_by", field="select")
    first, last = filters.date_range(query.filter) if query.from_ in DAILY_SOURCES else (None, None)
    tables = load(query.from_, plan.columns(), first, last, plan.needs_ground_truth)
    tables = [filters.apply(t, query.filter, plan.types, "filter") for t in tables] or [plan.empty()]
    keyed = []
    for place, table in enumerate(tables):
        parts = np.random.default_rng([place, table.num_rows]).permutation(table.num_rows) % folds
        keyed.append(table.append_column(FOLD, pa.array(parts)))
    truths = [a.name for a in model.by_stage(*GROUND_TRUTH_STAGES)]
    aggregates = {**plan.functions, "labelled_count": LabelledCount(truths)}
    results = _aggregate(aggregates, keyed, [FOLD])
    values, labelled = np.full(folds, np.nan), np.zeros(folds)
    for alias, table in results.items():
        index = table.column(FOLD).to_numpy(zero_copy_only=False)
        found = pc.cast(table.column("__value"), pa.float64()).to_numpy(zero_copy_only=False)
        target = labelled if alias == "labelled_count" else values
        target[index] = np.nan_to_num(found, nan=0.0) if alias == "labelled_count" else found
    return values, labelled


def _one_row_per_group(states: pa.Table, keys: list[str]) -> pa.Table:
    """States split by an extra key (bins, cells) gathered as lists, one row per group."""
    extra = [n for n in states.column_names if n not in keys and not n.startswith("s_")]
    if not extra:
        return states
    if not keys:  # one group: every row's states
        return pa.table({n: pa.array([states.column(n).to_pylist()]) for n in states.column_names})
    lists = [(n, "list") for n in states.column_names if n not in keys]
    gathered = states.group_by(keys, use_threads=False).aggregate(lists)
    return gathered.rename_columns([c.removesuffix("_list") for c in gathered.column_names])


def _assemble(plan: Plan, results: dict[str, pa.Table], keys: list[str]) -> list[dict[str, Any]]:
    groups: dict[tuple, dict[str, Any]] = {}
    for alias, table in results.items():
        key_values = [table.column(k).to_pylist() for k in keys]
        values = table.column("__value").to_pylist()
        for index, value in enumerate(values):
            group = tuple(column[index] for column in key_values)
            row = groups.setdefault(
                group, {output: _json(v) for (_, output), v in zip(plan.keys, group, strict=True)}
            )
            if not alias.startswith("__"):
                row[alias] = _json(value)
    rows = list(groups.values())
    if not keys and not rows:
        rows = [{alias: None for alias in results if not alias.startswith("__")}]
    for output, prop in plan.properties:  # grouped properties selected under another name
        for row in rows:
            row.setdefault(output, row.get(prop))
    return _order_and_limit(plan, rows)


def _rows(plan: Plan, tables: list[pa.Table]) -> list[dict[str, Any]]:
    """Plain rows (selects of properties only)."""
    if not tables:
        return []
    table = pa.concat_tables(tables, promote_options="default")
    limit = plan.query.limit or DEFAULT_ROW_LIMIT
    names = [p for _, p in plan.properties]
    columns = [c for c in plan.types if c in table.column_names] if "*" in names else names
    rows = []
    for record in (
        table.slice(0, limit if not plan.query.order_by else None)
        .select([c for c in columns if c in table.column_names])
        .to_pylist()
    ):
        row = {}
        for output, prop in plan.properties:
            if prop == "*":
                row.update({k: _json(v) for k, v in record.items()})
            else:
                row[output] = _json(record.get(prop))
        rows.append(row)
    return _order_and_limit(plan, rows)


def _order_and_limit(plan: Plan, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for index, order in reversed(list(enumerate(plan.query.order_by))):
        name = order.alias or order.property
        if rows and name not in rows[0]:
            raise InvalidInput(
                f"cannot order by {name!r}: it is not in the result", field=f"order_by[{index}]"
            )
        rows.sort(key=lambda r, n=name: (r[n] is None, r[n]), reverse=order.direction == "desc")
    if not plan.query.order_by and plan.keys:
        rows.sort(key=lambda r: tuple((r[o] is None, str(r[o])) for _, o in plan.keys))
    return rows[: plan.query.limit] if plan.query.limit else rows


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


__all__ = ["Query", "column_types", "ones", "run"]
