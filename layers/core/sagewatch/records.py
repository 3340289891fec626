"""Inference and ground-truth rows from records: REST bodies, JSON and Parquet files.

Records carry the model's attributes by name plus partner_inference_id, inference_timestamp,
batch_id and ground_truth_timestamp. A missing partner_inference_id is generated, a missing
timestamp is `now`. Each record either becomes rows or fails alone with a reason naming the
attribute; the typing is the one capture files get (sagewatch.values).
"""

from __future__ import annotations

import binascii
import json
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sagewatch import jsonl
from sagewatch.errors import InvalidInput
from sagewatch.schema import GROUND_TRUTH_STAGES, Model, OutputType, Stage, ValueType, parse_class_value
from sagewatch.tables import TIMESTAMP, ground_truth_schema, inference_schema
from sagewatch.values import (
    ARROW_TYPES,
    TIME_RANGE_TEXT,
    coerce,
    first_problem,
    has_problem,
    identifier_problems,
    in_time_range,
    safe_cast,
    shown,
    typed_columns,
)

IDENTITY = ("partner_inference_id", "inference_timestamp", "batch_id", "ground_truth_timestamp")


@dataclass
class RecordRows:
    """What a set of records produced.

    `partner_ids` and `problem` have one entry per record (ids generated where missing); the
    tables hold the accepted records' rows: inferences, and ground truth for records carrying any.
    """

    partner_ids: pa.Array
    problem: np.ndarray
    inferences: pa.Table
    ground_truth: pa.Table

    @property
    def failures(self) -> int:
        """How many records were refused."""
        return int(np.count_nonzero(has_problem(self.problem)))


def new_ids(count: int) -> pa.Array:
    """`count` random ids (32 hex digits), made in one go."""
    if count == 0:
        return pa.array([], pa.string())
    digits = np.frombuffer(binascii.hexlify(os.urandom(16 * count)), dtype="S32")
    return pa.array(digits).cast(pa.string())


def _repeat(moment: datetime | str | None, count: int, data_type: pa.DataType) -> pa.Array:
    return pa.array([moment], data_type).take(pa.array(np.zeros(count, dtype=np.int64)))


def _identifiers(values: pa.Array | None, name: str, count: int) -> tuple[pa.Array, np.ndarray]:
    """An identifier column as text (numbers become their decimal text), and per row why a given
    identifier is unusable (a list or object, empty, too long, control characters)."""
    if values is None:
        return pa.nulls(count, pa.string()), np.full(count, None, dtype=object)
    if pa.types.is_nested(values.type):
        nested = values.is_valid().to_numpy(zero_copy_only=False)
        reason = np.where(nested, f"{name} is a list or an object, not text", None).astype(object)
        return pa.nulls(count, pa.string()), reason
    text, unreadable = safe_cast(values, pa.string())  # binary that is not UTF-8
    problem = identifier_problems(text, name)
    problem[unreadable & ~has_problem(problem)] = f"{name} is not UTF-8 text"
    return text, problem


def label_problems(model: Model, truths: dict[str, pa.Array], count: int) -> np.ndarray:
    """Per row, why a classifier's ground truth is not one of its classes (None where it is).

    Class form (one column holds the class): the value must be a declared category of that column,
    or, without categories, one of the classes the map names when it names two or more. One-hot
    form: each ground-truth column holds 0 or 1. A label outside the classes would otherwise be
    stored and silently counted as unlabelled (multiclass) or negative (binary).
    """
    problem = np.full(count, None, dtype=object)
    if model.output_type is OutputType.REGRESSION or not truths:
        return problem
    mapping = model.pred_to_ground_truth_map or {}
    if model.ground_truth_form == "attribute":
        allowed = {name: [0, 1] for name in truths if model.attribute(name).is_numeric}
    else:
        truth = model.by_stage(*GROUND_TRUTH_STAGES)[0]
        declared = [parse_class_value(c.value, truth.value_type) for c in truth.categories or []]
        classes = [c for c in declared if c is not None] or (
            list(mapping.values()) if len(mapping) > 1 else []
        )
        allowed = {truth.name: classes} if classes else {}
    for name, classes in allowed.items():
        values = truths[name]
        outside = pc.invert(pc.is_in(values, value_set=pa.array(classes).cast(values.type)))
        flagged = _present(values) & _flags(outside) & ~has_problem(problem)
        if flagged.any():
            shown = ", ".join(map(str, classes))
            problem[flagged] = [
                f"{name}: {v!r} is not one of the classes ({shown})"
                for v in values.filter(pa.array(flagged)).to_pylist()
            ]
    return problem


def _present(values: pa.Array) -> np.ndarray:
    return values.is_valid().to_numpy(zero_copy_only=False)


def _flags(mask: pa.Array) -> np.ndarray:
    return mask.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)


