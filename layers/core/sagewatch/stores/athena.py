"""AthenaStore: SQL over the lake's Glue tables in the stack's workgroup: start, poll, read results.

The workgroup (infra/storage.py) enforces its results location and encryption, so a query names
neither. Results are read with GetQueryResults, page after page (1,000 rows each), and typed from
the result's column metadata into a pyarrow table: what sagewatch.metrics.sql turns into the API's
rows. A query's text carries a tag (`tag`: JSON, compressed, base64) that names what it answers, so
a later poll of its id (another Lambda invocation) knows how to read it without any stored state.
Glue or Athena refusing what sagewatch asks of them (a table, a query's text) is SqlUnavailable:
the caller runs the query in the Lambda instead.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from botocore.exceptions import ClientError

from sagewatch import aws
from sagewatch.errors import Conflict, InvalidInput, NotFound, SagewatchError
from sagewatch.metrics.sql import SqlTables
from sagewatch.schema import Model
from sagewatch.settings import Settings
from sagewatch.stores.catalog import CatalogStore, queryable
from sagewatch.stores.dynamo import error_code

# The environment variable naming the Athena workgroup (set by the storage stack on every function).
WORKGROUP_ENV = "SAGEWATCH_ATHENA_WORKGROUP"
State = Literal["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]
FINISHED = ("SUCCEEDED", "FAILED", "CANCELLED")
USER_ERROR = 2  # AthenaError.ErrorCategory of a query Athena refuses as written (1: system, 3: other)
# A tag's JSON is at most this long: Athena keeps at most 262,144 bytes of a query's text, and a tag
# compresses its JSON, so a few times that leaves room for what zlib saves.
MAX_TAG_BYTES = 4 * 2**20
# `sagewatch:z:` tags are zlib-compressed (a request's filter values shrink to a fraction)
_TAG = re.compile(r"/\* sagewatch:(z:)?([A-Za-z0-9+/=]+) \*/\s*$")
# Athena's result types (ResultSetMetadata.ColumnInfo.Type) as Arrow types; others stay text.
_TYPES: dict[str, pa.DataType] = {
    "boolean": pa.bool_(),
    "tinyint": pa.int64(),
    "smallint": pa.int64(),
    "integer": pa.int64(),
    "bigint": pa.int64(),
    "float": pa.float64(),
    "real": pa.float64(),
    "double": pa.float64(),
    "decimal": pa.float64(),
    "date": pa.date32(),
}


@dataclass(frozen=True)
class Execution:
    """A query's state in Athena: its id, state, the reason it failed, its text."""

    query_id: str
    state: State
    reason: str | None = None
    sql: str = ""
    category: int | None = None  # Athena's ErrorCategory: 1 system, 2 user (the query), 3 other

    @property
    def done(self) -> bool:
        """Whether the query has finished (succeeded, failed or was cancelled)."""
        return self.state in FINISHED


def tag(sql: str, what: Mapping[str, Any]) -> str:
    """The SQL with `what` (JSON, zlib, base64) appended as a trailing comment: read back by `tagged`."""
    packed = zlib.compress(json.dumps(what, separators=(",", ":")).encode(), 9)
    return f"{sql}\n/* sagewatch:z:{base64.b64encode(packed).decode()} */"


def tagged(sql: str) -> dict[str, Any] | None:
    """What a query's text was tagged with, or None (not a sagewatch query). A tag is at most what
    Athena keeps of a query's text, so one that inflates past MAX_TAG_BYTES was not written here:
    ValueError, as for any tag that does not read back (never a few hundred MB inflated)."""
    found = _TAG.search(sql)
    if found is None:
        return None
    payload = base64.b64decode(found.group(2))
    if found.group(1):
        inflating = zlib.decompressobj()
        payload = inflating.decompress(payload, MAX_TAG_BYTES)
        if inflating.unconsumed_tail:
            raise ValueError(f"the query's tag inflates past {MAX_TAG_BYTES:,} bytes")
    return json.loads(payload)


