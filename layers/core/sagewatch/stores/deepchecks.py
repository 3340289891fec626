"""DeepchecksStore: what the Deepchecks protocol keeps besides the sagewatch model, in the models table.

Deepchecks models, versions, checks, monitors, alert rules, notes and webhooks are JSON documents.
Each lives at (DC#<KIND>#<id>, #DOC) and, when it has a parent, is copied under the parent at
(DC#<PARENT>#<parent id>, <KIND>#<id>) so a parent's children are one query. Names that must be
unique (a model's name, a version's name within its model, a check's name within its model) hold a
guard item written in the same transaction as the document. None of these items carries `kind`, so
the models index (sagewatch models only) never sees them.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sagewatch.errors import Conflict, NotFound
from sagewatch.stores.dynamo import (
    CONDITION_FAILED,
    DynamoStore,
    from_item,
    query_all,
    to_item,
    transaction,
)

DOC = "#DOC"


def new_id() -> str:
    """A new id for a Deepchecks object: 16 random hex digits."""
    return uuid.uuid4().hex[:16]


def _doc_key(kind: str, object_id: str) -> dict[str, str]:
    return {"pk": f"DC#{kind}#{object_id}", "sk": DOC}


def _guard_key(kind: str, scope: str, name: str) -> dict[str, str]:
    return {"pk": f"DC#{kind}NAME#{scope}#{name}", "sk": "#GUARD"}


class DeepchecksStore(DynamoStore):
    """Documents by kind and id, children by parent, unique names by guard items."""

    table = "models"

    def put(
        self,
        kind: str,
        document: dict[str, Any],
        parent: tuple[str, str] | None = None,
        unique: tuple[str, str] | None = None,
        conflict: str = "",
    ) -> dict[str, Any]:
        """Create or replace a document (its "id" is its key). `unique` = (scope, name) claims the name."""
        body = json.dumps(document, default=str)
        items = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": to_item({**_doc_key(kind, document["id"]), "doc": body}),
                }
            }
        ]
        if parent is not None:
            copy = {"pk": f"DC#{parent[0]}#{parent[1]}", "sk": f"{kind}#{document['id']}", "doc": body}
            items.append({"Put": {"TableName": self.table_name, "Item": to_item(copy)}})
        if unique is not None:
            guard = {**_guard_key(kind, *unique), "id": document["id"]}
            items.append(
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": to_item(guard),
                        "ConditionExpression": "attribute_not_exists(pk) OR id = :id",
                        "ExpressionAttributeValues": to_item({":id": document["id"]}),
                    }
                }
            )
        if CONDITION_FAILED in transaction(self.client, items):
            raise Conflict(conflict or f"{kind.lower()} {unique[1] if unique else ''} exists")
        return document

    def get(self, kind: str, object_id: str, what: str = "") -> dict[str, Any]:
        """A document by kind and id; NotFound naming `what` (else the kind) when there is none."""
        response = self.client.get_item(
            TableName=self.table_name, Key=to_item(_doc_key(kind, str(object_id))), ConsistentRead=True
        )
        if "Item" not in response:
            raise NotFound(f"{what or kind.lower()} {object_id!r} does not exist")
        return json.loads(from_item(response["Item"])["doc"])

    def find(self, kind: str, scope: str, name: str) -> str | None:
        """The id holding a unique name, if any."""
        response = self.client.get_item(
            TableName=self.table_name, Key=to_item(_guard_key(kind, scope, name)), ConsistentRead=True
        )
        return from_item(response["Item"])["id"] if "Item" in response else None

    def children(self, parent: tuple[str, str], kind: str) -> list[dict[str, Any]]:
        """A parent's children of one kind, oldest first."""
        items = query_all(
            self.client,
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :kind)",
            ExpressionAttributeValues=to_item({":pk": f"DC#{parent[0]}#{parent[1]}", ":kind": f"{kind}#"}),
            ConsistentRead=True,
        )
        found = [json.loads(from_item(item)["doc"]) for item in items]
        return sorted(found, key=lambda d: str(d.get("created_at", "")))

    def delete(
        self,
        kind: str,
        object_id: str,
        parent: tuple[str, str] | None = None,
        unique: tuple[str, str] | None = None,
    ) -> None:
        """Delete a document, its copy under `parent` and its name guard `unique`, in one transaction."""
        keys = [_doc_key(kind, object_id)]
        if parent is not None:
            keys.append({"pk": f"DC#{parent[0]}#{parent[1]}", "sk": f"{kind}#{object_id}"})
        if unique is not None:
            keys.append(_guard_key(kind, *unique))
        self.client.transact_write_items(
            TransactItems=[{"Delete": {"TableName": self.table_name, "Key": to_item(k)}} for k in keys]
        )
