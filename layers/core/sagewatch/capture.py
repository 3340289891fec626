"""SageMaker Data Capture and Model Monitor ground-truth files as typed lake rows.

`parse_capture` turns a capture JSONL buffer into inference rows of a model; `parse_ground_truth`
turns a Model Monitor ground-truth JSONL buffer into ground-truth rows. Both are pure: bytes and a
model in, an Arrow table and the rejected rows (with line, event id and reason) out.

- Partner inference id: eventMetadata.inferenceId if present, else eventId; when one call carried
  several inferences, `_<index>` (from 0) is appended. Inference timestamp: inferenceTime.
- Inputs fill PIPELINE_INPUT attributes in position order (CSV) or by name/position (JSON);
  outputs fill PREDICTED_VALUE attributes the same way; input and output rows pair by index.
- A bad line, event or row is rejected with its reason; everything else in the file is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sagewatch.jsonl import read_jsonl
from sagewatch.payloads import Rows, content_kind, csv_rows, decode_base64, json_rows, merge
from sagewatch.records import label_problems
from sagewatch.schema import Attribute, Model, Stage, ValueType
from sagewatch.tables import TIMESTAMP, ground_truth_schema, inference_schema
from sagewatch.values import (
    ARROW_TYPES,
    TIME_RANGE_TEXT,
    coerce,
    has_problem,
    identifier_problems,
    in_time_range,
    typed_columns,
)

_SIDE = pa.struct(
    [
        ("observedContentType", pa.string()),
        ("mode", pa.string()),
        ("data", pa.string()),
        ("encoding", pa.string()),
    ]
)
CAPTURE_SCHEMA = pa.schema(
    [
        ("captureData", pa.struct([("endpointInput", _SIDE), ("endpointOutput", _SIDE)])),
        (
            "eventMetadata",
            pa.struct(
                [("eventId", pa.string()), ("inferenceId", pa.string()), ("inferenceTime", pa.string())]
            ),
        ),
        ("eventVersion", pa.string()),
    ]
)
GROUND_TRUTH_SCHEMA = pa.schema(
    [
        ("groundTruthData", pa.struct([("data", pa.string()), ("encoding", pa.string())])),
        ("eventMetadata", pa.struct([("eventId", pa.string())])),
        ("eventVersion", pa.string()),
    ]
)

REJECT_FIELDS = ("line", "event_id", "inference_index", "reason")


@dataclass
class Parsed:
    """Rows for the lake and rejected rows (dicts with line, event_id, inference_index, reason)."""

    rows: pa.Table
    rejected: list[dict[str, Any]]


REPEATED_IN_FILE = "duplicate inference id in this file (the first one is kept)"


class FirstInFile:
    """Keeps the first row of each partner_inference_id across the chunks of one capture file.

    A chunk's parser refuses an id repeated within the chunk; a file is parsed in chunks (and a
    failing chunk in halves), so an id repeated across chunks is refused here, in file order, with
    the same reason: a file is one source and stores each inference once.
    """

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def keep_first(self, parsed: Parsed) -> Parsed:
        """The chunk's rows whose ids no earlier chunk had; the others refused."""
        ids = parsed.rows.column("partner_inference_id")
        chunk = set(ids.to_pylist())  # set operations in C: no Python loop per row
        repeated = chunk & self.seen
        self.seen |= chunk
        if not repeated:
            return parsed
        again = pc.is_in(ids, value_set=pa.array(sorted(repeated), pa.string()))
        refused = [
            {**_reject(None, None, None, REPEATED_IN_FILE), "partner_inference_id": pid}
            for pid in ids.filter(again).to_pylist()
        ]
        return Parsed(parsed.rows.filter(pc.invert(again)), parsed.rejected + refused)


def parse_resilient(parse: Callable[[bytes, int], Parsed], buffer: bytes, first_line: int = 1) -> Parsed:
    """`parse(buffer, first_line)`; if it raises (a defect, or data no check foresaw), the buffer's
    halves are parsed apart until each failing line stands alone and is rejected with the error.

    The parsers reject bad data themselves; this is the guarantee behind them that one line can
    never sink the lines around it (or send a whole file to the dead-letter queue).
    """
    try:
        return parse(buffer, first_line)
    except Exception as error:
        lines = buffer.splitlines(keepends=True)
        if len(lines) <= 1:
            reason = f"the line could not be read ({type(error).__name__}: {str(error)[:200]})"
            return Parsed(parse(b"", first_line).rows, [_reject(first_line, None, None, reason)])
    middle = len(lines) // 2
    left = parse_resilient(parse, b"".join(lines[:middle]), first_line)
    right = parse_resilient(parse, b"".join(lines[middle:]), first_line + middle)
    return Parsed(pa.concat_tables([left.rows, right.rows]), left.rejected + right.rejected)