class SqlUnavailable(SagewatchError):
    """Glue or Athena refused what a query needs (its tables, its text): the caller runs the query
    in the Lambda instead (the message says what was refused)."""


class AthenaStore:
    """Queries in one workgroup. `sleep`/`clock`: time, replaceable in tests."""

    dialect: Literal["trino"] = "trino"

    def __init__(
        self,
        workgroup: str,
        client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.workgroup = workgroup
        self._client = client
        self.sleep, self.clock = sleep, clock

    @classmethod
    def from_settings(cls, environ: Mapping[str, str] | None = None) -> AthenaStore | None:
        """The stack's workgroup, or None where none is configured (local mode, tests)."""
        workgroup = (os.environ if environ is None else environ).get(WORKGROUP_ENV)
        return cls(workgroup) if workgroup else None

    @property
    def client(self) -> Any:
        return self._client or aws.client("athena")

    def start(self, sql: str) -> str:
        """Start a query; its execution id. SqlUnavailable when Athena refuses the request (its
        InvalidRequestException: a text past its limits, say)."""
        try:
            found = self.client.start_query_execution(QueryString=sql, WorkGroup=self.workgroup)
        except ClientError as error:
            if error_code(error) != "InvalidRequestException":
                raise
            raise SqlUnavailable(f"Athena refused to start the query: {error}") from None
        return found["QueryExecutionId"]

    def execution(self, query_id: str) -> Execution:
        """A query's state; NotFound for an id Athena does not know, or of another workgroup."""
        try:
            found = self.client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        except ClientError as error:
            if error_code(error) in ("InvalidRequestException", "ResourceNotFoundException"):
                raise NotFound(f"no query {query_id!r}", field="query_id") from None
            raise
        if found.get("WorkGroup", self.workgroup) != self.workgroup:
            raise NotFound(f"no query {query_id!r}", field="query_id")
        status = found.get("Status", {})
        error = status.get("AthenaError", {})
        return Execution(
            query_id=query_id,
            state=status.get("State", "QUEUED"),
            reason=status.get("StateChangeReason") or error.get("ErrorMessage"),
            sql=found.get("Query", ""),
            category=error.get("ErrorCategory"),
        )

    def wait(self, query_id: str, seconds: float) -> Execution:
        """Poll a query until it finishes or `seconds` pass (0.2 s, doubling to 2 s between polls)."""
        deadline = self.clock() + seconds
        pause = 0.2
        while True:
            found = self.execution(query_id)
            left = deadline - self.clock()
            if found.done or left <= 0:
                return found
            self.sleep(min(pause, left))
            pause = min(pause * 2, 2.0)

    def results(self, query_id: str) -> pa.Table:
        """A finished query's rows, typed by Athena's column metadata (timestamps as UTC times;
        arrays, maps and rows as their text)."""
        paginator = self.client.get_paginator("get_query_results")
        names: list[str] = []
        types: list[str] = []
        columns: list[list[str | None]] = []
        first = True
        for page in paginator.paginate(QueryExecutionId=query_id, PaginationConfig={"PageSize": 1000}):
            result = page["ResultSet"]
            if first:
                info = result.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                names = [c["Name"] for c in info]
                types = [c["Type"].lower() for c in info]
                columns = [[] for _ in names]
            rows = result.get("Rows", [])
            if first and rows and [d.get("VarCharValue") for d in rows[0]["Data"]] == names:
                rows = rows[1:]  # a SELECT's first row is its header
            first = False
            for row in rows:
                for index, datum in enumerate(row["Data"]):
                    columns[index].append(datum.get("VarCharValue"))
        arrays = [_typed(values, kind) for values, kind in zip(columns, types, strict=True)]
        return pa.table(dict(zip(names, arrays, strict=True))) if names else pa.table({})

    def stop(self, query_id: str) -> None:
        """Cancel a running query (a caller that will not read it)."""
        self.client.stop_query_execution(QueryExecutionId=query_id)


def _typed(values: list[str | None], kind: str) -> pa.Array:
    """One result column from Athena's text, as the Arrow type of its Athena type."""
    text = pa.array(values, pa.string())
    base = kind.split("(", 1)[0]
    if base in _TYPES:
        if base == "boolean":
            return pc.equal(pc.utf8_lower(text), "true")
        if base in ("double", "float", "real", "decimal"):
            # Athena writes non-finite doubles as NaN, Infinity, -Infinity
            text = pc.replace_substring_regex(text, "^(-?)Infinity$", r"\1inf")
        return text.cast(_TYPES[base])
    if base.startswith("timestamp"):
        # '2026-11-25 10:00:00.123' (UTC: the lake's times are UTC), or with ' UTC' for a time zone
        return _timestamps(pc.replace_substring_regex(text, r" (UTC|Z)$", ""))
    return text


def _timestamps(text: pa.Array) -> pa.Array:
    """Athena's timestamp text ('YYYY-MM-DD HH:MM:SS[.fff]') as UTC microseconds."""
    iso = pc.replace_substring(text, " ", "T", max_replacements=1)
    return iso.cast(pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))


