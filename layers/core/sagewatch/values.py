"""Typing raw values (CSV text, JSON numbers) as an attribute's value type, vectorized.

`coerce` never raises on a bad value: it returns the typed array, with nulls where the value was
missing or invalid, and a mask of the rows whose value was present but invalid, so the caller can
reject exactly those rows with a reason and keep the rest.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sagewatch.schema import Attribute, ValueType

ARROW_TYPES: dict[ValueType, pa.DataType] = {
    ValueType.INTEGER: pa.int64(),
    ValueType.FLOAT: pa.float64(),
    ValueType.BOOLEAN: pa.bool_(),
    ValueType.STRING: pa.string(),
    ValueType.TIMESTAMP: pa.timestamp("us", tz="UTC"),
}

_FLOAT_TEXT = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^[-+]?(nan|NaN|NAN|inf|Inf|INF|infinity|Infinity)$"
_INTEGER_TEXT = r"^[-+]?\d+(\.0*)?$"
_TIMESTAMP_TEXT = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$"
_TRUE = ["true", "t", "yes", "1", "1.0"]
_FALSE = ["false", "f", "no", "0", "0.0"]


def coerce(values: pa.Array | pa.ChunkedArray, value_type: ValueType) -> tuple[pa.Array, np.ndarray]:
    """(values as `value_type` with nulls where missing or invalid, mask of present-but-invalid rows)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    target = ARROW_TYPES[value_type]
    source = values.type
    if pa.types.is_null(source):
        return pa.nulls(len(values), target), np.zeros(len(values), dtype=bool)
    if pa.types.is_string(source) or pa.types.is_large_string(source):
        return _from_text(values.cast(pa.string()), value_type)
    if pa.types.is_integer(source) or pa.types.is_floating(source) or pa.types.is_boolean(source):
        return _from_number(values, value_type)
    if pa.types.is_timestamp(source) and value_type is ValueType.TIMESTAMP:
        return _timestamps(values), np.zeros(len(values), dtype=bool)
    # lists, structs: never a scalar attribute's value
    present = values.is_valid().to_numpy(zero_copy_only=False)
    return pa.nulls(len(values), target), present


def _mask(array: pa.Array) -> np.ndarray:
    return array.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)


def _from_text(text: pa.Array, value_type: ValueType) -> tuple[pa.Array, np.ndarray]:
    if value_type in (ValueType.FLOAT, ValueType.INTEGER):
        # Fast path: clean numbers (the usual case) cast directly; blanks are nulls.
        blank = pc.equal(pc.utf8_length(text), 0)
        try:
            typed = pc.if_else(blank, pa.scalar(None, pa.string()), text).cast(ARROW_TYPES[value_type])
            return typed, np.zeros(len(text), dtype=bool)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    stripped = pc.utf8_trim_whitespace(text)
    present = pc.and_(stripped.is_valid(), pc.not_equal(pc.utf8_length(stripped), 0))
    if value_type is ValueType.STRING:
        return pc.if_else(present, text, pa.scalar(None, pa.string())), np.zeros(len(text), dtype=bool)
    if value_type is ValueType.FLOAT:
        valid = pc.match_substring_regex(stripped, _FLOAT_TEXT)
        cleaned = stripped
    elif value_type is ValueType.INTEGER:
        valid = pc.match_substring_regex(stripped, _INTEGER_TEXT)
        cleaned = pc.replace_substring_regex(stripped, r"\.0*$", "")
    elif value_type is ValueType.BOOLEAN:
        lowered = pc.utf8_lower(stripped)
        truthy = pc.is_in(lowered, pa.array(_TRUE))
        falsy = pc.is_in(lowered, pa.array(_FALSE))
        valid = pc.or_(truthy, falsy)
        typed = pc.if_else(valid, truthy, pa.scalar(None, pa.bool_()))
        return typed, _mask(pc.and_(present, pc.invert(valid)))
    else:  # TIMESTAMP: ISO 8601 text, or epoch seconds
        try:  # fast path: zoned ISO 8601 (what SageMaker writes)
            typed = pc.if_else(present, stripped, pa.scalar(None, pa.string())).cast(ARROW_TYPES[value_type])
            return typed, np.zeros(len(text), dtype=bool)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        iso = pc.match_substring_regex(stripped, _TIMESTAMP_TEXT)
        epoch = pc.match_substring_regex(stripped, _FLOAT_TEXT)
        keep_iso = pc.if_else(iso, stripped, pa.scalar(None, pa.string()))
        from_iso = _timestamps(_iso_to_timestamp(keep_iso))
        keep_epoch = pc.if_else(pc.and_(epoch, pc.invert(iso)), stripped, pa.scalar(None, pa.string()))
        from_epoch, _ = _from_number(keep_epoch.cast(pa.float64()), ValueType.TIMESTAMP)
        typed = pc.coalesce(from_iso, from_epoch)
        return typed, _mask(pc.and_(present, pc.invert(pc.or_(iso, epoch))))
    usable = pc.and_(present, valid)
    typed = pc.if_else(usable, cleaned, pa.scalar(None, pa.string())).cast(ARROW_TYPES[value_type])
    return typed, _mask(pc.and_(present, pc.invert(valid)))


