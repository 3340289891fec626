"""Reading a window of the lake for a query: projected columns, pruned by day, duplicates resolved,
ground truth joined. The only part of the metrics engine that touches S3.

Rows come back one table per Parquet file (so partial aggregates are computed per file and merged),
in the file's order, with partner_inference_id and the columns asked for (nulls of the window's type
where a file lacks one another file has) and, with ground truth, its columns. Duplicates follow the
identity policy (sagewatch.tables): the first write of each (partner_inference_id, variant) wins
among the window's files, and each inference is joined to its latest ground truth.

A window is resolved once per loader (one API request, one evaluator run), file by file, so memory
follows one file and the window's fingerprints, not the window's rows:
- first writes: each file's ids and variants are fingerprinted (sagewatch.tables.inference_prints);
  only rows whose fingerprint another row shares (duplicates, and rare collisions) are read again
  with their identity columns and resolved exactly;
- ground truth: the window's labels are read whole (their latest per id), then each file's ids are
  matched to them by fingerprint, each match checked by comparing the ids (IdLookup).
The result is a mask of kept rows and the ground-truth columns, per file; a loader keeps its last
RESOLVED_WINDOWS. Queries then read only their columns. What else a loader keeps (listings, the
files' compressed bodies, decoded columns of kept rows) is bounded by CACHE_BYTES: within it each
file is fetched once and each column decoded once per loader; past it, what the current read uses
stays and the rest is read again (_Kept).
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sagewatch.metrics.query import Loader, Source
from sagewatch.schema import GROUND_TRUTH_STAGES, Model
from sagewatch.stores.lake import LakeStore
from sagewatch.tables import (
    first_write_rows,
    id_fingerprints,
    inference_prints,
    latest_ground_truth_rows,
    repeated,
)

IDENTITY = ["partner_inference_id", "variant", "ingested_at", "source"]
IDENTITY_TYPES = {
    "partner_inference_id": pa.string(),
    "variant": pa.string(),
    "ingested_at": pa.timestamp("us", tz="UTC"),
    "source": pa.string(),
}
# Ground truth is filed under the day of the inference it labels (labels/) when that inference is
# found as it arrives (stores/lake.py). The rest (ground_truth/, by the label's own day: labels sent
# before their inferences, or more than LABEL_SEARCH_DAYS after them, and every label written before
# labels/ existed) is read from this many days before a window's first day on; one sent weeks
# before its inference is not looked for.
LABELS_EARLY_DAYS = 30
# What one loader keeps (module docstring): a 1 M-row day of 8 inputs is about 75 MB of bodies and
# 150 MB of decoded columns, so a 2 M-row window is read once; past that, columns are decoded again
# (bench/window.py: 3 M rows take 5.6 s of CPU with 512 MB, 10.5 s with 256 MB). The API's Lambda has
# 1,769 MB, the evaluator's 3,008 MB.
CACHE_BYTES = 512 * 2**20
READERS = 8  # files fetched at once
# Resolved windows a loader keeps (about 24 bytes a row with ground truth), outside CACHE_BYTES:
# a window is resolved once per loader whatever else it reads.
RESOLVED_WINDOWS = 4


class _Kept:
    """A cache bounded by bytes. What the current read has not used is let go first, least recently
    used first; what it has used stays, so a window larger than the budget keeps the part that fits
    rather than evicting, file after file, what the next read will ask for first. An entry that does
    not fit is not kept."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.items: OrderedDict[Any, tuple[Any, int, int]] = OrderedDict()  # value, size, read
        self.total = 0
        self.read = 0

    def next_read(self) -> None:
        """A new read begins: what earlier ones used may be let go."""
        self.read += 1

    def get(self, key: Any) -> Any:
        found = self.items.get(key)
        if found is None:
            return None
        self.items[key] = (found[0], found[1], self.read)
        self.items.move_to_end(key)
        return found[0]

    def put(self, key: Any, value: Any, size: int) -> None:
        if key in self.items:
            self.total -= self.items.pop(key)[1]
        while self.total + size > self.budget and self.items:
            oldest = next(iter(self.items))
            if self.items[oldest][2] == self.read:  # the rest were used by this read too
                break
            self.total -= self.items.pop(oldest)[1]
        if self.total + size <= self.budget:
            self.items[key] = (value, size, self.read)
            self.total += size


@dataclass
class _Resolved:
    """A window's files resolved: per file, the rows kept (a mask; None: all of them) and the
    fingerprints of the kept rows' ids; the type of each column any of them has; per file its
    ground-truth columns, once matched."""

    kept: list[np.ndarray | None]
    id_prints: list[np.ndarray]
    types: dict[str, pa.DataType]
    truth: list[dict[str, pa.ChunkedArray | pa.Array]] | None = None