def parse_capture(
    buffer: bytes,
    model: Model,
    *,
    source: str,
    variant: str | None = None,
    first_line: int = 1,
    ingested_at: datetime | None = None,
) -> Parsed:
    """Inference rows of `model` from a Data Capture JSONL buffer."""
    lines = read_jsonl(buffer, CAPTURE_SCHEMA, first_line)
    metadata = lines.table.column("eventMetadata").combine_chunks()
    data = lines.table.column("captureData").combine_chunks()
    event_id = pc.struct_field(metadata, "eventId")
    inputs = pc.struct_field(data, "endpointInput")
    outputs = pc.struct_field(data, "endpointOutput")
    inference_time = pc.struct_field(metadata, "inferenceTime")
    timestamps, bad_time = coerce(inference_time, ValueType.TIMESTAMP)
    problems = _Problems(len(lines.table))
    problems.add(event_id.is_null(), "eventMetadata.eventId is missing")
    problems.add(bad_time, "eventMetadata.inferenceTime is not an ISO 8601 time")
    problems.add(timestamps.is_null(), "eventMetadata.inferenceTime is missing")  # absent or blank
    problems.add(
        timestamps.is_valid().to_numpy(zero_copy_only=False) & ~in_time_range(timestamps),
        f"eventMetadata.inferenceTime is outside {TIME_RANGE_TEXT}",
    )
    problems.add(pc.struct_field(inputs, "data").is_null(), "captureData.endpointInput.data is missing")
    problems.add(pc.struct_field(outputs, "data").is_null(), "captureData.endpointOutput.data is missing")
    # An empty inferenceId is no inferenceId; the id used must be usable (not blank, no control characters).
    inference_id = pc.struct_field(metadata, "inferenceId")
    blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(inference_id)), 0)
    inference_id = pc.if_else(blank, pa.scalar(None, pa.string()), inference_id)
    base_id = pc.coalesce(inference_id, event_id)
    problems.add_reasons(identifier_problems(base_id, "partner_inference_id"))
    input_attributes = model.by_stage(Stage.PIPELINE_INPUT)
    output_attributes = model.by_stage(Stage.PREDICTED_VALUE)
    sent = _side_rows(inputs, input_attributes, "endpointInput", problems)
    answered = _side_rows(outputs, output_attributes, "endpointOutput", problems)
    sent_count = np.bincount(sent.event, minlength=len(problems))
    answered_count = np.bincount(answered.event, minlength=len(problems))
    problems.add(
        sent_count != answered_count,
        lambda e: f"the request holds {sent_count[e]} inferences but the response {answered_count[e]}",
    )
    problems.add(sent_count == 0, "the request holds no inference")

    partner_ids, index = _partner_ids(base_id, sent.event, sent_count)
    _flag_repeated_calls(problems, base_id)
    rejected = _event_rejections(lines, event_id, problems, sent.event, index, sent_count)

    # Events without a problem have as many response rows as request rows: they pair by position.
    paired = ~problems.bad
    sent_rows = np.flatnonzero(paired[sent.event])
    sent, answered = sent.take(sent_rows), answered.take(np.flatnonzero(paired[answered.event]))
    partner_ids, index = partner_ids.take(pa.array(sent_rows, type=pa.int64())), index[sent_rows]
    typed = {**sent.columns, **answered.columns}
    row_problem = _Problems(sent.count)
    for reasons in (sent.problem, answered.problem, sent.value_problem, answered.value_problem):
        row_problem.add_reasons(reasons)
    rejected += _row_rejections(lines, event_id, sent.event, index, sent_count, row_problem)

    keep = pa.array(np.flatnonzero(~row_problem.bad), type=pa.int64())
    columns = {
        "partner_inference_id": partner_ids.take(keep),
        "inference_timestamp": timestamps.take(pa.array(sent.event, type=pa.int64()).take(keep)),
        "batch_id": pa.nulls(len(keep), pa.string()),
        "source": pa.repeat(pa.scalar(source, pa.string()), len(keep)),
        "variant": pa.repeat(pa.scalar(variant, pa.string()), len(keep)),
        "ingested_at": _repeat(ingested_at or datetime.now(UTC), len(keep)),
    }
    return Parsed(_table(columns, typed, keep, inference_schema(model)), rejected)


