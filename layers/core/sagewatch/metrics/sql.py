"""The query API's Query as one SQL statement (Athena's Trino dialect, or DuckDB), with the in-Lambda
engine's semantics (sagewatch.metrics.query over stores/window.py), for windows one Lambda cannot hold.

The SQL is built as one sqlglot syntax tree (names and user values quoted by sqlglot, never pasted
into text) and rendered in the dialect asked. It computes what the engine computes before Python:
1. the window's rows: inference files of the window's days (`date` partitions, from the filter's
   inference_timestamp bounds), duplicates resolved as sagewatch.tables.first_write_rows does (per
   partner_inference_id and variant the earliest ingested_at, then source, nulls last, then the
   earlier file and row: SqlTables.place);
2. with ground truth, each inference's latest label (sagewatch.tables.latest_ground_truth_rows: the
   latest ground_truth_timestamp, then the latest ingested_at, then labels/ before ground_truth/,
   then place) among labels/ of the window's days and ground_truth/ from LABELS_EARLY_DAYS before;
   a ground_truth query reads every id's latest label among both areas, on the days they hold
   files (LabelDays);
3. the filter (every comparator of sagewatch.metrics.filters, nulls as the engine treats them);
4. per group (and extra key: a histogram bin, a confusion matrix cell), each function's *states*:
   the s_<name>__<op> columns its contributions() give, reduced by SUM, MIN or MAX. Several extra
   keys are GROUPING SETS of one scan;
5. a grouped query's order_by and limit, when SQL orders its groups as Python does (_top): a top-N
   returns its N groups, however many there are.
SqlQuery.rows() then merges and finalizes those states with the functions' own code
(Aggregate.merge, finalize) and assembles, orders and limits the rows as metrics.query.run does,
so only contributions are translated here. Every registered function is; what is not (queries
from explanations, drift Thresholds, SQL past Athena's 256 KB) raises NotInSql naming it.
drift_sql does the same for the data_drift API: the target's counts per window and bin in SQL,
the bins fitted on the base (read in-Lambda) and the statistics computed by the drift engine's code.

Known differences, all ties the lake rarely holds: Athena has no row number within a file, so two
copies of an id written by one ingest (same ingested_at and source) in one file, and rows or groups
tied by a query's order_by within one file (and so which of them a limit keeps), are told apart by
DuckDB's file_row_number only; and Athena reads
Parquet timestamps at millisecond precision. A DuckDB connection running this SQL sets TimeZone to
UTC (DUCKDB_SETTINGS; duckdb_views makes the relations over local lake files).
"""

from __future__ import annotations

import glob
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from sagewatch.errors import Unsupported
from sagewatch.metrics import drift, filters
from sagewatch.metrics.aggregates import Aggregate
from sagewatch.metrics.drift import DriftQuery, binning
from sagewatch.metrics.drift.calibrated import family_wise
from sagewatch.metrics.drift.score import aggregate as drift_aggregate
from sagewatch.metrics.filters import Condition
from sagewatch.metrics.functions import (
    AUC_BINS,
    Binary,
    Count,
    Distribution,
    Function,
    Integrity,
    Multiclass,
    Rate,
    Regression,
    Summary,
)
from sagewatch.metrics.query import (
    DAILY_SOURCES,
    DEFAULT_ROW_LIMIT,
    LabelledCount,
    Loader,
    Plan,
    Query,
    _assemble,
    _one_row_per_group,
    _rows,
    column_types,
)
from sagewatch.records import reference_schema
from sagewatch.schema import GROUND_TRUTH_STAGES, Model, Stage, ValueType, parse_class_value
from sagewatch.tables import TIMESTAMP, ground_truth_schema, inference_schema
from sagewatch.values import ARROW_TYPES

Dialect = Literal["trino", "duckdb"]
# What a DuckDB connection runs first: the lake's timestamps are UTC, and so are rounded times.
DUCKDB_SETTINGS = ("SET TimeZone = 'UTC'",)
_TIME = exp.DataType.build("TIMESTAMP(6) WITH TIME ZONE", dialect="trino")
_DOUBLE = exp.DataType.build("DOUBLE")
_BIGINT = exp.DataType.build("BIGINT")
_SQL_TYPES = {
    ValueType.INTEGER: "BIGINT",
    ValueType.FLOAT: "DOUBLE",
    ValueType.BOOLEAN: "BOOLEAN",
    ValueType.STRING: "VARCHAR",
    ValueType.TIMESTAMP: "TIMESTAMP(6) WITH TIME ZONE",
}
# Ground truth filed by its own day (ground_truth/) is read from this many days before a window's
# first day: stores/window.py's LABELS_EARLY_DAYS (core code imports no store; a test holds them equal).
LABELS_EARLY_DAYS = 30
_SECONDS = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}
# Arrow's floor_temporal counts weeks from the Monday before the epoch (1969-12-29)
_WEEK_ORIGIN = -3 * 86400


class NotInSql(Unsupported):
    """A query the SQL path does not compute (a function or source not translated): 400 naming it;
    the caller may run it in-Lambda instead."""


@dataclass(frozen=True)
class SqlTables:
    """The relations the SQL reads, each with a `date` column ('YYYY-MM-DD', the partition).

    `place`: columns ordering rows as the lake lists them (file, then row), so ties resolve as the
    engine's: ("$path",) on Athena (whose files have no row numbers), (DUCKDB_PLACE,) over
    duckdb_views. With one column, groups tied by an order_by also keep the engine's order. Names
    the SQL gives columns of its own start with `$`, which no attribute's name has
    (schema.ATTRIBUTE_NAME), so any attribute name reads its own column.
    """

    inferences: str  # every inference file of the model (identity + stored attributes)
    labels: str  # labels/ area (ground truth filed by inference day)
    ground_truth: str  # ground_truth/ area (by the label's own day)
    reference: str
    place: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelDays:
    """The first and last days each label area (labels/, ground_truth/) has files on, None for an
    area with none (not read): a ground_truth query's SQL bounds each area's `date` by them, so
    Athena lists those days of its projected partitions, not every day of its range, and reads
    every label the in-Lambda engine reads."""

    labels: tuple[date, date] | None
    ground_truth: tuple[date, date] | None

    @classmethod
    def of(cls, labels: list[date], ground_truth: list[date]) -> LabelDays:
        """The spans of each area's days (LakeStore.days)."""
        return cls(
            (min(labels), max(labels)) if labels else None,
            (min(ground_truth), max(ground_truth)) if ground_truth else None,
        )

    @property
    def empty(self) -> bool:
        """Whether neither area has a file."""
        return self.labels is None and self.ground_truth is None

    def to_json(self) -> dict[str, list[str] | None]:
        """The spans as a query's tag keeps them (ISO days)."""
        return {
            name: None if span is None else [day.isoformat() for day in span]
            for name, span in (("labels", self.labels), ("ground_truth", self.ground_truth))
        }

    @classmethod
    def from_json(cls, found: Any) -> LabelDays:
        """The spans from to_json's form (ValueError, KeyError or TypeError for another)."""
        spans = []
        for name in ("labels", "ground_truth"):
            span = found[name]
            if span is None:
                spans.append(None)
                continue
            first, last = (date.fromisoformat(day) for day in span)
            spans.append((first, last))
        return cls(*spans)


@dataclass(frozen=True)
class SqlQuery:
    """A query's SQL, and how its result table becomes the API's rows."""

    sql: str
    decode: Callable[[pa.Table], list[dict[str, Any]]] = field(repr=False, compare=False)

    def rows(self, result: pa.Table) -> list[dict[str, Any]]:
        """The API's answer rows from the SQL's result, as metrics.query.run gives them."""
        return self.decode(result)


