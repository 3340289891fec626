"""A model's enrichments: their configuration (one document per model, beside its counters), in
sagewatch's shape and in Arthur's (GET/PATCH /api/v3/models/{id}/enrichments).

The features themselves live in their own modules (anomaly scoring at ingest, hotspots, explanations);
each asks here whether it is on and how it is set.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sagewatch.enrichments import ENRICHMENTS, EnrichmentsConfig, Status, apply_changes, arthur_view
from sagewatch.errors import Forbidden, InvalidInput, NotFound
from sagewatch.metrics import anomaly
from sagewatch.schema import Model
from sagewatch.stores.ingestion import IngestionLedger
from sagewatch.stores.models import ModelStore

CONFIG_SK = "ENRICHMENTS"


class Enrichments:
    """Reads and writes each model's `EnrichmentsConfig`."""

    def __init__(
        self,
        models: ModelStore,
        ledger: IngestionLedger,
        endpoint: Callable[[str], dict[str, Any]] | None = None,
    ) -> None:
        """`endpoint` describes a SageMaker endpoint sagewatch may call (Forbidden when its owner did
        not tag it, NotFound when there is none): explainability is checked against it when set."""
        self.models, self.ledger, self.endpoint = models, ledger, endpoint

    def config(self, model: Model | str) -> EnrichmentsConfig:
        """The model's enrichments as configured (the defaults when never configured)."""
        model_id = model.id if isinstance(model, Model) else self.models.get(model).id
        stored = self.ledger.state(model_id, CONFIG_SK).get("config")
        return EnrichmentsConfig.model_validate(json.loads(stored)) if stored else EnrichmentsConfig()

    def save(self, model: Model, config: EnrichmentsConfig) -> EnrichmentsConfig:
        """Store the model's enrichments configuration whole."""
        self.ledger.set_state(model.id, CONFIG_SK, config=config.model_dump_json())
        return config

    # -- Arthur's shape ------------------------------------------------------------------------

    def view(self, model_id: str) -> dict[str, dict[str, Any]]:
        """Every enrichment: enabled, status (Arthur's EnrichmentStatus) and config."""
        model = self.models.get(model_id)
        return arthur_view(self.config(model), self._statuses(model), _endpoint(model))

    def view_one(self, model_id: str, enrichment: str) -> dict[str, Any]:
        """One enrichment's enabled, status and config."""
        if enrichment not in ENRICHMENTS:
            raise NotFound(
                f"no enrichment {enrichment!r}: one of {', '.join(ENRICHMENTS)}", field="enrichment"
            )
        return self.view(model_id)[enrichment]

    def update(self, model_id: str, changes: Any, uploaded_files: bool = False) -> dict[str, dict[str, Any]]:
        """Apply {enrichment: {"enabled"?, "config"?}} (400 naming the field for what cannot be
        honoured); returns every enrichment as GET shows it."""
        model = self.models.get_active(model_id)
        config = apply_changes(self.config(model), changes, uploaded_files, _endpoint(model))
        if config.explainability.enabled and "explainability" in changes:
            self._check_endpoint(config, _endpoint(model))
        self.save(model, config)
        return arthur_view(config, self._statuses(model), _endpoint(model))

    def _check_endpoint(self, config: EnrichmentsConfig, model_endpoint: str | None) -> None:
        """Refuse an explainability endpoint sagewatch could not call: missing, untagged, or without
        the variant named (the error names the setting, so a typo surfaces now, not at the first run)."""
        if self.endpoint is None:
            return
        name = config.explainability.endpoint_name or model_endpoint or ""
        try:
            described = self.endpoint(name)
        except (Forbidden, NotFound) as error:
            raise type(error)(error.message, field="explainability.config.endpoint_name") from None
        variants = [v["variant"] for v in described["variants"]]
        variant = config.explainability.variant
        if variant is not None and variant not in variants:
            raise InvalidInput(
                f"endpoint {name!r} has no variant {variant!r}: one of {', '.join(variants)}",
                field="explainability.config.variant",
            )

    def _statuses(self, model: Model) -> dict[str, Status]:
        """Disabled when off. Anomaly detection is Pending until the reference has enough rows to fit
        on, Training until its detector is fitted (when the set is closed, or at the next ingest),
        then Ready."""
        config = self.config(model)
        reference_rows = self.ledger.counts(model.id)["total"].get("reference_ingested", 0)
        fitted = bool(self.ledger.state(model.id, anomaly.LEDGER_STATE))
        anomaly_status: Status = (
            "Disabled"
            if not config.anomaly_detection.enabled
            else "Pending"
            if reference_rows < anomaly.MIN_REFERENCE_ROWS
            else "Ready"
            if fitted
            else "Training"
        )
        return {
            "anomaly_detection": anomaly_status,
            "explainability": "Ready" if config.explainability.enabled else "Disabled",
            "hotspots": "Ready" if config.hotspots.enabled else "Disabled",
        }


def _endpoint(model: Model) -> str | None:
    return model.sagemaker.endpoint_name if model.sagemaker else None
