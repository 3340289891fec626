"""TokenStore: API tokens by id, holding the role and the token's hash (never the token)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sagewatch.auth import (
    Role,
    TokenRecord,
    hashes_match,
    new_secret_for,
    new_token,
    token_from_header,
    token_hash,
)
from sagewatch.errors import NotFound, Unauthorized
from sagewatch.stores.dynamo import DynamoStore, conditional, from_item, to_item


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class TokenStore(DynamoStore):
    """API tokens by id; the only code that knows the tokens table."""

    table = "tokens"

    def create(self, role: Role, description: str = "") -> tuple[TokenRecord, str]:
        """A new token; the token itself is returned once and never stored."""
        token_id, token = new_token()
        record = TokenRecord(token_id=token_id, role=role, description=description, created_at=_now())
        self.client.put_item(
            TableName=self.table_name,
            Item=self._item(record, token),
            ConditionExpression="attribute_not_exists(token_id)",
        )
        return record, token

    def list(self) -> list[TokenRecord]:
        """Every token, revoked ones too, oldest first."""
        paginator = self.client.get_paginator("scan")
        items = [
            item for page in paginator.paginate(TableName=self.table_name) for item in page.get("Items", [])
        ]
        records = [self._record(from_item(item)) for item in items]
        return sorted(records, key=lambda r: r.created_at)

    def rotate(self, token_id: str) -> tuple[TokenRecord, str]:
        """A new secret for the same id and role; the old token stops working at once."""
        token = new_secret_for(token_id)
        record = self._update_active(
            token_id,
            "SET token_hash = :hash, rotated_at = :now",
            {":hash": token_hash(token), ":now": _now()},
        )
        return record, token

    def revoke(self, token_id: str) -> TokenRecord:
        """Revoke a token at once; NotFound when there is no active token with this id."""
        return self._update_active(token_id, "SET revoked_at = :now", {":now": _now()})

    def _update_active(self, token_id: str, expression: str, values: dict[str, Any]) -> TokenRecord:
        """Apply an update to an active (existing, not revoked) token; NotFound otherwise."""
        response = conditional(
            self.client.update_item,
            TableName=self.table_name,
            Key=to_item({"token_id": token_id}),
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(token_id) AND attribute_not_exists(revoked_at)",
            ExpressionAttributeValues=to_item(values),
            ReturnValues="ALL_NEW",
        )
        if response is None:
            raise NotFound(f"no active token with id {token_id!r}", field="token_id")
        return self._record(from_item(response["Attributes"]))

    def authenticate(self, authorization: str | None) -> TokenRecord:
        """The active token named by an Authorization header, or Unauthorized."""
        token_id, token = token_from_header(authorization)
        response = self.client.get_item(TableName=self.table_name, Key=to_item({"token_id": token_id}))
        item = from_item(response["Item"]) if "Item" in response else None
        if item is None or not hashes_match(token, item["token_hash"]):
            raise Unauthorized("unknown token")
        record = self._record(item)
        if not record.active:  # said as for an unknown token: a caller learns nothing of the token
            raise Unauthorized("unknown token")
        return record

    @staticmethod
    def _item(record: TokenRecord, token: str) -> dict[str, Any]:
        return to_item(
            {
                "token_id": record.token_id,
                "role": record.role.value,
                "description": record.description,
                "created_at": record.created_at,
                "token_hash": token_hash(token),
            }
        )

    @staticmethod
    def _record(item: dict[str, Any]) -> TokenRecord:
        return TokenRecord(
            token_id=item["token_id"],
            role=Role(item["role"]),
            description=item.get("description", ""),
            created_at=item["created_at"],
            rotated_at=item.get("rotated_at"),
            revoked_at=item.get("revoked_at"),
        )