# -- expressions ------------------------------------------------------------------------------------


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def _literal(value: Any, value_type: ValueType) -> exp.Expression:
    """A typed value as a literal of its column's SQL type."""
    if value is None:
        return exp.cast(exp.null(), _SQL_TYPES[value_type], dialect="trino")
    if value_type is ValueType.BOOLEAN:
        return exp.Boolean(this=bool(value))
    if value_type is ValueType.INTEGER:
        return exp.Literal.number(int(value))
    if value_type is ValueType.FLOAT:
        return _double(float(value))
    if value_type is ValueType.TIMESTAMP:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return exp.cast(exp.Literal.string(moment.strftime("%Y-%m-%d %H:%M:%S.%f") + " UTC"), _TIME)
    return exp.Literal.string(str(value))


def _double(value: float) -> exp.Expression:
    """A finite float as a DOUBLE literal (an exponent keeps Trino from reading a DECIMAL)."""
    if math.copysign(1.0, value) < 0:  # sqlglot would read "-x" as -(x) and drop the exponent
        return exp.Neg(this=_double(-value))
    text = repr(float(value))
    return exp.Literal.number(text if "e" in text else f"{text}e0")


def _number(name: str, types: dict[str, ValueType]) -> exp.Expression:
    """A column as DOUBLE, as sagewatch.metrics.aggregates.numbers reads it (booleans 0/1, times
    as epoch seconds)."""
    if types.get(name) is ValueType.TIMESTAMP:
        return exp.TimeToUnix(this=_col(name))
    return exp.cast(_col(name), _DOUBLE)


def _one_if(condition: exp.Expression) -> exp.Expression:
    """1 where the condition holds, 0 elsewhere (null as false): aggregates.indicator."""
    return exp.Case(ifs=[exp.If(this=condition, true=exp.Literal.number(1))], default=exp.Literal.number(0))


def _is_null(value: exp.Expression) -> exp.Expression:
    return exp.Is(this=value, expression=exp.null())


def _not_null(value: exp.Expression) -> exp.Expression:
    return exp.not_(_is_null(value))


def _all(conditions: list[exp.Expression]) -> exp.Expression:
    return exp.and_(*conditions) if conditions else exp.true()


_ORDERED: dict[str, type[exp.Binary]] = {
    "eq": exp.EQ,
    "ne": exp.NEQ,
    "lt": exp.LT,
    "lte": exp.LTE,
    "gt": exp.GT,
    "gte": exp.GTE,
}


def condition_sql(condition: Condition, types: dict[str, ValueType], field: str) -> exp.Expression:
    """A filter condition as SQL that holds where filters.mask is true (a null is false, except
    that `notin` keeps nulls, as Arrow's is_in gives false for them)."""
    comparator = filters.comparator_of(condition.comparator, f"{field}.comparator")
    value_type = types[condition.property]
    column = _col(condition.property)
    if comparator == "IsNull":
        return _is_null(column)
    if comparator == "NotNull":
        return _not_null(column)
    if comparator in ("in", "notin"):
        values = condition.typed(value_type, f"{field}.value").to_pylist()
        found = (
            exp.In(this=column, expressions=[_literal(v, value_type) for v in values])
            if values
            else exp.false()
        )
        return found if comparator == "in" else exp.or_(_is_null(column), exp.not_(found))
    if comparator == "like":
        like = exp.Like(this=column, expression=exp.Literal.string(like_pattern(str(condition.value))))
        return exp.Escape(this=like, expression=exp.Literal.string("\\"))
    value = condition.typed(value_type, f"{field}.value")[0].as_py()
    return _ORDERED[comparator](this=column, expression=_literal(value, value_type))


# Patterns pc.match_like runs as a plain search (Arrow's MatchLike, scalar_string_ascii.cc): the
# text between the wildcards then has no escapes, a backslash is itself.
_LIKE_CONTAINS = re.compile(r"%+([^%_]*[^\\%_])?%+")
_LIKE_STARTS = re.compile(r"([^%_]*[^\\%_])?%+")
_LIKE_ENDS = re.compile(r"%+([^%_]*)")


def like_pattern(pattern: str) -> str:
    """Arrow's match_like `pattern` as the SQL LIKE pattern (ESCAPE '\\') matching the same text in
    Trino and DuckDB. Arrow reads `%text%`, `text%` (text without wildcards, not ending in a
    backslash) and `%text` (text without wildcards) as a search for `text` as written; any other
    pattern as a regex in which a backslash makes the next character plain (`\\a` is `a`) and a
    final one is dropped. The SQL pattern escapes only `%`, `_` and the backslash, the escapes both
    engines read alike (Trino refuses any other)."""
    for form, before, after in ((_LIKE_CONTAINS, "%", "%"), (_LIKE_STARTS, "", "%"), (_LIKE_ENDS, "%", "")):
        found = form.fullmatch(pattern)
        if found:
            return before + _like_plain(found.group(1) or "") + after
    parts: list[str] = []
    escaped = False
    for character in pattern:
        if escaped or character not in "\\%_":
            parts.append(_like_plain(character))
            escaped = False
        elif character == "\\":
            escaped = True
        else:  # a wildcard
            parts.append(character)
    return "".join(parts)


def _like_plain(text: str) -> str:
    """`text` matched as written in a LIKE pattern with ESCAPE '\\'."""
    return re.sub(r"([\\%_])", r"\\\1", text)


def _rounded(prop: str, interval: str, multiple: int) -> exp.Expression:
    """pc.floor_temporal(prop, multiple, interval, week_starts_monday=True), as SQL."""
    column = _col(prop)
    if multiple == 1:
        return exp.TimestampTrunc(this=column, unit=exp.var(interval.upper()))
    if interval in _SECONDS:
        width = _SECONDS[interval] * multiple
        origin = _WEEK_ORIGIN if interval == "week" else 0
        seconds = exp.Sub(this=exp.TimeToUnix(this=column), expression=exp.Literal.number(origin))
        floored = exp.Mul(
            this=exp.Floor(this=exp.Div(this=exp.paren(seconds), expression=exp.Literal.number(width))),
            expression=exp.Literal.number(width),
        )
        return exp.UnixToTime(this=exp.Add(this=floored, expression=exp.Literal.number(origin)))
    if interval == "month":  # Arrow counts months from 1970-01
        years = exp.Sub(this=exp.Year(this=column), expression=exp.Literal.number(1970))
        count: exp.Expression = exp.Add(
            this=exp.Mul(this=exp.paren(years), expression=exp.Literal.number(12)),
            expression=exp.Sub(this=exp.Month(this=column), expression=exp.Literal.number(1)),
        )
        since = 0
    else:  # and years from year 0
        count, since = exp.Year(this=column), 1970
    floored = exp.Sub(
        this=exp.Mul(
            this=exp.Floor(
                this=exp.Div(
                    this=exp.cast(exp.paren(count), _DOUBLE), expression=exp.Literal.number(multiple)
                )
            ),
            expression=exp.Literal.number(multiple),
        ),
        expression=exp.Literal.number(since),
    )
    epoch = exp.cast(exp.Literal.string("1970-01-01 00:00:00.000000 UTC"), _TIME)
    return exp.DateAdd(this=epoch, expression=exp.cast(floored, _BIGINT), unit=exp.var(interval.upper()))


# -- functions: their contributions as SQL -------------------------------------------------------


@dataclass
class _States:
    """An aggregate's contributions as SQL: states (name, merge, per-row value) and an extra key
    (engine name, per-row value, how its values become the engine's)."""

    states: list[tuple[str, str, exp.Expression]]
    extra: tuple[str, exp.Expression, Callable[[pa.Array], pa.Array]] | None = None


def _int64(values: pa.Array) -> pa.Array:
    return pc.cast(values, pa.int64())