def _iso_to_timestamp(text: pa.Array) -> pa.Array:
    """ISO 8601 strings as UTC timestamps: a date alone is midnight, no offset means UTC."""
    text = pc.replace_substring_regex(text, r"^(\d{4}-\d{2}-\d{2})$", r"\1T00:00:00")
    text = pc.replace_substring_regex(text, r"^(\d{4}-\d{2}-\d{2}) ", r"\1T")
    text = pc.replace_substring_regex(text, r"T(\d{2}:\d{2})(Z|[+-]|$)", r"T\1:00\2")
    zoned = pc.match_substring_regex(text, r"(Z|[+-]\d{2}(:?\d{2})?)$")
    text = pc.if_else(zoned, text, pc.binary_join_element_wise(text, "Z", ""))
    text = pc.replace_substring_regex(text, r"([+-]\d{2})$", r"\100")  # RE2: group 1, then "00"
    return text.cast(pa.timestamp("ns", tz="UTC")).cast(pa.timestamp("us", tz="UTC"), safe=False)


def _timestamps(values: pa.Array) -> pa.Array:
    if values.type.tz is None:
        return values.cast(pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))
    return values.cast(pa.timestamp("us", tz="UTC"))


def _from_number(values: pa.Array, value_type: ValueType) -> tuple[pa.Array, np.ndarray]:
    present = values.is_valid()
    if pa.types.is_boolean(values.type):
        if value_type is ValueType.STRING:
            return pc.if_else(values, "true", "false"), np.zeros(len(values), dtype=bool)
        if value_type is ValueType.TIMESTAMP:
            return pa.nulls(len(values), ARROW_TYPES[value_type]), _mask(present)
        return values.cast(ARROW_TYPES[value_type]), np.zeros(len(values), dtype=bool)
    numbers = values.cast(pa.float64())
    if value_type is ValueType.FLOAT:
        return numbers, np.zeros(len(values), dtype=bool)
    if value_type is ValueType.STRING:
        return values.cast(pa.string()), np.zeros(len(values), dtype=bool)
    if value_type is ValueType.INTEGER:
        valid = pc.and_(pc.is_finite(numbers), pc.equal(numbers, pc.floor(numbers)))
        if pa.types.is_integer(values.type):
            return values.cast(pa.int64()), np.zeros(len(values), dtype=bool)
        kept = pc.if_else(valid, numbers, pa.scalar(None, pa.float64()))
        return kept.cast(pa.int64()), _mask(pc.and_(present, pc.invert(valid)))
    if value_type is ValueType.BOOLEAN:
        valid = pc.is_in(numbers, pa.array([0.0, 1.0]))
        kept = pc.if_else(valid, pc.equal(numbers, 1.0), pa.scalar(None, pa.bool_()))
        return kept, _mask(pc.and_(present, pc.invert(valid)))
    # TIMESTAMP from epoch seconds
    valid = pc.is_finite(numbers)
    micros = pc.if_else(valid, pc.multiply(numbers, 1_000_000.0), pa.scalar(None, pa.float64()))
    typed = pc.cast(pc.round(micros), pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    return typed, _mask(pc.and_(present, pc.invert(valid)))


def typed_columns(
    columns: dict[str, pa.Array], attributes: list[Attribute], count: int
) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Each attribute's values typed, and per row why the first bad value is not of its type.

    Attributes missing from `columns` are all null (no problem: a value may be absent).
    """
    typed: dict[str, pa.Array] = {}
    problem = np.full(count, None, dtype=object)
    for attribute in attributes:
        raw = columns.get(attribute.name)
        if raw is None:
            typed[attribute.name] = pa.nulls(count, ARROW_TYPES[attribute.value_type])
            continue
        values, invalid = coerce(raw, attribute.value_type)
        typed[attribute.name] = values
        first = invalid & ~has_problem(problem)
        if first.any():
            bad = raw.filter(pa.array(first)).to_pylist()
            problem[first] = [f"{attribute.name}: {v!r} is not {attribute.value_type.article}" for v in bad]
    return typed, problem


def first_problem(candidates: list[np.ndarray]) -> np.ndarray:
    """Per row, the first reason among the candidates (None where there is none)."""
    result = np.full(len(candidates[0]), None, dtype=object)
    for candidate in candidates:
        empty = ~has_problem(result)
        result[empty] = candidate[empty]
    return result


def has_problem(problem: np.ndarray) -> np.ndarray:
    """Which rows have a reason: an object array of reasons and Nones, compared element-wise."""
    return np.not_equal(problem, None)
