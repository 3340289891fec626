"""One evaluation run's reads of the lake: each read once, each window's rows found by binary search.

A run measures every due window of every rule of a model: for a rule waiting 3 days for labels with
a 5-minute lookback, 865 windows, most of them on the same few days. Every window's query asks its
loader for its day's files, so without this a run reads the same files hundreds of times.

`RunReads` is a Loader that passes each distinct read (source, columns, days, with ground truth) to
the lake once and keeps the tables for the run's later windows; past `budget_bytes` kept (tables
and their time indexes) it forgets the least recently used reads, so a run holds about the days
its rules are at, not the model's history (a rule's windows come oldest first, day after day).

`RunReads.within(start, end)` is a loader of the same reads that gives, of the inference files,
each one's rows with start <= inference_timestamp < end, in the file's order (a sorted index of
each file's times, made once, searched per window), leaving out the files with none: the rows the
window's filter keeps, so a window's measurement costs its own rows, not its day's. A file with no
row in the window adds nothing to any partial aggregate, so the value is the same. An interval's
parts are seeded by each file's place among the day's files and its rows in the window, so for an
interval each file keeps its place (`keep_places`: an empty table where the window has none).
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import date, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sagewatch.metrics.query import Loader, Source

# Bytes of tables (and their time indexes) a run keeps: a few days of a busy model; an evaluator
# Lambda has 3,008 MB.
BUDGET_BYTES = 768 * 2**20
TIME = "inference_timestamp"
ReadKey = tuple[Source, tuple[str, ...], date | None, date | None, bool]


class _Read:
    """One read's tables, and per table (lazily) its times sorted, to find a window's rows."""

    def __init__(self, tables: list[pa.Table]) -> None:
        self.tables = tables
        self.table_bytes = sum(t.nbytes for t in tables)
        self._index: list[tuple[np.ndarray, np.ndarray] | None] | None = None

    @property
    def nbytes(self) -> int:
        """Bytes held: the tables' Arrow buffers and, once made, their time index."""
        made = [part for part in self._index or [] if part is not None]
        return self.table_bytes + sum(times.nbytes + order.nbytes for times, order in made)

    def index(self) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """Per table: its times as int64 (in the column's unit) sorted, and the row of each; None for
        a table without a time column. A null time sorts first, below any window's start."""
        if self._index is None:
            self._index = []
            for table in self.tables:
                if TIME not in table.column_names or not pa.types.is_timestamp(table.column(TIME).type):
                    self._index.append(None)
                    continue
                times = pc.fill_null(pc.cast(table.column(TIME), pa.int64()), np.iinfo(np.int64).min)
                times = times.to_numpy(zero_copy_only=False)
                order = np.argsort(times, kind="stable")
                self._index.append((times[order], order))
        return self._index

    def between(self, start: datetime, end: datetime, keep_places: bool = False) -> list[pa.Table]:
        """Each table's rows with start <= time < end, in the table's order; tables with none left
        out, or with `keep_places` given as empty tables (each table stays at its place)."""
        found = []
        bounds: dict[pa.DataType, list[int]] = {}  # [start, end) in each time type's unit
        for table, indexed in zip(self.tables, self.index(), strict=True):
            if indexed is None:
                found.append(table)
                continue
            times, order = indexed
            kind = table.column(TIME).type
            if kind not in bounds:
                bounds[kind] = [pa.scalar(moment, kind).cast(pa.int64()).as_py() for moment in (start, end)]
            first, last = np.searchsorted(times, bounds[kind], side="left")
            if first == last and not keep_places:
                continue
            if first == 0 and last == len(times):
                found.append(table)
            else:
                found.append(table.take(pa.array(np.sort(order[first:last]), type=pa.int64())))
        return found


class RunReads:
    """A Loader for one evaluation run: each distinct read done once and kept (module docstring).

    `reads` counts the reads passed to the wrapped loader."""

    def __init__(self, load: Loader, budget_bytes: int = BUDGET_BYTES) -> None:
        self.load = load
        self.budget_bytes = budget_bytes
        self.kept: OrderedDict[ReadKey, _Read] = OrderedDict()
        self.reads = 0

    def __call__(
        self, source: Source, columns: list[str], first: date | None, last: date | None, truth: bool
    ) -> list[pa.Table]:
        """The loader's tables for these arguments, read once per run."""
        return list(self._read(source, columns, first, last, truth).tables)

    def within(self, start: datetime, end: datetime, keep_places: bool = False) -> Loader:
        """A loader of the same reads giving, of inferences, only the rows in [start, end) (module
        docstring): files without any left out, or with `keep_places` kept as empty tables (for
        what is computed per file at its place, such as an interval's parts). For reads that filter
        every inference to that window: a query metric's."""

        def load(
            source: Source, columns: list[str], first: date | None, last: date | None, truth: bool
        ) -> list[pa.Table]:
            read = self._read(source, columns, first, last, truth)
            return read.between(start, end, keep_places) if source == "inference" else list(read.tables)

        return load

    @property
    def kept_bytes(self) -> int:
        """Bytes kept now: the tables read and their time indexes."""
        return sum(read.nbytes for read in self.kept.values())

    def _read(
        self, source: Source, columns: list[str], first: date | None, last: date | None, truth: bool
    ) -> _Read:
        key: ReadKey = (source, tuple(columns), first, last, truth)
        found = self.kept.get(key)
        if found is not None:
            self.kept.move_to_end(key)
            return found
        found = _Read(self.load(source, list(columns), first, last, truth))
        self.reads += 1
        self.kept[key] = found
        total = self.kept_bytes
        while total > self.budget_bytes and len(self.kept) > 1:  # the newest read stays, whatever its size
            _, dropped = self.kept.popitem(last=False)
            total -= dropped.nbytes
        return found