def _timestamps(raw: pa.Array | None, now: datetime, name: str, count: int) -> tuple[pa.Array, np.ndarray]:
    """Timestamps (missing ones are `now`) and per row why a given one is not a time."""
    problem = np.full(count, None, dtype=object)
    if raw is None:
        return _repeat(now, count, TIMESTAMP), problem
    typed, invalid = coerce(raw, ValueType.TIMESTAMP)
    if invalid.any():
        problem[invalid] = [
            f"{name}: {v!r} is not an ISO 8601 time" for v in shown(raw.filter(pa.array(invalid)))
        ]
    outside = typed.is_valid().to_numpy(zero_copy_only=False) & ~in_time_range(typed)
    if outside.any():
        problem[outside] = [
            f"{name}: {v!r} is outside {TIME_RANGE_TEXT}" for v in shown(raw.filter(pa.array(outside)))
        ]
    return pc.coalesce(typed, _repeat(now, count, TIMESTAMP)), problem


def rows_from_columns(
    columns: dict[str, pa.Array],
    count: int,
    model: Model,
    *,
    source: str,
    now: datetime,
    batch_id: str | None = None,
    require_inference: bool = True,
    read_problems: np.ndarray | None = None,
) -> RecordRows:
    """Rows from records given as columns: attribute names, identity fields, anything else is unknown.

    require_inference: records are inferences (POST); otherwise only ground truth (PATCH), which
    needs a partner_inference_id and may come before its inference.
    """
    known = {a.name: a for a in model.attributes}
    problems: list[np.ndarray] = [] if read_problems is None else [read_problems]
    for name, values in columns.items():
        if name not in known and name not in IDENTITY:
            unknown = values.is_valid().to_numpy(zero_copy_only=False)
            problems.append(np.where(unknown, f"unknown attribute {name!r}", None).astype(object))

    given, id_problems = _identifiers(columns.get("partner_inference_id"), "partner_inference_id", count)
    missing = given.is_null().to_numpy(zero_copy_only=False) & ~has_problem(id_problems)
    problems.append(id_problems)
    if not require_inference:
        problems.append(
            np.where(missing, "partner_inference_id is required for ground truth", None).astype(object)
        )
    generated = new_ids(int(missing.sum()))
    partner_ids = given
    if missing.any():
        spread = generated.take(pa.array(np.where(missing, np.cumsum(missing) - 1, 0), type=pa.int64()))
        partner_ids = pc.if_else(pa.array(missing), spread, given)

    inference_time, time_problems = _timestamps(
        columns.get("inference_timestamp"), now, "inference_timestamp", count
    )
    truth_time, truth_time_problems = _timestamps(
        columns.get("ground_truth_timestamp"), now, "ground_truth_timestamp", count
    )
    batches, batch_problems = _identifiers(columns.get("batch_id"), "batch_id", count)
    if batch_id is not None:
        batches = pc.coalesce(batches, _repeat(batch_id, count, pa.string()))
        batch_problems = first_problem([batch_problems, identifier_problems(batches, "batch_id")])
    problems.append(batch_problems)
    if model.is_batch and require_inference:
        no_batch = batches.is_null().to_numpy(zero_copy_only=False)
        problems.append(
            np.where(no_batch, "batch_id is required: the model is a batch model", None).astype(object)
        )

    stored = model.by_stage(Stage.PIPELINE_INPUT, Stage.NON_INPUT_DATA, Stage.PREDICTED_VALUE)
    truths = model.by_stage(*GROUND_TRUTH_STAGES)
    typed, typed_problems = typed_columns(columns, stored, count)
    truth_typed, truth_problems = typed_columns(columns, truths, count)
    truth_problems = first_problem([truth_problems, label_problems(model, truth_typed, count)])
    has_truth = np.zeros(count, dtype=bool)
    for attribute in truths:
        has_truth |= truth_typed[attribute.name].is_valid().to_numpy(zero_copy_only=False)
    no_truth = np.where(has_truth, None, "ground_truth_data holds no ground truth attribute").astype(object)
    duplicate = _repeated(partner_ids) if require_inference else np.zeros(count, dtype=bool)
    problems += [
        time_problems,
        truth_time_problems,
        typed_problems if require_inference else np.full(count, None, dtype=object),
        truth_problems,
        np.full(count, None, dtype=object) if require_inference else no_truth,
        np.where(
            duplicate, "duplicate partner_inference_id in this request (the first one is kept)", None
        ).astype(object),
    ]
    problem = first_problem(problems) if problems else np.full(count, None, dtype=object)
    accepted = ~has_problem(problem)
    keep = pa.array(np.flatnonzero(accepted), type=pa.int64())
    ingested = _repeat(now, len(keep), TIMESTAMP)

    inference_columns = {
        "partner_inference_id": partner_ids.take(keep),
        "inference_timestamp": inference_time.take(keep),
        "batch_id": batches.take(keep),
        "source": _repeat(source, len(keep), pa.string()),
        "variant": pa.nulls(len(keep), pa.string()),
        "ingested_at": ingested,
        **{name: values.take(keep) for name, values in typed.items()},
        "anomaly_score": pa.nulls(len(keep), pa.float64()),  # scored when written (services.ingestion)
    }
    schema = inference_schema(model)
    inferences = (
        pa.Table.from_arrays([inference_columns[f.name] for f in schema], schema=schema)
        if require_inference
        else schema.empty_table()
    )
    with_truth = pa.array(np.flatnonzero(accepted & has_truth), type=pa.int64())
    truth_columns = {
        "partner_inference_id": partner_ids.take(with_truth),
        "ground_truth_timestamp": truth_time.take(with_truth),
        "source": _repeat(source, len(with_truth), pa.string()),
        "ingested_at": _repeat(now, len(with_truth), TIMESTAMP),
        **{name: values.take(with_truth) for name, values in truth_typed.items()},
    }
    truth_schema = ground_truth_schema(model)
    ground_truth = pa.Table.from_arrays([truth_columns[f.name] for f in truth_schema], schema=truth_schema)
    return RecordRows(partner_ids, problem, inferences, ground_truth)