def _states(aggregate: Aggregate, alias: str, plan: Plan) -> _States:
    """The SQL of an aggregate's contributions(); NotInSql for one not translated."""
    types, model = plan.types, plan.model
    one = exp.Literal.number(1)
    if isinstance(aggregate, LabelledCount):
        present = [_not_null(_col(name)) for name in aggregate.truths if name in types]
        return _States([("n", "sum", _one_if(exp.or_(*present)) if present else exp.Literal.number(0))])
    if not isinstance(aggregate, Function):
        raise NotInSql(f"{alias} is not computed in SQL", field="select")
    aggregate.contributions(plan.empty())  # its parameters checked, as the engine does first
    if type(aggregate) is Count:
        return _States([("n", "sum", one)])
    if type(aggregate) is Summary:
        values = _number(aggregate.property(numeric=True), types)
        if aggregate.name in ("min", "max"):
            return _States([("v", aggregate.name, values)])
        return _States([("v", "sum", values), ("n", "sum", _one_if(_not_null(values)))])
    if isinstance(aggregate, Rate):  # rate, rateTest: the p-value is finalize()'s
        condition = Condition(
            property=aggregate.property(),
            comparator=aggregate.parameter("comparator"),
            value=aggregate.parameters.get("value"),
        )
        hit = condition_sql(condition, types, f"{aggregate.field}.parameters")
        return _States([("hit", "sum", _one_if(hit)), ("n", "sum", one)])
    if type(aggregate) is Integrity:
        return _integrity(aggregate, types, model)
    if type(aggregate) is Distribution:
        return _distribution(aggregate, types)
    if type(aggregate) is Binary:
        return _binary(aggregate, types)
    if type(aggregate) is Multiclass:
        return _multiclass(aggregate, types, model)
    if type(aggregate) is Regression:
        return _regression(aggregate, types)
    raise NotInSql(f"{aggregate.name} is not computed in SQL", field=aggregate.field)


def _integrity(function: Integrity, types: dict[str, ValueType], model: Model) -> _States:
    name = function.property()
    column = _col(name)
    if function.name == "nullRate":
        return _States([("bad", "sum", _one_if(_is_null(column))), ("n", "sum", exp.Literal.number(1))])
    attribute = model.attribute(name)
    if function.name == "outOfRangeRate":
        numeric = _number(name, types)
        outside = [
            exp.LT(this=numeric, expression=_double(attribute.min_range))
            if attribute.min_range is not None
            else None,
            exp.GT(this=numeric, expression=_double(attribute.max_range))
            if attribute.max_range is not None
            else None,
        ]
        bad = exp.or_(*[c for c in outside if c is not None])
    else:
        known = [
            _literal(parse_class_value(c.value, attribute.value_type), types[name])
            for c in attribute.categories
        ]
        bad = exp.not_(exp.In(this=column, expressions=known))
    present = _not_null(column)
    return _States([("bad", "sum", _one_if(exp.and_(present, bad))), ("n", "sum", _one_if(present))])


def _distribution(function: Distribution, types: dict[str, ValueType]) -> _States:
    name = function.property()
    edges = function._edges()
    one = exp.Literal.number(1)
    if edges is None:  # the raw value, turned into the engine's text (pc.cast) by rows()
        arrow_type = ARROW_TYPES[types[name]]
        return _States(
            [("n", "sum", one)],
            ("__bucket", _col(name), lambda v: pc.cast(pc.cast(v, arrow_type), pa.string())),
        )
    value = _number(name, types)
    # the bin np.searchsorted(edges, x, "right") - 1 clipped to the bins: how many inner edges are <= x
    bucket = exp.Case(
        ifs=[exp.If(this=_is_null(value), true=exp.cast(exp.null(), _BIGINT))],
        default=_edges_below(value, [float(e) for e in edges[1:-1]]),
    )
    return _States([("n", "sum", one)], ("__bucket", bucket, _int64))


def _edges_below(value: exp.Expression, edges: list[float]) -> exp.Expression:
    """How many of the sorted `edges` are <= value (np.searchsorted(edges, value, "right")), by a
    tree of comparisons with the engine's own edges (exact, and log2(edges) deep)."""

    def tree(low: int, high: int) -> exp.Expression:
        if low == high:
            return exp.Literal.number(low)
        middle = (low + high + 1) // 2
        below = exp.LT(this=value, expression=_double(edges[middle - 1]))
        return exp.Case(ifs=[exp.If(this=below, true=tree(low, middle - 1))], default=tree(middle, high))

    return tree(0, len(edges))


def _binary(function: Binary, types: dict[str, ValueType]) -> _States:
    prediction, truth, positive, threshold = function._setup()
    score = _number(prediction, types)
    truth_type = types[truth]
    positive_value = pa.scalar(positive).cast(ARROW_TYPES[truth_type]).as_py()
    actual = exp.EQ(this=_col(truth), expression=_literal(positive_value, truth_type))
    negative = exp.NEQ(this=_col(truth), expression=_literal(positive_value, truth_type))
    labelled = exp.and_(_not_null(score), _not_null(_col(truth)))
    if function.name == "auc":
        scaled = exp.Floor(this=exp.Mul(this=score, expression=exp.Literal.number(AUC_BINS)))
        clipped = exp.Case(
            ifs=[
                exp.If(this=_is_null(score), true=exp.Literal.number(0)),
                exp.If(
                    this=exp.LT(this=scaled, expression=exp.Literal.number(0)), true=exp.Literal.number(0)
                ),
                exp.If(
                    this=exp.GT(this=scaled, expression=exp.Literal.number(AUC_BINS - 1)),
                    true=exp.Literal.number(AUC_BINS - 1),
                ),
            ],
            default=exp.cast(scaled, _BIGINT),
        )
        return _States(
            [
                ("pos", "sum", _one_if(exp.and_(labelled, actual))),
                ("neg", "sum", _one_if(exp.and_(labelled, negative))),
            ],
            ("__score_bin", clipped, _int64),
        )
    predicted = exp.GTE(this=score, expression=_double(threshold))
    not_predicted = exp.LT(this=score, expression=_double(threshold))
    cells = {
        "tp": (predicted, actual),
        "fp": (predicted, negative),
        "tn": (not_predicted, negative),
        "fn": (not_predicted, actual),
    }
    return _States([(k, "sum", _one_if(exp.and_(labelled, p, a))) for k, (p, a) in cells.items()])


def _first_largest(values: list[exp.Expression]) -> exp.Expression:
    """The index of the largest of non-null values, the first among equals (np.argmax)."""
    ifs = []
    for i, value in enumerate(values[:-1]):
        beats = [
            (exp.GT if j < i else exp.GTE)(this=value, expression=other)
            for j, other in enumerate(values)
            if j != i
        ]
        ifs.append(exp.If(this=exp.and_(*beats), true=exp.Literal.number(i)))
    return exp.Case(ifs=ifs, default=exp.Literal.number(len(values) - 1)) if ifs else exp.Literal.number(0)


