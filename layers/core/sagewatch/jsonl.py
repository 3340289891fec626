"""Reading JSON Lines files with pyarrow, line numbers kept, broken lines isolated.

A file is read in one pyarrow call against an explicit schema. When a line is broken, the range
is split in halves until each broken line stands alone; the rest is still read by pyarrow, so a
few bad lines cost a few extra reads, not a Python loop over the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.json as pa_json

_WHITESPACE = np.array([9, 10, 13, 32], dtype=np.uint8)
# Blocks of 4 MB let pyarrow parse a large buffer on several threads (a line never spans blocks);
# a buffer up to 16 MB (a chunk of a file, which worker threads already parse side by side) is read
# as one block, so its table comes in one piece and needs no concatenation.
_MIN_BLOCK = 1 << 22
_ONE_BLOCK = 1 << 24


@dataclass
class LineTable:
    """The readable lines as a table, each row's 1-based line number, and the unreadable lines."""

    table: pa.Table
    line: np.ndarray
    broken: list[tuple[int, str]]


def read_jsonl(buffer: bytes, schema: pa.Schema, first_line: int = 1) -> LineTable:
    """Read a JSON Lines buffer (blank lines skipped); `first_line` numbers its first line.

    Lines of a shape already seen are read by `_read_shaped` (a byte scan, no JSON parser per
    line); the others, and every line that scan is not sure of, by pyarrow (`_read_any`), which
    words the reasons broken lines are refused for. Both give the same table for the same line.
    """
    shaped = _read_shaped(buffer, schema)
    if shaped is None:
        return _read_any(buffer, schema, first_line)
    table, line, rest = shaped
    if rest is None:
        return LineTable(table, line + first_line, [])
    others = _read_any(rest, schema, first_line)
    line = np.concatenate([line + first_line, others.line])
    table = pa.concat_tables([table, others.table.cast(schema)]).combine_chunks()
    if len(line) > 1 and not np.all(line[1:] > line[:-1]):
        order = np.argsort(line, kind="stable")
        table, line = table.take(pa.array(order)), line[order]
    return LineTable(table, line, others.broken)


def _read_any(buffer: bytes, schema: pa.Schema, first_line: int) -> LineTable:
    """Read a JSON Lines buffer with pyarrow, broken lines isolated by bisection."""
    data = np.frombuffer(buffer, dtype=np.uint8)
    newlines = np.flatnonzero(data == 10)
    starts = np.concatenate([[0], newlines + 1])
    ends = np.concatenate([newlines, [len(data)]])
    broken: list[tuple[int, str]] = []
    deep = segments_too_deep(data, starts, ends)
    if deep.any():  # set aside before pyarrow reads them; blanked, they keep the line numbers
        blanked = data.copy()
        for line in np.flatnonzero(deep):
            blanked[starts[line] : ends[line]] = 32
            broken.append(
                (int(line) + first_line, f"not a JSON object: nested deeper than {MAX_JSON_DEPTH} levels")
            )
        buffer, data = blanked.tobytes(), blanked
    nonblank = np.flatnonzero(~_blank(buffer, data, starts, ends))
    if len(nonblank) == 0:
        return LineTable(schema.empty_table(), np.zeros(0, dtype=np.int64), broken)
    longest = int((ends[nonblank] - starts[nonblank]).max())
    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    block = len(buffer) + 1 if len(buffer) < _ONE_BLOCK else _MIN_BLOCK
    read = pa_json.ReadOptions(block_size=max(block, longest + 2), use_threads=True)
    whole = pa.py_buffer(buffer)
    pieces: list[tuple[int, pa.Table]] = []  # (index of the first nonblank line, its table)

    # Ranges of nonblank lines to read, bisected around broken lines. A work list rather than a
    # recursive closure: a closure referring to itself is a reference cycle that would keep every
    # chunk's buffers alive until the garbage collector runs.
    pending = [(0, len(nonblank))]
    while pending:
        first, last = pending.pop()
        start = int(starts[nonblank[first]])
        chunk = whole.slice(start, int(ends[nonblank[last - 1]]) - start)
        try:
            table = pa_json.read_json(pa.BufferReader(chunk), read_options=read, parse_options=options)
            if table.num_rows == last - first:
                pieces.append((first, table))
                continue
            reason = "the line holds more than one JSON object"
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            reason = _reason(error)
        if last - first == 1:
            broken.append((int(nonblank[first]) + first_line, reason))
            continue
        middle = (first + last) // 2
        pending += [(middle, last), (first, middle)]
    pieces.sort(key=lambda piece: piece[0])
    if not pieces:
        return LineTable(schema.empty_table(), np.zeros(0, dtype=np.int64), broken)
    table = pa.concat_tables([t for _, t in pieces])
    line = np.concatenate([nonblank[first : first + t.num_rows] for first, t in pieces]) + first_line
    return LineTable(table, line, broken)


