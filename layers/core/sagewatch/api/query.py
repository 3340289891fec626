"""The query and data_drift APIs (Arthur's shapes), over the model's lake."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel

from sagewatch.container import monitoring
from sagewatch.metrics.drift import DriftQuery
from sagewatch.metrics.query import Query

router = Router()


class QueryResult(BaseModel):
    """A query's answer: one object per result row."""

    query_result: list[dict[str, Any]]


@router.post(
    "/models/<model_id>/inferences/query",
    summary="Query inferences, reference or ground truth: functions, filters, group_by, time series",
    tags=["metrics"],
)
def query(model_id: str, body: Annotated[Query, Body()]) -> QueryResult:
    return QueryResult(query_result=monitoring().query(model_id, body))


@router.post(
    "/models/<model_id>/inferences/query/data_drift",
    summary="Data drift per property between a base (reference) and target windows",
    tags=["metrics"],
)
def data_drift(model_id: str, body: Annotated[DriftQuery, Body()]) -> QueryResult:
    return QueryResult(query_result=monitoring().drift(model_id, body))
