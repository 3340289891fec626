"""The model registry: models by id or partner_model_id, registered, listed, replaced, archived."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import unquote

from sagewatch.paging import pages
from sagewatch.schema import Model, ModelSpec
from sagewatch.stores.models import ModelStore

IdType = Literal["id", "partner_model_id"]


class Registry:
    """What the /models routes (and the Deepchecks door's models) do with the model store."""

    def __init__(self, models: ModelStore) -> None:
        self.models = models

    def find(self, model_id: str, id_type: IdType = "id") -> Model:
        """A model by its id or, with id_type=partner_model_id, by the caller's own id for it."""
        model_id = unquote(model_id)
        if id_type == "partner_model_id":
            return self.models.get_by_partner_id(model_id)
        return self.models.get(model_id)

    def create(self, spec: ModelSpec) -> Model:
        """Register a model (its schema checked, its partner_model_id unique)."""
        return self.models.create(spec)

    def page(self, page: int, page_size: int, include_archived: bool = False) -> dict[str, Any]:
        """One page of models and Arthur's paging fields."""
        chosen, paging = pages(self.models.list(include_archived=include_archived), page, page_size)
        return {"data": chosen, **paging}

    def replace(self, model_id: str, spec: ModelSpec, id_type: IdType = "id") -> Model:
        """Replace a model's schema and settings."""
        return self.models.replace(self.find(model_id, id_type).id, spec)

    def archive(self, model_id: str, id_type: IdType = "id") -> None:
        """Archive a model: it takes no more data, its history stays readable."""
        self.models.archive(self.find(model_id, id_type).id)
