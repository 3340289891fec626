"""LakeStore: the data lake bucket (Parquet inferences and ground truth, rejected rows, unrouted files).

Layout (DESIGN.md "Storage"):
  inferences/model_id=<id>/date=<YYYY-MM-DD>/<source-digest>-<part>.parquet
  labels/model_id=<id>/date=<YYYY-MM-DD>/<source-digest>-<part>.parquet
      ground truth filed under the day of the inference it labels (found through the id index)
  ground_truth/model_id=<id>/date=<YYYY-MM-DD>/<source-digest>-<part>.parquet
      ground truth whose inference was not found when it arrived, by its ground_truth_timestamp's day
  inference_ids/model_id=<id>/date=<YYYY-MM-DD>/<source-digest>-<part>.u64
      the id index: each inference file's sorted id fingerprints (sagewatch.tables.id_fingerprints)
  reference/model_id=<id>/<source-digest>-<part>.parquet
  reference/model_id=<id>/_anomaly/detector.json   the anomaly detector fitted on that reference
  rejected/model_id=<id>/date=<YYYY-MM-DD>/<source-digest>-<part>.jsonl
  unrouted/<source-digest>.json      files no model claims, kept aside to be reported and replayed
  drops/<model>/<inferences|ground_truth|reference>/[<batch_id>/]<file>.parquet   files to ingest
Object names derive from the source object (bucket, key, ETag) and the part number, so processing
the same source again rewrites the same objects instead of adding copies.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from sagewatch import aws
from sagewatch.settings import Settings
from sagewatch.stores.dynamo import error_code
from sagewatch.tables import id_fingerprints, label_days

# Objects written at once by one call (S3 takes thousands of PUTs a second per prefix).
WRITERS = 16
MISSING = ("NoSuchKey", "404", "NotFound")  # S3's codes for an object that is not there
# Ground truth is looked for among the inferences of this many days before it (stores/window.py reads
# what is not found there by the label's own day, from LABELS_EARLY_DAYS before a window on).
LABEL_SEARCH_DAYS = 30
GROUND_TRUTH_AREAS = ("labels", "ground_truth")  # where a model's ground truth is: all of it is in both
# Index objects are kept in the process up to this many bytes (named by their source, they never change).
INDEX_CACHE_BYTES = 256 << 20
MERGED = "_merged-"  # a day's index objects merged into one: _merged-<count>-<digest>.u64


def source_digest(bucket: str, key: str, etag: str) -> str:
    """A stable name for one version of one source object."""
    return hashlib.sha256(f"{bucket}\n{key}\n{etag.strip(chr(34))}".encode()).hexdigest()[:32]


class LakeStore:
    """`page_size` is how many keys one LIST call asks for (S3 gives at most 1,000); listings
    follow every page, so nothing past any count is ever left out."""

    def __init__(self, bucket: str, client: Any = None, page_size: int = 1000) -> None:
        self.bucket = bucket
        self._client = client
        self._indexes: OrderedDict[str, tuple[frozenset[str], np.ndarray]] = OrderedDict()
        self._indexed_bytes = 0
        self.page_size = page_size

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> LakeStore:
        return cls((settings or Settings.from_env()).name("data"))

    @property
    def client(self) -> Any:
        return self._client or aws.client("s3")

    def upload_url(self, key: str, expires_in: int) -> str:
        """A presigned PUT of `key` into this bucket (SigV4, the bucket's regional host: sagewatch.aws)."""
        return self.client.generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
        )

    def write_rows(self, area: str, model_id: str, table: pa.Table, time_column: str, name: str) -> list[str]:
        """Write rows as Parquet, one object per day of `time_column`; returns the keys written.

        Rows are grouped by one sort (no pass per day) and the objects written WRITERS at a time:
        a request spanning many days costs about days / WRITERS round trips, not days.
        """
        parts = [
            (f"{area}/model_id={model_id}/date={day}/{name}.parquet", rows)
            for day, rows in by_day(table, time_column)
        ]
        return self._put_all(parts)

    def _put_all(self, objects: list[tuple[str, pa.Table | bytes]]) -> list[str]:
        """PUT objects WRITERS at a time (tables as Parquet, encoded in the writing threads); returns
        their keys."""
        if not objects:
            return []
        client = self.client

        def put(key: str, body: pa.Table | bytes) -> None:
            client.put_object(
                Bucket=self.bucket, Key=key, Body=_parquet(body) if isinstance(body, pa.Table) else body
            )

        with ThreadPoolExecutor(min(WRITERS, len(objects))) as pool:
            list(pool.map(lambda o: put(*o), objects))
        return [key for key, _ in objects]

    # -- the id index, and ground truth filed by its inference's day ----------------------------

    def write_id_index(self, model_id: str, inferences: pa.Table, name: str) -> list[str]:
        """Index an inference part: per day of inference_timestamp, its ids' sorted fingerprints.

        Written before the rows themselves, so rows that exist are always indexed (an index entry
        whose rows were never written only files a label under one more day)."""
        objects = [
            (
                f"inference_ids/model_id={model_id}/date={day}/{name}.u64",
                np.unique(id_fingerprints(rows.column("partner_inference_id"))).astype("<u8").tobytes(),
            )
            for day, rows in by_day(
                inferences.select(["partner_inference_id", "inference_timestamp"]), "inference_timestamp"
            )
        ]
        return self._put_all(objects)

    def days(self, area: str, model_id: str) -> list[date]:
        """The days a model's area has folders for, ascending (one LIST per 1,000 days)."""
        paginator = self.client.get_paginator("list_objects_v2")
        prefix = f"{area}/model_id={model_id}/"
        days = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            days += [day_of(p["Prefix"]) for p in page.get("CommonPrefixes", [])]
        return sorted(d for d in days if d is not None)

    def id_index(self, model_id: str, day: date, merge: bool = False) -> np.ndarray:
        """The fingerprints of a day's inferences, sorted and unique.

        A day's index is one object per inference file; with `merge` (a day no more files are
        expected for), those are merged into one (`_merged-...`, naming the objects it holds), so
        the next search of the day reads one object and only the files written since. Objects are
        never deleted (a reader may be listing them) and are kept in the process (INDEX_CACHE_BYTES).
        """
        keys = self.keys(f"inference_ids/model_id={model_id}/date={day.isoformat()}/")
        merged = [k for k in keys if k.rsplit("/", 1)[1].startswith(MERGED)]
        covered: frozenset[str] = frozenset()
        arrays = []
        if merged:
            covered, values = self._index_objects([max(merged, key=_merged_count)])[0]
            arrays.append(values)
        rest = [k for k in keys if k not in merged and k.rsplit("/", 1)[1] not in covered]
        arrays += [values for _, values in self._index_objects(rest)]
        index = np.unique(np.concatenate(arrays)) if arrays else np.empty(0, np.uint64)
        if merge and len(rest) > (0 if merged else 1):
            names = sorted(covered | {k.rsplit("/", 1)[1] for k in rest})
            digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
            prefix = f"inference_ids/model_id={model_id}/date={day.isoformat()}/"
            self._put_all([(f"{prefix}{MERGED}{len(names):08d}-{digest}.u64", _merged_body(names, index))])
        return index

    def _index_objects(self, keys: list[str]) -> list[tuple[frozenset[str], np.ndarray]]:
        """Index objects by key (the names a merged one holds, its fingerprints), from the process's
        cache or read WRITERS at a time."""
        missing = [k for k in keys if k not in self._indexes]
        if missing:
            client = self.client
            with ThreadPoolExecutor(min(WRITERS, len(missing))) as pool:
                bodies = pool.map(
                    lambda k: client.get_object(Bucket=self.bucket, Key=k)["Body"].read(), missing
                )
                for key, body in zip(missing, bodies, strict=True):
                    self._indexes[key] = _read_index(key, body)
                    self._indexed_bytes += self._indexes[key][1].nbytes
        for key in keys:
            self._indexes.move_to_end(key)
        found = [self._indexes[k] for k in keys]
        while self._indexed_bytes > INDEX_CACHE_BYTES and len(self._indexes) > 1:
            _, (_, values) = self._indexes.popitem(last=False)
            self._indexed_bytes -= values.nbytes
        return found

    def write_ground_truth(self, model_id: str, table: pa.Table, name: str) -> list[str]:
        """File ground truth under the day of the inference each row labels (labels/); returns the keys.

        The days are found in the id index: every indexed day from LABEL_SEARCH_DAYS before a row's
        ground_truth_timestamp to the day after is searched (for each day the rows hold), and a row
        is filed under each day that has its id (an id sent on two days, or for two variants a day
        apart, labels both). Rows found on no such day go to ground_truth/ by their
        ground_truth_timestamp's day, where a window looks for them as well (stores/window.py).
        Days two or more days old are merged into one index object as they are searched."""
        if table.num_rows == 0:
            return []
        moments = table.column("ground_truth_timestamp")
        if moments.null_count == len(moments):
            moments = table.column("ingested_at")
        label_days_of = pc.unique(moments.drop_null().cast(pa.date32())).to_pylist()
        search, after = timedelta(days=LABEL_SEARCH_DAYS), timedelta(days=1)  # times are held to 1970..2199
        closed = datetime.now(UTC).date() - timedelta(days=2)
        days = [
            d
            for d in reversed(self.days("inference_ids", model_id))
            if any(label - search <= d <= label + after for label in label_days_of)
        ]
        found = label_days(
            id_fingerprints(table.column("partner_inference_id")),
            ((day, self.id_index(model_id, day, merge=day <= closed)) for day in days),
        )
        objects = [
            (f"labels/model_id={model_id}/date={day.isoformat()}/{name}.parquet", table.filter(rows))
            for day, rows in found.items()
        ]
        keys = self._put_all(objects)
        labelled = np.zeros(table.num_rows, dtype=bool)
        for rows in found.values():
            labelled |= rows
        if labelled.all():
            return keys
        return keys + self.write_rows(
            "ground_truth", model_id, table.filter(pa.array(~labelled)), "ground_truth_timestamp", name
        )

    def write_reference(self, model_id: str, table: pa.Table, name: str) -> str:
        """Write reference rows as one Parquet object (reference data has no days); returns its key."""
        key = f"reference/model_id={model_id}/{name}.parquet"
        self.client.put_object(Bucket=self.bucket, Key=key, Body=_parquet(table))
        return key

    def detector_key(self, model_id: str) -> str:
        """Where a model's anomaly detector is kept: beside its reference (not .parquet, so readers
        of the reference pass it by; deleting the reference deletes it)."""
        return f"reference/model_id={model_id}/_anomaly/detector.json"

    def write_detector(self, model_id: str, body: bytes) -> str:
        """Store a model's anomaly detector; returns its ETag."""
        response = self.client.put_object(Bucket=self.bucket, Key=self.detector_key(model_id), Body=body)
        return response["ETag"].strip('"')

    def detector_etag(self, model_id: str) -> str | None:
        """The stored detector's ETag (one HEAD), or None when there is none."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.detector_key(model_id))
        except ClientError as error:
            if error_code(error) in MISSING:
                return None
            raise
        return head["ETag"].strip('"')

    def read_detector(self, model_id: str) -> tuple[bytes, str] | None:
        """The stored detector's bytes and ETag, or None when there is none."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.detector_key(model_id))
        except ClientError as error:
            if error_code(error) in MISSING:
                return None
            raise
        return response["Body"].read(), response["ETag"].strip('"')

    def has_reference(self, model_id: str) -> bool:
        """Whether any reference part is stored for the model (one LIST of one key)."""
        response = self.client.list_objects_v2(
            Bucket=self.bucket, Prefix=f"reference/model_id={model_id}/", MaxKeys=2
        )
        return any(item["Key"].endswith(".parquet") for item in response.get("Contents", []))

    def delete_detector(self, model_id: str) -> None:
        """Forget a model's detector (its reference changed; the next ingest fits a new one)."""
        self.client.delete_object(Bucket=self.bucket, Key=self.detector_key(model_id))

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix` (1,000 a call); returns how many."""
        keys = self.keys(prefix)
        for start in range(0, len(keys), 1000):
            self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in keys[start : start + 1000]], "Quiet": True},
            )
        return len(keys)

    def read_area(
        self,
        area: str | tuple[str, ...],
        model_id: str,
        columns: list[str] | None = None,
        first: date | None = None,
        last: date | None = None,
    ) -> pa.Table | None:
        """Every Parquet part of a model's area (inferences, reference; GROUND_TRUTH_AREAS), or None;
        with `first` / `last`, only the parts of those days (only they are listed).

        Only the named columns are read. Parts whose schema lacks a column (written before the
        model gained an attribute) get it as nulls.
        """
        areas = (area,) if isinstance(area, str) else area
        tables = [
            self.read_table(key, columns)
            for name in areas
            for key in self.day_keys(f"{name}/model_id={model_id}/", first, last)
            if key.endswith(".parquet")
        ]
        if not tables:
            return None
        return pa.concat_tables(tables, promote_options="default")

    def write_rejected(
        self, model_id: str, day: date, name: str, source: str, rejected: list[dict[str, Any]]
    ) -> str | None:
        """Rejected rows as JSON Lines, each with its source and reason."""
        if not rejected:
            return None
        key = f"rejected/model_id={model_id}/date={day.isoformat()}/{name}.jsonl"
        body = "".join(json.dumps({"source": source, **record}) + "\n" for record in rejected)
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body.encode())
        return key

    def rejected(self, model_id: str) -> list[dict[str, Any]]:
        """A model's rejected rows, newest day first (each file in its own order)."""
        keys = sorted(self.keys(f"rejected/model_id={model_id}/"), reverse=True)
        rows = []
        for key in keys:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            rows += [json.loads(line) for line in body.splitlines() if line.strip()]
        return rows

    def write_unrouted(self, digest: str, record: dict[str, Any]) -> str:
        """Keep the record of a file no model claims, under its source's digest; returns the key."""
        key = f"unrouted/{digest}.json"
        self.client.put_object(Bucket=self.bucket, Key=key, Body=json.dumps(record).encode())
        return key

    def unrouted(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Records of files kept aside because no model claims them: the newest `limit`, newest first
        (every key is listed; only the newest records are read)."""
        objects = sorted(self.objects("unrouted/"), key=lambda o: o["LastModified"], reverse=True)[:limit]
        records = [
            json.loads(self.client.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read())
            for o in objects
        ]
        return sorted(records, key=lambda r: r.get("seen_at", ""), reverse=True)

    def read_table(self, key: str, columns: list[str] | None = None) -> pa.Table:
        """One Parquet object; with `columns`, only those of them it has."""
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        if columns is None:
            return pq.read_table(pa.BufferReader(body))
        present = [c for c in columns if c in pq.read_schema(pa.BufferReader(body)).names]
        return pq.read_table(pa.BufferReader(body), columns=present)

    def keys(self, prefix: str, start_after: str | None = None) -> list[str]:
        """Every key under `prefix` (after `start_after`, when given), in ascending order."""
        return [item["Key"] for item in self.objects(prefix, start_after)]

    def objects(self, prefix: str, start_after: str | None = None) -> Iterator[dict[str, Any]]:
        """The listing of `prefix`, page after page (`page_size` keys a call), ascending by key."""
        paginator = self.client.get_paginator("list_objects_v2")
        arguments = {
            "Bucket": self.bucket,
            "Prefix": prefix,
            "PaginationConfig": {"PageSize": self.page_size},
        }
        if start_after:
            arguments["StartAfter"] = start_after
        for page in paginator.paginate(**arguments):
            yield from page.get("Contents", [])

    def day_keys(self, prefix: str, first: date | None, last: date | None) -> Iterator[str]:
        """Keys of `<prefix>date=<day>/...` objects whose day lies in [first, last], ascending.

        The listing starts at the first day's folder (StartAfter) and stops past the last, so a
        window's cost follows the window, not the model's history.
        """
        start = f"{prefix}date={first.isoformat()}" if first else None
        for item in self.objects(prefix, start):
            key = item["Key"]
            day = day_of(key)
            if day is not None and last is not None and day > last:
                return
            if day is not None and first is not None and day < first:
                continue
            yield key


def by_day(table: pa.Table, time_column: str) -> list[tuple[str, pa.Table]]:
    """The rows of each day (YYYY-MM-DD, UTC) of `time_column`, by one sort (no pass per day)."""
    if table.num_rows == 0:
        return []
    days = pc.strftime(table.column(time_column).combine_chunks(), format="%Y-%m-%d")
    order = pc.sort_indices(days)
    table, days = table.take(order), days.take(order)
    runs = pc.run_end_encode(days)
    ends = runs.run_ends.to_numpy(zero_copy_only=False)
    starts = [0, *ends[:-1]]
    return [
        (day, table.slice(start, end - start))
        for day, start, end in zip(runs.values.to_pylist(), starts, ends, strict=True)
    ]


def _merged_count(key: str) -> int:
    """How many index objects a merged one holds (from its name)."""
    return int(key.rsplit("/", 1)[1][len(MERGED) :].split("-", 1)[0])


def _merged_body(names: list[str], index: np.ndarray) -> bytes:
    """A merged index object: the byte length of the names it holds (8 bytes), those names (JSON,
    padded to 8 bytes), then the fingerprints."""
    header = json.dumps(names).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + index.astype("<u8").tobytes()


def _read_index(key: str, body: bytes) -> tuple[frozenset[str], np.ndarray]:
    """An index object's fingerprints, with the names of the objects it holds when merged."""
    if not key.rsplit("/", 1)[1].startswith(MERGED):
        return frozenset(), np.frombuffer(body, dtype="<u8")
    length = int.from_bytes(body[:8], "little")
    return frozenset(json.loads(body[8 : 8 + length])), np.frombuffer(body, dtype="<u8", offset=8 + length)


def _parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def day_of(key: str) -> date | None:
    """The day of a key's `date=<YYYY-MM-DD>` folder, or None."""
    for part in key.split("/"):
        if part.startswith("date="):
            try:
                return date.fromisoformat(part[5:])
            except ValueError:
                return None
    return None
