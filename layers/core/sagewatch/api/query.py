"""The query and data_drift APIs (Arthur's shapes), over the model's lake.

A query (or a data_drift target) whose window is past what the API's Lambda holds runs as SQL
(Athena; DuckDB locally: services/monitoring.SQL_ROWS). One that has not finished within SQL_WAIT_SECONDS answers 202 with
its query id and the URL to poll: GET answers 202 while it runs, 200 with the rows once done, and
Athena's reason as a 400 (the query), 409 (cancelled) or 502 (Athena) when it failed.
"""

from __future__ import annotations

import posixpath
from typing import Annotated, Any
from urllib.parse import quote

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel

from sagewatch.api import ERROR_CONTENT
from sagewatch.container import monitoring
from sagewatch.metrics.drift import DriftQuery
from sagewatch.metrics.query import Query
from sagewatch.services.monitoring import SQL_RESULT_ROWS, SQL_ROWS, SQL_WAIT_SECONDS, Pending

router = Router()


class QueryResult(BaseModel):
    """A query's answer: one object per result row."""

    query_result: list[dict[str, Any]]


class QueryRunning(BaseModel):
    """A query still running: GET `poll` until it answers 200 with the rows."""

    query_id: str
    status: str
    poll: str
    message: str


_ANSWERS: dict[int, dict[str, Any]] = {
    200: {"description": "The rows", "content": {"application/json": {"model": QueryResult}}},
    202: {
        "description": (
            f"Still running after {SQL_WAIT_SECONDS:.0f} s: GET `poll` (or the Location header, relative "
            "to the request's URL) until it answers 200"
        ),
        "content": {"application/json": {"model": QueryRunning}},
    },
    409: {
        "description": (
            "the query was cancelled in Athena, or (a poll) the model's schema changed since it "
            "started, or an earlier version of sagewatch started it: run it again"
        ),
        "content": ERROR_CONTENT,
    },
    413: {
        "description": (
            f"the result is past what one answer holds ({SQL_RESULT_ROWS:,} result rows, or 6 MB), or "
            "(a POST) the request body past 6 MB"
        ),
        "content": ERROR_CONTENT,
    },
    502: {"description": "Athena could not run the query: its reason", "content": ERROR_CONTENT},
}


def poll_paths(path: str, model_id: str, query_id: str) -> tuple[str, str]:
    """A running query's poll path, from the path of the request that answers 202 (so any prefix
    the API routes under stays), and the same as a reference relative to that request's URL (the
    Location header: a client resolving it against the URL it called keeps any stage or base path
    in front of the API, which the Lambda's event does not always show)."""
    head, found, _ = path.rpartition("/inferences/query")
    if not found:  # not a query route's path: the API's own
        head = f"/api/v3/models/{quote(model_id, safe='')}"
    poll = f"{head}/inferences/query/{quote(query_id, safe='')}"
    relative = posixpath.relpath(poll, posixpath.dirname(path)) if found else poll
    return poll, relative


def _answer(model_id: str, found: list[dict[str, Any]] | Pending) -> Response[QueryResult | QueryRunning]:
    if isinstance(found, Pending):
        poll, location = poll_paths(router.current_event.path, model_id, found.query_id)
        running = QueryRunning(
            query_id=found.query_id,
            status=found.state,
            poll=poll,
            message="the window is past what one request holds: the query runs in Athena; GET poll for its rows",
        )
        return Response(202, content_types.APPLICATION_JSON, running, headers={"Location": location})
    return Response(200, content_types.APPLICATION_JSON, QueryResult(query_result=found))


@router.post(
    "/models/<model_id>/inferences/query",
    summary="Query inferences, reference or ground truth: functions, filters, group_by, time series",
    description=(
        f"A window of more than {SQL_ROWS:,} rows (counted at ingestion) runs in Athena with the same "
        f"results; one still running after {SQL_WAIT_SECONDS:.0f} s answers 202 with a query id to poll."
    ),
    tags=["metrics"],
    responses=_ANSWERS,
)
def query(model_id: str, body: Annotated[Query, Body()]) -> Response[QueryResult | QueryRunning]:
    return _answer(model_id, monitoring().query(model_id, body))


@router.get(
    "/models/<model_id>/inferences/query/<query_id>",
    summary="A query left running (202): 202 while it runs, 200 with its rows once done",
    description="A failed query answers with Athena's reason: 400 (the query), 409 (cancelled), 502 (Athena).",
    tags=["metrics"],
    responses=_ANSWERS,
)
def query_result(model_id: str, query_id: str) -> Response[QueryResult | QueryRunning]:
    return _answer(model_id, monitoring().query_result(model_id, query_id))


@router.post(
    "/models/<model_id>/inferences/query/data_drift",
    summary="Data drift per property between a base (reference) and target windows",
    description=(
        f"A target window of more than {SQL_ROWS:,} rows is counted per bin in Athena (the bins fitted "
        f"on the base as always); one still running after {SQL_WAIT_SECONDS:.0f} s answers 202 with a "
        "query id to poll."
    ),
    tags=["metrics"],
    responses=_ANSWERS,
)
def data_drift(model_id: str, body: Annotated[DriftQuery, Body()]) -> Response[QueryResult | QueryRunning]:
    return _answer(model_id, monitoring().drift(model_id, body))
