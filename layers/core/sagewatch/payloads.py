"""Request and response payloads (CSV, JSON, JSON Lines, base64) as rows of values, in bulk.

The payloads of many events are parsed together: CSV bodies are joined and read by one pyarrow CSV
read (lines and their events found with NumPy); JSON bodies are written as `{"v": <body>}` lines
(cut and joined by pyarrow, numbers in mixed lists quoted by a NumPy scan) and read by one pyarrow
JSON read, whose inferred type says the shape (instances/predictions lists, feature lists, objects
of name -> value, scalars), normalised with array kernels. Only when pyarrow cannot read a group in
one go (mixed shapes, invalid JSON) is it split in halves until the culprits are single events,
which Python's json module then reads. No Python loop runs per inference or per call on the common
path.

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

from sagewatch.jsonl import MAX_JSON_DEPTH, text_buffers, too_deep

CONTAINER_KEYS = ("instances", "predictions", "inputs", "outputs", "data")
POSITIONAL_KEYS = ("features", "probabilities", "scores", "values")
# A `}` or `]` ending a line followed by a line starting a new document: JSON Lines, whatever the label.
_JSON_LINES = r"[}\]][ \t\r]*\n[ \t\r\n]*[{\[]"


class _MixedShapes(Exception):
    """pyarrow read documents of different shapes as one struct (a union of their keys)."""


@dataclass
class Rows:
    """Rows parsed from the payloads of events.

    `event` is each row's event index (non-decreasing), `columns` the values by name (raw as
    parsed: text from CSV, or numbers the CSV reader could read, JSON's own types; or typed, once
    a caller has typed them), `problem` None or why the row is rejected. `event_problems` holds
    events whose body could not be read at all (they have no rows). `value_problem`, once the
    values are typed, says per row why a value is not of its type. `clean` names columns the
    reader typed itself: every value a finite number of the type asked for (csv_rows' `numbers`).
    """

    event: np.ndarray
    columns: dict[str, pa.Array]
    problem: np.ndarray
    event_problems: dict[int, str] = field(default_factory=dict)
    value_problem: np.ndarray | None = None
    clean: frozenset[str] = frozenset()

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
        positions = pa.array(indices, type=pa.int64())
        return Rows(
            self.event[indices],
            {n: c.take(positions) for n, c in self.columns.items()},
            self.problem[indices],
            dict(self.event_problems),
            None if self.value_problem is None else self.value_problem[indices],
            self.clean,
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
    if len(filled) == 1 and len(parts) == 1:
        return filled[0]
    event = np.concatenate([p.event for p in filled])
    columns = {}
    for name in names:
        chunks = [p.columns[name] for p in filled]
        common = _common_type([c.type for c in chunks])
        columns[name] = pa.concat_arrays([c if c.type == common else _as(c, common) for c in chunks])
    problem = np.concatenate([p.problem for p in filled])
    value_problem = None
    if any(p.value_problem is not None for p in filled):
        value_problem = np.concatenate(
            [p.value_problem if p.value_problem is not None else np.full(p.count, None) for p in filled]
        )
    rows = Rows(event, columns, problem, problems, value_problem)
    if len(filled) == 1 or np.all(event[1:] >= event[:-1]):
        return rows
    return rows.take(np.argsort(event, kind="stable"))


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


def csv_rows(
    bodies: pa.Array, events: np.ndarray, names: list[str], numbers: dict[str, pa.DataType] | None = None
) -> Rows:
    """One row a non-blank line; values by position into `names`.

    `numbers` names columns whose values may be read as numbers of that type by the CSV reader
    itself (float64, int64), which saves typing them from text later. If any such value is not
    a plain finite number of its type, the whole group is read as text instead, so values that
    need `values.coerce`'s care (and its messages) still get it.
    """
    if len(bodies) == 0:
        return Rows.empty(names)
    text, row_events = _csv_text(bodies, events)
    if len(row_events) == 0:
        return Rows.empty(names)
    columns = [f"c{i}" for i in range(len(names))]
    numeric = {f"c{i}": numbers[n] for i, n in enumerate(names) if numbers and n in numbers}
    table, invalid = _read_csv(text, columns, numeric) if numeric else (None, {})
    clean = frozenset(n for n in names if n in (numbers or {})) if table is not None else frozenset()
    if table is None:
        table, invalid = _read_csv(text, columns, {})
    assert table is not None  # text columns always convert
    kept = np.ones(len(row_events), dtype=bool)
    problem = np.full(len(row_events), None, dtype=object)
    for index, found in invalid.items():
        kept[index] = False
        problem[index] = f"expected {len(names)} comma-separated values ({', '.join(names)}), got {found}"
    values = {
        name: table.column(column).combine_chunks()
        if not invalid
        else _scatter(table.column(column).combine_chunks(), kept)
        for name, column in zip(names, columns, strict=True)
    }
    return Rows(row_events, values, problem, clean=clean)


def _csv_text(bodies: pa.Array, events: np.ndarray) -> tuple[pa.Buffer, np.ndarray]:
    """The bodies' non-blank lines as one text (carriage returns dropped), and each line's event.

    Lines are found with NumPy over the joined bodies. Empty lines stay (the CSV reader skips them,
    and numbers its rows without them); only lines of whitespace alone are cut out.
    """
    joined = _joined(bodies.cast(pa.string()).fill_null(""), "\n")
    data = np.frombuffer(joined, dtype=np.uint8)
    lengths = pc.binary_length(bodies).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    body_starts = np.concatenate([[0], np.cumsum(lengths[:-1] + 1)]).astype(np.int64)
    returns = np.flatnonzero(data == ord("\r")) if (data == ord("\r")).any() else np.zeros(0, np.int64)
    if len(returns):
        data = np.delete(data, returns)
        body_starts = body_starts - np.searchsorted(returns, body_starts)
    breaks = np.flatnonzero(data == ord("\n"))
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(data)]])
    empty = ends == starts
    blank = empty.copy()
    blank[~empty] = _blank(data, starts[~empty], ends[~empty])
    line_events = events[np.searchsorted(body_starts, starts[~blank], side="right") - 1]
    spaces = blank & ~empty
    if spaces.any():
        data = data[_outside(len(data), starts[spaces], ends[spaces])]
    return pa.py_buffer(data), line_events


def _read_csv(
    text: pa.Buffer, columns: list[str], numeric: dict[str, pa.DataType]
) -> tuple[pa.Table | None, dict[int, int]]:
    """The CSV text read with `numeric` columns as numbers and the others as text, and the rows
    skipped for a wrong count of values (index among non-empty lines -> count). None when a
    numeric column holds anything but plain finite numbers."""
    invalid: dict[int, int] = {}

    def on_invalid(row: pa_csv.InvalidRow) -> str:
        invalid[row.number - 1] = row.actual_columns
        return "skip"

    try:
        table = pa_csv.read_csv(
            pa.BufferReader(text),
            read_options=pa_csv.ReadOptions(column_names=columns, use_threads=False, block_size=1 << 26),
            parse_options=pa_csv.ParseOptions(invalid_row_handler=on_invalid, newlines_in_values=False),
            convert_options=pa_csv.ConvertOptions(
                column_types={c: numeric.get(c, pa.string()) for c in columns},
                null_values=[""],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if not numeric:
            raise
        return None, {}
    for column in numeric:
        values = table.column(column)
        if pa.types.is_floating(values.type) and pc.any(pc.invert(pc.is_finite(values))).as_py():
            return None, {}  # NaN and infinities: let coerce read (and word) them
    return table, invalid


def _blank(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Per non-empty segment data[start:end], whether it holds only whitespace (Unicode's, as
    utf8_trim_whitespace sees it). Only segments starting with a space, a control character or a
    non-ASCII byte are looked at, with pyarrow."""
    blank = np.zeros(len(starts), dtype=bool)
    if len(starts) == 0:
        return blank
    first = data[starts]
    suspicious = np.flatnonzero((first <= 0x20) | (first >= 0x7F))
    if len(suspicious):
        texts = _slices(data, starts[suspicious], ends[suspicious])
        trimmed = pc.utf8_length(pc.utf8_trim_whitespace(texts))
        blank[suspicious] = pc.equal(trimmed, 0).to_numpy(zero_copy_only=False)
    return blank


def _outside(size: int, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Mask of the positions below `size` in none of the sorted, disjoint ranges [start, end)."""
    step = np.zeros(size + 1, dtype=np.int8)
    np.add.at(step, starts, 1)
    np.add.at(step, ends, -1)
    return np.cumsum(step[:-1], dtype=np.int8) == 0


def _slices(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> pa.Array:
    """The texts data[start:end] of sorted, disjoint ranges (cut at ASCII bytes), as one string
    array: the ranges and the gaps between them read as one array over `data`, then every other
    entry taken. No Python loop."""
    if len(starts) == 0:
        return pa.array([], pa.large_string())
    bounds = np.empty(2 * len(starts), dtype=np.int64)
    bounds[0::2], bounds[1::2] = starts, ends
    alternating = pa.Array.from_buffers(
        pa.large_string(), len(bounds) - 1, [None, pa.py_buffer(bounds), pa.py_buffer(data)]
    )
    return alternating.take(pa.array(np.arange(0, len(bounds), 2), type=pa.int64()))


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
    bodies = bodies.cast(pa.string())
    breaks = _holds_line_break(bodies)
    looks_like_lines = np.zeros(len(bodies), dtype=bool)
    if breaks.any():  # the regex runs only on bodies holding a line break
        looks_like_lines[breaks] = (
            pc.match_substring_regex(bodies.filter(pa.array(breaks)), _JSON_LINES)
            .fill_null(False)
            .to_numpy(zero_copy_only=False)
        )
    is_lines = looks_like_lines if lines is None else (lines | looks_like_lines)
    documents, doc_events = _documents(bodies, events, is_lines, breaks)
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


def _documents(
    bodies: pa.Array, events: np.ndarray, is_lines: np.ndarray, breaks: np.ndarray
) -> tuple[pa.Array, np.ndarray]:
    """One JSON document per entry: whole bodies (line breaks, where `breaks` says a body holds
    some, made spaces), and each non-blank line of JSON Lines bodies; a blank document is null.
    Ordered by event."""
    single = ~is_lines
    one_line = bodies if single.all() else bodies.filter(pa.array(single))
    if (breaks & single).any():
        one_line = pc.replace_substring(pc.replace_substring(one_line, "\n", " "), "\r", " ")
    docs = [one_line]
    doc_events = [events[single]]
    if is_lines.any():
        split = pc.split_pattern(bodies.filter(pa.array(is_lines)), "\n")
        parent = pc.list_parent_indices(split).to_numpy()
        flat = pc.utf8_trim_whitespace(pc.list_flatten(split))
        nonblank = pc.not_equal(pc.utf8_length(flat), 0).to_numpy(zero_copy_only=False)
        docs.append(flat.filter(pa.array(nonblank)))
        doc_events.append(events[is_lines][parent[nonblank]])
    documents = pa.concat_arrays([d.cast(pa.string()) for d in docs]) if len(docs) > 1 else docs[0]
    data, starts, ends = text_buffers(documents)
    blank = ends <= starts
    blank[~blank] = _blank(data, starts[~blank], ends[~blank])
    if blank.any():
        documents = pc.if_else(pa.array(blank), pa.scalar(None, pa.string()), documents)
    if len(docs) == 1:
        return documents, doc_events[0]
    event_of = np.concatenate(doc_events)
    order = np.argsort(event_of, kind="stable")
    return documents.take(pa.array(order)), event_of[order]


def _holds_line_break(texts: pa.Array) -> np.ndarray:
    """Per string, whether it holds a line feed or a carriage return; NumPy over the data buffer,
    with one comparison when no byte is that low (the usual case)."""
    data, starts, ends = text_buffers(texts)
    if len(texts) == 0:
        return np.zeros(0, dtype=bool)
    low, high = int(starts.min()), int(ends.max())
    data = data[low:high]
    if not (data <= ord("\r")).any():
        return np.zeros(len(texts), dtype=bool)
    found = np.flatnonzero((data == ord("\n")) | (data == ord("\r"))) + low
    return np.searchsorted(found, ends) > np.searchsorted(found, starts)


def _read_json_lines(documents: pa.Array, quote: bool) -> pa.Table | None:
    """Documents read as one JSON Lines text `{"v": <document>}` (list scalars quoted when `quote`),
    or None if pyarrow refuses them."""
    text, longest = _json_text(documents, quote)
    try:
        options = pa_json.ReadOptions(block_size=max(1 << 22, longest + 2))
        table = pa_json.read_json(pa.BufferReader(text), read_options=options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return table if table.num_rows == len(documents) else None


def _json_text(documents: pa.Array, quote: bool) -> tuple[pa.Buffer, int]:
    """The documents (not null, not blank, without line breaks) as lines `{"v":<document>}`, and
    the longest line's length. Built by cutting the documents' bytes where text goes in and joining
    the pieces with it (pyarrow's binary_join): no per-document work in Python.

    With `quote`, numbers and booleans that are list elements become strings: `[1.5, "a"]` ->
    `["1.5", "a"]` (see `_list_scalars`). Feature lists mix numbers with category strings, which
    pyarrow cannot type; quoted, one read handles the group (values are typed later, by attribute).
    """
    if len(documents) == 0:
        return pa.py_buffer(b""), 0
    data, starts, ends = text_buffers(documents)
    if len(documents) > 1 and not np.array_equal(starts[1:], ends[:-1]):
        documents = documents.take(pa.array(np.arange(len(documents)), type=pa.int64()))
        data, starts, ends = text_buffers(documents)
    bounds = np.concatenate([starts, ends[-1:]]).astype(np.int64)
    longest = int((bounds[1:] - bounds[:-1]).max()) + 6
    # `}\n{"v":` before every document and after the last, then the first 2 and last 5 bytes cut
    text = _insert_before(data[bounds[0] : bounds[-1]], bounds - bounds[0], b'}\n{"v":')
    text = text.slice(2, len(text) - 7)
    if not quote:
        return text, longest
    # Scalars are quoted in the wrapped text: `:` opens every document and `}` closes it, so no
    # scalar's context can reach into a neighbouring document.
    data = np.frombuffer(text, dtype=np.uint8)
    first, last = _list_scalars(data)
    if len(first) == 0:
        return text, longest
    # a quoted scalar holds at least 2 bytes ("1,"), so a line at most doubles
    return _insert_before(data, np.sort(np.concatenate([first, last])), b'"'), 2 * longest


def _insert_before(data: np.ndarray, positions: np.ndarray, separator: bytes) -> pa.Buffer:
    """`data` with `separator` inserted before each of the sorted `positions` (0 to len(data)):
    the bytes cut at the positions, as one binary array over `data`, joined by the separator."""
    bounds = np.concatenate([[0], positions, [len(data)]]).astype(np.int64)
    pieces = pa.Array.from_buffers(
        pa.large_binary(), len(bounds) - 1, [None, pa.py_buffer(bounds), pa.py_buffer(data)]
    )
    wrapped = pa.LargeListArray.from_arrays(pa.array([0, len(pieces)], type=pa.int64()), pieces)
    return pc.binary_join(wrapped, pa.scalar(separator, pa.large_binary()))[0].as_buffer()


def _scalar_automaton() -> tuple[np.ndarray, np.ndarray]:
    r"""A DFA for `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?|true|false`: transitions (state,
    byte) -> state, with state 0 the start and the last state dead, and the accepting states."""
    edges: dict[int, dict[bytes, int]] = {
        0: {b"-": 1, b"0": 2, b"123456789": 3, b"t": 9, b"f": 13},
        1: {b"0": 2, b"123456789": 3},
        2: {b".": 4, b"eE": 6},
        3: {b"0123456789": 3, b".": 4, b"eE": 6},
        4: {b"0123456789": 5},
        5: {b"0123456789": 5, b"eE": 6},
        6: {b"+-": 7, b"0123456789": 8},
        7: {b"0123456789": 8},
        8: {b"0123456789": 8},
        9: {b"r": 10},
        10: {b"u": 11},
        11: {b"e": 12},
        13: {b"a": 14},
        14: {b"l": 15},
        15: {b"s": 16},
        16: {b"e": 17},
    }
    dead = 18
    table = np.full((dead + 1, 256), dead, dtype=np.uint8)
    for state, moves in edges.items():
        for characters, target in moves.items():
            table[state, np.frombuffer(characters, dtype=np.uint8)] = target
    accepting = np.zeros(dead + 1, dtype=bool)
    accepting[[2, 3, 5, 8, 12, 17]] = True
    return table.ravel(), accepting


_SCALAR_STEP, _SCALAR_ACCEPTS = _scalar_automaton()
_SCALAR_REGEX = r"^(?:-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false)$"
_LONG_SPAN = 40  # spans longer than this are checked by the regex (the automaton steps per byte)


def _list_scalars(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""(first, end) positions of the list scalars in data: each JSON number, `true` or `false`
    with `[` or `,` before it and `,` or `]` after it, whitespace (RE2's \s: space, tab, LF, FF,
    CR) aside.

    This is the rewrite `([\[,]\s*)(<number>|true|false)(\s*[,\]])` -> `\1"\2"\3` applied until
    nothing matches. Like that regex it ignores JSON strings: inside one, quoting can only produce
    invalid JSON (a string next to a number), never a different valid document, so such a body
    fails the read and takes the slow path; outside strings a quoted scalar is never a key (a key
    is followed by `:`), so valid documents stay valid and invalid ones invalid.

    NumPy throughout: candidates are the texts between neighbouring delimiters (`[`, `]`, `,`,
    whitespace) that open like a scalar; whitespace around them is stepped over (a few bytes for
    all candidates at once, then by runs) to find their context; then all candidates' bytes go
    through an automaton together, byte position by byte position.
    """
    none = np.zeros(0, dtype=np.int64)
    space = _spaces(data)
    places = np.flatnonzero(space | (data == _COMMA) | (data == _OPEN) | (data == _CLOSE))
    if len(places) < 2:
        return none, none
    # the text between two neighbouring delimiters, when it opens like a scalar
    first, last = places[:-1] + 1, places[1:]
    opening = data[first]
    candidate = (last > first) & (
        ((opening - _ZERO) < 10) | (opening == _MINUS) | (opening == _T) | (opening == _F)
    )
    first, last = first[candidate], last[candidate]
    before = _past_spaces(space, first - 1, -1)
    found = data[np.maximum(before, 0)]
    ok = (before >= 0) & ((found == _COMMA) | (found == _OPEN))
    after = _past_spaces(space, last, 1)
    found = data[np.minimum(after, len(data) - 1)]
    ok &= (after < len(data)) & ((found == _COMMA) | (found == _CLOSE))
    first, last = first[ok], last[ok]
    scalar = _scalar_spans(data, first, last)
    return first[scalar], last[scalar]


_ZERO, _MINUS, _T, _F = (np.uint8(ord(c)) for c in "0-tf")
_COMMA, _OPEN, _CLOSE = (np.uint8(ord(c)) for c in ",[]")
_STEPS = 4  # whitespace bytes stepped over one at a time before runs are looked up


def _spaces(data: np.ndarray) -> np.ndarray:
    r"""Where data holds RE2's \s: a space, or a control byte 9 to 13 other than 11 (VT)."""
    return (data == 32) | (((data - np.uint8(9)) < 5) & (data != 11))


def _past_spaces(space: np.ndarray, positions: np.ndarray, step: int) -> np.ndarray:
    """From each position, the first position (going by `step`: -1 down, 1 up) that is not
    whitespace: -1 or len(space) when the whitespace reaches the end."""
    found = positions.copy()
    size = len(space)
    todo = np.flatnonzero(space[found])
    for _ in range(_STEPS):  # most scalars have no space or one beside them
        if len(todo) == 0:
            return found
        found[todo] += step
        todo = todo[(found[todo] >= 0) & (found[todo] < size)]
        todo = todo[space[found[todo]]]
    if len(todo):  # longer runs: each run's far end, among all whitespace positions
        places = np.flatnonzero(space)
        breaks = places[1:] != places[:-1] + 1
        if step < 0:
            edges = places[np.concatenate([[True], breaks])]
            found[todo] = edges[np.searchsorted(edges, found[todo], side="right") - 1] - 1
        else:
            edges = places[np.concatenate([breaks, [True]])]
            found[todo] = edges[np.searchsorted(edges, found[todo])] + 1
    return found


def _scalar_spans(data: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Per span data[first:last], whether it is exactly a JSON number, `true` or `false`.

    The spans step through the automaton together, longest first, so step j touches only spans
    longer than j; the rare span longer than _LONG_SPAN is matched by the regex instead."""
    lengths = last - first
    result = np.zeros(len(first), dtype=bool)
    long = lengths > _LONG_SPAN
    if long.any():
        found = pc.match_substring_regex(_slices(data, first[long], last[long]), _SCALAR_REGEX)
        result[long] = found.to_numpy(zero_copy_only=False)
    short = np.flatnonzero(~long)
    order = short[np.argsort((_LONG_SPAN - lengths[short]).astype(np.uint8), kind="stable")]
    begin, size = first[order], lengths[order]
    state = np.zeros(len(order), dtype=np.int64)
    alive = np.searchsorted(-size, -np.arange(int(size[0]) if len(size) else 0), side="left")
    for step, count in enumerate(alive):  # one step per byte position, not per span
        state[:count] = _SCALAR_STEP[state[:count] * 256 + data[begin[:count] + step]]
    result[order] = _SCALAR_ACCEPTS[state]
    return result


def _read_documents(
    documents: pa.Array, events: np.ndarray, names: list[str], quote_first: bool = False
) -> Rows:
    """Read documents with pyarrow in one go (as they are, and with list scalars quoted); on
    failure split in halves, down to single documents."""
    if len(documents) == 0:
        return Rows.empty(names)
    for quote in (True, False) if quote_first else (False, True):
        table = _read_json_lines(documents, quote)
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
        if right.all():
            return {name: pc.list_element(items, index) for index, name in enumerate(names)}, problem
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
