"""Typing raw values (CSV text, JSON numbers) as an attribute's value type, vectorized.

`coerce` never raises on a bad value: it returns the typed array, with nulls where the value was
missing or invalid, and a mask of the rows whose value was present but invalid, so the caller can
reject exactly those rows with a reason and keep the rest. Invalid means: not of the type, out of
the type's range (an integer beyond int64, a calendar-invalid or unrepresentable time) or, for
FLOAT, not finite (Infinity, -Infinity, 1e400: a sum or mean over them would mean nothing). NaN is
how many writers spell a missing number, so it becomes null, never a value.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

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
_INT64_LIMIT = 2.0**63
# inference_timestamp and ground_truth_timestamp must lie in this range (a year-1 or year-9999
# inference is a bug upstream, and it would open a day partition nothing else reads).
TIME_RANGE = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))
TIME_RANGE_TEXT = "1970-01-01 .. 2199-12-31"
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
    if pa.types.is_dictionary(source):  # pandas' category columns, Parquet dictionary pages
        return coerce(values.dictionary_decode(), value_type)
    if pa.types.is_decimal(source):  # Parquet from databases; as floats, for every number type
        return coerce(values.cast(pa.float64(), safe=False), value_type)
    if pa.types.is_binary(source) or pa.types.is_large_binary(source) or _is_view(source):
        text, not_utf8 = safe_cast(values, pa.string())
        typed, invalid = coerce(text, value_type)
        return typed, invalid | not_utf8
    if (pa.types.is_timestamp(source) or pa.types.is_date(source)) and value_type is ValueType.TIMESTAMP:
        target = pa.timestamp("us", tz=source.tz) if pa.types.is_timestamp(source) else pa.timestamp("us")
        typed, out_of_range = safe_cast(values, target)  # seconds or milliseconds past what us hold
        return _timestamps(typed), out_of_range
    # lists, structs: never a scalar attribute's value
    present = values.is_valid().to_numpy(zero_copy_only=False)
    return pa.nulls(len(values), target), present


def _is_view(data_type: pa.DataType) -> bool:
    return str(data_type) in ("string_view", "binary_view")


def _mask(array: pa.Array) -> np.ndarray:
    return array.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)


def safe_cast(values: pa.Array, target: pa.DataType) -> tuple[pa.Array, np.ndarray]:
    """`values` cast to `target`, and which present values could not be (they become null).

    One vectorized cast in the usual case. When Arrow refuses the array (an integer past int64,
    a calendar-invalid time), halves are cast until each culprit stands alone, so k bad values
    among n cost about k * log2(n) small casts, and the good values are never lost.
    """
    try:
        return values.cast(target), np.zeros(len(values), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError):
        pass
    if len(values) == 1:
        return pa.nulls(1, target), np.array([values[0].is_valid])
    middle = len(values) // 2
    left, left_bad = safe_cast(values.slice(0, middle), target)
    right, right_bad = safe_cast(values.slice(middle), target)
    return pa.concat_arrays([left, right]), np.concatenate([left_bad, right_bad])


def array_of(values: list[Any]) -> pa.Array:
    """Python values (from JSON) as one Arrow array, for `coerce`.

    pyarrow refuses some lists that JSON allows (an integer past int64, numbers mixed with text);
    those are carried as their JSON text instead, which `coerce` then types or refuses per value.
    """
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return pa.array(
            [None if v is None else v if isinstance(v, str) else _json_text(v) for v in values], pa.string()
        )


def _json_text(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def in_time_range(times: pa.Array) -> np.ndarray:
    """Which (present) timestamps lie in TIME_RANGE."""
    low, high = (pa.scalar(t, times.type) for t in TIME_RANGE)
    inside = pc.and_(pc.greater_equal(times, low), pc.less(times, high))
    return _mask(inside)


def _from_text(text: pa.Array, value_type: ValueType) -> tuple[pa.Array, np.ndarray]:
    if value_type in (ValueType.FLOAT, ValueType.INTEGER):
        # Fast path: clean numbers (the usual case) cast directly; blanks are nulls.
        blank = pc.equal(pc.utf8_length(text), 0)
        try:
            typed = pc.if_else(blank, pa.scalar(None, pa.string()), text).cast(ARROW_TYPES[value_type])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        else:
            return _finite(typed) if value_type is ValueType.FLOAT else (typed, np.zeros(len(text), bool))
    stripped = pc.utf8_trim_whitespace(text)
    present = pc.and_(stripped.is_valid(), pc.not_equal(pc.utf8_length(stripped), 0))
    if value_type is ValueType.STRING:
        return pc.if_else(present, text, pa.scalar(None, pa.string())), np.zeros(len(text), dtype=bool)
    if value_type is ValueType.FLOAT:
        valid = pc.match_substring_regex(stripped, _FLOAT_TEXT)
        usable = pc.and_(present, valid)
        typed, bad = _finite(pc.if_else(usable, stripped, pa.scalar(None, pa.string())).cast(pa.float64()))
        return typed, _mask(pc.and_(present, pc.invert(valid))) | bad
    if value_type is ValueType.INTEGER:
        valid = pc.match_substring_regex(stripped, _INTEGER_TEXT)
        digits = pc.replace_substring_regex(stripped, r"\.0*$|^\+", "")  # "7.0" and "+7" are 7
        usable = pc.if_else(pc.and_(present, valid), digits, pa.scalar(None, pa.string()))
        typed, overflow = safe_cast(usable, pa.int64())
        # whole numbers in exponent form ("1e2", as JSON writers may print 100) read as floats, where
        # floats are exact (below 2**53): "4503599627370496.5" must not round to a whole number
        exponent = pc.and_(
            pc.match_substring_regex(stripped, _FLOAT_TEXT), pc.match_substring_regex(stripped, "[eE]")
        )
        other = pc.and_(pc.and_(present, pc.invert(valid)), exponent)
        if _mask(other).any():
            as_float = pc.if_else(other, stripped, pa.scalar(None, pa.string())).cast(pa.float64())
            exact = pc.less_equal(pc.abs(as_float), 2.0**53)
            as_float = pc.if_else(exact, as_float, pa.scalar(float("nan")))
            whole, not_whole = _from_number(as_float, ValueType.INTEGER)
            typed = pc.coalesce(typed, whole)
            return typed, (_mask(pc.and_(present, pc.invert(valid))) & ~_mask(other)) | not_whole | overflow
        return typed, _mask(pc.and_(present, pc.invert(valid))) | overflow
    if value_type is ValueType.BOOLEAN:
        lowered = pc.utf8_lower(stripped)
        truthy = pc.is_in(lowered, pa.array(_TRUE))
        falsy = pc.is_in(lowered, pa.array(_FALSE))
        valid = pc.or_(truthy, falsy)
        typed = pc.if_else(valid, truthy, pa.scalar(None, pa.bool_()))
        return typed, _mask(pc.and_(present, pc.invert(valid)))
    # TIMESTAMP: ISO 8601 text (RFC 3339 allows a lowercase t and z), or epoch seconds
    stripped = pc.utf8_upper(stripped)
    try:  # fast path: zoned ISO 8601 (what SageMaker writes)
        typed = pc.if_else(present, stripped, pa.scalar(None, pa.string())).cast(ARROW_TYPES[value_type])
        return typed, np.zeros(len(text), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    iso = pc.match_substring_regex(stripped, _TIMESTAMP_TEXT)
    epoch = pc.match_substring_regex(stripped, _FLOAT_TEXT)
    keep_iso = pc.if_else(iso, stripped, pa.scalar(None, pa.string()))
    from_iso, bad_iso = _iso_to_timestamp(keep_iso)
    keep_epoch = pc.if_else(pc.and_(epoch, pc.invert(iso)), stripped, pa.scalar(None, pa.string()))
    from_epoch, bad_epoch = _from_number(keep_epoch.cast(pa.float64()), ValueType.TIMESTAMP)
    typed = pc.coalesce(_timestamps(from_iso), from_epoch)
    return typed, _mask(pc.and_(present, pc.invert(pc.or_(iso, epoch)))) | bad_iso | bad_epoch


def _finite(numbers: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Floats with NaN as null, and which values are infinite (refused: no aggregate survives one)."""
    infinite = _mask(pc.is_inf(numbers))
    keep = pc.and_(pc.is_finite(numbers), numbers.is_valid())
    return pc.if_else(keep, numbers, pa.scalar(None, pa.float64())), infinite