def _multiclass(function: Multiclass, types: dict[str, ValueType], model: Model) -> _States:
    classes = function._classes()
    scores = [_number(c, types) for c in classes]
    mapping = model.pred_to_ground_truth_map or {}
    known = [_not_null(s) for s in scores]
    if model.ground_truth_form == "class":
        truth = function.truth_attribute(classes[0])
        truth_type = types[truth]
        values = pa.array([mapping[c] for c in classes]).cast(ARROW_TYPES[truth_type]).to_pylist()
        ifs = []
        for index, value in enumerate(values):
            if value not in values[:index]:  # index_in: the first class of a value
                ifs.append(
                    exp.If(
                        this=exp.EQ(this=_col(truth), expression=_literal(value, truth_type)),
                        true=exp.Literal.number(index),
                    )
                )
        actual = exp.Case(ifs=ifs, default=exp.cast(exp.null(), _BIGINT))
        labelled = [_not_null(actual)]
    else:
        hot = [_number(str(mapping[c]), types) for c in classes]
        actual = _first_largest(hot)
        labelled = [_not_null(h) for h in hot]
    cell = exp.Add(
        this=exp.Mul(this=exp.paren(actual), expression=exp.Literal.number(len(classes))),
        expression=exp.paren(_first_largest(scores)),
    )
    cell = exp.Case(
        ifs=[exp.If(this=exp.and_(*known, *labelled), true=cell)], default=exp.cast(exp.null(), _BIGINT)
    )
    return _States([("n", "sum", _one_if(_not_null(cell)))], ("__cell", cell, _int64))


def _regression(function: Regression, types: dict[str, ValueType]) -> _States:
    predictions = function.model.by_stage(Stage.PREDICTED_VALUE)  # checked by _states' contributions()
    prediction = function.prediction_attribute(predictions[0].name if len(predictions) == 1 else None)
    truth = function.truth_attribute(prediction)
    p, y = _number(prediction, types), _number(truth, types)
    both = exp.and_(_not_null(p), _not_null(y))

    def where_both(value: exp.Expression) -> exp.Expression:
        return exp.Case(ifs=[exp.If(this=both, true=value)], default=_double(0.0))

    error = exp.paren(exp.Sub(this=p, expression=y))
    return _States(
        [
            ("n", "sum", _one_if(both)),
            ("se", "sum", where_both(exp.Mul(this=error, expression=error))),
            ("ae", "sum", where_both(exp.Abs(this=error))),
            ("y", "sum", where_both(y)),
            ("yy", "sum", where_both(exp.Mul(this=y, expression=y))),
        ]
    )


# -- the window's rows ------------------------------------------------------------------------------


def _table(name: str) -> exp.Table:
    return exp.to_table(name, dialect="trino")


def _between_days(first: date | None, last: date | None) -> list[exp.Expression]:
    day = _col("date")
    found: list[exp.Expression] = []
    if first is not None:
        found.append(exp.GTE(this=day, expression=exp.Literal.string(first.isoformat())))
    if last is not None:
        found.append(exp.LTE(this=day, expression=exp.Literal.string(last.isoformat())))
    return found


def _ordered(name: str | exp.Expression, descending: bool = False) -> exp.Ordered:
    this = _col(name) if isinstance(name, str) else name
    # nulls last whichever the direction, as pc.sort_indices places them
    return exp.Ordered(this=this, desc=descending, nulls_first=False)


def _first_of(partition: list[str], order: list[exp.Ordered], alias: str = "$first") -> exp.Alias:
    window = exp.Window(
        this=exp.RowNumber(),
        partition_by=[_col(p) for p in partition],
        order=exp.Order(expressions=order),
    )
    return exp.alias_(window, alias, quoted=True)


def _inference_rows(
    plan: Plan, tables: SqlTables, first: date | None, last: date | None, ground_truth: bool
) -> exp.Select:
    """The window's first writes, joined to their latest ground truth when asked: one row per
    kept inference, with the columns the query reads."""
    truths = [a.name for a in plan.model.by_stage(*GROUND_TRUTH_STAGES)]
    truth_columns = [*truths, "ground_truth_timestamp"] if ground_truth else []
    wanted = [c for c in dict.fromkeys(["partner_inference_id", *plan.columns()]) if c not in truth_columns]
    place = [_ordered(p) for p in tables.place]
    written = (
        exp.select(
            *[_col(c) for c in wanted],
            *[_col(p) for p in tables.place if p not in wanted],
            _first_of(
                ["partner_inference_id", "variant"],
                [_ordered("ingested_at"), _ordered("source"), *place],
            ),
        )
        .from_(_table(tables.inferences))
        .where(_all(_between_days(first, last)))
    )
    places = [exp.alias_(_col(p, "i"), f"$place{n}", quoted=True) for n, p in enumerate(tables.place)]
    rows = exp.select(*[_col(c, "i") for c in wanted], *places).from_(written.subquery("i"))
    where = exp.EQ(this=_col("$first", "i"), expression=exp.Literal.number(1))
    if not ground_truth:
        return rows.where(where)
    early = timedelta(days=LABELS_EARLY_DAYS)
    since = first - early if first is not None and first > date.min + early else None
    latest = _latest_truth(tables, truths, _between_days(first, last), _between_days(since, None))
    return (
        exp.select(*[_col(c, "i") for c in wanted], *places, *[_col(c, "t") for c in truth_columns])
        .from_(written.subquery("i"))
        .join(
            latest.subquery("t"),
            on=exp.EQ(this=_col("partner_inference_id", "i"), expression=_col("partner_inference_id", "t")),
            join_type="left",
        )
        .where(where)
    )


def _latest_truth(
    tables: SqlTables,
    truths: list[str],
    labels: list[exp.Expression] | None,
    ground_truth: list[exp.Expression] | None,
) -> exp.Select:
    """The latest ground truth of each id (sagewatch.tables.latest_ground_truth_rows) among the rows
    of labels/ and ground_truth/ where their conditions (on `date`) hold, an area whose conditions
    are None not read: its id, time and truths, and its place ($area: labels/ first, then $place*)."""
    columns = ["partner_inference_id", "ground_truth_timestamp", "ingested_at", *truths]
    placed = ["$area", *(f"$place{n}" for n in range(len(tables.place)))]

    def area(name: str, rank: int, days: list[exp.Expression]) -> exp.Select:
        return (
            exp.select(
                *[_col(c) for c in columns],
                exp.alias_(exp.Literal.number(rank), "$area", quoted=True),
                *[exp.alias_(_col(p), f"$place{n}", quoted=True) for n, p in enumerate(tables.place)],
            )
            .from_(_table(name))
            .where(_all(days))
        )

    read = [
        area(name, rank, days)
        for rank, (name, days) in enumerate(((tables.labels, labels), (tables.ground_truth, ground_truth)))
        if days is not None
    ] or [area(tables.labels, 0, [exp.false()])]  # neither area: no rows
    received: exp.Expression = read[0] if len(read) == 1 else exp.union(*read, distinct=False)
    ranked = exp.select(
        *[_col(c) for c in [*columns, *placed]],
        _first_of(
            ["partner_inference_id"],
            [
                _ordered("ground_truth_timestamp", descending=True),
                _ordered("ingested_at", descending=True),
                *[_ordered(p) for p in placed],
            ],
        ),
    ).from_(received.subquery("received"))
    return (
        exp.select(*[_col(c) for c in ["partner_inference_id", "ground_truth_timestamp", *truths, *placed]])
        .from_(ranked.subquery("ranked"))
        .where(exp.EQ(this=_col("$first"), expression=exp.Literal.number(1)))
    )


