"""Hotspots: where a model does markedly worse than overall, searched on demand, listed, and in
Arthur's shape (the arthurai SDK's find_hotspots).

The method and its stopping rules (sagewatch.metrics.hotspots): a regression tree grown on each
labelled row's error (classification: wrong class; regression: absolute error) over half the rows,
depth at most 4, each leaf at least max(25 rows, 1% of them), each split lowering the sum of squares
by at least 0.1% of the root's; a node is a hotspot when its error is at least 0.05 above the overall
error rate (regression: its MAE 25% above the overall) and a one-sided z-test on the other half finds
it worse than the rest at 0.01, Bonferroni-corrected over the nodes. Hotspots are disjoint, ranked
by excess errors (rows x (error - overall error)).
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel

from sagewatch.container import hotspots
from sagewatch.services.hotspots import HotspotRequest, HotspotRun, HotspotRunPage

router = Router()
TAGS = ["hotspots"]
METHOD = (__doc__ or "").split("\n\n", 1)[1].strip()


class HotspotsFound(BaseModel):
    """Arthur's answer to find_hotspots: the hotspots, ranked (rules, gt_to_info, accuracy,
    precision, recall, f1, impurity, n_samples, and sagewatch's support, overall, rank)."""

    data: list[dict[str, Any]]


@router.post(
    "/models/<model_id>/hotspots",
    status_code=201,
    summary="Search a window, batch or day for hotspots; the run is stored",
    description=METHOD,
    tags=TAGS,
)
def create_run(model_id: str, request: Annotated[HotspotRequest, Body()]) -> HotspotRun:
    return hotspots().run(model_id, request)


@router.get("/models/<model_id>/hotspots", summary="The model's hotspot runs, newest first", tags=TAGS)
def list_runs(
    model_id: str,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> HotspotRunPage:
    return hotspots().runs_page(model_id, page, page_size)


@router.get("/models/<model_id>/hotspots/<run_id>", summary="One hotspot run", tags=TAGS)
def get_run(model_id: str, run_id: str) -> HotspotRun:
    return hotspots().get(model_id, run_id)


@router.get(
    "/models/<model_id>/enrichments/hotspots/find",
    summary="Arthur's find_hotspots: hotspots of a batch, a day or the reference set whose metric is "
    "below the threshold",
    description=METHOD,
    tags=TAGS,
)
def find(
    model_id: str,
    metric: Annotated[str | None, Query(description="accuracy, precision, recall or f1")] = None,
    threshold: Annotated[float | None, Query()] = None,
    batch_id: Annotated[str | None, Query()] = None,
    date: Annotated[str | None, Query(description="a day, YYYY-MM-DD (UTC)")] = None,
    ref_set_id: Annotated[str | None, Query(description="the reference set (a model has one)")] = None,
) -> HotspotsFound:
    return HotspotsFound(**hotspots().find(model_id, metric, threshold, batch_id, date, ref_set_id))