def parse_ground_truth(
    buffer: bytes,
    model: Model,
    *,
    source: str,
    received_at: datetime,
    first_line: int = 1,
    ingested_at: datetime | None = None,
) -> Parsed:
    """Ground-truth rows of `model` from a Model Monitor ground-truth JSONL buffer.

    Each event's data holds one value per GROUND_TRUTH attribute (position order) for each
    inference of the original call: one line (CSV) or item (JSON) per inference, so several values
    map to `<eventId>_<index>` exactly as the capture side named them.
    """
    lines = read_jsonl(buffer, GROUND_TRUTH_SCHEMA, first_line)
    truth = lines.table.column("groundTruthData").combine_chunks()
    event_id = pc.struct_field(lines.table.column("eventMetadata").combine_chunks(), "eventId")
    problems = _Problems(len(lines.table))
    problems.add(event_id.is_null(), "eventMetadata.eventId is missing")
    problems.add(pc.struct_field(truth, "data").is_null(), "groundTruthData.data is missing")
    problems.add_reasons(identifier_problems(event_id, "partner_inference_id"))
    attributes = model.by_stage(Stage.GROUND_TRUTH, Stage.GROUND_TRUTH_CLASS)
    rows = _side_rows(truth, attributes, "groundTruthData", problems)
    count = np.bincount(rows.event, minlength=len(problems))
    problems.add(count == 0, "groundTruthData holds no value")
    partner_ids, index = _partner_ids(event_id, rows.event, count)
    rejected = _event_rejections(lines, event_id, problems, rows.event, index, count)

    usable = np.flatnonzero(~problems.bad[rows.event])
    rows, index = rows.take(usable), index[usable]
    partner_ids = partner_ids.take(pa.array(usable, type=pa.int64()))
    typed = rows.columns
    labelled = np.zeros(rows.count, dtype=bool)
    for values in typed.values():
        labelled |= values.is_valid().to_numpy(zero_copy_only=False)
    row_problem = _Problems(rows.count)
    row_problem.add_reasons(rows.problem)
    row_problem.add_reasons(rows.value_problem)
    row_problem.add_reasons(label_problems(model, typed, rows.count))
    row_problem.add(~labelled, f"groundTruthData holds no value of {', '.join(a.name for a in attributes)}")
    rejected += _row_rejections(lines, event_id, rows.event, index, count, row_problem)

    keep = pa.array(np.flatnonzero(~row_problem.bad), type=pa.int64())
    columns = {
        "partner_inference_id": partner_ids.take(keep),
        "ground_truth_timestamp": _repeat(received_at, len(keep)),
        "source": pa.repeat(pa.scalar(source, pa.string()), len(keep)),
        "ingested_at": _repeat(ingested_at or datetime.now(UTC), len(keep)),
    }
    return Parsed(_table(columns, typed, keep, ground_truth_schema(model)), rejected)


def _repeat(moment: datetime, count: int) -> pa.Array:
    return pa.array([moment], TIMESTAMP).take(pa.array(np.zeros(count, dtype=np.int64)))


class _Problems:
    """Per event (or row), the first reason found against it (None where there is none), and a
    mask of those that have one: checks ask the mask, not the reasons (a comparison per Python
    object)."""

    def __init__(self, count: int) -> None:
        self.reason = np.full(count, None, dtype=object)
        self.bad = np.zeros(count, dtype=bool)

    def __len__(self) -> int:
        return len(self.bad)

    def add(self, failed: Any, reason: str | Callable[[int], str]) -> None:
        """Give those that fail a check (and have no reason yet) the check's reason: a text, or a
        function of the position, called for each newly failed one."""
        mask = failed if isinstance(failed, np.ndarray) else failed.to_numpy(zero_copy_only=False)
        new = mask.astype(bool) & ~self.bad
        if not new.any():
            return
        if callable(reason):
            for position in np.flatnonzero(new):
                self.reason[position] = reason(position)
        else:
            self.reason[new] = reason
        self.bad |= new

    def add_reasons(self, reasons: np.ndarray | None) -> None:
        """Take reasons found elsewhere (an object array of reasons and Nones) where none is yet."""
        if reasons is not None:
            self.add_masked(has_problem(reasons), reasons)

    def add_masked(self, failed: np.ndarray, reasons: np.ndarray) -> None:
        """Take reasons[i] where failed[i] and no reason is yet."""
        new = failed & ~self.bad
        self.reason[new] = reasons[new]
        self.bad |= new