class IdLookup:
    """Rows of a table of distinct partner_inference_ids, found by id: by fingerprint
    (sagewatch.tables.id_fingerprints) and binary search, each match checked by comparing the ids;
    ids whose fingerprint several rows share (rare) are looked up among those rows."""

    def __init__(
        self, ids: pa.Array | pa.ChunkedArray, prints: np.ndarray, among: np.ndarray | None = None
    ) -> None:
        """`ids` and their fingerprints; `among`: the rows to look in (default: all), ids distinct there."""
        self.ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids  # taken from often
        among = np.arange(len(prints)) if among is None else among
        self.order = among[np.argsort(prints[among])]
        self.ordered = prints[self.order]
        same = self.ordered[1:] == self.ordered[:-1]
        self.shared = np.unique(self.ordered[1:][same])
        self.prints = prints
        self.among = among

    def rows(self, ids: pa.Array | pa.ChunkedArray, prints: np.ndarray) -> np.ndarray:
        """For each id (with its fingerprint), the row holding the same id, or -1."""
        rows = np.full(len(prints), -1, dtype=np.int64)
        if len(self.ordered) == 0 or len(prints) == 0:
            return rows
        asked = np.argsort(prints)  # binary searches of sorted keys walk the table once
        place = np.empty(len(prints), dtype=np.int64)
        place[asked] = np.minimum(np.searchsorted(self.ordered, prints[asked]), len(self.ordered) - 1)
        found = self.ordered[place] == prints
        several = found & np.isin(prints, self.shared) if len(self.shared) else np.zeros_like(found)
        single = np.flatnonzero(found & ~several)
        if len(single):
            candidate = self.order[place[single]]
            same = pc.equal(pc.take(ids, pa.array(single)), self.ids.take(pa.array(candidate)))
            same = pc.fill_null(same, False).to_numpy(zero_copy_only=False)
            rows[single[same]] = candidate[same]
        ambiguous = np.flatnonzero(several)
        if len(ambiguous):
            among = self.among[np.isin(self.prints[self.among], self.shared)]
            where = pc.index_in(pc.take(ids, pa.array(ambiguous)), value_set=self.ids.take(pa.array(among)))
            where = pc.fill_null(where, -1).to_numpy(zero_copy_only=False)
            rows[ambiguous[where >= 0]] = among[where[where >= 0]]
        return rows