def _source_rows(
    plan: Plan, tables: SqlTables, first: date | None, last: date | None, label_days: LabelDays | None = None
) -> tuple[exp.Select, list[str]]:
    """The rows a query reads, before its filter, and the columns giving their order in the lake
    (NotInSql when a place column has an attribute's name: it would be read as the other). Ground
    truth is read from the days `label_days` names (None: every day)."""
    names = {n.lower() for n in plan.types}
    for place in tables.place:
        if place.lower() in names:
            raise NotInSql(f"the attribute {place!r} has the name of the lake's place column", field="from")
    source = plan.query.from_
    places = [f"$place{n}" for n in range(len(tables.place))]
    if source == "inference":
        return _inference_rows(plan, tables, first, last, plan.needs_ground_truth), places
    if source == "reference":
        placed = [exp.alias_(_col(p), f"$place{n}", quoted=True) for n, p in enumerate(tables.place)]
        return exp.select(*[_col(c) for c in plan.columns()], *placed).from_(_table(tables.reference)), places
    if source == "ground_truth":  # every id's latest, whatever its day (LakeWindow.ground_truth())
        truths = [a.name for a in plan.model.by_stage(*GROUND_TRUTH_STAGES)]
        labels: list[exp.Expression] | None = []
        received: list[exp.Expression] | None = []
        if label_days is not None:
            labels, received = (
                None if span is None else _between_days(*span)
                for span in (label_days.labels, label_days.ground_truth)
            )
        return _latest_truth(tables, truths, labels, received), ["$area", *places]
    raise NotInSql(f"queries from {source!r} are not computed in SQL", field="from")


# -- the query --------------------------------------------------------------------------------------


def _aggregates(plan: Plan) -> dict[str, Aggregate]:
    """The aggregates metrics.query.run computes (labelled_count beside performance functions)."""
    aggregates: dict[str, Aggregate] = dict(plan.functions)
    if any(f.needs_ground_truth for f in plan.functions.values()) and "labelled_count" not in aggregates:
        aggregates["labelled_count"] = LabelledCount(
            [a.name for a in plan.model.by_stage(*GROUND_TRUTH_STAGES)]
        )
    if not aggregates:
        aggregates["__rows"] = LabelledCount([])
    return aggregates


def query_sql(
    query: Query, model: Model, tables: SqlTables, dialect: Dialect, label_days: LabelDays | None = None
) -> SqlQuery:
    """The query as one SQL statement in `dialect`, and the decoding of its result into the rows
    metrics.query.run gives over the same lake (module docstring). A ground_truth query reads the
    days `label_days` names (None: every day, which Athena's projection enumerates from 1970 on);
    its result decodes the same either way."""
    plan = Plan(query, model)
    first, last = filters.date_range(query.filter) if query.from_ in DAILY_SOURCES else (None, None)
    rows, placed = _source_rows(plan, tables, first, last, label_days)
    source = rows.subquery("w")
    conditions = [condition_sql(c, plan.types, f"filter[{i}]") for i, c in enumerate(query.filter)]
    if not plan.functions and not plan.rounded:
        return _plain(plan, source, conditions, placed, dialect)
    keys = [key for key, _ in plan.keys]
    key_values: list[exp.Expression] = []
    for key, output in plan.keys:
        if key.startswith("__round_"):
            key_values.append(_rounded(*plan.rounded[output]))
        else:
            key_values.append(_col(key.removeprefix("__key_")))
    aggregates = _aggregates(plan)
    translated = {alias: _states(aggregate, alias, plan) for alias, aggregate in aggregates.items()}
    first_place = placed[0] if plan.query.order_by and keys and len(placed) == 1 else None
    outer, sets = _grouped(
        source,
        conditions,
        key_values,
        [(found.extra[1] if found.extra else None, found.states) for found in translated.values()],
        first_place,
    )
    key_names = [f"k{n}" for n in range(len(keys))]
    if all(found.extra is None for found in translated.values()):  # one result row per group
        outer = _top(plan, outer, list(aggregates.items()), first_place is not None)
    sql = _checked(outer.sql(dialect=dialect))

    def decode(result: pa.Table) -> list[dict[str, Any]]:
        results: dict[str, pa.Table] = {}
        for index, (alias, aggregate) in enumerate(aggregates.items()):
            found = translated[alias]
            part = _part(result, sets[index])
            if "__first_place" in part.column_names:
                part = part.sort_by("__first_place")
            columns: dict[str, pa.Array | pa.ChunkedArray] = {}
            for (key, _), name in zip(plan.keys, key_names, strict=True):
                columns[key] = _typed(part.column(name), _key_type(plan, key))
            if found.extra is not None:
                columns[found.extra[0]] = found.extra[2](_chunks(part.column(f"x{index}")))
            for name, op, _ in found.states:
                columns[f"s_{name}__{op}"] = _typed(part.column(f"a{index}_s_{name}__{op}"), pa.float64())
            placed_once = found.extra is None and "__first_place" in part.column_names
            if placed_once:  # one row per group: its place rides through merge as an extra key
                columns["__first_place"] = part.column("__first_place")
            states = aggregate.merge([pa.table(columns)], keys)
            if placed_once:  # in the groups' order (Arrow's group_by need not keep it)
                states = states.sort_by("__first_place").drop_columns(["__first_place"])
            states = _one_row_per_group(states, keys)
            results[alias] = states.select(keys).append_column("__value", aggregate.finalize(states, keys))
        return _assemble(plan, results, keys)

    return SqlQuery(sql=sql, decode=decode)


def _top(
    plan: Plan, grouped: exp.Select, aggregates: list[tuple[str, Aggregate]], placed: bool
) -> exp.Select:
    """The groups a limited query keeps, ordered and limited in SQL (so a top-N over more groups
    than the service reads back answers), or `grouped` as it is when SQL cannot order them as
    metrics.query's _order_and_limit does.

    With an order_by, each item is SQL's when it names a group key or a function whose value is one
    exact operation on its states (_finalized), in the same direction and null placement, then the
    groups' first place in the lake (`placed`: __first_place) for ties, the order decode gives them.
    No margin of groups past the limit is asked: the values SQL orders are the states it returns,
    which decode merges as they are (one row per group: a sum of one value is itself) and finalizes
    by the same IEEE operation, so SQL's order is Python's; where SQL compares otherwise (NaN, -0.0)
    the value is compared as Python compares it (_comparable). An engine may add a group's floats
    in another order than the Lambda does, or than its last run: the answer is ordered by this
    run's values, as without a limit, and a margin would not change that. It would make a limit
    near the rows the service reads back (services.monitoring.SQL_RESULT_ROWS) answer 413.
    Without an order_by, the engine orders groups by the text of their keys, nulls last: in SQL for
    keys whose text orders as their values (strings, booleans, timestamps: ISO text of one time
    zone) or as SQL's text (integers); not for floats (Python's and SQL's text of a float differ)."""
    limit = plan.query.limit
    if not limit or not plan.keys:
        return grouped
    keys = {output: (key, f"k{n}") for n, (key, output) in enumerate(plan.keys)}
    order: list[exp.Ordered] = []
    if plan.query.order_by:
        if not placed:  # ties would be cut in no known order
            return grouped
        finalized = {
            alias: (index, a) for index, (alias, a) in enumerate(aggregates) if not alias.startswith("__")
        }
        for ordering in plan.query.order_by:
            name = ordering.alias or ordering.property or ""
            name = name if name in keys or name in finalized else dict(plan.properties).get(name, name)
            if name in keys:
                key, column = keys[name]
                value = _col(column)
                value = _comparable(value) if pa.types.is_floating(_key_type(plan, key)) else value
            elif name in finalized:
                value = _finalized(*finalized[name])
            else:
                value = None
            if value is None:
                return grouped
            descending = ordering.direction == "desc"  # Python's reversed sort puts nulls first
            order.append(exp.Ordered(this=value, desc=descending, nulls_first=descending))
        order.append(_ordered("__first_place"))
    else:
        for key, column in keys.values():
            key_type = _key_type(plan, key)
            if pa.types.is_integer(key_type):
                order.append(_ordered(exp.cast(_col(column), "VARCHAR")))
            elif (
                pa.types.is_string(key_type)
                or pa.types.is_boolean(key_type)
                or pa.types.is_timestamp(key_type)
            ):
                order.append(_ordered(column))
            else:
                return grouped
    return exp.select(exp.Star()).from_(grouped.subquery("g")).order_by(*order).limit(limit)


