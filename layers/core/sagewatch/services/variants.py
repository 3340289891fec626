"""A model's variants (SageMaker production or shadow variants, Deepchecks versions): listed with their
traffic and the role a user gives them, and compared (is the challenger better?).

Variants appear by themselves: every variant a capture file or a sample names is counted by the
ledger. A role (champion, challenger, shadow) is the user's to set; with one variant and no role set,
that variant is the champion.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc

from sagewatch.errors import InvalidInput, NotFound
from sagewatch.metrics.compare import compare
from sagewatch.metrics.query import Loader
from sagewatch.schema import GROUND_TRUTH_STAGES, Model, Stage
from sagewatch.stores.ingestion import IngestionLedger
from sagewatch.stores.models import ModelStore

VariantRole = Literal["champion", "challenger", "shadow"]


class Variants:
    """Variants of every model: their traffic, roles and comparisons."""

    def __init__(self, models: ModelStore, ledger: IngestionLedger, loader_for: Any) -> None:
        self.models, self.ledger = models, ledger
        self.loader_for: Any = loader_for  # Callable[[Model], Loader]

    def list(self, model_id: str) -> list[dict[str, Any]]:
        """Each variant: its role, inferences, share of the model's traffic, first and latest inference."""
        model = self.models.get(model_id)
        counted = self.ledger.counts(model.id)["by_variant"]
        roles = self.ledger.variant_roles(model.id)
        total = sum(v.get("inferences_ingested", 0) for v in counted.values())
        names = sorted(set(counted) | set(roles))
        return [
            {
                "variant": name,
                "role": roles.get(name) or ("champion" if len(names) == 1 else None),
                "inferences": counted.get(name, {}).get("inferences_ingested", 0),
                "share": counted.get(name, {}).get("inferences_ingested", 0) / total if total else None,
                "first_inference": counted.get(name, {}).get("earliest_inferences_timestamp"),
                "latest_inference": counted.get(name, {}).get("latest_inferences_timestamp"),
            }
            for name in names
        ]

    def set_role(self, model_id: str, variant: str, role: str) -> dict[str, Any]:
        """Give a variant of the model a role; a model has one champion, so another loses it."""
        model = self.models.get_active(model_id)
        variant = unquote(variant)  # a path segment: "blue%20green" names the variant "blue green"
        known = {v["variant"] for v in self.list(model.id)}
        if variant not in known:
            raise NotFound(f"model {model.id} has no variant {variant!r} (yet)", field="variant")
        if role == "champion":
            for other, current in self.ledger.variant_roles(model.id).items():
                if current == "champion" and other != variant:
                    self.ledger.set_variant_role(model.id, other, "challenger")
        self.ledger.set_variant_role(model.id, variant, role)
        return next(v for v in self.list(model.id) if v["variant"] == variant)

    def compare(
        self,
        model_id: str,
        challenger: str,
        champion: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> dict[str, Any]:
        """Both variants' performance on their labelled rows of [start, end), compared."""
        model = self.models.get(model_id)
        listed = {v["variant"]: v for v in self.list(model.id)}
        champion = champion or next((n for n, v in listed.items() if v["role"] == "champion"), None)
        for field, name in (("challenger", challenger), ("champion", champion)):
            if name is None:
                raise InvalidInput("name the champion, or give a variant the role champion", field=field)
            if name not in listed:
                raise NotFound(f"model {model.id} has no variant {name!r}", field=field)
        if champion == challenger:
            raise InvalidInput(
                f"{challenger} is the champion: name another challenger, or another champion",
                field="challenger",
            )
        if start is not None and end is not None and end <= start:
            raise InvalidInput("end_time must be after start_time", field="end_time")
        rows = self._labelled_rows(model, self.loader_for(model), start, end)
        variant = rows.column("variant")
        sides = [rows.filter(pc.fill_null(pc.equal(variant, name), False)) for name in (champion, challenger)]
        return compare(model, sides[0], sides[1], champion, challenger).as_dict()

    @staticmethod
    def _labelled_rows(model: Model, load: Loader, start: datetime | None, end: datetime | None) -> pa.Table:
        columns = [a.name for a in model.by_stage(Stage.PREDICTED_VALUE, *GROUND_TRUTH_STAGES)]
        wanted = ["partner_inference_id", "variant", "inference_timestamp", *columns]
        tables = load("inference", wanted, start.date() if start else None, end.date() if end else None, True)
        if not tables:
            raise InvalidInput("no inferences in this window to compare", field="start_time")
        rows = pa.concat_tables([t.select(wanted) for t in tables], promote_options="default")
        times = rows.column("inference_timestamp")
        keep = pc.is_valid(times)
        if start is not None:
            keep = pc.and_(keep, pc.greater_equal(times, pa.scalar(start, times.type)))
        if end is not None:
            keep = pc.and_(keep, pc.less(times, pa.scalar(end, times.type)))
        return rows.filter(keep)
