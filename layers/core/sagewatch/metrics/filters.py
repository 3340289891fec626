"""Query filters: conditions on known columns, turned into array masks. No string is ever evaluated.

A condition is {"property", "comparator", "value"}; conditions are ANDed. The property must be a
column the query can see (an attribute of the model or a lake column) and the value is typed as
that column, so `{"property": "age", "comparator": "gt", "value": "30"}` compares numbers.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, PrivateAttr

from sagewatch.errors import InvalidInput
from sagewatch.schema import ValueType
from sagewatch.values import ARROW_TYPES, array_of, coerce

# An `in` list this long is a join, not a filter: ask for it in parts.
MAX_FILTER_VALUES = 10_000
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
    """A filter: {property, comparator, value}; a query's conditions are ANDed."""

    model_config = ConfigDict(extra="forbid")

    property: str
    comparator: str
    value: Any = None
    # the value typed as its column, kept so a query over many lake files types it once
    _typed: dict[ValueType, pa.Array] = PrivateAttr(default_factory=dict)

    def typed(self, value_type: ValueType, field: str) -> pa.Array:
        """The value (a one-element array) or, for in/notin, the list, typed as `value_type`."""
        if value_type not in self._typed:
            many = isinstance(self.value, list)
            self._typed[value_type] = typed_values(self.value if many else [self.value], value_type, field)
        return self._typed[value_type]


def comparator_of(name: str, field: str) -> str:
    """A comparator's canonical name (aliases such as `nin` or `is_null`); 400 naming `field` if unknown."""
    canonical = _ALIASES.get(name.lower(), name) if name not in COMPARATORS else name
    if canonical not in COMPARATORS:
        raise InvalidInput(f"unknown comparator {name!r}; use one of {', '.join(COMPARATORS)}", field=field)
    return canonical


def typed_value(value: Any, value_type: ValueType, field: str) -> pa.Scalar:
    """A filter value as the column's type; 400 naming the field when it is not one."""
    return typed_values([value], value_type, field)[0]


def typed_values(values: list[Any], value_type: ValueType, field: str) -> pa.Array:
    """Filter values as the column's type, typed in one pass; 400 naming the first that is not one."""
    if isinstance(values, list) and len(values) > MAX_FILTER_VALUES:
        raise InvalidInput(f"{len(values)} values in one filter; at most {MAX_FILTER_VALUES}", field=field)
    typed, invalid = coerce(array_of(values), value_type)
    missing = typed.is_null().to_numpy(zero_copy_only=False)
    if (invalid | missing).any():
        first = int(np.flatnonzero(invalid | missing)[0])
        if isinstance(values[first], str) and not values[first].strip() and not invalid[first]:
            raise InvalidInput(
                "blank text is stored as a missing value (null): filter with IsNull / NotNull", field=field
            )
        raise InvalidInput(f"{values[first]!r} is not {_expected(value_type)}", field=field)
    return typed


def _expected(value_type: ValueType) -> str:
    if value_type is ValueType.TIMESTAMP:
        return "a time (ISO 8601, or epoch seconds)"
    return "a finite number" if value_type is ValueType.FLOAT else value_type.article


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
        values = condition.typed(value_type, f"{field}.value")
        found = pc.is_in(column, value_set=values.cast(column.type))
        return found if comparator == "in" else pc.invert(found)
    if comparator == "like":
        if value_type is not ValueType.STRING:
            raise InvalidInput("like compares text attributes only", field=f"{field}.comparator")
        return pc.match_like(column, str(condition.value))
    if isinstance(condition.value, list):
        raise InvalidInput(f"{comparator} takes one value, not a list", field=f"{field}.value")
    scalar = condition.typed(value_type, f"{field}.value")[0]
    return _ORDERED[comparator](column, scalar.cast(column.type) if column.type != scalar.type else scalar)


def check(conditions: list[Condition], types: dict[str, ValueType], field: str) -> None:
    """Every condition usable (property, comparator, typed value), checked before any data is read,
    so a bad filter is a 400 however large the window."""
    empty = pa.schema([(name, ARROW_TYPES[value_type]) for name, value_type in types.items()]).empty_table()
    apply(empty, conditions, types, field)


def apply(table: pa.Table, conditions: list[Condition], types: dict[str, ValueType], field: str) -> pa.Table:
    """The rows meeting every condition."""
    if not conditions:
        return table
    keep = None
    for index, condition in enumerate(conditions):
        found = mask(table, condition, types, f"{field}[{index}]")
        keep = found if keep is None else pc.and_kleene(keep, found)
    keep = pc.fill_null(keep, False)
    if pc.all(keep).as_py() is not False:  # every row meets them (a window's own day): no copy
        return table
    return table.filter(keep)


def date_range(
    conditions: list[Condition], column: str = "inference_timestamp"
) -> tuple[date | None, date | None]:
    """Days that can hold rows meeting the conditions on a time column (for partition pruning)."""
    first: date | None = None
    last: date | None = None
    for index, condition in enumerate(conditions):
        if condition.property != column:
            continue
        comparator = comparator_of(condition.comparator, f"filter[{index}].comparator")
        if comparator not in ("gt", "gte", "lt", "lte", "eq"):
            continue
        try:  # a bound past what Python's datetime holds (year 0 after a +14:00 offset) prunes nothing
            moment = typed_value(condition.value, ValueType.TIMESTAMP, f"filter[{index}].value").as_py()
        except (OverflowError, ValueError):
            continue
        if not isinstance(moment, datetime):
            continue
        day = moment.date()
        if comparator in ("gt", "gte", "eq"):
            first = day if first is None else max(first, day)
        if comparator in ("lt", "lte", "eq"):
            end = (
                max(day, date.min + timedelta(days=1)) - timedelta(days=1)
                if comparator == "lt" and moment == datetime.combine(day, datetime.min.time(), moment.tzinfo)
                else day
            )
            last = end if last is None else min(last, end)
    return first, last
