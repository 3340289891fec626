"""IngestionLedger: per-model ingestion counters, counted once per source object.

Counters live in the models table at (MODEL#<id>, COUNTS) and (MODEL#<id>, COUNTS#VARIANT#<v>).
A processed source leaves a marker in the idempotency table, written in the same transaction as
the counter increments under `attribute_not_exists`: replaying an S3 event finds the marker, and
the transaction (increments included) is refused, so nothing is counted twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from sagewatch import aws
from sagewatch.settings import Settings
from sagewatch.stores.dynamo import cancellation_reasons, error_code, from_item, query_all, to_item

MARKER_DAYS = 90
COUNTS_SK = "COUNTS"


@dataclass(frozen=True)
class SourceCounts:
    """What one source object contributed to a model."""

    kind: str  # "inferences" | "ground_truth"
    ingested: int
    rejected: int
    latest: datetime | None = None
    variant: str | None = None


class IngestionLedger:
    def __init__(self, models_table: str, markers_table: str, client: Any = None) -> None:
        self.models_table = models_table
        self.markers_table = markers_table
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> IngestionLedger:
        settings = settings or Settings.from_env()
        return cls(settings.name("models"), settings.name("idempotency"))

    @property
    def client(self) -> Any:
        return self._client or aws.client("dynamodb")

    def record(self, model_id: str, digest: str, counts: SourceCounts) -> bool:
        """Add a source's counts once; False when this source was already counted."""
        prefix = counts.kind
        increments = to_item({":ingested": counts.ingested, ":rejected": counts.rejected, ":files": 1})
        update = f"ADD {prefix}_ingested :ingested, {prefix}_rejected :rejected, {prefix}_files :files"
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.markers_table,
                    "Item": to_item(
                        {
                            "id": f"source#{model_id}#{digest}",
                            "expiration": int(time.time()) + MARKER_DAYS * 86400,
                            "kind": counts.kind,
                            "ingested": counts.ingested,
                            "rejected": counts.rejected,
                        }
                    ),
                    "ConditionExpression": "attribute_not_exists(id)",
                }
            },
            {
                "Update": {
                    "TableName": self.models_table,
                    "Key": to_item({"pk": f"MODEL#{model_id}", "sk": COUNTS_SK}),
                    "UpdateExpression": update,
                    "ExpressionAttributeValues": increments,
                }
            },
        ]
        if counts.variant:
            items.append(
                {
                    "Update": {
                        "TableName": self.models_table,
                        "Key": to_item(
                            {"pk": f"MODEL#{model_id}", "sk": f"{COUNTS_SK}#VARIANT#{counts.variant}"}
                        ),
                        "UpdateExpression": update,
                        "ExpressionAttributeValues": increments,
                    }
                }
            )
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if error_code(error) == "TransactionCanceledException" and cancellation_reasons(error)[:1] == [
                "ConditionalCheckFailed"
            ]:
                return False
            raise
        if counts.latest is not None:
            for sk in [COUNTS_SK] + ([f"{COUNTS_SK}#VARIANT#{counts.variant}"] if counts.variant else []):
                self._raise_latest(model_id, sk, f"latest_{prefix}_timestamp", counts.latest)
        return True

    def _raise_latest(self, model_id: str, sk: str, attribute: str, latest: datetime) -> None:
        """Move a 'latest timestamp' forward (never back): a max, which replays cannot disturb."""
        try:
            self.client.update_item(
                TableName=self.models_table,
                Key=to_item({"pk": f"MODEL#{model_id}", "sk": sk}),
                UpdateExpression=f"SET {attribute} = :latest",
                ConditionExpression=f"attribute_not_exists({attribute}) OR {attribute} < :latest",
                ExpressionAttributeValues=to_item({":latest": latest.isoformat()}),
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise

    def counts(self, model_id: str) -> dict[str, Any]:
        """{'total': {...}, 'by_variant': {variant: {...}}} with the counters as stored."""
        items = query_all(
            self.client,
            TableName=self.models_table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :counts)",
            ExpressionAttributeValues=to_item({":pk": f"MODEL#{model_id}", ":counts": COUNTS_SK}),
            ConsistentRead=True,
        )
        result: dict[str, Any] = {"total": {}, "by_variant": {}}
        for item in map(from_item, items):
            values = {k: v for k, v in item.items() if k not in ("pk", "sk")}
            if item["sk"] == COUNTS_SK:
                result["total"] = values
            else:
                result["by_variant"][item["sk"].removeprefix(f"{COUNTS_SK}#VARIANT#")] = values
        return result