def _finalized(index: int, aggregate: Aggregate) -> exp.Expression | None:
    """The aggregate's value (its finalize()) from its states in _grouped's output, as SQL; None
    for one whose value is not one exact operation on them (a p-value, a confusion-matrix rate).
    Counts are never null, NaN or -0.0; a sum of values is read as aggregates.state reads it."""

    def state(name: str, op: str = "sum") -> exp.Expression:
        return _col(f"a{index}_s_{name}__{op}")

    def over(total: exp.Expression, count: exp.Expression) -> exp.Expression:  # aggregates.ratio
        share = exp.Div(this=exp.cast(total, _DOUBLE), expression=exp.cast(count, _DOUBLE))
        return _where_counted(count, share)

    if isinstance(aggregate, LabelledCount) or type(aggregate) is Count:
        return state("n")
    if type(aggregate) is Summary:
        if aggregate.name in ("min", "max"):
            return _comparable(state("v", aggregate.name))
        if aggregate.name == "avg":
            return _comparable(over(_summed(state("v")), state("n")))
        return _comparable(_where_counted(state("n"), _summed(state("v"))))
    if type(aggregate) is Rate:
        return over(state("hit"), state("n"))
    if type(aggregate) is Integrity:
        return over(state("bad"), state("n"))
    return None


def _where_counted(count: exp.Expression, value: exp.Expression) -> exp.Expression:
    """`value` where `count` > 0, else null (NaN in finalize, null in the answer)."""
    return exp.Case(ifs=[exp.If(this=exp.GT(this=count, expression=exp.Literal.number(0)), true=value)])


def _summed(value: exp.Expression) -> exp.Expression:
    """A DOUBLE sum state as aggregates.state gives it to finalize (np.nan_to_num): NaN (values
    with a NaN, or inf and -inf) as 0, an infinity as the largest float of its sign."""
    largest = _double(sys.float_info.max)
    return exp.Case(
        ifs=[
            exp.If(this=exp.IsNan(this=value.copy()), true=_double(0.0)),
            exp.If(this=exp.GT(this=value.copy(), expression=largest), true=largest.copy()),
            exp.If(
                this=exp.LT(this=value.copy(), expression=exp.Neg(this=largest.copy())),
                true=exp.Neg(this=largest.copy()),
            ),
        ],
        default=value,
    )


def _comparable(value: exp.Expression) -> exp.Expression:
    """A DOUBLE value ordered as Python orders it in the answer: NaN as null (the answer has no
    NaN), -0.0 as 0.0 (equal in Python, so tied)."""
    return exp.Case(
        ifs=[
            exp.If(this=exp.IsNan(this=value.copy()), true=exp.null()),
            exp.If(this=exp.EQ(this=value.copy(), expression=_double(0.0)), true=_double(0.0)),
        ],
        default=value,
    )


def drift_base(request: DriftQuery, model: Model, load: Loader) -> pa.Table:
    """The base side's rows as the data_drift engine reads them: what drift_sql fits its bins on
    (a reference is small; read in-Lambda with the window loader)."""
    types = column_types(model, "inference" if request.base.source == "inference" else "reference")
    return drift._load(load, request.base, request.properties, types, "base", model)


@dataclass(frozen=True)
class DriftBins:
    """What a data_drift request's answer takes from its base: each property's bins (fitted as the
    engine fits them) and the base's count per bin. Held as JSON in the query's tag, so a poll
    answers over the base as it was when the query started, without reading it again (an open
    inference window, or a reference replaced since, would give other counts)."""

    profiles: dict[str, binning.Profile]
    counts: dict[str, dict[int | str, float]]

    def to_json(self) -> dict[str, Any]:
        """The bins as JSON values: edges as floats (exact through JSON), counts as [label, count]
        pairs (a numeric property's labels are bin indexes, a categorical one's text). A categorical
        property's categories are its labels but the missing values' (binning.fit, _base_counts), so
        they are not written twice (a property of many categories: its tag nearly halves)."""
        return {
            name: {
                "numeric": profile.numeric,
                "edges": [float(e) for e in profile.edges] if profile.edges is not None else None,
                "counts": [[label, count] for label, count in self.counts[name].items()],
            }
            for name, profile in self.profiles.items()
        }

    @classmethod
    def from_json(cls, found: Any) -> DriftBins:
        """The bins to_json wrote; ValueError for anything else (the tag is read back from the text
        of a query in the workgroup, which anyone who may start queries there could have written):
        a numeric property's labels are indexes of its bins, a categorical one's text, each count a
        finite number from 0, so the statistics computed over them cannot fail."""
        if not isinstance(found, dict):
            raise ValueError("the bins are not an object")
        profiles: dict[str, binning.Profile] = {}
        counts: dict[str, dict[int | str, float]] = {}
        for name, held in found.items():
            try:
                numeric, edges, pairs = held["numeric"], held["edges"], held["counts"]
                edges = None if edges is None else np.array(edges, dtype=np.float64)
                labels = [label for label, _ in pairs]
                values = np.array([count for _, count in pairs], dtype=np.float64)
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(f"{name!r}: not the bins to_json writes ({error!r})") from None
            if numeric is True:  # edges rising (np.unique's), labels bin indexes and the missing bin's
                valid = edges is not None and edges.ndim == 1 and bool(np.all(np.diff(edges) > 0))
                valid = valid and not np.isnan(edges).any()
                profile = binning.Profile(True, edges)
                valid = valid and all(type(x) is int and 0 <= x <= profile.size for x in labels)
            else:  # labels as text: the categories, and the missing values'
                valid = numeric is False and edges is None and all(type(x) is str for x in labels)
                profile = binning.Profile(False, categories=tuple(sorted(set(labels) - {drift.MISSING})))
            valid = valid and 0 < len(set(labels)) == len(labels)  # a base has rows (NothingToCompare)
            if not (valid and bool(np.all(np.isfinite(values) & (values >= 0)))):
                raise ValueError(f"{name!r}: not the bins to_json writes")
            profiles[name] = profile
            counts[name] = dict(zip(labels, values.tolist(), strict=True))
        return cls(profiles, counts)


def drift_bins(request: DriftQuery, model: Model, base: pa.Table) -> DriftBins:
    """The request's bins and base counts from its base's rows (drift_base), after the engine's own
    checks of the request (its 400s)."""
    if request.metric == "Thresholds":
        raise NotInSql("Thresholds is computed from the base alone: run it in-Lambda", field="metric")
    drift.run_drift(request, model, _base_only(base))  # the engine's own checks, no target
    categorical = {a.name: a.categorical for a in model.attributes}
    profiles = {}
    for p in request.properties:
        profile = binning.fit(drift._column(base, p), request.num_bins, categorical.get(p, False))
        if request.metric in drift.BINNED_KS and profile.numeric:
            profile = binning.fit(drift._column(base, p), binning.KS_BINS, False)
        profiles[p] = profile
    counts = {p: drift._base_counts(profiles[p], drift._column(base, p)) for p in request.properties}
    return DriftBins(profiles, counts)


