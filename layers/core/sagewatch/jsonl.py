"""Reading JSON Lines files with pyarrow, line numbers kept, broken lines isolated.

A file is read in one pyarrow call against an explicit schema. When a line is broken, the range
is split in halves until each broken line stands alone; the rest is still read by pyarrow, so a
few bad lines cost a few extra reads, not a Python loop over the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.json as pa_json

_WHITESPACE = np.array([9, 10, 13, 32], dtype=np.uint8)
# Small blocks let pyarrow parse a chunk on several threads; a line never spans blocks.
_MIN_BLOCK = 1 << 22


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
    nonblank = np.flatnonzero(~_blank(buffer, data, starts, ends))
    if len(nonblank) == 0:
        return LineTable(schema.empty_table(), np.zeros(0, dtype=np.int64), [])
    longest = int((ends[nonblank] - starts[nonblank]).max())
    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    read = pa_json.ReadOptions(block_size=max(_MIN_BLOCK, longest + 2), use_threads=True)
    whole = pa.py_buffer(buffer)
    pieces: list[tuple[int, pa.Table]] = []  # (index of the first nonblank line, its table)
    broken: list[tuple[int, str]] = []

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