def _iso_to_timestamp(text: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """ISO 8601 strings as UTC timestamps (a date alone is midnight, no offset means UTC), and which
    could not be read (a month 13, an hour 99, a year outside what nanoseconds hold)."""
    text = pc.replace_substring_regex(text, r"^(\d{4}-\d{2}-\d{2})$", r"\1T00:00:00")
    text = pc.replace_substring_regex(text, r"^(\d{4}-\d{2}-\d{2}) ", r"\1T")
    text = pc.replace_substring_regex(text, r"T(\d{2}:\d{2})(Z|[+-]|$)", r"T\1:00\2")
    zoned = pc.match_substring_regex(text, r"(Z|[+-]\d{2}(:?\d{2})?)$")
    text = pc.if_else(zoned, text, pc.binary_join_element_wise(text, "Z", ""))
    text = pc.replace_substring_regex(text, r"([+-]\d{2})$", r"\100")  # RE2: group 1, then "00"
    # microseconds reach from year 1 to 9999; nanoseconds read 7 to 9 fraction digits (1677 to 2262)
    typed, bad = safe_cast(text, pa.timestamp("us", tz="UTC"))
    if bad.any():
        retried, still_bad = safe_cast(text.filter(pa.array(bad)), pa.timestamp("ns", tz="UTC"))
        typed = pc.coalesce(typed, _scatter(retried.cast(pa.timestamp("us", tz="UTC"), safe=False), bad))
        bad[bad] = still_bad
    return typed, bad


def _scatter(values: pa.Array, mask: np.ndarray) -> pa.Array:
    """`values` placed at the rows where `mask` is set, null elsewhere."""
    positions = np.cumsum(mask) - 1
    return values.take(pa.array(np.where(mask, positions, 0), mask=~mask, type=pa.int64()))


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
    if value_type is ValueType.STRING:
        return values.cast(pa.string()), np.zeros(len(values), dtype=bool)
    if pa.types.is_integer(values.type) and value_type is ValueType.INTEGER:
        return safe_cast(values, pa.int64())
    numbers = values.cast(pa.float64())
    if value_type is ValueType.FLOAT:
        return _finite(numbers)
    if value_type is ValueType.INTEGER:
        valid = pc.and_(
            pc.and_(pc.is_finite(numbers), pc.equal(numbers, pc.floor(numbers))),
            pc.less(pc.abs(numbers), _INT64_LIMIT),
        )
        kept = pc.if_else(valid, numbers, pa.scalar(None, pa.float64()))
        return kept.cast(pa.int64()), _mask(pc.and_(present, pc.invert(valid)))
    if value_type is ValueType.BOOLEAN:
        valid = pc.is_in(numbers, pa.array([0.0, 1.0]))
        kept = pc.if_else(valid, pc.equal(numbers, 1.0), pa.scalar(None, pa.bool_()))
        return kept, _mask(pc.and_(present, pc.invert(valid)))
    # TIMESTAMP from epoch seconds: finite, and within what microseconds since 1970 can hold
    micros = pc.multiply(numbers, 1_000_000.0)
    valid = pc.and_(pc.is_finite(micros), pc.less(pc.abs(micros), _INT64_LIMIT))
    kept = pc.if_else(valid, pc.round(micros), pa.scalar(None, pa.float64()))
    typed = pc.cast(kept, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
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
            bad = shown(raw.filter(pa.array(first)))
            problem[first] = [
                f"{attribute.name}: {v!r} is not {_expected(v, attribute.value_type)}" for v in bad
            ]
    return typed, problem


def shown(values: pa.Array) -> list[Any]:
    """Values as Python objects for a message; times Python cannot hold (year 300,000) as raw numbers."""
    try:
        return values.to_pylist()
    except (OverflowError, ValueError):
        if pa.types.is_temporal(values.type):  # the stored number (days, or units since 1970)
            return values.view(pa.int64() if values.type.bit_width == 64 else pa.int32()).to_pylist()
        return [str(v) for v in values]


def _expected(value: Any, value_type: ValueType) -> str:
    """What a refused value should have been: a number that is infinite is told apart from text."""
    if value_type is ValueType.FLOAT:
        try:
            return "a finite number" if not np.isfinite(float(value)) else value_type.article
        except (TypeError, ValueError, OverflowError):
            pass
    return value_type.article


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


MAX_ID_LENGTH = {"partner_inference_id": 255, "batch_id": 128}
_CONTROL = r"[\x00-\x1f\x7f-\x9f]"  # C0, DEL and C1


def identifier_problems(ids: pa.Array, name: str) -> np.ndarray:
    """Per row, why a given identifier (partner_inference_id, batch_id) is unusable, else None.

    An identifier is 1 to MAX_ID_LENGTH[name] characters without control characters: an empty or
    NUL-laden id cannot be joined or looked up, and a batch_id ends up in a DynamoDB key.
    """
    limit = MAX_ID_LENGTH[name]
    text = ids.cast(pa.string())
    length = pc.utf8_length(text)
    checks = [
        (pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0), f"{name} is empty"),
        (pc.greater(length, limit), f"{name} is longer than {limit} characters"),
        (pc.match_substring_regex(text, _CONTROL), f"{name} holds a control character"),
    ]
    problem = np.full(len(ids), None, dtype=object)
    for failed, reason in checks:
        problem[_mask(failed) & ~has_problem(problem)] = reason
    return problem
