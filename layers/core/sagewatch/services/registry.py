"""The model registry: models by id or partner_model_id, registered, listed, replaced, archived.

Each model has Glue tables over its lake areas (sagewatch.stores.catalog), typed from its
attributes, for Athena: created with the model and updated with its schema. Archiving keeps them:
an archived model's history stays readable, through Athena as through the API.
"""

from __future__ import annotations

import logging
from typing import Any, Literal
from urllib.parse import unquote

from botocore.exceptions import ClientError

from sagewatch.paging import pages
from sagewatch.schema import Model, ModelSpec
from sagewatch.stores.catalog import CatalogStore
from sagewatch.stores.models import ModelStore

IdType = Literal["id", "partner_model_id"]
logger = logging.getLogger(__name__)


class Registry:
    """What the /models routes (and the Deepchecks door's models) do with the model store.

    `catalog`: the Glue tables kept beside each model (None where there is no Glue database)."""

    def __init__(self, models: ModelStore, catalog: CatalogStore | None = None) -> None:
        self.models = models
        self.catalog = catalog

    def find(self, model_id: str, id_type: IdType = "id") -> Model:
        """A model by its id or, with id_type=partner_model_id, by the caller's own id for it."""
        model_id = unquote(model_id)
        if id_type == "partner_model_id":
            return self.models.get_by_partner_id(model_id)
        return self.models.get(model_id)

    def create(self, spec: ModelSpec) -> Model:
        """Register a model (its schema checked, its partner_model_id unique) and its Glue tables."""
        model = self.models.create(spec)
        self._tables(model)
        return model

    def page(self, page: int, page_size: int, include_archived: bool = False) -> dict[str, Any]:
        """One page of models and Arthur's paging fields."""
        chosen, paging = pages(self.models.list(include_archived=include_archived), page, page_size)
        return {"data": chosen, **paging}

    def replace(self, model_id: str, spec: ModelSpec, id_type: IdType = "id") -> Model:
        """Replace a model's schema and settings; its Glue tables take the new columns."""
        model = self.models.replace(self.find(model_id, id_type).id, spec)
        self._tables(model)
        return model

    def _tables(self, model: Model) -> None:
        """Bring the model's Glue tables to its schema. Glue refusing does not undo the model: the
        first query that needs the tables makes them (stores/athena.AthenaEngine.tables), so it is
        logged, not answered."""
        if self.catalog is None:
            return
        try:
            self.catalog.put(model)
        except ClientError:
            logger.exception("the model's Glue tables were not written", extra={"model_id": model.id})

    def archive(self, model_id: str, id_type: IdType = "id") -> None:
        """Archive a model: it takes no more data, its history (and its Glue tables) stay readable."""
        self.models.archive(self.find(model_id, id_type).id)