def _repeated(ids: pa.Array) -> np.ndarray:
    """Per row, whether an earlier row has the same id."""
    if len(ids) < 2:
        return np.zeros(len(ids), dtype=bool)
    encoded = ids.dictionary_encode().indices.to_numpy(zero_copy_only=False)
    _, first = np.unique(encoded, return_index=True)
    repeated = np.ones(len(ids), dtype=bool)
    repeated[first] = False
    return repeated


def columns_from_records(
    records: list[Any], *, nested: tuple[str, ...], lists: tuple[str, ...] = ()
) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Columns of REST records, the `nested` objects (inference_data, ground_truth_data) flattened.

    Returns the columns and, per record, why it cannot be read. pyarrow converts the whole list
    at once; only when it cannot (a record that is not an object, a field holding numbers in some
    records and text in others) are the records looked at one by one.
    """
    problem = np.full(len(records), None, dtype=object)
    try:
        structs = pa.array(records)
        readable = pa.types.is_struct(structs.type) and all(
            pa.types.is_struct(f.type) or pa.types.is_null(f.type) for f in structs.type if f.name in nested
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, RecursionError):
        readable = False  # an integer past int64, mixed types, deep nesting: read value by value
    if not readable:
        structs, problem = _records_one_by_one(records, nested, lists)
    columns: dict[str, pa.Array] = {}
    # Fields are taken by position: a name such as "../x" or "a.b" would be read as a path.
    for index, field in enumerate(structs.type if pa.types.is_struct(structs.type) else []):
        values = pc.struct_field(structs, [index])
        if field.name not in nested:
            if field.name in columns:  # given inside inference_data too
                raise InvalidInput(f"attribute {field.name!r} is given twice in a record", field=field.name)
            columns[field.name] = values
        elif pa.types.is_struct(field.type):
            for inner_index, inner in enumerate(field.type):
                if inner.name in columns:
                    raise InvalidInput(
                        f"attribute {inner.name!r} is given twice in a record", field=inner.name
                    )
                columns[inner.name] = pc.struct_field(values, [inner_index])
    return columns, problem


def _records_one_by_one(
    records: list[Any], nested: tuple[str, ...], lists: tuple[str, ...]
) -> tuple[pa.Array, np.ndarray]:
    """The slow path: refuse records that are not objects or hold a list or object where a value
    belongs (`lists` may hold lists of values), and read every value as text (which `coerce` then
    types or refuses)."""
    problem = np.full(len(records), None, dtype=object)
    cleaned: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        problem[index] = _record_problem(record, nested, lists)
        if problem[index] is not None:
            cleaned.append({})
            continue
        flat = {
            key: [_text(v) for v in value] if key in lists and isinstance(value, list) else _text(value)
            for key, value in record.items()
            if key not in nested
        }
        for key in nested:
            if record.get(key) is not None:
                flat[key] = {inner: _text(value) for inner, value in record[key].items()}
        cleaned.append(flat)
    return pa.array(cleaned), problem


def _record_problem(record: Any, nested: tuple[str, ...], lists: tuple[str, ...] = ()) -> str | None:
    if not isinstance(record, dict):
        return "the record is not a JSON object"
    for key, value in record.items():
        if key in nested:
            if value is not None and not isinstance(value, dict):
                return f"{key} is not a JSON object"
            for inner, inner_value in (value or {}).items():
                if isinstance(inner_value, list | dict):
                    return f"{inner} is a list or an object, not a value"
        elif key in lists and isinstance(value, list):
            if any(isinstance(v, list | dict) for v in value):
                return f"{key} is a list of values, not of lists or objects"
        elif isinstance(value, list | dict):
            return f"{key} is a list or an object, not a value"
    return None


def _text(value: Any) -> str | None:
    """A scalar JSON value as text: strings as they are, numbers and booleans as JSON writes them."""
    return value if value is None or isinstance(value, str) else json.dumps(value)


def check_file_columns(schema: pa.Schema, model: Model) -> None:
    """A file's columns are the model's attributes or identity fields, of compatible types.

    Raises InvalidInput naming the first wrong column (a file is taken whole or not at all).
    """
    known = {a.name: a for a in model.attributes}
    for field in schema:
        if field.name in IDENTITY:
            continue
        attribute = known.get(field.name)
        if attribute is None:
            raise InvalidInput(f"column {field.name!r} is not an attribute of the model", field=field.name)
        if not _compatible(field.type, attribute.value_type):
            raise InvalidInput(
                f"column {field.name!r} is {field.type} but attribute {field.name!r} is {attribute.value_type.value}",
                field=field.name,
            )


def _compatible(data_type: pa.DataType, value_type: ValueType) -> bool:
    """Whether a column of this type can hold the attribute's values: any scalar type can (each
    value is typed, or refused alone, as JSON values are: float64 whole numbers for an INTEGER is
    what pandas writes for an int column with NaN); lists and structs cannot."""
    if pa.types.is_dictionary(data_type):
        data_type = data_type.value_type
    return not pa.types.is_nested(data_type)


def rejections(rows: RecordRows, first_row: int = 0) -> list[dict[str, Any]]:
    """The failed records as rejected/ entries: row number (from `first_row`), id and reason."""
    failed = np.flatnonzero(has_problem(rows.problem))
    ids = rows.partner_ids.take(pa.array(failed, type=pa.int64())).to_pylist()
    return [
        {"row": int(index) + first_row, "partner_inference_id": partner_id, "reason": rows.problem[index]}
        for index, partner_id in zip(failed, ids, strict=True)
    ]


def reference_schema(model: Model) -> pa.Schema:
    """Reference rows hold every attribute (inputs, outputs, ground truth), typed."""
    return pa.schema([(a.name, ARROW_TYPES[a.value_type]) for a in model.attributes])


def reference_rows(columns: dict[str, pa.Array], count: int, model: Model) -> tuple[pa.Table, np.ndarray]:
    """Typed reference rows (the valid ones) and per row why it was refused."""
    typed, problem = typed_columns(columns, model.attributes, count)
    truths = {a.name: typed[a.name] for a in model.by_stage(*GROUND_TRUTH_STAGES) if a.name in columns}
    problem = first_problem([problem, label_problems(model, truths, count)])  # as REST rows are held
    keep = pa.array(np.flatnonzero(~has_problem(problem)), type=pa.int64())
    schema = reference_schema(model)
    return pa.Table.from_arrays([typed[f.name].take(keep) for f in schema], schema=schema), problem


def file_columns(data: bytes, name: str, model: Model) -> tuple[dict[str, pa.Array], int]:
    """Columns of an uploaded file and its row count: Parquet (whose column types must fit the
    attributes), or JSON records (a list, or JSON Lines), whose values are typed one by one like
    REST records. `name` (the form field) is the field a refusal names."""
    if data[:4] == b"PAR1":
        try:
            table = pq.read_table(pa.BufferReader(data))
        except (pa.ArrowException, OSError) as error:  # a corrupt footer is an OSError
            raise InvalidInput(f"{name}: not a readable Parquet file: {error}", field=name) from None
        check_file_columns(table.schema, model)
        return {
            column: table.column(column).combine_chunks() for column in table.column_names
        }, table.num_rows
    text = data.strip()
    if not text:
        raise InvalidInput(f"{name} is empty", field=name)
    try:
        decoded = text.decode("utf-8")
        lines = (
            [jsonl.loads(line) for line in decoded.splitlines() if line.strip()]
            if not decoded.startswith("[")
            else None
        )
        records = jsonl.loads(decoded) if lines is None else lines
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError alike
        raise InvalidInput(f"{name}: neither Parquet nor JSON records ({error})", field=name) from None
    if not isinstance(records, list):
        raise InvalidInput(f"{name}: JSON records must be a list of objects", field=name)
    columns, problems = columns_from_records(records, nested=())
    if has_problem(problems).any():
        raise InvalidInput(f"{name}: every record must be a JSON object", field=name)
    check_file_columns(pa.schema([(column, pa.null()) for column in columns]), model)
    return columns, len(records)
