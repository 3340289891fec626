"""A model's variants: listed with their traffic and role, given a role, and compared."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field

from sagewatch.container import variants
from sagewatch.services.variants import VariantRole

router = Router()


class Variant(BaseModel):
    """A variant of the model and its traffic."""

    variant: str
    role: VariantRole | None = None
    inferences: int
    share: float | None = Field(description="its inferences over all the model's (counted at ingestion)")
    first_inference: str | None = None
    latest_inference: str | None = None


class Variants(BaseModel):
    """The model's variants."""

    data: list[Variant]


class RoleChange(BaseModel):
    """The role to give a variant."""

    model_config = ConfigDict(extra="forbid")

    role: VariantRole


class CompareRequest(BaseModel):
    """Which variants, over which window (default: all the rows)."""

    model_config = ConfigDict(extra="forbid")

    challenger: str = Field(min_length=1)
    champion: str | None = Field(
        default=None, min_length=1, description="default: the variant whose role is champion"
    )
    start_time: datetime | None = None
    end_time: datetime | None = None


class MetricComparison(BaseModel):
    """One metric of both variants; difference = challenger - champion."""

    metric: str
    champion: float | None
    challenger: float | None
    difference: float | None
    interval: list[float | None] = Field(description="95% bootstrap interval of the difference")
    higher_is_better: bool
    test: str | None = None
    p_value: float | None = None


class Comparison(BaseModel):
    """Is the challenger better? See docs/variants.md for the statistics."""

    champion: str
    challenger: str
    paired: bool = Field(description="the same requests reached both (matched by partner_inference_id)")
    champion_labelled: int
    challenger_labelled: int
    pairs: int
    metrics: list[MetricComparison]
    verdict: str
    reason: str


@router.get(
    "/models/<model_id>/variants",
    summary="The model's variants: traffic share, first and latest inference, role",
    tags=["variants"],
)
def list_variants(model_id: str) -> Variants:
    return Variants(data=[Variant(**v) for v in variants().list(model_id)])


@router.put(
    "/models/<model_id>/variants/<variant>",
    summary="Give a variant its role (champion, challenger, shadow)",
    tags=["variants"],
)
def set_role(model_id: str, variant: str, change: Annotated[RoleChange, Body()]) -> Variant:
    return Variant(**variants().set_role(model_id, variant, change.role))


@router.post(
    "/models/<model_id>/variants/compare",
    summary="Is the challenger better? Both variants' performance compared",
    tags=["variants"],
)
def compare_variants(model_id: str, request: Annotated[CompareRequest, Body()]) -> Comparison:
    answer: dict[str, Any] = variants().compare(
        model_id, request.challenger, request.champion, request.start_time, request.end_time
    )
    return Comparison(**answer)
