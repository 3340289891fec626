"""Reading JSON Lines files with pyarrow, line numbers kept, broken lines isolated.

A file is read in one pyarrow call against an explicit schema. When a line is broken, the range
is split in halves until each broken line stands alone; the rest is still read by pyarrow, so a
few bad lines cost a few extra reads, not a Python loop over the file.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.json as pa_json

_WHITESPACE = np.array([9, 10, 13, 32], dtype=np.uint8)
_MIN_BLOCK = 1 << 24


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
    visible = np.concatenate([[0], np.cumsum(~np.isin(data, _WHITESPACE))])
    nonblank = np.flatnonzero(visible[ends] - visible[starts] > 0)
    if len(nonblank) == 0:
        return LineTable(schema.empty_table(), np.zeros(0, dtype=np.int64), [])
    longest = int((ends[nonblank] - starts[nonblank]).max())
    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    read = pa_json.ReadOptions(block_size=max(_MIN_BLOCK, longest + 2), use_threads=True)
    tables: list[pa.Table] = []
    lines: list[np.ndarray] = []
    broken: list[tuple[int, str]] = []

    def read_range(first: int, last: int) -> None:
        """Read nonblank lines [first, last) of the buffer, bisecting around broken ones."""
        chunk = buffer[starts[nonblank[first]] : ends[nonblank[last - 1]]]
        try:
            table = pa_json.read_json(io.BytesIO(chunk), read_options=read, parse_options=options)
            if table.num_rows == last - first:
                tables.append(table)
                lines.append(nonblank[first:last] + first_line)
                return
            reason = "the line holds more than one JSON object"
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            reason = _reason(error)
        if last - first == 1:
            broken.append((int(nonblank[first]) + first_line, reason))
            return
        middle = (first + last) // 2
        read_range(first, middle)
        read_range(middle, last)

    read_range(0, len(nonblank))
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    line = np.concatenate(lines) if lines else np.zeros(0, dtype=np.int64)
    return LineTable(table, line, broken)


def _reason(error: Exception) -> str:
    text = str(error).split("\n")[0].removeprefix("JSON parse error: ")
    return f"not a JSON object: {re.sub(r' in row [0-9]+$', '', text)}"
