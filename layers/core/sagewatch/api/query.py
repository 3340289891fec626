"""The query and data_drift APIs (Arthur's shapes), over the model's lake."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import pyarrow as pa
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel

from sagewatch.metrics.drift import DriftQuery, run_drift
from sagewatch.metrics.query import Loader, Query, Source, run
from sagewatch.metrics.window import LakeWindow
from sagewatch.schema import Model
from sagewatch.stores import lake_store, model_store

router = Router()


class QueryResult(BaseModel):
    query_result: list[dict[str, Any]]


def lake_loader(model: Model) -> Loader:
    """The lake as the engines' loader: one table per Parquet file of the window."""
    window = LakeWindow(lake_store(), model)

    def load(
        source: Source, columns: list[str], first: date | None, last: date | None, truth: bool
    ) -> list[pa.Table]:
        if source == "reference":
            return window.reference(columns)
        if source == "ground_truth":
            table = window.ground_truth()
            return [table] if table is not None else []
        return window.inferences(columns, first, last, with_ground_truth=truth)

    return load


@router.post(
    "/models/<model_id>/inferences/query",
    summary="Query inferences, reference or ground truth: functions, filters, group_by, time series",
    tags=["metrics"],
)
def query(model_id: str, body: Annotated[Query, Body()]) -> QueryResult:
    model = model_store().get(model_id)
    return QueryResult(query_result=run(body, model, lake_loader(model)))


@router.post(
    "/models/<model_id>/inferences/query/data_drift",
    summary="Data drift per property between a base (reference) and target windows",
    tags=["metrics"],
)
def data_drift(model_id: str, body: Annotated[DriftQuery, Body()]) -> QueryResult:
    model = model_store().get(model_id)
    return QueryResult(query_result=run_drift(body, model, lake_loader(model)))
