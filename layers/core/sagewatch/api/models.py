"""/api/v3/models: the model registry, in Arthur v3's shapes."""

from __future__ import annotations

import math
from typing import Annotated, Literal
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel

from sagewatch.schema import Model, ModelSpec
from sagewatch.stores import model_store

router = Router()

IdType = Literal["id", "partner_model_id"]


class ModelPage(BaseModel):
    """One page of models (Arthur's paginated shape)."""

    data: list[Model]
    page: int
    page_size: int
    total_pages: int
    total_count: int


def find_model(model_id: str, id_type: IdType = "id") -> Model:
    """A model by its id or, with id_type=partner_model_id, by the caller's own id for it."""
    model_id = unquote(model_id)
    if id_type == "partner_model_id":
        return model_store().get_by_partner_id(model_id)
    return model_store().get(model_id)


@router.post("/models", status_code=201, summary="Register a model", tags=["models"])
def create_model(spec: Annotated[ModelSpec, Body()]) -> Model:
    return model_store().create(spec)


@router.get("/models", summary="List models, paged", tags=["models"])
def list_models(
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 20,
    include_archived: Annotated[bool, Query()] = False,
) -> ModelPage:
    models = model_store().list(include_archived=include_archived)
    start = (page - 1) * page_size
    return ModelPage(
        data=models[start : start + page_size],
        page=page,
        page_size=page_size,
        total_pages=max(1, math.ceil(len(models) / page_size)),
        total_count=len(models),
    )


@router.get("/models/<model_id>", summary="Get a model by id or partner_model_id", tags=["models"])
def get_model(model_id: str, id_type: Annotated[IdType, Query()] = "id") -> Model:
    return find_model(model_id, id_type)


@router.put("/models/<model_id>", summary="Replace a model's schema and settings", tags=["models"])
def replace_model(
    model_id: str, spec: Annotated[ModelSpec, Body()], id_type: Annotated[IdType, Query()] = "id"
) -> Model:
    return model_store().replace(find_model(model_id, id_type).id, spec)


@router.delete("/models/<model_id>", status_code=204, summary="Archive a model", tags=["models"])
def archive_model(model_id: str, id_type: Annotated[IdType, Query()] = "id") -> None:
    model_store().archive(find_model(model_id, id_type).id)
