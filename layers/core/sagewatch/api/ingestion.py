"""Ingestion status: what reached each model, and the files no model claims."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel, Field

from sagewatch.container import ingestor, registry
from sagewatch.services.ingestion import MAX_STATUS_DAYS, STATUS_DAYS
from sagewatch.services.registry import IdType

router = Router()


class Counts(BaseModel):
    """What ingestion counted of one kind of data: rows ingested and rejected, files, latest timestamp."""

    ingested: int = 0
    rejected: int = 0
    files: int = 0
    latest_timestamp: str | None = None


class SourceStatus(BaseModel):
    """Ingestion counts of inferences and of ground truth."""

    inferences: Counts
    ground_truth: Counts


class IngestionStatus(SourceStatus):
    """Counters kept at ingestion (the whole history), and what the lake holds over its latest days
    of inferences once duplicates are resolved (`counted_from` .. `counted_to`)."""

    model_id: str
    counted_from: date | None = Field(
        description="first day (UTC) of inferences that total .. labelled_ratio count"
    )
    counted_to: date | None = Field(
        description="last day (UTC) of inferences that total .. labelled_ratio count"
    )
    total: int = Field(
        description="distinct inferences (partner_inference_id, variant), the first write of each"
    )
    duplicates: int = Field(description="inferences written again under an id already present (ignored)")
    with_ground_truth: int = Field(description="distinct inferences that have ground truth")
    labelled_ratio: float | None = Field(description="with_ground_truth / total")
    by_variant: dict[str, SourceStatus]


def _status(stored: dict[str, Any]) -> SourceStatus:
    def counts(kind: str) -> Counts:
        return Counts(
            ingested=stored.get(f"{kind}_ingested", 0),
            rejected=stored.get(f"{kind}_rejected", 0),
            files=stored.get(f"{kind}_files", 0),
            latest_timestamp=stored.get(f"latest_{kind}_timestamp"),
        )

    return SourceStatus(inferences=counts("inferences"), ground_truth=counts("ground_truth"))


@router.get(
    "/models/<model_id>/inferences/status",
    summary="Ingestion counts of a model: ingested and rejected rows, files, latest inference time",
    tags=["ingestion"],
)
def inference_status(
    model_id: str,
    id_type: Annotated[IdType, Query()] = "id",
    days: Annotated[
        int,
        Query(
            ge=1,
            le=MAX_STATUS_DAYS,
            description="the latest days with inferences that total, duplicates and labelled count",
        ),
    ] = STATUS_DAYS,
) -> IngestionStatus:
    model = registry().find(model_id, id_type)
    read = ingestor().status(model, days)
    stored = read["counters"]
    total = _status(stored["total"])
    return IngestionStatus(
        model_id=model.id,
        inferences=total.inferences,
        ground_truth=total.ground_truth,
        counted_from=read["counted_from"],
        counted_to=read["counted_to"],
        total=read["distinct"],
        duplicates=read["duplicates"],
        with_ground_truth=read["with_ground_truth"],
        labelled_ratio=read["labelled_ratio"],
        by_variant={variant: _status(values) for variant, values in stored["by_variant"].items()},
    )


class UnroutedFile(BaseModel):
    """A file no model claims: its source, kind, endpoint and variant, why it was kept aside, when."""

    source: str
    etag: str
    kind: str
    reason: str
    endpoint: str | None = None
    variant: str | None = None
    seen_at: str


class UnroutedFiles(BaseModel):
    """The files kept aside because no model claims them, newest first."""

    data: list[UnroutedFile]


@router.get(
    "/ingestion/unrouted",
    summary="Files kept aside because no model claims them (unknown endpoint, unexpected key)",
    tags=["ingestion"],
)
def unrouted_files() -> UnroutedFiles:
    return UnroutedFiles(data=[UnroutedFile(**record) for record in ingestor().unrouted()])
