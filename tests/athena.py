"""moto's Athena for tests: the stack's workgroup and Glue database, and canned query results set
the way moto documents (its /moto-api/static/athena/query-results endpoint; moto runs no SQL)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pyarrow as pa
import requests

from sagewatch import aws as sagewatch_aws
from sagewatch.local.sql import DuckdbEngine
from sagewatch.stores.athena import tag

WORKGROUP = "sagewatch"
DATABASE = "sagewatch"
RESULTS = "test-athena-results"
# Arrow types of canned columns as Athena names them in ResultSetMetadata.
ATHENA_TYPES = {
    pa.int64(): "bigint",
    pa.float64(): "double",
    pa.bool_(): "boolean",
    pa.string(): "varchar",
}


def create_stack() -> None:
    """The Glue database, the results bucket and the workgroup writing there (as infra/storage.py)."""
    sagewatch_aws.client("glue").create_database(DatabaseInput={"Name": DATABASE})
    sagewatch_aws.client("s3").create_bucket(Bucket=RESULTS)
    sagewatch_aws.client("athena").create_work_group(
        Name=WORKGROUP,
        Configuration={
            "ResultConfiguration": {"OutputLocation": f"s3://{RESULTS}/"},
            "EnforceWorkGroupConfiguration": True,
        },
    )


def athena_text(value: Any) -> str | None:
    """A value as Athena writes it in GetQueryResults."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if hasattr(value, "isoformat"):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return str(value)


def athena_type(data_type: pa.DataType) -> str:
    """The type Athena names in a result's metadata for a column of this Arrow type."""
    if pa.types.is_timestamp(data_type):
        return "timestamp(3)"
    if pa.types.is_integer(data_type):
        return "bigint"
    if pa.types.is_floating(data_type) or pa.types.is_decimal(data_type):
        return "double"
    return ATHENA_TYPES[data_type]


def queue_result(table: pa.Table) -> None:
    """The next query's result is `table` (header row first, as Athena answers a SELECT)."""
    types = [athena_type(f.type) for f in table.schema]
    header = {"Data": [{"VarCharValue": name} for name in table.column_names]}
    rows = [
        {"Data": [{"VarCharValue": t} if (t := athena_text(v)) is not None else {} for v in row.values()]}
        for row in table.to_pylist()
    ]
    info = [
        {"Name": name, "Label": name, "Type": kind, "Nullable": "UNKNOWN"}
        for name, kind in zip(table.column_names, types, strict=True)
    ]
    answer = requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/athena/query-results",
        json={"region": sagewatch_aws.region(), "results": [{"rows": [header, *rows], "column_info": info}]},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text


def keep_running(polls: int) -> None:
    """Queries stay QUEUED, then RUNNING, for `polls` GetQueryExecution calls each (moto's state
    manager: manual progression)."""
    requests.post(
        "http://motoapi.amazonaws.com/moto-api/state-manager/set-transition",
        json={"model_name": "athena::execution", "transition": {"progression": "manual", "times": polls}},
        timeout=10,
    ).raise_for_status()


def finish_immediately() -> None:
    """moto's default again: a query succeeds when first described."""
    requests.post(
        "http://motoapi.amazonaws.com/moto-api/state-manager/unset-transition",
        json={"model_name": "athena::execution"},
        timeout=10,
    ).raise_for_status()


def fail(query_id: str) -> None:
    """Make a query FAILED (moto has no failing queries: its backend's execution is set)."""
    from moto.athena.models import athena_backends

    athena_backends["123456789012"][sagewatch_aws.region()].executions[query_id].status = "FAILED"


def untagged(sql: str) -> str:
    """A query's text without the trailing tag sagewatch appends (stores/athena.tag)."""
    return sql[: sql.rindex("\n/* sagewatch:")]


def replace_text(engine: DuckdbEngine, query_id: str, text: str) -> None:
    """Give a finished local query another text, as a query someone else started in the workgroup
    (or an earlier version of sagewatch) would have: its result is kept."""
    found = engine.execution(query_id)
    engine._done[query_id] = (dataclasses.replace(found, sql=text), engine.results(query_id))


def retag(engine: DuckdbEngine, query_id: str, what: Any) -> None:
    """Give a finished local query the same SQL under another tag."""
    replace_text(engine, query_id, tag(untagged(engine.execution(query_id).sql), what))
