"""ModelStore: registered models in the models table.

Items: the model at (MODEL#<id>, #MODEL) holding its JSON document, and a guard at
(PARTNER#<partner_model_id>, #GUARD) pointing at the model. Both are written in one conditional
transaction, which is what keeps partner_model_id unique under concurrent creates. Archiving a
model removes its guard, so the partner_model_id can be registered again.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from sagewatch.errors import ConcurrentUpdate, ModelArchived, ModelNotFound, PartnerIdTaken, TooLarge
from sagewatch.schema import Model, ModelSpec, check_spec
from sagewatch.stores.dynamo import (
    DynamoStore,
    cancellation_reasons,
    error_code,
    from_item,
    query_all,
    to_item,
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


class ModelStore(DynamoStore):
    """Create, read, replace and archive models; the only code that knows the table layout."""

    table = "models"

    def create(self, spec: ModelSpec) -> Model:
        """Validate and register a model; PartnerIdTaken if its partner_model_id is in use."""
        spec = check_spec(spec)
        now = _now()
        model = Model(**spec.model_dump(), id=str(uuid.uuid4()), created_at=now, updated_at=now)
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": self._model_item(model),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": self._guard_item(model),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except ClientError as error:
            self._raise_for_transaction(error, model.partner_model_id, guard_index=1)
        return model

    def get(self, model_id: str) -> Model:
        response = self.client.get_item(
            TableName=self.table_name, Key=_model_key(model_id), ConsistentRead=True
        )
        if "Item" not in response:
            raise ModelNotFound(f"no model with id {model_id!r}", field="model_id")
        return Model.model_validate_json(from_item(response["Item"])["doc"])

    def get_active(self, model_id: str) -> Model:
        """The model, refusing an archived one (it accepts no data and no changes)."""
        model = self.get(model_id)
        if model.archived:
            raise ModelArchived(f"model {model_id!r} is archived", field="model_id")
        return model

    def get_by_partner_id(self, partner_model_id: str) -> Model:
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
        models = [Model.model_validate_json(from_item(item)["doc"]) for item in items]
        return [m for m in models if include_archived or not m.archived]

    def replace(self, model_id: str, spec: ModelSpec) -> Model:
        """Replace a model's spec (PUT). Moving to another partner_model_id keeps it unique."""
        current = self.get_active(model_id)
        spec = check_spec(spec)
        model = Model(
            **spec.model_dump(),
            id=current.id,
            created_at=current.created_at,
            updated_at=_now(),
            version=current.version + 1,
        )
        items: list[dict[str, Any]] = [self._versioned_put(model, current.version)]
        if model.partner_model_id != current.partner_model_id:
            items += [
                self._guard_delete(current),
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": self._guard_item(model),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as error:
            self._raise_for_transaction(error, model.partner_model_id, guard_index=2)
        return model

    def archive(self, model_id: str) -> Model:
        """Archive (DELETE): the model stays readable, accepts no data, and frees its partner_model_id."""
        current = self.get_active(model_id)
        model = current.model_copy(
            update={
                "archived": True,
                "status": "Archived",
                "updated_at": _now(),
                "version": current.version + 1,
            }
        )
        try:
            self.client.transact_write_items(
                TransactItems=[self._versioned_put(model, current.version), self._guard_delete(current)]
            )
        except ClientError as error:
            self._raise_for_transaction(error, model.partner_model_id, guard_index=None)
        return model

    def _model_item(self, model: Model) -> dict[str, Any]:
        document = model.model_dump_json()
        if len(document.encode()) > MAX_DOCUMENT_BYTES:
            raise TooLarge(
                f"the model's schema is {len(document.encode())} bytes; at most {MAX_DOCUMENT_BYTES} are stored "
                "(fewer categories or attributes)",
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
                "doc": document,
            }
        )

    def _guard_item(self, model: Model) -> dict[str, Any]:
        return to_item({"pk": f"PARTNER#{model.partner_model_id}", "sk": GUARD_SK, "model_id": model.id})

    def _versioned_put(self, model: Model, expected_version: int) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": self._model_item(model),
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": to_item({":expected": expected_version}),
            }
        }

    def _guard_delete(self, model: Model) -> dict[str, Any]:
        return {
            "Delete": {
                "TableName": self.table_name,
                "Key": _guard_key(model.partner_model_id),
                "ConditionExpression": "model_id = :id",
                "ExpressionAttributeValues": to_item({":id": model.id}),
            }
        }

    @staticmethod
    def _raise_for_transaction(error: ClientError, partner_model_id: str, guard_index: int | None) -> None:
        if error_code(error) != "TransactionCanceledException":
            raise error
        reasons = cancellation_reasons(error)
        if (
            guard_index is not None
            and len(reasons) > guard_index
            and reasons[guard_index] == "ConditionalCheckFailed"
        ):
            raise PartnerIdTaken(
                f"partner_model_id {partner_model_id!r} is already used by another model",
                field="partner_model_id",
            ) from None
        raise ConcurrentUpdate(
            "the model changed while this request was applied; read it again and retry"
        ) from None
