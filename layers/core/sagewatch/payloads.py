"""Request and response payloads (CSV, JSON, JSON Lines, base64) as rows of values, in bulk.

The payloads of many events are parsed together: CSV bodies are split into lines and read by one
pyarrow CSV read; JSON bodies are wrapped as `{"v": <body>}` lines and read by one pyarrow JSON
read, whose inferred type says the shape (instances/predictions lists, feature lists, objects of
name -> value, scalars), normalised with array kernels. Only when pyarrow cannot read a group in
one go (mixed shapes, invalid JSON) is it split in halves until the culprits are single events,
which Python's json module then reads. No Python loop runs per inference on the common path.

Shapes, per DESIGN.md: a body is `{"instances": [...]}`, `{"predictions": [...]}` (also inputs,
outputs, data), a bare list, one item, or JSON Lines of those. An item is `{"features": [...]}` or
`{"probabilities": [...]}` (values in position order), a plain list, an object of name -> value
(matched by name, or by position when no name matches and the counts agree), or a scalar. A flat
list of scalars is one row when a row has several values (`[1.5, 2, 3]` for three inputs), and a
list of one-value rows otherwise (`[0.9, 0.2]` for two predictions).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json

from sagewatch.jsonl import MAX_JSON_DEPTH, too_deep

CONTAINER_KEYS = ("instances", "predictions", "inputs", "outputs", "data")
POSITIONAL_KEYS = ("features", "probabilities", "scores", "values")
# A `}` or `]` ending a line followed by a line starting a new document: JSON Lines, whatever the label.
_JSON_LINES = r"[}\]][ \t\r]*\n[ \t\r\n]*[{\[]"
# A number or boolean standing as a list element (after `[` or `,`, before `,` or `]`).
_LIST_SCALAR = r"([\[,]\s*)(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false)(\s*[,\]])"


class _MixedShapes(Exception):
    """pyarrow read documents of different shapes as one struct (a union of their keys)."""


@dataclass
class Rows:
    """Rows parsed from the payloads of events.

    `event` is each row's event index (non-decreasing), `columns` the raw values by name (untyped:
    text from CSV, JSON's own types), `problem` None or why the row is rejected. `event_problems`
    holds events whose body could not be read at all (they have no rows).
    """

    event: np.ndarray
    columns: dict[str, pa.Array]
    problem: np.ndarray
    event_problems: dict[int, str] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """How many rows."""
        return len(self.event)

    @classmethod
    def empty(cls, names: list[str]) -> Rows:
        """No rows, with these columns."""
        return cls(np.zeros(0, dtype=np.int64), {n: pa.nulls(0) for n in names}, np.zeros(0, dtype=object))

    @classmethod
    def failed(cls, names: list[str], events: np.ndarray, reason: str) -> Rows:
        """No rows: each of these events failed whole, for `reason`."""
        rows = cls.empty(names)
        rows.event_problems = {int(e): reason for e in events}
        return rows

    def take(self, indices: np.ndarray) -> Rows:
        """The rows at these indices (events that failed whole are kept)."""
        return Rows(
            self.event[indices],
            {n: c.take(pa.array(indices, type=pa.int64())) for n, c in self.columns.items()},
            self.problem[indices],
            dict(self.event_problems),
        )


def merge(parts: list[Rows], names: list[str]) -> Rows:
    """Rows of several groups as one, ordered by event (stable, so order within an event is kept)."""
    parts = [p for p in parts if p.count or p.event_problems]
    problems: dict[int, str] = {}
    for part in parts:
        problems.update(part.event_problems)
    filled = [p for p in parts if p.count]
    if not filled:
        rows = Rows.empty(names)
        rows.event_problems = problems
        return rows
    event = np.concatenate([p.event for p in filled])
    columns = {}
    for name in names:
        chunks = [p.columns[name] for p in filled]
        common = _common_type([c.type for c in chunks])
        columns[name] = pa.concat_arrays([c if c.type == common else _as(c, common) for c in chunks])
    problem = np.concatenate([p.problem for p in filled])
    return Rows(event, columns, problem, problems).take(np.argsort(event, kind="stable"))


def _common_type(types: list[pa.DataType]) -> pa.DataType:
    distinct = {t for t in types if not pa.types.is_null(t)}
    if not distinct:
        return pa.null()
    if len(distinct) == 1:
        return distinct.pop()
    if all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in distinct):
        return pa.float64()
    return pa.string()


def _as(array: pa.Array, target: pa.DataType) -> pa.Array:
    """Cast for merging; nested values that cannot become text are kept as their JSON."""
    try:
        return array.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([None if v is None else json.dumps(v) for v in array.to_pylist()], type=target)


def _joined(strings: pa.Array, separator: str) -> pa.Buffer:
    """All strings joined by a separator, as one buffer (no Python string in between)."""
    return pc.binary_join(pa.ListArray.from_arrays([0, len(strings)], strings), separator)[0].as_buffer()


def _scatter(values: pa.Array, kept: np.ndarray) -> pa.Array:
    """Values of the kept rows placed back among all rows, null where a row was not kept."""
    positions = np.cumsum(kept) - 1
    return values.take(pa.array(np.where(kept, positions, 0), mask=~kept, type=pa.int64()))


# -- CSV ---------------------------------------------------------------------------------------------


def csv_rows(bodies: pa.Array, events: np.ndarray, names: list[str]) -> Rows:
    """One row a non-blank line; values by position into `names`."""
    if len(bodies) == 0:
        return Rows.empty(names)
    lines = pc.split_pattern(pc.replace_substring(bodies, "\r", ""), "\n")
    parent = pc.list_parent_indices(lines).to_numpy()
    flat = pc.list_flatten(lines)
    nonblank = pc.not_equal(pc.utf8_length(pc.utf8_trim_whitespace(flat)), 0)
    flat = flat.filter(nonblank)
    row_events = events[parent[nonblank.to_numpy(zero_copy_only=False)]]
    if len(flat) == 0:
        return Rows.empty(names)
    joined = _joined(flat, "\n")
    invalid: dict[int, int] = {}

    def on_invalid(row: pa_csv.InvalidRow) -> str:
        invalid[row.number - 1] = row.actual_columns
        return "skip"

    columns = [f"c{i}" for i in range(len(names))]
    table = pa_csv.read_csv(
        pa.BufferReader(joined),
        read_options=pa_csv.ReadOptions(column_names=columns, use_threads=False, block_size=1 << 26),
        parse_options=pa_csv.ParseOptions(invalid_row_handler=on_invalid, newlines_in_values=False),
        convert_options=pa_csv.ConvertOptions(
            column_types={c: pa.string() for c in columns},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    kept = np.ones(len(flat), dtype=bool)
    problem = np.full(len(flat), None, dtype=object)
    for index, found in invalid.items():
        kept[index] = False
        problem[index] = f"expected {len(names)} comma-separated values ({', '.join(names)}), got {found}"
    values = {
        name: _scatter(table.column(column).combine_chunks(), kept)
        for name, column in zip(names, columns, strict=True)
    }
    return Rows(row_events, values, problem)


# -- JSON --------------------------------------------------------------------------------------------


def json_rows(
    bodies: pa.Array,
    events: np.ndarray,
    names: list[str],
    lines: np.ndarray | None = None,
    mixed_lists: bool = False,
) -> Rows:
    """Rows from JSON bodies (JSON Lines where `lines` says so, or where the body looks like it).

    `mixed_lists`: the values of a row mix numbers and text, so positional lists will too; their
    scalars are quoted before the first read rather than after a failed one.
    """
    if len(bodies) == 0:
        return Rows.empty(names)
    looks_like_lines = (
        pc.match_substring_regex(bodies, _JSON_LINES).fill_null(False).to_numpy(zero_copy_only=False)
    )
    is_lines = looks_like_lines if lines is None else (lines | looks_like_lines)
    documents, doc_events = _documents(bodies, events, is_lines)
    missing = documents.is_null().to_numpy(zero_copy_only=False)
    deep = too_deep(documents)
    parts = []
    if missing.any():
        parts.append(Rows.failed(names, np.unique(doc_events[missing]), "the body is empty"))
    if deep.any():
        reason = f"the JSON nests deeper than {MAX_JSON_DEPTH} levels"
        parts.append(Rows.failed(names, np.unique(doc_events[deep]), reason))
    present = ~missing & ~deep
    parts.append(
        _read_documents(documents.filter(pa.array(present)), doc_events[present], names, mixed_lists)
    )
    return merge(parts, names)


def _documents(bodies: pa.Array, events: np.ndarray, is_lines: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """One JSON document per entry: whole bodies, and each non-blank line of JSON Lines bodies."""
    single = ~is_lines
    one_line = pc.replace_substring(
        pc.replace_substring(bodies.filter(pa.array(single)), "\n", " "), "\r", " "
    )
    docs = [one_line]
    doc_events = [events[single]]
    if is_lines.any():
        split = pc.split_pattern(bodies.filter(pa.array(is_lines)), "\n")
        parent = pc.list_parent_indices(split).to_numpy()
        flat = pc.utf8_trim_whitespace(pc.list_flatten(split))
        nonblank = pc.not_equal(pc.utf8_length(flat), 0).to_numpy(zero_copy_only=False)
        docs.append(flat.filter(pa.array(nonblank)))
        doc_events.append(events[is_lines][parent[nonblank]])
    documents = pa.concat_arrays([d.cast(pa.string()) for d in docs])
    blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(documents)), 0).fill_null(True)
    documents = pc.if_else(blank, pa.scalar(None, pa.string()), documents)
    event_of = np.concatenate(doc_events)
    order = np.argsort(event_of, kind="stable")
    return documents.take(pa.array(order)), event_of[order]


def _quote_list_scalars(documents: pa.Array) -> pa.Array:
    """Numbers and booleans that are list elements, as strings: `[1.5, "a"]` -> `["1.5", "a"]`.

    Feature lists mix numbers with category strings, which pyarrow cannot type. Quoting them lets
    one read handle the group (values are typed later, by attribute). Inside a JSON string the
    rewrite can only produce invalid JSON (a string next to a number), never a different valid
    document, so such a body fails the read and takes the slow path. Two passes, because a match
    consumes the comma the next element needs.
    """
    for _ in range(2):
        documents = pc.replace_substring_regex(documents, _LIST_SCALAR, r'\1"\2"\3')
    return documents


def _read_json_lines(documents: pa.Array) -> pa.Table | None:
    """Documents read as one JSON Lines text `{"v": <document>}`, or None if pyarrow refuses them."""
    wrapped = pc.binary_join_element_wise('{"v":', documents, "}", "")
    text = _joined(wrapped, "\n")
    longest = pc.max(pc.binary_length(wrapped)).as_py() or 0
    try:
        options = pa_json.ReadOptions(block_size=max(1 << 22, longest + 2))
        table = pa_json.read_json(pa.BufferReader(text), read_options=options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return table if table.num_rows == len(documents) else None


def _read_documents(
    documents: pa.Array, events: np.ndarray, names: list[str], quote_first: bool = False
) -> Rows:
    """Read documents with pyarrow in one go (as they are, and with list scalars quoted); on
    failure split in halves, down to single documents."""
    if len(documents) == 0:
        return Rows.empty(names)
    attempts = [lambda: documents, lambda: _quote_list_scalars(documents)]
    for attempt in attempts[::-1] if quote_first else attempts:
        table = _read_json_lines(attempt())
        if table is None:
            continue
        try:
            column = table.column("v").combine_chunks()
            column.validate(full=True)  # the reader can build invalid lists (a null first, then text)
            return _rows_from_documents(column, events, names)
        except _MixedShapes:
            break
        except pa.ArrowException:  # read, but not assembled: try the next way, then halves
            continue
    if len(documents) == 1:
        return _read_one_document(documents[0].as_py(), int(events[0]), names)
    middle = len(documents) // 2
    return merge(
        [
            _read_documents(documents.slice(0, middle), events[:middle], names, quote_first),
            _read_documents(documents.slice(middle), events[middle:], names, quote_first),
        ],
        names,
    )


def _read_one_document(document: str, event: int, names: list[str]) -> Rows:
    """A document pyarrow could not read alone: valid JSON with mixed value types, or invalid JSON."""
    events = np.array([event])
    try:
        parsed = json.loads(document)
    except json.JSONDecodeError as error:
        return Rows.failed(names, events, f"invalid JSON: {error.msg} at character {error.pos}")
    # Mixed scalars (numbers beside strings) are what pyarrow refuses: read every scalar as text.
    # Built from Python, not re-read as JSON: pyarrow's JSON reader builds an invalid list array
    # when a list starts with null and goes on with text (`[null, "2.0", "north"]`).
    try:
        document_array = pa.array([scalars_as_text(parsed)])
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return Rows.failed(
            names, events, "unsupported JSON shape: lists must hold only values or only objects"
        )
    return _rows_from_documents(document_array, events, names)


def scalars_as_text(value: object) -> object:
    """The parsed document with every number and boolean as its JSON text (strings and nulls kept)."""
    if isinstance(value, dict):
        return {k: scalars_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scalars_as_text(v) for v in value]
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _is_scalar(data_type: pa.DataType) -> bool:
    return not (
        pa.types.is_struct(data_type) or pa.types.is_list(data_type) or pa.types.is_large_list(data_type)
    )


def _rows_from_documents(documents: pa.Array, events: np.ndarray, names: list[str]) -> Rows:
    items, item_document = _items(documents, len(names))
    columns, problem = _item_values(items, names)
    return Rows(events[item_document], columns, problem)


def _items(documents: pa.Array, width: int) -> tuple[pa.Array, np.ndarray]:
    """The items (future rows) of each document, and the document each came from."""
    positions = np.arange(len(documents))
    if pa.types.is_struct(documents.type):
        fields = [f.name for f in documents.type]
        container = next((key for key in CONTAINER_KEYS if key in fields), None)
        if container is not None:
            if len(fields) > 1:
                raise _MixedShapes(fields)
            documents = pc.struct_field(documents, container)
    if pa.types.is_list(documents.type) or pa.types.is_large_list(documents.type):
        if _is_scalar(documents.type.value_type) and width > 1:
            return documents, positions  # a flat list of scalars is one row of several values
        return pc.list_flatten(documents), positions[pc.list_parent_indices(documents).to_numpy()]
    return documents, positions


def _item_values(items: pa.Array, names: list[str]) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Values by name for each item, and why an item cannot be a row."""
    problem = np.full(len(items), None, dtype=object)
    null_items = items.is_null().to_numpy(zero_copy_only=False)
    problem[null_items] = "the item is null"
    if pa.types.is_struct(items.type):
        fields = [f.name for f in items.type]
        positional = next((key for key in POSITIONAL_KEYS if key in fields), None)
        if positional is not None:
            if len(fields) > 1:
                raise _MixedShapes(fields)
            items = pc.struct_field(items, positional)
        else:
            matching = [n for n in names if n in fields]
            if matching:
                return {
                    n: pc.struct_field(items, n) if n in fields else pa.nulls(len(items)) for n in names
                }, problem
            if len(fields) == len(names):
                # by position: a key such as "a.b" would be read as a path
                return {n: pc.struct_field(items, [i]) for i, n in enumerate(names)}, problem
            problem[~null_items] = f"object keys {fields} match none of {names}"
            return {n: pa.nulls(len(items)) for n in names}, problem
    if pa.types.is_list(items.type) or pa.types.is_large_list(items.type):
        lengths = pc.list_value_length(items).fill_null(0).to_numpy(zero_copy_only=False)
        right = (lengths == len(names)) & ~null_items
        wrong = ~right & ~null_items
        problem[wrong] = [
            f"expected {len(names)} values ({', '.join(names)}), got {n}" for n in lengths[wrong]
        ]
        kept = items.filter(pa.array(right))
        return {
            name: _scatter(pc.list_element(kept, index), right) if len(kept) else pa.nulls(len(items))
            for index, name in enumerate(names)
        }, problem
    if len(names) == 1:
        return {names[0]: items}, problem
    problem[~null_items] = f"expected {len(names)} values ({', '.join(names)}), got 1"
    return {n: pa.nulls(len(items)) for n in names}, problem


