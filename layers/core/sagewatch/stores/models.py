"""ModelStore: registered models in the models table.

Items: the model at (MODEL#<id>, #MODEL) holding its JSON document, and a guard at
(PARTNER#<partner_model_id>, #GUARD) pointing at the model. Both are written in one conditional
transaction, which is what keeps partner_model_id unique under concurrent creates. Archiving a
model removes its guard, so the partner_model_id can be registered again.
"""

from __future__ import annotations

import uuid
import zlib
from datetime import UTC, datetime
from typing import Any

from sagewatch.errors import (
    ConcurrentUpdate,
    Conflict,
    EndpointTaken,
    ModelArchived,
    ModelNotFound,
    PartnerIdTaken,
    TooLarge,
)
from sagewatch.schema import Model, ModelSpec, check_spec
from sagewatch.stores.dynamo import (
    CONDITION_FAILED,
    DynamoStore,
    from_item,
    query_all,
    to_item,
    transaction,
)

MODEL_SK = "#MODEL"
GUARD_SK = "#GUARD"
KIND = "MODEL"
# DynamoDB's item limit is 400 KB; leave room for the key and index attributes.
MAX_DOCUMENT_BYTES = 380_000


def _model_key(model_id: str) -> dict[str, Any]:
    return to_item({"pk": f"MODEL#{model_id}", "sk": MODEL_SK})


def _guard_key(partner_model_id: str) -> dict[str, Any]:
    return to_item({"pk": f"PARTNER#{partner_model_id}", "sk": GUARD_SK})


def _now() -> datetime:
    return datetime.now(UTC)


ANY_VARIANT = "*"


def _claims(model: Model) -> dict[tuple[str, str], Conflict]:
    """Keys only one model may hold, each with the conflict raised when another holds it."""
    claims: dict[tuple[str, str], Conflict] = {
        (f"PARTNER#{model.partner_model_id}", GUARD_SK): PartnerIdTaken(
            f"partner_model_id {model.partner_model_id!r} is already used by another model",
            field="partner_model_id",
        )
    }
    if model.sagemaker is not None:
        endpoint = model.sagemaker.endpoint_name
        for variant in model.sagemaker.variants or [ANY_VARIANT]:
            which = "all variants" if variant == ANY_VARIANT else f"variant {variant!r}"
            claims[(f"ENDPOINT#{endpoint}", f"VARIANT#{variant}")] = EndpointTaken(
                f"endpoint {endpoint!r} ({which}) is already monitored by another model", field="sagemaker"
            )
    return claims