def drift_sql(
    request: DriftQuery, model: Model, tables: SqlTables, dialect: Dialect, bins: DriftBins
) -> SqlQuery:
    """The data_drift request's target side as one SQL statement: counts per window (group_by,
    rollup) and bin of each property, in the bins drift_bins fitted on the base; SqlQuery.rows()
    computes the statistic per window with the engine's code. Thresholds (from the base alone) is
    not SQL's."""
    if request.metric == "Thresholds":
        raise NotInSql("Thresholds is computed from the base alone: run it in-Lambda", field="metric")
    profiles = bins.profiles
    groups = [str(g.get("property")) for g in request.group_by]
    target = request.target
    wanted = [*request.properties, *groups]
    wanted += (
        ["batch_id"] if request.rollup == "batch_id" else ["inference_timestamp"] if request.rollup else []
    )
    plan = Plan(
        Query.model_validate(
            {
                "select": [{"property": c} for c in dict.fromkeys(wanted)],
                "filter": [c.model_dump() for c in target.filter],
                "from": target.source,
            }
        ),
        model,
    )
    first, last = filters.date_range(target.filter) if target.source == "inference" else (None, None)
    rows, _ = _source_rows(plan, tables, first, last)
    conditions = [condition_sql(c, plan.types, f"target.filter[{i}]") for i, c in enumerate(target.filter)]
    key_values = [_col(g) for g in groups]
    key_types = [ARROW_TYPES[plan.types[g]] for g in groups]
    if request.rollup == "batch_id":
        key_values.append(_col("batch_id"))
        key_types.append(pa.string())
    elif request.rollup:
        key_values.append(_rounded("inference_timestamp", request.rollup, 1))
        key_types.append(TIMESTAMP)
    parts: list[tuple[exp.Expression | None, list[tuple[str, str, exp.Expression]]]] = []
    for name in request.properties:
        profile = profiles[name]
        if profile.numeric:
            value = _number(name, plan.types)
            label: exp.Expression = exp.Case(
                ifs=[exp.If(this=_is_null(value), true=exp.Literal.number(profile.size))],
                default=_edges_below(value, [float(e) for e in profile.edges]),
            )
        else:  # the raw value, as the engine's text by rows()
            label = _col(name)
        parts.append((label, [("n", "sum", exp.Literal.number(1))]))
    outer, sets = _grouped(rows.subquery("w"), conditions, key_values, parts)
    sql = _checked(outer.sql(dialect=dialect))
    keys = [f"k{n}" for n in range(len(key_values))]

    def decode(result: pa.Table) -> list[dict[str, Any]]:
        windows: dict[tuple, dict[str, Any]] = {}
        for index, name in enumerate(request.properties):
            part = _part(result, sets[index])
            labels = _chunks(part.column(f"x{index}"))
            if profiles[name].numeric:
                labels = _int64(labels)
            else:
                text = pc.cast(pc.cast(labels, ARROW_TYPES[plan.types[name]]), pa.string())
                labels = pc.fill_null(text, drift.MISSING)
            merged = pa.table(
                {
                    **{k: _typed(part.column(k), t) for k, t in zip(keys, key_types, strict=True)},
                    "__bin": labels,
                    "__n_sum_sum": _int64(_chunks(part.column(f"a{index}_s_n__sum"))),
                }
            )
            for group, counts in drift._per_group(merged, keys).items():
                window = windows.setdefault(group, drift._labels(group, groups, request.rollup))
                window[name] = drift._value(request.metric, profiles[name], bins.counts[name], counts)
        return _drift_rows(request, groups, windows)

    return SqlQuery(sql=sql, decode=decode)


def _base_only(base: pa.Table) -> Loader:
    """A loader giving the base at its first read (the base's) and no rows after (the target's)."""
    served = [base]

    def load(*_: Any) -> list[pa.Table]:
        return [served.pop()] if served else []

    return load


def _drift_rows(
    request: DriftQuery, groups: list[str], windows: dict[tuple, dict[str, Any]]
) -> list[dict[str, Any]]:
    """The data_drift answer from each window's values, as sagewatch.metrics.drift.run_drift ends."""
    if not windows:
        empty = {**{p: None for p in request.properties}, "reason": "the target window has no rows"}
        return [empty | ({"aggregate": None} if request.aggregate else {})]
    if request.aggregate:
        for window in windows.values():
            scores = {p: window.get(p) for p in request.properties}
            window["aggregate"] = (
                family_wise(list(scores.values()))
                if request.aggregate == "family_wise"
                else drift_aggregate(scores, request.aggregate, request.weights)
            )
    rows = sorted(windows.values(), key=lambda r: tuple(str(r.get(k)) for k in [*groups, "rollup"] if k))
    return [drift._clean(r) for r in rows]


def _grouped(
    source: exp.Subquery,
    conditions: list[exp.Expression],
    key_values: list[exp.Expression],
    parts: list[tuple[exp.Expression | None, list[tuple[str, str, exp.Expression]]]],
    first_place: str | None = None,
) -> tuple[exp.Select, list[int | None]]:
    """One scan of the filtered rows reduced per group: output k<n> per key, and per part <i> its
    extra key x<i> and states a<i>_s_<name>__<op>. Parts with different extra keys are GROUPING SETS
    (a `__set` column tells their rows apart: the id each part's rows carry, else None); with
    `first_place`, each group's first place in the lake (`__first_place`)."""
    keyed = [exp.alias_(value, f"k{n}", quoted=True) for n, value in enumerate(key_values)]
    reduced: list[exp.Expression] = []
    extras: list[str] = []
    for index, (extra, states) in enumerate(parts):
        if extra is not None:
            keyed.append(exp.alias_(extra, f"x{index}", quoted=True))
            extras.append(f"x{index}")
        for name, op, value in states:
            keyed.append(exp.alias_(value, f"v{index}_{name}", quoted=True))
            merge = {"sum": exp.Sum, "min": exp.Min, "max": exp.Max}[op]
            reduced.append(
                exp.alias_(merge(this=_col(f"v{index}_{name}")), f"a{index}_s_{name}__{op}", quoted=True)
            )
    if first_place is not None:  # groups tied by an order keep the engine's order: their first row's
        keyed.append(_col(first_place))
        reduced.append(exp.alias_(exp.Min(this=_col(first_place)), "__first_place", quoted=True))
    inner = exp.select(*keyed).from_(source).where(_all(conditions))
    key_names = [f"k{n}" for n in range(len(key_values))]
    outer = exp.select(*[_col(k) for k in key_names], *[_col(x) for x in extras])
    plain = any(extra is None for extra, _ in parts)
    if extras and (len(extras) > 1 or plain):
        sets = [exp.Tuple(expressions=[_col(k) for k in key_names])] if plain else []
        sets += [exp.Tuple(expressions=[_col(k) for k in [*key_names, x]]) for x in extras]
        outer = outer.select(
            exp.alias_(exp.Grouping(expressions=[_col(x) for x in extras]), "__set", quoted=True)
        )
        outer = outer.select(*reduced).from_(inner.subquery("r"))
        outer.set("group", exp.Group(expressions=[exp.GroupingSets(expressions=sets)]))
        everything = (1 << len(extras)) - 1  # GROUPING's bit of a column is 1 where it is not grouped
        ids: list[int | None] = [
            everything
            if extra is None
            else everything & ~(1 << (len(extras) - 1 - extras.index(f"x{index}")))
            for index, (extra, _) in enumerate(parts)
        ]
        return outer, ids
    outer = outer.select(*reduced).from_(inner.subquery("r"))
    if key_names or extras:
        outer = outer.group_by(*[_col(k) for k in [*key_names, *extras]])
    return outer, [None] * len(parts)


def _part(result: pa.Table, set_id: int | None) -> pa.Table:
    """The result rows of one grouping set (all of them without sets)."""
    if set_id is None:
        return result
    return result.filter(pc.equal(pc.cast(result.column("__set"), pa.int64()), set_id))


# Athena refuses a query string longer than this (bytes)
ATHENA_QUERY_BYTES = 262_144


def _checked(sql: str) -> str:
    """The SQL, refused (NotInSql) when longer than Athena takes."""
    if len(sql.encode()) > ATHENA_QUERY_BYTES:
        raise NotInSql(
            f"the SQL is {len(sql.encode()):,} bytes, past Athena's {ATHENA_QUERY_BYTES:,}: "
            "fewer bins or functions per query",
            field="select",
        )
    return sql


