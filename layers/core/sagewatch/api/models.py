"""/api/v3/models: the model registry, in Arthur v3's shapes."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel

from sagewatch.container import registry
from sagewatch.schema import Model, ModelSpec
from sagewatch.services.registry import IdType

router = Router()


class ModelPage(BaseModel):
    """One page of models (Arthur's paginated shape)."""

    data: list[Model]
    page: int
    page_size: int
    total_pages: int
    total_count: int


@router.post("/models", status_code=201, summary="Register a model", tags=["models"])
def create_model(spec: Annotated[ModelSpec, Body()]) -> Model:
    return registry().create(spec)


@router.get("/models", summary="List models, paged", tags=["models"])
def list_models(
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 20,
    include_archived: Annotated[bool, Query()] = False,
) -> ModelPage:
    return ModelPage(**registry().page(page, page_size, include_archived))


@router.get("/models/<model_id>", summary="Get a model by id or partner_model_id", tags=["models"])
def get_model(model_id: str, id_type: Annotated[IdType, Query()] = "id") -> Model:
    return registry().find(model_id, id_type)


@router.put("/models/<model_id>", summary="Replace a model's schema and settings", tags=["models"])
def replace_model(
    model_id: str, spec: Annotated[ModelSpec, Body()], id_type: Annotated[IdType, Query()] = "id"
) -> Model:
    return registry().replace(model_id, spec, id_type)


@router.delete("/models/<model_id>", status_code=204, summary="Archive a model", tags=["models"])
def archive_model(model_id: str, id_type: Annotated[IdType, Query()] = "id") -> None:
    registry().archive(model_id, id_type)
