"""Query filters: conditions on known columns, turned into array masks. No string is ever evaluated.

A condition is {"property", "comparator", "value"}; conditions are ANDed. The property must be a
column the query can see (an attribute of the model or a lake column) and the value is typed as
that column, so `{"property": "age", "comparator": "gt", "value": "30"}` compares numbers.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict

from sagewatch.errors import InvalidInput
from sagewatch.schema import ValueType
from sagewatch.values import coerce

COMPARATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "notin", "like", "NotNull", "IsNull")
_ALIASES = {
    "notnull": "NotNull",
    "isnull": "IsNull",
    "not_null": "NotNull",
    "is_null": "IsNull",
    "nin": "notin",
}
_ORDERED = {
    "lt": pc.less,
    "lte": pc.less_equal,
    "gt": pc.greater,
    "gte": pc.greater_equal,
    "eq": pc.equal,
    "ne": pc.not_equal,
}


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    property: str
    comparator: str
    value: Any = None


def comparator_of(name: str, field: str) -> str:
    canonical = _ALIASES.get(name.lower(), name) if name not in COMPARATORS else name
    if canonical not in COMPARATORS:
        raise InvalidInput(f"unknown comparator {name!r}; use one of {', '.join(COMPARATORS)}", field=field)
    return canonical


def typed_value(value: Any, value_type: ValueType, field: str) -> pa.Scalar:
    """A filter value as the column's type; 400 naming the field when it is not one."""
    typed, invalid = coerce(pa.array([value]), value_type)
    if invalid.any() or typed[0].as_py() is None:
        raise InvalidInput(f"{value!r} is not {value_type.article}", field=field)
    return typed[0]


def mask(table: pa.Table, condition: Condition, types: dict[str, ValueType], field: str) -> pa.Array:
    """Rows of `table` meeting the condition (nulls never meet an ordered comparison)."""
    if condition.property not in types:
        raise InvalidInput(f"unknown property {condition.property!r} in a filter", field=f"{field}.property")
    comparator = comparator_of(condition.comparator, f"{field}.comparator")
    value_type = types[condition.property]
    column = (
        table.column(condition.property)
        if condition.property in table.column_names
        else pa.nulls(table.num_rows, pa.string())
    )
    if comparator == "IsNull":
        return pc.is_null(column)
    if comparator == "NotNull":
        return pc.is_valid(column)
    if comparator in ("in", "notin"):
        if not isinstance(condition.value, list):
            raise InvalidInput(f"{comparator} takes a list of values", field=f"{field}.value")
        values = [typed_value(v, value_type, f"{field}.value").as_py() for v in condition.value]
        found = pc.is_in(column, value_set=pa.array(values, type=column.type))
        return found if comparator == "in" else pc.invert(found)
    if comparator == "like":
        if value_type is not ValueType.STRING:
            raise InvalidInput("like compares text attributes only", field=f"{field}.comparator")
        return pc.match_like(column, str(condition.value))
    scalar = typed_value(condition.value, value_type, f"{field}.value")
    return _ORDERED[comparator](column, scalar.cast(column.type) if column.type != scalar.type else scalar)


def apply(table: pa.Table, conditions: list[Condition], types: dict[str, ValueType], field: str) -> pa.Table:
    """The rows meeting every condition."""
    if not conditions:
        return table
    keep = None
    for index, condition in enumerate(conditions):
        found = mask(table, condition, types, f"{field}[{index}]")
        keep = found if keep is None else pc.and_kleene(keep, found)
    return table.filter(pc.fill_null(keep, False))


def date_range(
    conditions: list[Condition], column: str = "inference_timestamp"
) -> tuple[date | None, date | None]:
    """Days that can hold rows meeting the conditions on a time column (for partition pruning)."""
    first: date | None = None
    last: date | None = None
    for condition in conditions:
        if condition.property != column:
            continue
        comparator = comparator_of(condition.comparator, "filter")
        if comparator not in ("gt", "gte", "lt", "lte", "eq"):
            continue
        moment = typed_value(condition.value, ValueType.TIMESTAMP, "filter").as_py()
        if not isinstance(moment, datetime):
            continue
        day = moment.date()
        if comparator in ("gt", "gte", "eq"):
            first = day if first is None else max(first, day)
        if comparator in ("lt", "lte", "eq"):
            end = (
                day - timedelta(days=1)
                if comparator == "lt" and moment == datetime.combine(day, datetime.min.time(), moment.tzinfo)
                else day
            )
            last = end if last is None else min(last, end)
    return first, last