def _plain(
    plan: Plan, source: exp.Subquery, conditions: list[exp.Expression], placed: list[str], dialect: Dialect
) -> SqlQuery:
    """Plain rows: the selected properties, ordered and limited as metrics.query's _rows does (ties,
    and the rows a limit keeps without an order, in the lake's order: SqlTables.place)."""
    names = [p for _, p in plan.properties]
    columns = list(plan.types) if "*" in names else list(dict.fromkeys(names))
    # output names of our own: Athena gives its column names lower-cased
    outputs = {c: f"c{n}" for n, c in enumerate(columns)}
    order: list[exp.Ordered] = []
    for index, ordering in enumerate(plan.query.order_by):
        name = ordering.alias or ordering.property
        prop = dict(plan.properties).get(name, name)
        if prop not in plan.types or prop not in columns:
            raise NotInSql(f"cannot order by {name!r}: it is not in the result", field=f"order_by[{index}]")
        descending = ordering.direction == "desc"  # Python's reversed sort puts nulls first
        # by its output name: ORDER BY reads an output's name before a column's (an attribute `c0`)
        order.append(exp.Ordered(this=_col(outputs[prop]), desc=descending, nulls_first=descending))
    order += [_ordered(p) for p in placed]
    select = exp.select(*[exp.alias_(_col(c), o, quoted=True) for c, o in outputs.items()])
    select = select.from_(source).where(_all(conditions))
    if order:
        select = select.order_by(*order)
    limit = plan.query.limit or (None if plan.query.order_by else DEFAULT_ROW_LIMIT)
    if limit:
        select = select.limit(limit)
    sql = _checked(select.sql(dialect=dialect))

    def decode(result: pa.Table) -> list[dict[str, Any]]:
        typed = pa.table(
            {c: _typed(result.column(f"c{n}"), ARROW_TYPES[plan.types[c]]) for n, c in enumerate(columns)}
        )
        return _rows(plan, [typed])

    return SqlQuery(sql=sql, decode=decode)


def duckdb_views(model: Model, tables: SqlTables, globs: dict[str, str | None]) -> list[str]:
    """DuckDB statements making `tables`' relations over local Parquet files of the lake's layout
    (`<area>/.../date=<day>/<name>.parquet`): `globs` maps inferences, labels, ground_truth and
    reference to a glob of their files (None: there are none), read in the order S3 lists keys
    (sorted). Every column of the model's schema is there, typed, as in the Glue tables, whether or
    not a file has it, with the day of its file's folder as `date` and its place in the lake
    (`tables.place`: DUCKDB_PLACE). Any attribute name
    reads its own column: each file column is read under a name of ours (read_parquet's `schema`
    map by name) so none takes the name of the reader's virtual `filename`, `file_row_number` and
    `file_index`, no folder name becomes a column (no hive partitioning: a folder `model_id=` is
    not an attribute `model_id`), and the columns of our own start with `$`."""
    schemas = {
        "inferences": inference_schema(model),
        "labels": ground_truth_schema(model),
        "ground_truth": ground_truth_schema(model),
        "reference": reference_schema(model),
    }
    unknown = [p for p in tables.place if p not in _LAKE_PLACES]
    if unknown:
        raise ValueError(f"duckdb_views gives no place column {unknown}: only {sorted(_LAKE_PLACES)}")
    statements = list(DUCKDB_SETTINGS)
    for area, schema in schemas.items():
        typed = {f.name: _sql_type_of(f.type) for f in schema}
        days = (
            "NULL"
            if area == "reference"
            else f"NULLIF(regexp_extract(filename, {_quoted(_DAY_OF_PATH)}, 1), '')"
        )
        lake = {"date": (days, "VARCHAR"), **{p: _LAKE_PLACES[p] for p in tables.place}}
        pattern = globs.get(area)
        # the files listed here, sorted, so file_index follows the lake's order (DuckDB's own
        # expansion of a glob need not be sorted)
        files = sorted(glob.glob(pattern)) if pattern is not None else []
        if not files:
            outputs = [f"CAST(NULL AS {_duckdb_type(t)}) AS {_name(n)}" for n, t in typed.items()]
            outputs += [f"CAST(NULL AS {t}) AS {_name(n)}" for n, (_, t) in lake.items()]
            body = f"SELECT {', '.join(outputs)} WHERE FALSE"
        else:
            renamed = {n: f"$c{i}" for i, n in enumerate(typed)}
            fields = ", ".join(
                f"{_quoted(n)}: {{'name': {_quoted(renamed[n])}, 'type': {_quoted(_duckdb_type(t))}, "
                "'default_value': NULL}"
                for n, t in typed.items()
            )
            outputs = [f"{_name(renamed[n])} AS {_name(n)}" for n in typed]
            outputs += [f"CAST({value} AS {t}) AS {_name(n)}" for n, (value, t) in lake.items()]
            body = (
                f"SELECT {', '.join(outputs)} FROM read_parquet([{', '.join(map(_quoted, files))}], "
                f"hive_partitioning = false, schema = MAP {{{fields}}})"
            )
        name = _table(getattr(tables, area)).sql(dialect="duckdb")
        statements.append(f"CREATE OR REPLACE VIEW {name} AS {body}")
    return statements


# The column duckdb_views gives each row's place in the lake (SqlTables.place): its file's index in
# the sorted list of files and its row in the file, as one BIGINT (a file holds < 2**32 rows).
DUCKDB_PLACE = "$place"
# The place columns duckdb_views can give (read_parquet's virtual columns): DUCKDB_PLACE, or the
# file and row apart (`filename`, `file_row_number`: as an attribute of those names would be read,
# a relation naming them is for a model without such attributes)
_LAKE_PLACES = {
    DUCKDB_PLACE: ("CAST(file_index AS BIGINT) * 4294967296 + file_row_number", "BIGINT"),
    "filename": ("filename", "VARCHAR"),
    "file_row_number": ("file_row_number", "BIGINT"),
}
# A lake file's day: its folder `date=<YYYY-MM-DD>/` (sagewatch.stores.lake)
_DAY_OF_PATH = r"/date=([0-9]{4}-[0-9]{2}-[0-9]{2})/[^/]*$"


def _quoted(text: str) -> str:
    return exp.Literal.string(text).sql(dialect="duckdb")


def _name(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect="duckdb")


def _duckdb_type(sql_type: str) -> str:
    return exp.DataType.build(sql_type, dialect="trino").sql(dialect="duckdb")


def _sql_type_of(arrow_type: pa.DataType) -> str:
    return next(t for v, t in _SQL_TYPES.items() if ARROW_TYPES[v] == arrow_type)


def _chunks(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _typed(values: pa.Array | pa.ChunkedArray, arrow_type: pa.DataType) -> pa.Array:
    """A result column as the engine's type (a timestamp as UTC microseconds)."""
    values = _chunks(values)
    if values.type == arrow_type:
        return values
    if pa.types.is_timestamp(arrow_type) and pa.types.is_timestamp(values.type) and values.type.tz is None:
        values = pc.assume_timezone(values, "UTC")
    return pc.cast(values, arrow_type)


def _key_type(plan: Plan, key: str) -> pa.DataType:
    if key.startswith("__round_"):
        return TIMESTAMP
    return ARROW_TYPES[plan.types[key.removeprefix("__key_")]]


__all__ = [
    "DUCKDB_PLACE",
    "DUCKDB_SETTINGS",
    "DriftBins",
    "LabelDays",
    "NotInSql",
    "SqlQuery",
    "SqlTables",
    "condition_sql",
    "drift_base",
    "drift_bins",
    "drift_sql",
    "duckdb_views",
    "like_pattern",
    "query_sql",
]