# -- base64 ------------------------------------------------------------------------------------------


def decode_base64(bodies: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Decoded bodies (as text), and a mask of bodies that are not valid base64 of UTF-8 text.

    Padded base64 has a length divisible by 4, so all bodies decode in one call and the result is
    cut at the decoded lengths.
    """
    text = pc.replace_substring_regex(bodies.cast(pa.string()).fill_null(""), r"\s", "")
    length = pc.utf8_length(text).to_numpy(zero_copy_only=False).astype(np.int64)
    padding = (-length) % 4  # unpadded base64 (allowed by some encoders): pad it
    for count in (1, 2, 3):
        wanted = pa.array(padding == count)
        text = pc.if_else(wanted, pc.binary_join_element_wise(text, "=" * count, ""), text)
    length = length + padding
    equals = pc.count_substring(pc.utf8_slice_codeunits(text, -2), "=").to_numpy(zero_copy_only=False)
    decoded_length = length // 4 * 3 - np.where(length > 0, equals, 0)
    joined = pc.binary_join(pa.ListArray.from_arrays([0, len(text)], text), "")[0].as_py()
    try:
        raw = base64.b64decode(joined, validate=True)
        offsets = np.concatenate([[0], np.cumsum(decoded_length)]).astype(np.int32)
        if offsets[-1] != len(raw):
            raise binascii.Error("padding inside a body")
        decoded = pa.Array.from_buffers(
            pa.binary(), len(text), [None, pa.py_buffer(offsets), pa.py_buffer(raw)]
        )
        return _utf8(decoded)
    except (binascii.Error, ValueError):
        return _decode_each(text)


def _utf8(decoded: pa.Array) -> tuple[pa.Array, np.ndarray]:
    try:
        return decoded.cast(pa.string()), np.zeros(len(decoded), dtype=bool)
    except pa.ArrowInvalid:
        return _decode_each(pa.array([base64.b64encode(v).decode() for v in decoded.to_pylist()]))


def _decode_each(text: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The slow path when some body is broken: each body alone, so only the broken ones fail."""
    out, bad = [], []
    for value in text.to_pylist():
        try:
            out.append(base64.b64decode(value, validate=True).decode("utf-8"))
            bad.append(False)
        except (binascii.Error, ValueError, UnicodeDecodeError):
            out.append(None)
            bad.append(True)
    return pa.array(out, type=pa.string()), np.array(bad, dtype=bool)


# -- dispatch by content type ------------------------------------------------------------------------


def content_kind(content_type: str | None, encoding: str | None) -> str | None:
    """'csv', 'json', 'jsonlines' or None (unsupported), from observedContentType and encoding."""
    media = (content_type or "").split(";")[0].strip().lower()
    if "jsonl" in media or "jsonlines" in media or "x-ndjson" in media:
        return "jsonlines"
    if "json" in media:
        return "json"
    if "csv" in media:
        return "csv"
    encoding = (encoding or "").upper()
    if encoding == "CSV":
        return "csv"
    if encoding == "JSON":
        return "json"
    return None
