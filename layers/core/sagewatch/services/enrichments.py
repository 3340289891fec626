"""A model's enrichments: their configuration (one document per model, beside its counters).

The features themselves live in their own modules (anomaly scoring at ingest, hotspots, explanations);
each asks here whether it is on and how it is set.
"""

from __future__ import annotations

import json

from sagewatch.enrichments import EnrichmentsConfig
from sagewatch.schema import Model
from sagewatch.stores.ingestion import IngestionLedger
from sagewatch.stores.models import ModelStore

CONFIG_SK = "ENRICHMENTS"


class Enrichments:
    """Reads and writes each model's `EnrichmentsConfig`."""

    def __init__(self, models: ModelStore, ledger: IngestionLedger) -> None:
        self.models, self.ledger = models, ledger

    def config(self, model: Model | str) -> EnrichmentsConfig:
        """The model's enrichments as configured (the defaults when never configured)."""
        model_id = model.id if isinstance(model, Model) else self.models.get(model).id
        stored = self.ledger.state(model_id, CONFIG_SK).get("config")
        return EnrichmentsConfig.model_validate(json.loads(stored)) if stored else EnrichmentsConfig()

    def save(self, model: Model, config: EnrichmentsConfig) -> EnrichmentsConfig:
        """Store the model's enrichments configuration whole."""
        self.ledger.set_state(model.id, CONFIG_SK, config=config.model_dump_json())
        return config