class LakeWindow:
    """One model's rows in the lake, read for a window of days (module docstring)."""

    def __init__(self, lake: LakeStore, model: Model, cache_bytes: int | None = None) -> None:
        self.lake = lake
        self.model = model
        self.kept = _Kept(CACHE_BYTES if cache_bytes is None else cache_bytes)
        self.resolutions: OrderedDict[tuple, _Resolved] = OrderedDict()

    def _keys(self, area: str, first: date | None, last: date | None) -> list[str]:
        """The window's Parquet files: only its own days are listed (every page of them), once per
        loader."""
        found = self.kept.get(("keys", area, first, last))
        if found is None:
            prefix = f"{area}/model_id={self.model.id}/"
            found = [key for key in self.lake.day_keys(prefix, first, last) if key.endswith(".parquet")]
            self.kept.put(("keys", area, first, last), found, sum(len(key) for key in found))
        return found

    def _fetch(self, key: str) -> tuple[pq.ParquetFile, int]:
        """One Parquet object, opened (its footer read), and its size in bytes."""
        body = self.lake.client.get_object(Bucket=self.lake.bucket, Key=key)["Body"].read()
        return pq.ParquetFile(pa.BufferReader(body)), len(body)

    def _files(self, keys: list[str], keep: bool = True) -> Iterator[pq.ParquetFile]:
        """The files in order: kept ones from the cache, the others fetched READERS at a time (and
        kept, with `keep`)."""
        for start in range(0, len(keys), READERS):
            batch = keys[start : start + READERS]
            found = {key: self.kept.get(("file", key)) for key in batch}
            missing = [key for key, file in found.items() if file is None]
            if len(missing) > 1:
                with ThreadPoolExecutor(min(READERS, len(missing))) as pool:
                    found.update(zip(missing, pool.map(self._fetch, missing), strict=True))
            elif missing:
                found[missing[0]] = self._fetch(missing[0])
            for key in batch:
                if keep and key in missing:
                    self.kept.put(("file", key), found[key], found[key][1])
                yield found[key][0]

    def inferences(
        self,
        columns: list[str],
        first: date | None = None,
        last: date | None = None,
        with_ground_truth: bool = False,
    ) -> list[pa.Table]:
        """One table per file of the window: the first write of each id (in the file's order), its
        partner_inference_id and the columns asked for that the file has, and with_ground_truth, each
        row's latest ground truth."""
        self.kept.next_read()
        keys = self._keys("inferences", first, last)
        if not keys:
            return []
        window = (first, last, tuple(keys))
        resolved = self._resolved(keys, window)
        truth = self._truth(resolved, keys, window) if with_ground_truth else None
        joined = set(truth[0]) if truth else set()
        wanted = [c for c in dict.fromkeys(["partner_inference_id", *columns]) if c not in joined]
        tables = []
        for index, file in enumerate(self._files(keys)):
            present = [c for c in wanted if c in file.schema_arrow.names]
            found = {c: self.kept.get(("column", window, index, c)) for c in present}
            missing = [c for c, values in found.items() if values is None]
            if missing:  # decoded once per loader, kept rows only
                read = _kept(file.read(columns=missing), resolved.kept[index])
                for name in missing:
                    found[name] = read.column(name)
                    self.kept.put(("column", window, index, name), found[name], found[name].nbytes)
            rows = len(resolved.id_prints[index])
            table = pa.table({"_": pa.nulls(rows)}).select([])
            for name in wanted:  # a column another file of the window has: nulls of its type here
                if name in found:
                    table = table.append_column(name, found[name])
                elif name in resolved.types:
                    table = table.append_column(name, pa.nulls(rows, resolved.types[name]))
            for name, values in (truth[index] if truth else {}).items():
                table = table.append_column(name, values)
            tables.append(table)
        return tables

    def _resolved(self, keys: list[str], window: tuple) -> _Resolved:
        """The window's first writes (module docstring), resolved once per loader."""
        cached = self.resolutions.get(window)
        if cached is not None:
            self.resolutions.move_to_end(window)
            return cached
        id_prints, prints, types = [], [], {}
        for file in self._files(keys):
            types = {field.name: field.type for field in file.schema_arrow} | types
            part = _identity(file, ["partner_inference_id", "variant"])
            id_prints.append(id_fingerprints(part.column("partner_inference_id")))
            prints.append(inference_prints(id_prints[-1], part.column("variant")))
        bounds = np.cumsum([0, *(len(p) for p in prints)])
        everything = np.concatenate(prints) if prints else np.empty(0, np.uint64)
        candidates = np.flatnonzero(repeated(everything))
        kept = np.ones(len(everything), dtype=bool)
        if len(candidates):  # duplicates (or rows sharing a fingerprint): resolved by their identity
            places = np.searchsorted(candidates, bounds)
            parts = [
                _identity(file, IDENTITY).take(pa.array(candidates[a:b] - start))
                for file, start, a, b in zip(
                    self._files(keys), bounds[:-1], places[:-1], places[1:], strict=True
                )
                if b > a
            ]
            kept[candidates] = first_write_rows(pa.concat_tables(parts), everything[candidates])
        resolved = _Resolved(
            kept=[None if kept[a:b].all() else kept[a:b] for a, b in itertools.pairwise(bounds)],
            id_prints=[p[kept[a:b]] for p, (a, b) in zip(id_prints, itertools.pairwise(bounds), strict=True)],
            types=types,
        )
        self.resolutions[window] = resolved
        while len(self.resolutions) > RESOLVED_WINDOWS:
            self.resolutions.popitem(last=False)
        return resolved

    def _truth(
        self, resolved: _Resolved, keys: list[str], window: tuple
    ) -> list[dict[str, pa.ChunkedArray | pa.Array]]:
        """Per file, the latest ground truth of each kept row (nulls where there is none), matched
        file by file once per resolved window."""
        if resolved.truth is not None:
            return resolved.truth
        names = [*(a.name for a in self.model.by_stage(*GROUND_TRUTH_STAGES)), "ground_truth_timestamp"]
        first, last, _ = window
        latest = self._latest_ground_truth(first, last)
        if latest is None:
            resolved.truth = [
                {
                    name: pa.nulls(
                        len(p), pa.timestamp("us", tz="UTC") if name == "ground_truth_timestamp" else None
                    )
                    for name in names
                }
                for p in resolved.id_prints
            ]
        else:
            truth, truth_prints, rows = latest
            lookup = IdLookup(truth.column("partner_inference_id"), truth_prints, rows)
            columns = {name: truth.column(name).combine_chunks() for name in names}  # taken from often
            del truth, latest
            resolved.truth = []
            for index, file in enumerate(self._files(keys)):
                ids = _kept(file.read(columns=["partner_inference_id"]), resolved.kept[index]).column(0)
                where = _indices(lookup.rows(ids, resolved.id_prints[index]))
                resolved.truth.append({name: values.take(where) for name, values in columns.items()})
        return resolved.truth

    def _latest_ground_truth(
        self, first: date | None, last: date | None
    ) -> tuple[pa.Table, np.ndarray, np.ndarray] | None:
        """The ground truth that can label the window's inferences (see ground_truth), its ids'
        fingerprints, and its rows that are the latest of their id."""
        early = timedelta(days=LABELS_EARLY_DAYS)
        since = first - early if first is not None and first > date.min + early else None
        names = [a.name for a in self.model.by_stage(*GROUND_TRUTH_STAGES)]
        columns = ["partner_inference_id", "ground_truth_timestamp", "ingested_at", *names]
        keys = self._keys("labels", first, last) + self._keys("ground_truth", since, None)
        tables, prints = [], []
        for file in self._files(keys, keep=False):
            tables.append(file.read(columns=[c for c in columns if c in file.schema_arrow.names]))
            prints.append(id_fingerprints(tables[-1].column("partner_inference_id")))
        if not tables:
            return None
        truth = pa.concat_tables(tables, promote_options="default")
        prints = np.concatenate(prints)
        return truth, prints, np.flatnonzero(latest_ground_truth_rows(truth, prints))

    def ground_truth(self, first: date | None = None, last: date | None = None) -> pa.Table | None:
        """The latest ground truth of each id that can label the window's inferences ([first, last];
        None: every day): what was filed under the window's days (labels/, by the day of the
        inference each row labels), and what arrived before its inference was found, from
        LABELS_EARLY_DAYS before `first` on (ground_truth/, by the label's own day). So the labels read
        follow the window, not how many were ever received."""
        found = self._latest_ground_truth(first, last)
        if found is None:
            return None
        truth, _, latest = found
        return truth if len(latest) == truth.num_rows else truth.take(pa.array(latest))

    def explanations(self, columns: list[str], first: date | None, last: date | None) -> list[pa.Table]:
        """Stored explanations of the window's days (services/explanations.py), one table per file."""
        return [self.lake.read_table(key, columns) for key in self._keys("explanations", first, last)]

    def reference(self, columns: list[str]) -> list[pa.Table]:
        """The reference set, `columns` only, one table per file."""
        self.kept.next_read()
        return [
            file.read(columns=[c for c in columns if c in file.schema_arrow.names])
            for file in self._files(self._keys("reference", None, None))
        ]


