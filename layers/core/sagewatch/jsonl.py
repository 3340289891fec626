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
    """Read a JSON Lines buffer (blank lines skipped); `first_line` numbers its first line."""
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
