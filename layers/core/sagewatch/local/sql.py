"""Local mode's SQL engine: DuckDB in place of Athena, over the window's Parquet files in moto's S3.

A query's files (inferences and labels of its days, ground_truth/ from LABELS_EARLY_DAYS before,
the reference; every file of a query without days, as one from ground_truth) are fetched from the
lake bucket into a temporary folder laid out as the lake
(`<area>/model_id=<id>/date=<day>/<name>.parquet`, so files sort as the lake lists them), and
DuckDB reads them through sagewatch.metrics.sql's views (no DuckDB extension: it reads local
files). A query runs to its end when started, so local mode never answers 202; its result and
text are kept (the last KEPT queries) for the poll route as Athena keeps them.
"""

from __future__ import annotations

import tempfile
import threading
import uuid
from collections import OrderedDict
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import duckdb
import pyarrow as pa

from sagewatch.errors import NotFound
from sagewatch.metrics.sql import DUCKDB_PLACE, SqlTables, duckdb_views
from sagewatch.schema import Model
from sagewatch.stores.athena import USER_ERROR, Execution
from sagewatch.stores.catalog import queryable
from sagewatch.stores.lake import LakeStore, day_of
from sagewatch.stores.window import LABELS_EARLY_DAYS

KEPT = 32  # finished queries kept for their poll
TABLES = SqlTables(
    inferences="inferences",
    labels="labels",
    ground_truth="ground_truth",
    reference="reference",
    place=(DUCKDB_PLACE,),
)


class DuckdbEngine:
    """sagewatch.services.monitoring.SqlEngine over DuckDB (see the module docstring)."""

    dialect: Literal["duckdb"] = "duckdb"

    def __init__(self, lake: LakeStore) -> None:
        self.lake = lake
        self._done: OrderedDict[str, tuple[Execution, pa.Table | None]] = OrderedDict()
        self._lock = threading.Lock()

    def tables(self, model: Model, check: bool = True) -> SqlTables:
        """The views every query defines over its files."""
        return TABLES

    def queryable(self, model: Model) -> bool:
        """As on Athena: a model with an attribute named `date` stays on the in-Lambda engine."""
        return queryable(model)

    def start(self, sql: str, model: Model, first: date | None, last: date | None) -> str:
        """Run the query over the model's files of its days; its id (it has finished)."""
        query_id = str(uuid.uuid4())
        with tempfile.TemporaryDirectory(prefix="sagewatch-duckdb-") as folder:
            globs = self._fetch(model, first, last, Path(folder))
            try:
                connection = duckdb.connect()
                for statement in duckdb_views(model, TABLES, globs):
                    connection.execute(statement)
                result = connection.sql(sql).to_arrow_table()
                found = Execution(query_id, "SUCCEEDED", sql=sql)
            except duckdb.Error as error:
                result, found = None, Execution(query_id, "FAILED", str(error), sql, USER_ERROR)
        with self._lock:
            self._done[query_id] = (found, result)
            while len(self._done) > KEPT:
                self._done.popitem(last=False)
        return query_id

    def _fetch(
        self, model: Model, first: date | None, last: date | None, folder: Path
    ) -> dict[str, str | None]:
        """Copy the query's files into `folder` as the lake lays them out; a glob per area."""
        early = timedelta(days=LABELS_EARLY_DAYS)
        since = first - early if first is not None and first > date.min + early else None
        spans = {"inferences": (first, last), "labels": (first, last), "ground_truth": (since, None)}
        globs: dict[str, str | None] = {}
        for area in ("inferences", "labels", "ground_truth", "reference"):
            prefix = f"{area}/model_id={model.id}/"
            if area == "reference":
                keys = [k for k in self.lake.keys(prefix) if k.endswith(".parquet") and "/_" not in k]
            else:
                keys = [k for k in self.lake.day_keys(prefix, *spans[area]) if k.endswith(".parquet")]
            for key in keys:
                day = day_of(key)
                local = folder / area / "model_id=m" / (f"date={day.isoformat()}" if day else "")
                local.mkdir(parents=True, exist_ok=True)
                body = self.lake.client.get_object(Bucket=self.lake.bucket, Key=key)["Body"].read()
                (local / key.rsplit("/", 1)[1]).write_bytes(body)
            pattern = "*.parquet" if area == "reference" else "date=*/*.parquet"
            globs[area] = str(folder / area / "model_id=m" / pattern) if keys else None
        return globs

    @property
    def finished(self) -> list[str]:
        """The ids of the kept queries, oldest first."""
        with self._lock:
            return list(self._done)

    def _kept(self, query_id: str) -> tuple[Execution, pa.Table | None]:
        with self._lock:
            if query_id not in self._done:
                raise NotFound(f"no query {query_id!r}", field="query_id")
            return self._done[query_id]

    def execution(self, query_id: str) -> Execution:
        """A query's state (every kept query has finished)."""
        return self._kept(query_id)[0]

    def wait(self, query_id: str, seconds: float) -> Execution:
        """As execution: nothing is left running."""
        return self.execution(query_id)

    def results(self, query_id: str) -> pa.Table:
        """A succeeded query's result."""
        result = self._kept(query_id)[1]
        if result is None:
            raise NotFound(f"query {query_id!r} has no result", field="query_id")
        return result