def _identity(file: pq.ParquetFile, names: list[str]) -> pa.Table:
    """A file's identity columns `names`, typed as the lake writes them (nulls where it lacks one)."""
    present = [name for name in names if name in file.schema_arrow.names]
    table = file.read(columns=present)
    for name in names:
        if name not in present:
            table = table.append_column(name, pa.nulls(table.num_rows, IDENTITY_TYPES[name]))
    return table.select(names).cast(pa.schema([(name, IDENTITY_TYPES[name]) for name in names]))


def identity_columns(file: pq.ParquetFile, names: list[str]) -> pa.Table:
    """A file's identity columns `names` as the window resolves first writes from them (_identity)."""
    return _identity(file, names)


def _kept(table: pa.Table, mask: np.ndarray | None) -> pa.Table:
    """A file's rows that are first writes (mask None: all of them)."""
    return table if mask is None else table.filter(pa.array(mask))


def _indices(rows: np.ndarray) -> pa.Array:
    """Row numbers as take() indices, -1 as null (a take gives null there)."""
    validity = pa.py_buffer(np.packbits(rows >= 0, bitorder="little"))
    return pa.Array.from_buffers(pa.int64(), len(rows), [validity, pa.py_buffer(rows)])


class LakeLoader:
    """The lake as the metrics engines' loader (lake_loader), knowing its lake and model, so an
    evaluator run can read the lake's partial aggregates beside it (stores/partials.py)."""

    def __init__(self, lake: LakeStore, model: Model) -> None:
        self.lake, self.model = lake, model
        self.window = LakeWindow(lake, model)

    def __call__(
        self, source: Source, columns: list[str], first: date | None, last: date | None, truth: bool
    ) -> list[pa.Table]:
        if source == "reference":
            return self.window.reference(columns)
        if source == "explanation":
            return self.window.explanations(columns, first, last)
        if source == "ground_truth":
            table = self.window.ground_truth()
            return [table] if table is not None else []
        return self.window.inferences(columns, first, last, with_ground_truth=truth)


def lake_loader(lake: LakeStore, model: Model) -> Loader:
    """The lake as the metrics engines' loader: one table per Parquet file of the window; a window's
    files are fetched and resolved once per loader (module docstring)."""
    return LakeLoader(lake, model)