def _flag_repeated_calls(problems: _Problems, base_id: pa.Array) -> None:
    """A call whose id (inferenceId, else eventId) an earlier line of the buffer used is refused:
    within a file the first one is kept, as within a REST request."""
    positions = np.flatnonzero(~problems.bad)
    if len(positions) < 2:
        return
    encoded = base_id.take(pa.array(positions)).dictionary_encode().indices.to_numpy(zero_copy_only=False)
    _, first = np.unique(encoded, return_index=True)
    repeated = np.ones(len(positions), dtype=bool)
    repeated[first] = False
    if repeated.any():
        mask = np.zeros(len(problems), dtype=bool)
        mask[positions[repeated]] = True
        problems.add(mask, REPEATED_IN_FILE)


def _event_rejections(
    lines: Any,
    event_id: pa.Array,
    problems: _Problems,
    row_event: np.ndarray,
    index: np.ndarray,
    count: np.ndarray,
) -> list[dict[str, Any]]:
    """Rejections for broken lines and for every inference of an event that has a problem."""
    rejected = [_reject(line, None, None, reason) for line, reason in lines.broken]
    if not problems.bad.any():
        return rejected
    failed_rows = np.flatnonzero(problems.bad[row_event])
    failed = _Problems(len(failed_rows))
    failed.add_masked(np.ones(len(failed_rows), dtype=bool), problems.reason[row_event[failed_rows]])
    rejected += _row_rejections(lines, event_id, row_event[failed_rows], index[failed_rows], count, failed)
    for event in np.flatnonzero(problems.bad & (count == 0)):
        rejected.append(_reject(lines.line[event], event_id[event].as_py(), None, problems.reason[event]))
    return rejected


def _row_rejections(
    lines: Any,
    event_id: pa.Array,
    row_event: np.ndarray,
    index: np.ndarray,
    count: np.ndarray,
    problems: _Problems,
) -> list[dict[str, Any]]:
    bad = np.flatnonzero(problems.bad)
    return [
        _reject(
            lines.line[row_event[r]],
            event_id[int(row_event[r])].as_py(),
            int(index[r]) if count[row_event[r]] > 1 else None,
            problems.reason[r],
        )
        for r in bad
    ]


def _table(
    columns: dict[str, pa.Array], typed: dict[str, pa.Array], keep: pa.Array, schema: pa.Schema
) -> pa.Table:
    """The kept rows with every column of the schema (attributes a source does not carry are null)."""
    for field in schema:
        if field.name not in columns:
            values = typed.get(field.name)
            columns[field.name] = pa.nulls(len(keep), field.type) if values is None else values.take(keep)
    return pa.Table.from_arrays([columns[field.name] for field in schema], schema=schema)


def _reject(line: Any, event_id: str | None, index: int | None, reason: str) -> dict[str, Any]:
    return {
        "line": int(line) if line is not None else None,
        "event_id": event_id,
        "inference_index": index,
        "reason": reason,
    }


def _side_rows(side: pa.StructArray, attributes: list[Attribute], label: str, problems: _Problems) -> Rows:
    """Rows of one side (request, response or ground truth) of every event, parsed by content kind
    and typed by attribute (`value_problem` says why a row's value is not of its type)."""
    names = [a.name for a in attributes]
    mixed_lists = len({a.value_type is ValueType.STRING for a in attributes}) > 1
    events = np.arange(len(side))
    bodies = pc.struct_field(side, "data")
    encoding = pc.utf8_upper(pc.struct_field(side, "encoding"))
    content_type = (
        pc.struct_field(side, "observedContentType")
        if "observedContentType" in [f.name for f in side.type]
        else pa.nulls(len(side), pa.string())
    )
    known = pc.is_in(encoding, value_set=pa.array(["CSV", "JSON", "BASE64"])).to_numpy(zero_copy_only=False)
    problems.add(
        ~known & encoding.is_valid().to_numpy(zero_copy_only=False),
        f"{label}.encoding is not CSV, JSON or BASE64",
    )
    is_base64 = pc.equal(encoding, "BASE64").fill_null(False).to_numpy(zero_copy_only=False)
    if is_base64.any():
        decoded, broken = decode_base64(bodies.filter(pa.array(is_base64)))
        not_base64 = np.zeros(len(side), dtype=bool)
        not_base64[np.flatnonzero(is_base64)[broken]] = True
        problems.add(not_base64, f"{label}.data is not valid base64")
        bodies = _replace(bodies, is_base64, decoded)
    kinds = _kinds(content_type, encoding, bodies)
    problems.add(kinds == _UNKNOWN, f"{label}: unsupported observedContentType (expected CSV or JSON)")
    usable = ~problems.bad
    as_csv = usable & (kinds == _CSV)
    as_json = usable & (kinds >= _JSON)
    numbers = {a.name: ARROW_TYPES[a.value_type] for a in attributes if a.value_type in _CSV_NUMBERS}
    parts = [
        csv_rows(bodies.filter(pa.array(as_csv)), events[as_csv], names, numbers),
        json_rows(
            bodies.filter(pa.array(as_json)),
            events[as_json],
            names,
            lines=(kinds == _JSON_LINES)[as_json],
            mixed_lists=mixed_lists,
        ),
    ]
    rows = merge([_typed(part, attributes) if part.count else part for part in parts], names)
    if rows.count == 0:
        rows = _typed(rows, attributes)
    flagged = has_problem(rows.problem)
    if flagged.any():
        rows.problem[flagged] = [f"{label}: {p}" for p in rows.problem[flagged]]
    for event, reason in rows.event_problems.items():
        if not problems.bad[event]:
            problems.reason[event], problems.bad[event] = f"{label}: {reason}", True
    return rows


