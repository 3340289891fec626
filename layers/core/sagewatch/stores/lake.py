"""LakeStore: the data lake bucket (Parquet inferences and ground truth, rejected rows, unrouted files).

Layout (DESIGN.md "Storage"):
  inferences/model_id=<id>/date=<YYYY-MM-DD>/<source-digest>-<part>.parquet
  ground_truth/model_id=<id>/date=<YYYY-MM-DD>/<source-digest>-<part>.parquet
  reference/model_id=<id>/<source-digest>-<part>.parquet
  rejected/model_id=<id>/date=<YYYY-MM-DD>/<source-digest>-<part>.jsonl
  unrouted/<source-digest>.json      files no model claims, kept aside to be reported and replayed
  drops/<model>/<inferences|ground_truth|reference>/[<batch_id>/]<file>.parquet   files to ingest
Object names derive from the source object (bucket, key, ETag) and the part number, so processing
the same source again rewrites the same objects instead of adding copies.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sagewatch import aws
from sagewatch.settings import Settings

# Objects written at once by one call (S3 takes thousands of PUTs a second per prefix).
WRITERS = 16


def source_digest(bucket: str, key: str, etag: str) -> str:
    """A stable name for one version of one source object."""
    return hashlib.sha256(f"{bucket}\n{key}\n{etag.strip(chr(34))}".encode()).hexdigest()[:32]


class LakeStore:
    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> LakeStore:
        return cls((settings or Settings.from_env()).name("data"))

    @property
    def client(self) -> Any:
        return self._client or aws.client("s3")

    def write_rows(self, area: str, model_id: str, table: pa.Table, time_column: str, name: str) -> list[str]:
        """Write rows as Parquet, one object per day of `time_column`; returns the keys written.

        Rows are grouped by one sort (no pass per day) and the objects written WRITERS at a time:
        a request spanning many days costs about days / WRITERS round trips, not days.
        """
        if table.num_rows == 0:
            return []
        days = pc.strftime(table.column(time_column).combine_chunks(), format="%Y-%m-%d")
        order = pc.sort_indices(days)
        table, days = table.take(order), days.take(order)
        runs = pc.run_end_encode(days)
        ends = runs.run_ends.to_numpy(zero_copy_only=False)
        starts = [0, *ends[:-1]]
        parts = [
            (f"{area}/model_id={model_id}/date={day}/{name}.parquet", table.slice(start, end - start))
            for day, start, end in zip(runs.values.to_pylist(), starts, ends, strict=True)
        ]
        client = self.client
        with ThreadPoolExecutor(min(WRITERS, len(parts))) as pool:
            list(
                pool.map(
                    lambda part: client.put_object(Bucket=self.bucket, Key=part[0], Body=_parquet(part[1])),
                    parts,
                )
            )
        return [key for key, _ in parts]

    def write_reference(self, model_id: str, table: pa.Table, name: str) -> str:
        key = f"reference/model_id={model_id}/{name}.parquet"
        self.client.put_object(Bucket=self.bucket, Key=key, Body=_parquet(table))
        return key

    def read_area(self, area: str, model_id: str, columns: list[str] | None = None) -> pa.Table | None:
        """Every Parquet part of a model's area (inferences, ground_truth, reference), or None.

        Only the named columns are read. Parts whose schema lacks a column (written before the
        model gained an attribute) get it as nulls.
        """
        tables = [
            self.read_table(key, columns)
            for key in self._keys(f"{area}/model_id={model_id}/", limit=1_000_000)
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
        keys = sorted(self._keys(f"rejected/model_id={model_id}/", limit=100_000), reverse=True)
        rows = []
        for key in keys:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            rows += [json.loads(line) for line in body.splitlines() if line.strip()]
        return rows

    def write_unrouted(self, digest: str, record: dict[str, Any]) -> str:
        key = f"unrouted/{digest}.json"
        self.client.put_object(Bucket=self.bucket, Key=key, Body=json.dumps(record).encode())
        return key

    def unrouted(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Records of files kept aside because no model claims them, newest first."""
        records = []
        for key in self._keys("unrouted/", limit):
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            records.append(json.loads(body))
        return sorted(records, key=lambda r: r.get("seen_at", ""), reverse=True)

    def read_table(self, key: str, columns: list[str] | None = None) -> pa.Table:
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        if columns is None:
            return pq.read_table(pa.BufferReader(body))
        present = [c for c in columns if c in pq.read_schema(pa.BufferReader(body)).names]
        return pq.read_table(pa.BufferReader(body), columns=present)

    def keys(self, prefix: str, limit: int = 100_000) -> list[str]:
        return list(self._keys(prefix, limit))

    def _keys(self, prefix: str, limit: int) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        count = 0
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]
                count += 1
                if count >= limit:
                    return


def _parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()
