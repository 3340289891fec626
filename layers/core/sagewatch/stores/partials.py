"""Partial aggregates persisted per lake file: what an evaluator run reads instead of the day's files.

Layout, beside the lake's inferences (stores/lake.py):
  partials/model_id=<id>/date=<day>/spec=<spec digest>/<name>.<version>[+<name>.<version>...].<first>-<last>.parquet
A file's partial is a rule's metric (sagewatch.metrics.partials.Spec) over the file's kept rows, per
minute of inference_timestamp. The partials a run makes for a rule are stored together, up to
BUNDLE_FILES files to an object in order of their first minute (a PUT a run and rule, not one a
file; a run making a day's partials at once leaves objects of few minutes), each row tagged with its
file and version (MEMBER); the key names them, and <first>-<last> are the minutes of the day (0 to
1439) the object's rows span ("empty" when none), so a window GETs only the objects its minutes
overlap, takes from each the rows of the files and versions it wants (an object may hold a partial
since superseded), and one LIST of the day's partials tells a run which exist.

Kept rows are first writes (sagewatch.tables.first_write_rows) among the day's files, as the raw
path resolves a one-day window (stores/window.py). A row can only lose to a row with the same id,
so a file's kept rows depend on itself and on its *partners*: the day's other files sharing an id
fingerprint with it (from the id index, inference_ids/; read from the file where a file has none).
A partial's <version> is a digest of the file's ETag and each partner's name and ETag: a file
rewritten (a replayed source), or a partner landing later, late or concurrently, whatever its
ingested_at, makes a new version, computed from the file and its partners' rows; a version once
computed is never wrong, so runs that overlap or land in any order agree. A run resolves the first
writes of every file it makes partials of at once: each file and partner's identity columns decoded
once, the rows that may lose (an id fingerprint another file has, or an identity twice in the file)
resolved together in the lake's order, as the raw path resolves a window.

A run lists the day's inference files (one LIST) and the day's partials (one LIST); the day's id
fingerprints are kept in the process (`_DAYS`: a warm evaluator fetches only new files' index
objects), partials read are kept too (`_TABLES`, they never change). A process without them (a new
Lambda container) reads the day's block objects instead of one index object a file:
  partials/model_id=<id>/date=<day>/prints-<files>-<digest>.u64
each the fingerprints of BLOCK_FILES files or more (with their names and ETags), written by a run
once that many files are in no block it knows; a block entry whose file has another ETag now is
left out. A file without a partial of a spec's version (a new file, a new rule, a new partner) is
read once, its partial stored.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from sagewatch.metrics.partials import MINUTE, Result, Span, Spec
from sagewatch.metrics.query import column_types
from sagewatch.schema import Model
from sagewatch.stores.dynamo import error_code
from sagewatch.stores.lake import MISSING, LakeStore
from sagewatch.stores.window import IDENTITY, identity_columns
from sagewatch.tables import first_write_rows, id_fingerprints, inference_prints, matched_rows, repeated
from sagewatch.values import ARROW_TYPES

AREA = "partials"
READERS = 16  # objects fetched or written at once
# Bytes of id fingerprints kept in the process (12 bytes an inference: a day of 100 requests/s is
# about 100 MB), and of partials read.
PRINTS_BYTES = 384 * 2**20
TABLES_BYTES = 128 * 2**20
# Files a block object of fingerprints holds at least (two instances' 5-minute files of an hour): a
# new process reads a day's fingerprints in about files / BLOCK_FILES GETs, not one a file.
BLOCK_FILES = 24
BLOCK = "prints-"
# Partials of files stored in one object (those a run makes for a rule: a PUT a run, not a file; the
# key names each file and version, and stays within S3's 1,024 bytes), and the column telling whose.
BUNDLE_FILES = 12
MEMBER = "__partial_of"
MAX_KEY_BYTES = 1024
MINUTES_A_DAY = 1440
# Making partials: files decoded at once (an evaluator of 3,008 MB has 2 vCPUs; each decode of a
# 10 M-row day's file holds a few hundred MB), threads fetching, decoding or storing them, and bytes
# of files' bodies a run keeps (each rule makes the partials of the same files; a day of 10 M rows
# is about 720 MB of them).
DECODERS = 2
MAKERS = 4
OPENED_BYTES = 256 * 2**20


@dataclass(frozen=True)
class LakeFile:
    """An inference file of a day: its key, name (no folder, no suffix) and ETag."""

    key: str
    name: str
    etag: str


@dataclass
class _Prints:
    """A day's id fingerprints, each with the file holding it, sorted; the files sharing any."""

    files: dict[str, str] = field(default_factory=dict)  # name -> ETag
    names: list[str] = field(default_factory=list)
    prints: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))
    owners: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    partners: dict[str, set[str]] = field(default_factory=dict)
    blocked: set[str] = field(default_factory=set)  # files in a block object known here
    blocks: set[str] = field(default_factory=set)  # block objects read or written here

    @property
    def nbytes(self) -> int:
        return self.prints.nbytes + self.owners.nbytes

    def extend(self, files: list[LakeFile], prints: list[np.ndarray]) -> None:
        """Files with their sorted unique fingerprints: merged in one by one when few (each an
        insertion), else all sorted again (a cold process: the whole day at once)."""
        if sum(len(p) for p in prints) * 4 < len(self.prints):
            for file, found in zip(files, prints, strict=True):
                self._add(file, found)
            return
        for file in files:
            self.files[file.name] = file.etag
            self.partners.setdefault(file.name, set())
            self.names.append(file.name)
        owners = [
            np.full(len(p), len(self.names) - len(files) + i, dtype=np.int32) for i, p in enumerate(prints)
        ]
        everything = np.concatenate([self.prints, *prints])
        owned = np.concatenate([self.owners, *owners])
        order = np.argsort(everything, kind="stable")
        self.prints, self.owners = everything[order], owned[order]
        same = np.flatnonzero(self.prints[1:] == self.prints[:-1])
        if len(same) == 0:
            return
        starts = same[np.concatenate([[True], same[1:] != same[:-1] + 1])]  # each run of equal prints
        ends = np.searchsorted(self.prints, self.prints[starts], side="right")
        pairs = starts[ends - starts == 2]
        for a, b in np.unique(np.stack([self.owners[pairs], self.owners[pairs + 1]], axis=1), axis=0):
            self._pair(int(a), int(b))
        for start, end in zip(starts[ends - starts > 2], ends[ends - starts > 2], strict=True):  # rare
            group = np.unique(self.owners[start:end])
            for a in group:
                for b in group:
                    self._pair(int(a), int(b))

    def of_files(self, names: list[str]) -> list[np.ndarray]:
        """Each named file's sorted fingerprints (one pass over the day's)."""
        numbers = {name: number for number, name in enumerate(self.names)}
        wanted = np.array([numbers[name] for name in names], dtype=np.int32)
        rows = np.flatnonzero(np.isin(self.owners, wanted))
        order = rows[np.argsort(self.owners[rows], kind="stable")]  # by file, each file's sorted
        owners = self.owners[order]
        return [self.prints[order[owners == number]] for number in wanted]

    def _pair(self, a: int, b: int) -> None:
        if a != b:
            self.partners[self.names[a]].add(self.names[b])
            self.partners[self.names[b]].add(self.names[a])

    def _add(self, file: LakeFile, prints: np.ndarray) -> None:
        """One file: its partners (every file holding one of its fingerprints), then its fingerprints
        inserted in place."""
        number = len(self.names)
        self.names.append(file.name)
        self.files[file.name] = file.etag
        self.partners.setdefault(file.name, set())
        low = np.searchsorted(self.prints, prints, side="left")
        high = np.searchsorted(self.prints, prints, side="right")
        shared = np.flatnonzero(high > low)
        if len(shared):
            counts = (high - low)[shared]
            at = np.repeat(low[shared] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
            for owner in np.unique(self.owners[at + np.arange(int(counts.sum()))]):
                self._pair(number, int(owner))
        self.prints = np.insert(self.prints, low, prints)
        self.owners = np.insert(self.owners, low, np.int32(number))


class _Lru:
    """A process-wide cache bounded by bytes, least recently used out first (threads may share it)."""

    def __init__(self, budget: int, size: Callable[[Any], int]) -> None:
        self.budget, self.size = budget, size
        self.items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self.total = 0
        self.lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self.lock:
            found = self.items.get(key)
            if found is None:
                return None
            self.items.move_to_end(key)
            return found[0]

    def put(self, key: Any, value: Any) -> None:
        size = self.size(value)
        with self.lock:
            if key in self.items:
                self.total -= self.items.pop(key)[1]
            self.items[key] = (value, size)
            self.total += size
            while len(self.items) > 1 and self.total > self.budget:
                self.total -= self.items.popitem(last=False)[1][1]


_DAYS = _Lru(PRINTS_BYTES, lambda found: found.nbytes)  # (bucket, model, day) -> _Prints
_TABLES = _Lru(TABLES_BYTES, lambda table: table.nbytes)  # (bucket, key) -> a partial


@dataclass
class _Day:
    """One day as a run sees it: its files, their versions, the partials stored (per spec)."""

    files: list[LakeFile]
    versions: dict[str, str]
    stored: dict[tuple[str, str, str], tuple[str, tuple[int, int] | None]]  # (spec, name, version)
    partners: dict[str, set[str]]
    shared: np.ndarray  # id fingerprints in more than one file, sorted


class PartialReads:
    """One evaluator run's partials of one model (module docstring). `computed` counts the partials
    made in this run, `read` those fetched."""

    def __init__(self, lake: LakeStore, model: Model) -> None:
        self.lake, self.model = lake, model
        self.days: dict[date, _Day] = {}
        # files read this run, with their bodies' bytes (OPENED_BYTES)
        self.opened: OrderedDict[str, tuple[pq.ParquetFile, int]] = OrderedDict()
        self.opened_bytes = 0
        self.kept: dict[tuple[str, str], np.ndarray | None] = {}  # (key, version) -> kept rows (None: all)
        self.lock = threading.Lock()
        self.fetching: dict[str, threading.Lock] = {}
        self.computed = 0
        self.read = 0

    def measure(self, spec: Spec, windows: list[Span]) -> list[Result | None]:
        """Each window's result from the partials of its day; None for a window that is not within one
        day or not on whole minutes (the raw path measures it)."""
        by_day: dict[date, list[int]] = {}
        for number, (start, end) in enumerate(windows):
            whole = all(m.second == 0 and m.microsecond == 0 for m in (start, end))
            if whole and start < end and start.tzinfo is not None and end.tzinfo is not None:
                day = start.astimezone(UTC).date()
                if (end.astimezone(UTC) - timedelta(microseconds=1)).date() == day:
                    by_day.setdefault(day, []).append(number)
        results: list[Result | None] = [None] * len(windows)
        for day, numbers in by_day.items():
            spans = [windows[n] for n in numbers]
            first = min(s for s, _ in spans)
            last = max(e for _, e in spans)
            tables = self.partials(spec, day, first, last)
            for number, result in zip(numbers, spec.measure(tables, spans), strict=True):
                results[number] = result
        return results

    def partials(self, spec: Spec, day: date, start: datetime, end: datetime) -> list[pa.Table]:
        """The spec's partials of the day's files with rows in [start, end): made for files without
        one of their current version."""
        found = self._day(day)
        lowest, highest = _minute_of(start, day), _minute_of(end, day)
        wanted: dict[str, set[str]] = {}  # object key -> the members (file.version) wanted from it
        missing = []
        for file in found.files:
            version = found.versions[file.name]
            stored = found.stored.get((spec.digest, file.name, version))
            if stored is None:
                missing.append(file)
            elif stored[1] is not None and stored[1][0] < highest and stored[1][1] >= lowest:
                wanted.setdefault(stored[0], set()).add(_member(file.name, version))
        tables = [
            _members(table, wanted[key]) for key, table in zip(wanted, self._fetch(list(wanted)), strict=True)
        ]
        for file, (key, table) in zip(missing, self._make(spec, day, found, missing), strict=True):
            found.stored[(spec.digest, file.name, found.versions[file.name])] = (key, _span(table, day))
            if table.num_rows:
                minutes = _span(table, day)
                if minutes is not None and minutes[0] < highest and minutes[1] >= lowest:
                    tables.append(table)
        return tables

    # -- a day: its files, their versions, what is stored ---------------------------------------

    def _prefix(self, area: str, day: date) -> str:
        return f"{area}/model_id={self.model.id}/date={day.isoformat()}/"

    def _day(self, day: date) -> _Day:
        if day in self.days:
            return self.days[day]
        files = [
            LakeFile(
                item["Key"], item["Key"].rsplit("/", 1)[1].removesuffix(".parquet"), item["ETag"].strip('"')
            )
            for item in self.lake.objects(self._prefix("inferences", day))
            if item["Key"].endswith(".parquet")
        ]
        listed = self.lake.keys(self._prefix(AREA, day)) if files else []  # no files: no partials read
        blocks = [key for key in listed if key.rsplit("/", 1)[1].startswith(BLOCK)]
        prints = self._prints(day, files, blocks)
        versions = {}
        for file in files:
            partners = sorted((name, prints.files[name]) for name in prints.partners[file.name])
            versions[file.name] = hashlib.sha256(repr((file.etag, partners)).encode()).hexdigest()[:16]
        stored: dict[tuple[str, str, str], tuple[str, tuple[int, int] | None]] = {}
        for key in listed:
            parsed = _parse(key)
            if parsed is not None:
                for member in parsed[0]:
                    stored[member] = (key, parsed[1])
        same = prints.prints[1:] == prints.prints[:-1]  # each file's fingerprints are unique
        self.days[day] = _Day(files, versions, stored, prints.partners, np.unique(prints.prints[1:][same]))
        return self.days[day]

    def _prints(self, day: date, files: list[LakeFile], blocks: list[str]) -> _Prints:
        """The day's fingerprints (module docstring), kept in the process and brought up to date: a
        file gone or rewritten since makes them again. A process without them reads the day's block
        objects (each the fingerprints of BLOCK_FILES files or more), then the index objects of the
        files in none; once BLOCK_FILES files are in no block known here, it writes one of them."""
        cache = (self.lake.bucket, self.model.id, day)
        found: _Prints | None = _DAYS.get(cache)
        current = {file.name: file.etag for file in files}
        if found is None or any(current.get(name) != etag for name, etag in found.files.items()):
            found = _Prints()
        unread = [key for key in blocks if key not in found.blocks]
        if unread and len(found.files) < len(files):
            by_name = {file.name: file for file in files}
            for key, entries in zip(unread, self._read_blocks(unread), strict=True):
                found.blocks.add(key)
                usable = [
                    (by_name[name], prints)
                    for name, etag, prints in entries
                    if current.get(name) == etag and name not in found.files
                ]
                found.blocked |= {name for name, etag, _ in entries if current.get(name) == etag}
                if usable:
                    found.extend([file for file, _ in usable], [prints for _, prints in usable])
        new = [file for file in files if file.name not in found.files]
        if new:
            found.extend(new, self._file_prints(day, new))
        loose = [file for file in files if file.name not in found.blocked]
        if len(loose) >= BLOCK_FILES:
            self._write_block(day, found, loose)
        _DAYS.put(cache, found)
        return found

    def _read_blocks(self, keys: list[str]) -> list[list[tuple[str, str, np.ndarray]]]:
        """Block objects' (name, ETag, sorted fingerprints) of each file they hold; [] for one gone."""
        client = self.lake.client

        def read(key: str) -> list[tuple[str, str, np.ndarray]]:
            try:
                body = client.get_object(Bucket=self.lake.bucket, Key=key)["Body"].read()
            except ClientError as error:
                if error_code(error) in MISSING:
                    return []
                raise
            length = int.from_bytes(body[:8], "little")
            header = json.loads(body[8 : 8 + length])
            prints = np.frombuffer(body, dtype="<u8", offset=8 + length).astype(np.uint64)
            bounds = np.cumsum([0, *(count for _, _, count in header)])
            return [
                (name, etag, prints[bounds[n] : bounds[n + 1]]) for n, (name, etag, _) in enumerate(header)
            ]

        with ThreadPoolExecutor(min(READERS, len(keys))) as pool:
            return list(pool.map(read, keys))

    def _write_block(self, day: date, found: _Prints, files: list[LakeFile]) -> None:
        """A block object of these files' fingerprints: a header (8 bytes of length, then JSON
        [name, ETag, count] per file, padded to 8 bytes), then the fingerprints, file after file."""
        prints = found.of_files([file.name for file in files])
        header = json.dumps(
            [[file.name, file.etag, len(p)] for file, p in zip(files, prints, strict=True)]
        ).encode()
        header += b" " * (-len(header) % 8)
        digest = hashlib.sha256(header).hexdigest()[:16]
        key = f"{self._prefix(AREA, day)}{BLOCK}{len(files):06d}-{digest}.u64"
        body = len(header).to_bytes(8, "little") + header + np.concatenate(prints).astype("<u8").tobytes()
        self.lake.client.put_object(Bucket=self.lake.bucket, Key=key, Body=body)
        found.blocks.add(key)
        found.blocked |= {file.name for file in files}

    def _file_prints(self, day: date, files: list[LakeFile]) -> list[np.ndarray]:
        """Each file's sorted unique id fingerprints: its index object, else its ids."""
        client = self.lake.client

        def fetch(file: LakeFile) -> np.ndarray:
            key = f"{self._prefix('inference_ids', day)}{file.name}.u64"
            try:
                body = client.get_object(Bucket=self.lake.bucket, Key=key)["Body"].read()
                return np.frombuffer(body, dtype="<u8").astype(np.uint64)
            except ClientError as error:
                if error_code(error) not in MISSING:
                    raise
            ids = self.lake.read_table(file.key, ["partner_inference_id"]).column(0)
            return np.unique(id_fingerprints(ids))

        if not files:
            return []
        with ThreadPoolExecutor(min(READERS, len(files))) as pool:
            return list(pool.map(fetch, files))

    # -- reading and making partials ------------------------------------------------------------

    def _fetch(self, keys: list[str]) -> list[pa.Table]:
        """Stored partials, from the process's cache or READERS at a time."""
        found = {key: _TABLES.get((self.lake.bucket, key)) for key in keys}
        missing = [key for key, table in found.items() if table is None]
        if missing:
            client = self.lake.client

            def get(key: str) -> pa.Table:
                body = client.get_object(Bucket=self.lake.bucket, Key=key)["Body"].read()
                return pq.read_table(pa.BufferReader(body))

            with ThreadPoolExecutor(min(READERS, len(missing))) as pool:
                for key, table in zip(missing, pool.map(get, missing), strict=True):
                    found[key] = table
                    _TABLES.put((self.lake.bucket, key), table)
            self.read += len(missing)
        return [found[key] for key in keys]

    def _make(self, spec: Spec, day: date, found: _Day, files: list[LakeFile]) -> list[tuple[str, pa.Table]]:
        """The partials of files without one: each file's kept rows reduced (its key and table), and
        stored BUNDLE_FILES files to an object (one PUT a run and rule, not one a file). At most
        DECODERS files are decoded at once (MAKERS threads: the others fetch)."""
        if not files:
            return []
        self._resolve(found, files)
        decoding = threading.Semaphore(DECODERS)

        def make(file: LakeFile) -> pa.Table:
            parquet = self._open(file.key)
            with decoding:
                kept = self.kept[(file.key, found.versions[file.name])]
                return spec.partial(self._kept_rows(parquet, spec.columns, kept))

        # the files opened last (resolving their first writes) first: their bodies are still kept
        order = sorted(range(len(files)), key=lambda n: files[n].key, reverse=True)
        made: list[pa.Table | None] = [None] * len(files)
        with ThreadPoolExecutor(min(MAKERS, len(files))) as pool:
            for number, table in zip(order, pool.map(lambda n: make(files[n]), order), strict=True):
                made[number] = table
        tables = [table for table in made if table is not None]
        members = [_member(file.name, found.versions[file.name]) for file in files]
        # bundled in order of their first minute (names are digests, in no order of time): an object
        # then spans few minutes, so a window GETs the few holding its files, not most of a day's
        by_time = sorted(range(len(files)), key=lambda n: _span(tables[n], day) or (MINUTES_A_DAY, 0))
        fixed = len(f"{self._prefix(AREA, day)}spec={spec.digest}/.0000-1439.parquet")
        groups = [[by_time[n] for n in group] for group in _bundles([members[n] for n in by_time], fixed)]
        with ThreadPoolExecutor(min(READERS, len(groups))) as pool:
            keys = list(
                pool.map(
                    lambda group: self._store(
                        spec, day, [members[n] for n in group], [tables[n] for n in group]
                    ),
                    groups,
                )
            )
        self.computed += len(files)
        key_of = {n: key for key, group in zip(keys, groups, strict=True) for n in group}
        return [(key_of[n], tables[n]) for n in range(len(files))]

    def _store(self, spec: Spec, day: date, members: list[str], tables: list[pa.Table]) -> str:
        """Store the partials of `members` (file.version each) as one object; its key names them and
        the minutes of the day their rows span, so a LIST tells which partials exist and where."""
        owner = np.repeat(np.arange(len(members), dtype=np.int32), [t.num_rows for t in tables])
        bundle = pa.concat_tables(tables, promote_options="default").append_column(
            MEMBER, pa.DictionaryArray.from_arrays(pa.array(owner), pa.array(members, pa.string()))
        )
        minutes = _span(bundle, day)
        where = "empty" if minutes is None else f"{minutes[0]:04d}-{minutes[1]:04d}"
        key = f"{self._prefix(AREA, day)}spec={spec.digest}/{'+'.join(members)}.{where}.parquet"
        sink = io.BytesIO()
        pq.write_table(bundle, sink, compression="zstd")
        self.lake.client.put_object(Bucket=self.lake.bucket, Key=key, Body=sink.getvalue())
        _TABLES.put((self.lake.bucket, key), bundle)
        return key

    def _kept_rows(self, parquet: pq.ParquetFile, columns: list[str], kept: np.ndarray | None) -> pa.Table:
        """A file's first writes (`kept`, None: every row), `columns` only (nulls of the model's type
        where the file lacks one)."""
        present = [c for c in columns if c in parquet.schema_arrow.names]
        table = parquet.read(columns=present)
        if kept is not None:
            table = table.filter(pa.array(kept))
        types = _types(self.model)
        for name in columns:
            if name not in present:
                table = table.append_column(name, pa.nulls(table.num_rows, types.get(name, pa.null())))
        return table

    def _resolve(self, found: _Day, files: list[LakeFile]) -> None:
        """The first writes of `files` among the day's files (module docstring), resolved at once and
        kept per (key, version) for the run: each file's identity columns decoded once (it and its
        partners, DECODERS at a time), only the rows that may lose kept (an id fingerprint another
        file has, or an identity twice in the file), those resolved together in the lake's order."""
        wanted = [file for file in files if (file.key, found.versions[file.name]) not in self.kept]
        if not wanted:
            return
        by_name = {file.name: file for file in found.files}
        involved = {file.key: file for file in wanted}
        for file in wanted:
            for name in found.partners.get(file.name, ()):
                if name in by_name:
                    involved[by_name[name].key] = by_name[name]
        ordered = [involved[key] for key in sorted(involved)]  # the lake's order
        shared = found.shared
        decoding = threading.Semaphore(DECODERS)

        def candidates(file: LakeFile) -> tuple[int, np.ndarray, pa.Table, np.ndarray]:
            parquet = self._open(file.key)
            with decoding:
                identity = identity_columns(parquet, IDENTITY)
                ids = id_fingerprints(identity.column("partner_inference_id"))
                prints = inference_prints(ids, identity.column("variant"))
                rows = np.flatnonzero(matched_rows(ids, shared) | repeated(prints))
                return identity.num_rows, rows, identity.take(pa.array(rows)), prints[rows]

        with ThreadPoolExecutor(min(MAKERS, len(ordered))) as pool:
            parts = list(pool.map(candidates, ordered))
        tables = [table for _, _, table, _ in parts if table.num_rows]
        resolved = (
            first_write_rows(pa.concat_tables(tables), np.concatenate([p for _, _, _, p in parts]))
            if tables
            else np.empty(0, dtype=bool)
        )
        bounds = np.cumsum([0, *(len(rows) for _, rows, _, _ in parts)])
        keys = {file.key for file in wanted}
        for file, (count, rows, _, _), low, high in zip(ordered, parts, bounds[:-1], bounds[1:], strict=True):
            if file.key in keys:
                lost = rows[~resolved[low:high]]
                kept = None
                if len(lost):
                    kept = np.ones(count, dtype=bool)
                    kept[lost] = False
                self.kept[(file.key, found.versions[file.name])] = kept

    def _open(self, key: str) -> pq.ParquetFile:
        """A file of the day, fetched once per run while kept (OPENED_BYTES of bodies, the least
        recently used out first)."""
        with self.lock:  # one fetch per key: threads opening the same file wait for it
            fetching = self.fetching.setdefault(key, threading.Lock())
        with fetching:
            with self.lock:
                found = self.opened.get(key)
                if found is not None:
                    self.opened.move_to_end(key)
                    return found[0]
            body = self.lake.client.get_object(Bucket=self.lake.bucket, Key=key)["Body"].read()
            # pre_buffer off: a body in memory gains nothing from it, and pyarrow's read-range cache
            # is not safe when threads read the same ParquetFile (ArrowInvalid "ReadRangeCache did
            # not find matching cache entry", seen with partners' partials made at once)
            parquet = pq.ParquetFile(pa.BufferReader(body), pre_buffer=False)
            with self.lock:
                self.opened[key] = (parquet, len(body))
                self.opened_bytes += len(body)
                while len(self.opened) > 1 and self.opened_bytes > OPENED_BYTES:
                    self.opened_bytes -= self.opened.popitem(last=False)[1][1]
        return parquet


def _types(model: Model) -> dict[str, pa.DataType]:
    """The lake's type of each inference column a query can name."""
    return {name: ARROW_TYPES[kind] for name, kind in column_types(model, "inference").items()}


def _minute_of(moment: datetime, day: date) -> int:
    """Minutes from the day's start (UTC) to a moment (may be past the day's last)."""
    start = datetime.combine(day, time(), UTC)
    return int((moment - start).total_seconds() // 60)


def _span(table: pa.Table, day: date) -> tuple[int, int] | None:
    """The first and last minute of the day a partial has rows in; None when it has none."""
    if table.num_rows == 0:
        return None
    bounds = pc.min_max(table.column(MINUTE))
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if low is None:
        return None
    return _minute_of(low, day), _minute_of(high, day)


def _parse(key: str) -> tuple[list[tuple[str, str, str]], tuple[int, int] | None] | None:
    """(spec, file name, version) of each partial a stored object holds, and the minutes of the day
    its rows span; None for another key."""
    parts = key.split("/")
    if len(parts) < 2 or not parts[-2].startswith("spec=") or not parts[-1].endswith(".parquet"):
        return None
    held, _, where = parts[-1].removesuffix(".parquet").rpartition(".")
    members = [member.rpartition(".") for member in held.split("+")]
    if not held or any(not name or not version for name, _, version in members):
        return None
    spec = parts[-2][5:]
    found = [(spec, name, version) for name, _, version in members]
    if where == "empty":
        return found, None
    low, _, high = where.partition("-")
    if not (low.isdigit() and high.isdigit()):
        return None
    return found, (int(low), int(high))


def _member(name: str, version: str) -> str:
    """A partial's name in a stored object's key and MEMBER column: its file's name and version."""
    return f"{name}.{version}"


def _bundles(members: list[str], fixed: int) -> list[list[int]]:
    """The members (file.version) cut into objects of at most BUNDLE_FILES, in order, each key
    (`fixed` characters besides the members and the '+' between them) within S3's 1,024 bytes."""
    groups: list[list[int]] = []
    length = fixed
    for number, member in enumerate(members):
        if groups and len(groups[-1]) < BUNDLE_FILES and length + 1 + len(member) <= MAX_KEY_BYTES:
            groups[-1].append(number)
            length += 1 + len(member)
        else:
            groups.append([number])
            length = fixed + len(member)
    return groups


def _members(table: pa.Table, wanted: set[str]) -> pa.Table:
    """The rows of a stored object that belong to the `wanted` members (file.version): an object
    holds several files' partials, some of which may be of versions no longer current."""
    if MEMBER not in table.column_names:
        return table
    members = table.column(MEMBER)
    keep = pc.is_in(members.cast(pa.string()), value_set=pa.array(sorted(wanted), pa.string()))
    return table.filter(keep).drop_columns([MEMBER])