_UNKNOWN, _CSV, _JSON, _JSON_LINES = range(4)  # content kinds, as small integers
_KIND_CODES = {None: _UNKNOWN, "csv": _CSV, "json": _JSON, "jsonlines": _JSON_LINES}
_CSV_NUMBERS = (ValueType.FLOAT, ValueType.INTEGER)  # read as numbers by the CSV reader when plain


def _typed(rows: Rows, attributes: list[Attribute]) -> Rows:
    """The rows with each attribute's values typed (values.typed_columns) and why a value is not.
    Columns the reader already typed clean (`Rows.clean`) are what coerce would return: kept."""
    rest = [a for a in attributes if a.name not in rows.clean]
    typed, problem = typed_columns(rows.columns, rest, rows.count)
    typed.update({a.name: rows.columns[a.name] for a in attributes if a.name in rows.clean})
    return Rows(rows.event, typed, rows.problem, rows.event_problems, problem)


def _replace(bodies: pa.Array, mask: np.ndarray, replacement: pa.Array) -> pa.Array:
    """bodies with the masked entries replaced, in order, by `replacement`."""
    positions = np.cumsum(mask) - 1
    spread = replacement.take(pa.array(np.where(mask, positions, 0), type=pa.int64()))
    return pc.if_else(pa.array(mask), spread, bodies.cast(pa.string()))


def _kinds(content_type: pa.Array, encoding: pa.Array, bodies: pa.Array) -> np.ndarray:
    """_CSV, _JSON, _JSON_LINES or _UNKNOWN per event; bodies of unknown type are sniffed. Each
    distinct (content type, encoding) pair is looked at once."""
    types = content_type.cast(pa.string()).fill_null("").dictionary_encode()
    encodings = encoding.cast(pa.string()).fill_null("").dictionary_encode()
    width = max(len(encodings.dictionary), 1)
    pairs = types.indices.to_numpy(zero_copy_only=False).astype(
        np.int64
    ) * width + encodings.indices.to_numpy(zero_copy_only=False)
    distinct, which = np.unique(pairs, return_inverse=True)
    type_names, encoding_names = types.dictionary.to_pylist(), encodings.dictionary.to_pylist()
    lookup = np.array(
        [_KIND_CODES[content_kind(type_names[p // width], encoding_names[p % width])] for p in distinct]
        or [_UNKNOWN],
        dtype=np.int8,
    )
    kinds = lookup[which.reshape(-1)] if len(pairs) else np.zeros(0, dtype=np.int8)
    undecided = kinds == _UNKNOWN
    if undecided.any():
        starts_json = (
            pc.match_substring_regex(bodies, r"^\s*[\[{]").fill_null(False).to_numpy(zero_copy_only=False)
        )
        kinds[undecided & starts_json] = _JSON
        kinds[undecided & ~starts_json & bodies.is_valid().to_numpy(zero_copy_only=False)] = _CSV
    return kinds


def _partner_ids(base: pa.Array, row_event: np.ndarray, count: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """`<base>` for calls with one inference, `<base>_<index>` for calls with several."""
    starts = np.concatenate([[0], np.cumsum(count)[:-1]]) if len(count) else np.zeros(0, dtype=np.int64)
    index = np.arange(len(row_event)) - starts[row_event] if len(row_event) else np.zeros(0, dtype=np.int64)
    ids = base.take(pa.array(row_event, type=pa.int64()))
    several = count[row_event] > 1
    if not several.any():
        return ids, index
    suffixed = pc.binary_join_element_wise(ids, pa.array(index, type=pa.int64()).cast(pa.string()), "_")
    return pc.if_else(pa.array(several), suffixed, ids), index