class ModelStore(DynamoStore):
    """Create, read, replace and archive models; the only code that knows the table layout."""

    table = "models"

    def create(self, spec: ModelSpec, model_id: str | None = None) -> Model:
        """Validate and register a model; a Conflict if its partner_model_id or endpoint is taken.

        model_id: an id chosen by the caller (the Deepchecks door gives its model's); else a new UUID.
        """
        spec = check_spec(spec)
        now = _now()
        model = Model(**spec.model_dump(), id=model_id or str(uuid.uuid4()), created_at=now, updated_at=now)
        claims = _claims(model)
        self._transact(
            [{"Put": {**self._model_put(model), "ConditionExpression": "attribute_not_exists(pk)"}}]
            + [self._claim_put(model, key) for key in claims],
            [None, *claims.values()],
        )
        return model

    def find_by_endpoint(self, endpoint_name: str, variant: str | None = None) -> Model | None:
        """The model monitoring this endpoint variant: one registered for the variant, else for all."""
        items = [
            from_item(item)
            for item in query_all(
                self.client,
                TableName=self.table_name,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues=to_item({":pk": f"ENDPOINT#{endpoint_name}"}),
                ConsistentRead=True,
            )
        ]
        by_variant = {item["sk"].removeprefix("VARIANT#"): item["model_id"] for item in items}
        model_id = by_variant.get(variant or ANY_VARIANT) or by_variant.get(ANY_VARIANT)
        return self.get(model_id) if model_id else None

    def get(self, model_id: str) -> Model:
        """A model by id, archived or not; ModelNotFound when there is none."""
        response = self.client.get_item(
            TableName=self.table_name, Key=_model_key(model_id), ConsistentRead=True
        )
        if "Item" not in response:
            raise ModelNotFound(f"no model with id {model_id!r}", field="model_id")
        return _model_of(from_item(response["Item"]))

    def get_active(self, model_id: str) -> Model:
        """The model, refusing an archived one (it accepts no data and no changes)."""
        model = self.get(model_id)
        if model.archived:
            raise ModelArchived(f"model {model_id!r} is archived", field="model_id")
        return model

    def get_by_partner_id(self, partner_model_id: str) -> Model:
        """A model by its partner_model_id; ModelNotFound when none has it."""
        response = self.client.get_item(
            TableName=self.table_name, Key=_guard_key(partner_model_id), ConsistentRead=True
        )
        if "Item" not in response:
            raise ModelNotFound(
                f"no model with partner_model_id {partner_model_id!r}", field="partner_model_id"
            )
        return self.get(from_item(response["Item"])["model_id"])

    def list(self, include_archived: bool = False) -> list[Model]:
        """Every model, oldest first. The index is sparse (models only), so this reads no other items."""
        items = query_all(
            self.client,
            TableName=self.table_name,
            IndexName="by-kind",
            KeyConditionExpression="kind = :kind",
            ExpressionAttributeValues=to_item({":kind": KIND}),
        )
        models = [_model_of(from_item(item)) for item in items]
        return [m for m in models if include_archived or not m.archived]

    def replace(self, model_id: str, spec: ModelSpec) -> Model:
        """Replace a model's spec (PUT); a new partner_model_id or endpoint must be free."""
        current = self.get_active(model_id)
        spec = check_spec(spec)
        model = Model(
            **spec.model_dump(),
            id=current.id,
            created_at=current.created_at,
            updated_at=_now(),
            version=current.version + 1,
        )
        old, new = _claims(current), _claims(model)
        added = [key for key in new if key not in old]
        self._transact(
            [self._versioned_put(model, current.version)]
            + [self._claim_delete(current, key) for key in old if key not in new]
            + [self._claim_put(model, key) for key in added],
            [None] * (1 + len([k for k in old if k not in new])) + [new[key] for key in added],
        )
        return model

    def archive(self, model_id: str) -> Model:
        """Archive (DELETE): the model stays readable, accepts no data, and frees its claims."""
        current = self.get_active(model_id)
        model = current.model_copy(
            update={
                "archived": True,
                "status": "Archived",
                "updated_at": _now(),
                "version": current.version + 1,
            }
        )
        claims = _claims(current)
        self._transact(
            [self._versioned_put(model, current.version)]
            + [self._claim_delete(current, key) for key in claims],
            [None] * (1 + len(claims)),
        )
        return model

    def _transact(self, items: list[dict[str, Any]], conflicts: list[Conflict | None]) -> None:
        """Write items atomically; a failed condition raises that item's conflict (or ConcurrentUpdate)."""
        reasons = transaction(self.client, items)
        if not reasons:
            return
        for reason, conflict in zip(reasons, conflicts, strict=False):
            if reason == CONDITION_FAILED and conflict is not None:
                raise conflict
        raise ConcurrentUpdate("the model changed while this request was applied; read it again and retry")

    def _model_put(self, model: Model) -> dict[str, Any]:
        return {"TableName": self.table_name, "Item": self._model_item(model)}

    def _claim_put(self, model: Model, key: tuple[str, str]) -> dict[str, Any]:
        item = to_item({"pk": key[0], "sk": key[1], "model_id": model.id})
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _claim_delete(self, model: Model, key: tuple[str, str]) -> dict[str, Any]:
        return {
            "Delete": {
                "TableName": self.table_name,
                "Key": to_item({"pk": key[0], "sk": key[1]}),
                "ConditionExpression": "model_id = :id",
                "ExpressionAttributeValues": to_item({":id": model.id}),
            }
        }

    def check_storable(self, spec: ModelSpec) -> None:
        """TooLarge if a model of this spec would not fit its item: checked before anything else is
        stored for it (a Deepchecks version), so a refused request stores nothing."""
        now = _now()
        self._model_item(Model(**check_spec(spec).model_dump(), id="check", created_at=now, updated_at=now))

    def _model_item(self, model: Model) -> dict[str, Any]:
        document = zlib.compress(model.model_dump_json().encode(), 6)  # 2,000 attributes fit compressed
        if len(document) > MAX_DOCUMENT_BYTES:
            raise TooLarge(
                f"the model's schema is {len(document)} bytes compressed; at most {MAX_DOCUMENT_BYTES} fit in "
                "one DynamoDB item (fewer categories or attributes)",
                field="attributes",
            )
        return to_item(
            {
                "pk": f"MODEL#{model.id}",
                "sk": MODEL_SK,
                "kind": KIND,
                "created_at": model.created_at.isoformat(),
                "partner_model_id": model.partner_model_id,
                "archived": model.archived,
                "version": model.version,
                "docz": document,
            }
        )

    def _versioned_put(self, model: Model, expected_version: int) -> dict[str, Any]:
        return {
            "Put": {
                **self._model_put(model),
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": to_item({":expected": expected_version}),
            }
        }


def _model_of(item: dict[str, Any]) -> Model:
    """The model an item holds: compressed (`docz`), or as JSON text (`doc`, items written before)."""
    if "docz" in item:
        return Model.model_validate_json(zlib.decompress(bytes(item["docz"])))
    return Model.model_validate_json(item["doc"])