def _blank(buffer: bytes, data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Per line, whether it holds only whitespace. JSON lines start with `{`, so only lines that are
    empty or start with whitespace (rare) need a closer look."""
    empty = ends <= starts
    first = np.where(empty, 32, data[np.minimum(starts, len(data) - 1)] if len(data) else 32)
    suspicious = np.flatnonzero(np.isin(first, _WHITESPACE) & ~empty)
    blank = empty.copy()
    for line in suspicious:
        blank[line] = not buffer[starts[line] : ends[line]].strip()
    return blank


def _reason(error: Exception) -> str:
    text = str(error).split("\n")[0].removeprefix("JSON parse error: ")
    return f"not a JSON object: {re.sub(r' in row [0-9]+$', '', text)}"


# JSON nested deeper than this is refused before any parser sees it: pyarrow's kernels recurse
# over nested types and crash (not raise) a few thousand levels down; no real payload needs 32.
MAX_JSON_DEPTH = 32
_OPEN = np.zeros(256, dtype=np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


def too_deep(texts: pa.Array) -> np.ndarray:
    """Per string, whether its JSON nests deeper than MAX_JSON_DEPTH (brackets inside JSON strings
    do not count); False for nulls. Reads the array's buffers without copying them."""
    if len(texts) == 0:
        return np.zeros(0, dtype=bool)
    if not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)):
        texts = texts.cast(pa.string())
    data, starts, ends = text_buffers(texts)
    return segments_too_deep(data, starts, ends)