class QueryFailed(SagewatchError):
    """Athena could not run a query for reasons of its own (HTTP 502): the message says which."""

    status = 502


def failure(execution: Execution) -> SagewatchError:
    """The error a failed or cancelled query answers with: a query Athena refused as the user's
    (ErrorCategory 2) is a 400, a cancelled one a 409, any other failure a 502, each with Athena's reason."""
    reason = execution.reason or "no reason given"
    if execution.state == "CANCELLED":
        return Conflict(f"query {execution.query_id} was cancelled: {reason}", field="query_id")
    if execution.category == USER_ERROR:
        return InvalidInput(f"Athena refused the query: {reason}", field="query")
    return QueryFailed(f"Athena could not run query {execution.query_id}: {reason}")


class AthenaEngine:
    """The SQL engine of a deployed stack: Athena over each model's Glue tables (stores/catalog.py),
    which are brought to the model's current schema before its first query."""

    dialect: Literal["trino"] = "trino"

    def __init__(self, athena: AthenaStore, catalog: CatalogStore) -> None:
        self.athena, self.catalog = athena, catalog

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> AthenaEngine | None:
        """The stack's engine, or None without a workgroup and a Glue database (local mode, tests)."""
        athena, catalog = AthenaStore.from_settings(), CatalogStore.from_settings(settings)
        return cls(athena, catalog) if athena is not None and catalog is not None else None

    def tables(self, model: Model, check: bool = True) -> SqlTables:
        """The model's relations (with `check`, its tables made current first: SqlUnavailable when
        Glue refuses); rows are placed by the file they come from ("$path"), as the lake lists them."""
        try:
            if check and not self.catalog.current(model):
                self.catalog.put(model)
        except ClientError as error:
            raise SqlUnavailable(f"Glue refused the model's tables: {error}") from None
        return SqlTables(**self.catalog.relations(model.id), place=("$path",))

    def queryable(self, model: Model) -> bool:
        """Whether the model can have tables (stores/catalog.py: no attribute named `date`)."""
        return queryable(model)

    def start(self, sql: str, model: Model, first: date | None, last: date | None) -> str:
        """Start the query (its days are in its SQL: Athena prunes the partitions itself)."""
        return self.athena.start(sql)

    def execution(self, query_id: str) -> Execution:
        """The query's state."""
        return self.athena.execution(query_id)

    def wait(self, query_id: str, seconds: float) -> Execution:
        """The query's state once finished, or after `seconds`."""
        return self.athena.wait(query_id, seconds)

    def results(self, query_id: str) -> pa.Table:
        """A succeeded query's result."""
        return self.athena.results(query_id)