def text_buffers(texts: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A string array's bytes and each string's (start, end) in them, as NumPy views (no copy).

    A null's start and end are equal (Arrow gives nulls empty ranges only by convention, so they
    are forced empty here)."""
    wide = pa.types.is_large_string(texts.type) or pa.types.is_large_binary(texts.type)
    _, offset_buffer, data_buffer = texts.buffers()[:3]
    offsets = np.frombuffer(offset_buffer, dtype=np.int64 if wide else np.int32)
    offsets = offsets[texts.offset : texts.offset + len(texts) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    starts, ends = offsets[:-1], offsets[1:]
    if texts.null_count:
        starts = np.where(texts.is_valid().to_numpy(zero_copy_only=False), starts, ends)
    return data, starts, ends


def segments_too_deep(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Per segment data[start:end], whether its JSON nests deeper than MAX_JSON_DEPTH.

    Vectorized: only segments holding more than MAX_JSON_DEPTH opening brackets can be too deep,
    and only those are measured. Brackets are first counted per 64-byte block, which bounds each
    segment's count from above (the blocks it touches); only when some bound passes the limit are
    the brackets' positions looked up for an exact count.
    """
    deep = np.zeros(len(starts), dtype=bool)
    if len(starts) == 0 or len(data) == 0:
        return deep
    opening = ((data | 0x20) == ord("{")).view(np.uint8)  # `[` is 0x5B, `{` 0x7B: nothing else
    # Brackets per 64-byte block: the 0/1 bytes read as 64-bit words, 8 words added lane by lane
    # (a lane holds at most 8), then a word's 8 lanes summed by one multiplication.
    whole = len(data) // _BLOCK * _BLOCK
    words = opening[:whole].view(np.uint64).reshape(-1, _BLOCK // 8)
    lanes = words[:, 0].copy()
    for column in range(1, _BLOCK // 8):
        lanes += words[:, column]
    blocks = (lanes * np.uint64(0x0101010101010101)) >> np.uint64(56)
    held = np.concatenate([[0], np.cumsum(blocks, dtype=np.int64)])
    held = np.concatenate([held, [held[-1] + int(opening[whole:].sum())]])
    bound = held[-(-ends // _BLOCK)] - held[starts // _BLOCK]
    if not (bound > MAX_JSON_DEPTH).any():
        return deep
    places = np.flatnonzero(opening)
    held = np.searchsorted(places, ends) - np.searchsorted(places, starts)
    for index in np.flatnonzero(held > MAX_JSON_DEPTH):
        deep[index] = depth(data[starts[index] : ends[index]]) > MAX_JSON_DEPTH
    return deep


_BLOCK = 64


def depth(data: np.ndarray | bytes) -> int:
    """How deep one JSON text nests, brackets inside strings ignored (a cumulative sum of steps)."""
    data = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes | bytearray) else data
    steps = _OPEN[data].astype(np.int32)
    rough = int(np.cumsum(steps).max(initial=0))
    if rough <= MAX_JSON_DEPTH:  # even counting the brackets inside strings
        return rough
    backslash = data == ord("\\")
    positions = np.arange(len(data))
    last_plain = np.maximum.accumulate(np.where(backslash, -1, positions))
    run_before = np.zeros(len(data), dtype=np.int64)  # backslashes just before each byte
    run_before[1:] = positions[:-1] - last_plain[:-1]
    quote = (data == ord('"')) & (run_before % 2 == 0)
    inside = (np.cumsum(quote) - quote) % 2 == 1  # a string's bytes (its opening quote excluded)
    steps[inside | quote] = 0
    return int(np.cumsum(steps).max(initial=0))


def loads(text: str) -> Any:
    """A request body's JSON, read as sagewatch reads every body.

    NaN (what json.dumps writes for a pandas missing value) is read as null; Infinity stays a float,
    which every number field then refuses by name. Refused with json.JSONDecodeError (a 400 naming
    the body): JSON nested deeper than MAX_JSON_DEPTH, a string holding a lone UTF-16 surrogate
    (`"\\ud800"` is not text, and no store would take it), an integer too long to convert.
    """
    encoded = text.encode("utf-8", errors="surrogatepass")
    if depth(encoded) > MAX_JSON_DEPTH:
        raise json.JSONDecodeError(f"nested deeper than {MAX_JSON_DEPTH} levels", text, 0)
    try:
        value = json.loads(text, parse_constant=lambda name: None if name == "NaN" else float(name))
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as error:  # ints past Python's digit limit
        raise json.JSONDecodeError(str(error).split(";")[0], text, 0) from None
    if "\\u" in text and _LONE_SURROGATE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as error:
            raise json.JSONDecodeError(
                "a string holds a lone UTF-16 surrogate, which is not text", text, error.start
            ) from None
    return value


_LONE_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


# -- lines of a known shape, read by a byte scan -----------------------------------------------------
#
# A JSON Lines writer (SageMaker Data Capture, Model Monitor) writes its lines in a few shapes: the
# same keys in the same order with the same spacing; only the string values differ. The scan finds
# each line's strings (quotes not escaped, paired within the line), tells keys (a string followed by
# `:`) from values, and cuts the values' text out: what remains, the line's skeleton, is the same
# for every line of a shape. Each distinct skeleton is read once, by Python's json module: a line is
# valid JSON exactly when its skeleton is (its strings' contents being valid: no control character,
# no invalid escape, UTF-8), and the skeleton says which value of the line (the k-th) each field of
# the schema holds. Every field's values are then cut out of the buffer for all lines at once,
# escapes undone. A line the scan is not sure of (a control character other than its line break, a
# \u escape, an odd count of quotes, a skeleton holding anything but objects and strings, duplicate
# keys, too deep, or too rare a shape) is read by pyarrow (`_read_any`) as before.

_SIMPLE_ESCAPES = np.zeros(256, dtype=np.uint8)  # an escape's second byte -> the byte it stands for
_SIMPLE_ESCAPES[np.frombuffer(b'"\\/bfnrt', dtype=np.uint8)] = np.frombuffer(
    b'"\\/\b\f\n\r\t', dtype=np.uint8
)
_QUOTE, _BACKSLASH, _LINE_FEED, _SPACE, _COLON = 34, 92, 10, 32, 58
_SPACES_AFTER = 4  # spaces between a key and its `:` looked past (more: the line goes to pyarrow)
_SKELETON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"( *:)?')
_MAX_SHAPES = 64  # distinct skeletons read per buffer; lines of rarer ones go to pyarrow
_MAX_SKELETON = 1 << 16  # bytes


@dataclass(frozen=True)
class _Layout:
    """A schema of objects and strings: the paths of its string fields and of its objects."""

    leaves: tuple[tuple[str, ...], ...]
    structs: tuple[tuple[str, ...], ...]


_LAYOUTS: dict[pa.Schema, _Layout | None] = {}


def _layout(schema: pa.Schema) -> _Layout | None:
    """The schema's layout, or None when it holds other than structs and strings."""
    if schema not in _LAYOUTS:
        leaves: list[tuple[str, ...]] = []
        structs: list[tuple[str, ...]] = []
        pending = [((f.name,), f.type) for f in schema]
        plain = True
        while pending:
            path, kind = pending.pop(0)
            if pa.types.is_struct(kind):
                structs.append(path)
                pending += [((*path, f.name), f.type) for f in kind]
            elif pa.types.is_string(kind):
                leaves.append(path)
            else:
                plain = False
        _LAYOUTS[schema] = _Layout(tuple(leaves), tuple(structs)) if plain and leaves else None
    return _LAYOUTS[schema]


class _NotPlain(ValueError):
    """A skeleton holding more than objects and strings (or a key twice)."""


def _refuse(text: str) -> Any:
    raise _NotPlain(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise _NotPlain("a key twice")
    return found


def _skeleton_places(skeleton: bytes, layout: _Layout) -> tuple[np.ndarray, np.ndarray, int] | None:
    """For one skeleton: per leaf of the layout, which value of the line holds it (-1: absent); per
    struct, whether it is present; how many values a line holds. None when the skeleton is not
    valid JSON of objects and strings with distinct keys, or nests too deep."""
    if len(skeleton) > _MAX_SKELETON or depth(skeleton) > MAX_JSON_DEPTH:
        return None
    pieces, count, last = [], 0, 0
    for match in _SKELETON_STRING.finditer(skeleton):
        if match.group(1) is None:  # a value: named by its place in the line
            pieces += [skeleton[last : match.start()], b'"%d"' % count]
            count, last = count + 1, match.end()
    pieces.append(skeleton[last:])
    try:
        document = json.loads(
            b"".join(pieces).decode(),
            object_pairs_hook=_unique_keys,
            parse_float=_refuse,
            parse_int=_refuse,
            parse_constant=_refuse,
        )
    except (ValueError, RecursionError):
        return None
    pending = [document]
    while pending:  # objects and strings only
        node = pending.pop()
        if isinstance(node, dict):
            pending += node.values()
        elif not isinstance(node, str):
            return None
    if not isinstance(document, dict):
        return None
    places = np.full(len(layout.leaves), -1, dtype=np.int64)
    present = np.zeros(len(layout.structs), dtype=bool)
    for index, path in enumerate(layout.structs + layout.leaves):
        node: Any = document
        for name in path:
            node = node.get(name) if isinstance(node, dict) else None
        is_struct = index < len(layout.structs)
        if node is None:
            continue
        if isinstance(node, dict) != is_struct:  # pyarrow refuses an object for text and text for one
            return None
        if is_struct:
            present[index] = True
        else:
            places[index - len(layout.structs)] = int(node)
    return places, present, count


def _spliced(data: Any, bounds: np.ndarray) -> pa.Buffer:
    """data[b0:b1] + data[b2:b3] + ... for non-decreasing int32 bounds, in one copy."""
    alternating = pa.Array.from_buffers(
        pa.binary(), len(bounds) - 1, [None, pa.py_buffer(bounds), pa.py_buffer(data)]
    )
    kept = alternating.take(pa.array(np.arange(0, len(bounds) - 1, 2, dtype=np.int32)))
    buffers = kept.buffers()
    used = int(np.frombuffer(buffers[1], dtype=np.int32)[len(kept)])
    return buffers[2][:used] if buffers[2] is not None else pa.py_buffer(b"")


def _read_shaped(buffer: bytes, schema: pa.Schema) -> tuple[pa.Table, np.ndarray, bytes | None] | None:
    """The lines of `buffer` whose shape the scan knows, as a table with their 0-based line
    indices, and the other lines as a buffer (the known lines emptied, so every line keeps its
    number; None when there is none). None when the scan cannot help: a schema of more than objects
    and strings, text that is not UTF-8, or no line of a known shape."""
    layout = _layout(schema)
    if layout is None or not buffer or len(buffer) >= 1 << 31:
        return None
    try:  # UTF-8 throughout (checked with SIMD), so any text cut at an ASCII byte is UTF-8
        pa.Array.from_buffers(
            pa.binary(),
            1,
            [None, pa.py_buffer(np.array([0, len(buffer)], dtype=np.int32)), pa.py_buffer(buffer)],
        ).cast(pa.string())
    except pa.ArrowInvalid:
        return None
    data = np.frombuffer(buffer, dtype=np.uint8)
    size = len(data)
    special = np.flatnonzero((data == _QUOTE) | (data == _BACKSLASH) | (data < 32)).astype(np.int32)
    kind = data[special]
    control = kind < 32
    breaks = special[kind == _LINE_FEED]
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [size]])
    lines = len(starts)
    unsure = np.zeros(lines, dtype=bool)
    if len(breaks) != np.count_nonzero(control):  # tabs, carriage returns, ...: only in JSON's spacing
        odd_bytes = special[control & (kind != _LINE_FEED)]
        unsure[np.searchsorted(breaks, odd_bytes)] = True
    quote = kind == _QUOTE
    backslash = np.flatnonzero(kind == _BACKSLASH)
    if len(backslash):  # in a run of backslashes the 1st, 3rd, ... start an escape
        where = special[backslash]
        run = np.ones(len(where), dtype=bool)
        run[1:] = where[1:] != where[:-1] + 1
        if run.all():
            opening = backslash
        else:
            index = np.arange(len(where), dtype=np.int32)
            opening = backslash[(index - np.maximum.accumulate(np.where(run, index, 0))) % 2 == 0]
        escapes = special[opening]
        follows = data[np.minimum(escapes + 1, size - 1)]
        simple = (_SIMPLE_ESCAPES[follows] != 0) & (escapes + 1 < size)
        if not simple.all():
            unsure[np.searchsorted(breaks, escapes[~simple])] = True
            opening, escapes, follows = opening[simple], escapes[simple], follows[simple]
        quote[opening[follows == _QUOTE] + 1] = False  # an escaped quote: the next special byte
    quotes = np.flatnonzero(quote)
    positions = special[quotes]
    per_line = np.diff(np.searchsorted(positions, starts), append=len(positions))
    odd = per_line % 2 == 1
    if odd.any():  # strings paired within each line: a line with an odd count drops out
        unsure |= odd
        keep = ~np.repeat(odd, per_line)
        quotes, positions = quotes[keep], positions[keep]
    opens, closes = positions[0::2], positions[1::2]
    after = closes + 1  # a key is followed by `:` (past a few spaces)
    if len(after) and after[-1] >= size:
        after[-1] = size - 1
    follower = data[after]
    for _ in range(_SPACES_AFTER):
        spaced = np.flatnonzero(follower == _SPACE)
        if len(spaced) == 0:
            break
        after[spaced] = np.minimum(after[spaced] + 1, size - 1)
        follower[spaced] = data[after[spaced]]
    else:
        unsure[np.searchsorted(breaks, after[follower == _SPACE])] = True
    value = np.flatnonzero(follower != _COLON)
    value_open, value_close = opens[value] + 1, closes[value]

    # each line's skeleton: the buffer without the values' text, cut at line breaks
    bounds = np.empty(2 * len(value_open) + 2, dtype=np.int32)
    bounds[0], bounds[-1] = 0, size
    bounds[1:-1:2], bounds[2:-1:2] = value_open, value_close
    skeleton = _spliced(data, bounds)
    skeleton_breaks = np.flatnonzero(np.frombuffer(skeleton, dtype=np.uint8) == _LINE_FEED)
    offsets = np.concatenate([[0], skeleton_breaks + 1, [skeleton.size]]).astype(np.int32)
    encoded = pa.Array.from_buffers(pa.binary(), lines, [None, pa.py_buffer(offsets), skeleton])
    encoded = encoded.dictionary_encode()
    shape = encoded.indices.to_numpy(zero_copy_only=False)
    empty = starts == ends
    first_value = np.searchsorted(value_open, starts)
    value_count = np.diff(first_value, append=len(value_open))
    candidate = ~unsure & ~empty
    frequency = np.bincount(shape[candidate], minlength=len(encoded.dictionary))
    places = np.full((len(frequency), len(layout.leaves)), -1, dtype=np.int64)
    present = np.zeros((len(frequency), len(layout.structs)), dtype=bool)
    held = np.full(len(frequency), -1, dtype=np.int64)
    for found in np.argsort(-frequency, kind="stable")[:_MAX_SHAPES]:
        if frequency[found] == 0:
            break
        read = _skeleton_places(encoded.dictionary[int(found)].as_py(), layout)
        if read is not None:
            places[found], present[found], held[found] = read
    known = candidate & (value_count == held[shape])
    taken = np.flatnonzero(known)
    if len(taken) == 0:
        return None
    other = ~known & ~empty
    rest = None
    if other.any():  # the other lines kept, the known ones emptied (their line breaks kept)
        bounds = np.empty(2 * lines, dtype=np.int32)
        bounds[0::2] = np.where(other, starts, ends)
        bounds[1::2] = np.minimum(ends + 1, size)
        rest = _spliced(data, bounds).to_pybytes()

    # every value as one string array over the buffer; each leaf's values taken from it, escapes undone
    first_value, row_shape = first_value[taken], shape[taken]
    bounds = np.empty(2 * len(value_open) + 1, dtype=np.int32)
    bounds[0:-1:2], bounds[1:-1:2], bounds[-1] = value_open, value_close, size
    values = pa.Array.from_buffers(
        pa.string(), len(bounds) - 1, [None, pa.py_buffer(bounds), pa.py_buffer(buffer)]
    )
    leaves = {}
    for index, path in enumerate(layout.leaves):
        place = places[row_shape, index]
        absent = place < 0
        picks = 2 * (first_value + place)
        picked = values.take(pa.array(picks, mask=absent) if absent.any() else pa.array(picks))
        leaves[path] = _unescaped(picked) if len(backslash) else picked
    structs = {path: present[row_shape, index] for index, path in enumerate(layout.structs)}
    columns = [_assembled(field, (field.name,), leaves, structs) for field in schema]
    return pa.Table.from_arrays(columns, schema=schema), taken, rest


def _unescaped(texts: pa.Array) -> pa.Array:
    """JSON string contents with their (simple, valid) escapes undone: each escape's second byte
    replaced by what it stands for, its backslash cut. A content never ends inside an escape, so
    runs of backslashes are paired the same across the contents as within each."""
    _, offset_buffer, data_buffer = texts.buffers()
    offsets = np.frombuffer(offset_buffer, dtype=np.int32)[: len(texts) + 1]
    low = int(offsets[0])
    data = np.frombuffer(data_buffer, dtype=np.uint8)[low : int(offsets[-1])]
    backslash = np.flatnonzero(data == _BACKSLASH)
    if len(backslash) == 0:
        return texts
    run = np.ones(len(backslash), dtype=bool)
    run[1:] = backslash[1:] != backslash[:-1] + 1
    if run.all():
        escapes = backslash
    else:
        index = np.arange(len(backslash))
        escapes = backslash[(index - np.maximum.accumulate(np.where(run, index, 0))) % 2 == 0]
    fixed = data.copy()
    fixed[escapes + 1] = _SIMPLE_ESCAPES[data[escapes + 1]]
    bounds = np.empty(2 * len(escapes) + 2, dtype=np.int32)
    bounds[0], bounds[-1] = 0, len(data)
    bounds[1:-1:2], bounds[2:-1:2] = escapes, escapes + 1
    moved = offsets - low
    moved = (moved - np.searchsorted(escapes, moved)).astype(np.int32)
    validity = texts.buffers()[0] if texts.null_count else None
    return pa.Array.from_buffers(
        pa.string(), len(texts), [validity, pa.py_buffer(moved), _spliced(fixed, bounds)], texts.null_count
    )


def _assembled(
    field: pa.Field, path: tuple[str, ...], leaves: dict[tuple[str, ...], pa.Array], structs: dict
) -> pa.Array:
    """One field's array from the leaves' arrays and the structs' presence."""
    if not pa.types.is_struct(field.type):
        return leaves[path]
    children = [_assembled(child, (*path, child.name), leaves, structs) for child in field.type]
    present = structs[path]
    mask = None if present.all() else pa.array(~present)
    return pa.StructArray.from_arrays(children, fields=list(field.type), mask=mask)
