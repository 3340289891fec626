"""IngestionLedger: per-model ingestion counters, counted once per source; batch and reference states.

Counters live in the models table at (MODEL#<id>, COUNTS), (MODEL#<id>, COUNTS#VARIANT#<v>),
(MODEL#<id>, COUNTS#BATCH#<batch_id>) and, per day of inference_timestamp (the lake's day folders),
(MODEL#<id>, ROWS#<YYYY-MM>) with one attribute a day (`d01`..`d31`): how many rows a window holds
is known without reading the lake, from an item a month (a source spanning 1,000 days adds to 33). A processed source (file, request) leaves a marker in the
idempotency table, written in the same transaction as the counter increments under
`attribute_not_exists`: replaying an S3 event finds the marker and the transaction (increments
included) is refused, so nothing is counted twice. Batch and reference-set lifecycles (open,
uploaded) are items (MODEL#<id>, BATCH#<batch_id>) and (MODEL#<id>, REFERENCE).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sagewatch import aws
from sagewatch.errors import ConcurrentUpdate, Conflict
from sagewatch.settings import Settings
from sagewatch.stores.dynamo import CONDITION_FAILED, conditional, from_item, query_all, to_item, transaction

MARKER_DAYS = 90
COUNTS_SK = "COUNTS"
DAY_SK = "ROWS#"  # inferences ingested per day of inference_timestamp: ROWS#<YYYY-MM>, d<DD>
ROLE_SK = "VARIANT_ROLE#"
# DynamoDB transactions hold at most 100 items (a marker, totals, a variant, batch counters).
MAX_TRANSACTION_ITEMS = 100
COUNTERS = (
    "inferences_ingested",
    "inferences_rejected",
    "inferences_files",
    "ground_truth_ingested",
    "ground_truth_rejected",
    "ground_truth_files",
    "reference_ingested",
)


@dataclass(frozen=True)
class SourceCounts:
    """What one source (a file, a request) contributed to a model."""

    inferences: int = 0
    inferences_rejected: int = 0
    ground_truth: int = 0
    ground_truth_rejected: int = 0
    reference: int = 0
    earliest_inference: datetime | None = None
    latest_inference: datetime | None = None
    latest_ground_truth: datetime | None = None
    variant: str | None = None
    batches: dict[str, int] = field(default_factory=dict)
    days: dict[str, int] = field(default_factory=dict)  # inferences per day (YYYY-MM-DD) of their time

    def increments(self) -> dict[str, int]:
        """Counter -> amount, files counted per kind that the source carried."""
        values = {
            "inferences_ingested": self.inferences,
            "inferences_rejected": self.inferences_rejected,
            "ground_truth_ingested": self.ground_truth,
            "ground_truth_rejected": self.ground_truth_rejected,
            "reference_ingested": self.reference,
        }
        if self.inferences or self.inferences_rejected:
            values["inferences_files"] = 1
        if self.ground_truth or self.ground_truth_rejected:
            values["ground_truth_files"] = 1
        return {name: amount for name, amount in values.items() if amount}


class IngestionLedger:
    """Ingestion's counters, source markers and batch and reference states (see the module docstring)."""

    def __init__(self, models_table: str, markers_table: str, client: Any = None) -> None:
        self.models_table = models_table
        self.markers_table = markers_table
        self._client = client
        # (model id, sk, attribute) -> a bound on the stored time: for a 'latest', the stored one is
        # at least this; for an 'earliest', at most this (see _move).
        self._bounds: dict[tuple[str, str, str], str] = {}

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> IngestionLedger:
        settings = settings or Settings.from_env()
        return cls(settings.name("models"), settings.name("idempotency"))

    @property
    def client(self) -> Any:
        return self._client or aws.client("dynamodb")

    def record(self, model_id: str, digest: str, counts: SourceCounts) -> bool:
        """Add a source's counts once; False when this source was already counted.

        The marker, totals, variant and the first batch and day counters go in one transaction;
        counters past what one transaction holds go in further transactions, each under a marker of
        its own (`<marker>#batches#<k>`, batches then days, each sorted, so a replay cuts them the
        same way). A replay is
        refused transaction by transaction, so a source interrupted between two of them is
        completed, never counted twice.
        """
        increments = counts.increments()
        items = [self._marker(model_id, digest, increments)]
        if increments:
            items.append(self._add(model_id, COUNTS_SK, increments))
            if counts.variant:
                items.append(self._add(model_id, f"{COUNTS_SK}#VARIANT#{counts.variant}", increments))
        updates = [
            self._add(model_id, f"{COUNTS_SK}#BATCH#{batch_id}", {"inferences_ingested": amount})
            for batch_id, amount in sorted(counts.batches.items())
        ]
        months: dict[str, dict[str, int]] = {}
        for day, amount in sorted(counts.days.items()):
            if amount:
                months.setdefault(day[:7], {})[f"d{day[8:10]}"] = amount
        updates += [self._add(model_id, f"{DAY_SK}{month}", days) for month, days in months.items()]
        room = MAX_TRANSACTION_ITEMS - len(items)
        counted = self._once(items + updates[:room])
        rest = updates[room:]
        for part, start in enumerate(range(0, len(rest), MAX_TRANSACTION_ITEMS - 1), start=1):
            marker = self._marker(model_id, f"{digest}#batches#{part}", {})
            self._once([marker, *rest[start : start + MAX_TRANSACTION_ITEMS - 1]])
        scopes = [COUNTS_SK] + ([f"{COUNTS_SK}#VARIANT#{counts.variant}"] if counts.variant else [])
        for attribute, latest in (
            ("latest_inferences_timestamp", counts.latest_inference),
            ("latest_ground_truth_timestamp", counts.latest_ground_truth),
        ):
            if latest is not None:  # a max: replays cannot disturb it
                for sk in scopes:
                    self._move(model_id, sk, attribute, latest, later=True)
        if counts.earliest_inference is not None:  # a min, as safe
            for sk in scopes:
                self._move(
                    model_id, sk, "earliest_inferences_timestamp", counts.earliest_inference, later=False
                )
        return counted

    def _marker(self, model_id: str, digest: str, increments: dict[str, int]) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.markers_table,
                "Item": to_item(
                    {
                        "id": f"source#{model_id}#{digest}",
                        "expiration": int(time.time()) + MARKER_DAYS * 86400,
                        **increments,
                    }
                ),
                "ConditionExpression": "attribute_not_exists(id)",
            }
        }

    def _once(self, items: list[dict[str, Any]]) -> bool:
        """Write a transaction whose first item is a marker; False when the marker exists (a replay)."""
        reasons = transaction(self.client, items)
        if reasons[:1] == [CONDITION_FAILED]:
            return False
        if reasons:  # another item's condition, or a conflicting write: retried by the caller's retry
            raise ConcurrentUpdate(f"the ingestion counters changed meanwhile ({', '.join(reasons)}); retry")
        return True

    def _add(self, model_id: str, sk: str, increments: dict[str, int]) -> dict[str, Any]:
        names = sorted(increments)
        return {
            "Update": {
                "TableName": self.models_table,
                "Key": to_item({"pk": f"MODEL#{model_id}", "sk": sk}),
                "UpdateExpression": "ADD " + ", ".join(f"{name} :{name}" for name in names),
                "ExpressionAttributeValues": to_item({f":{name}": increments[name] for name in names}),
            }
        }

    def _move(self, model_id: str, sk: str, attribute: str, moment: datetime, later: bool) -> None:
        """Move a 'latest' timestamp forward (never back), or an 'earliest' one back (never forward):
        a max or a min, which replays cannot disturb.

        After a write of `moment` (whether its condition held or not) the stored time is at least
        `moment` (latest) or at most `moment` (earliest), and it only moves further that way, so
        the process keeps that bound and skips a write whose condition could not hold: an earliest
        time is moved by the first file of a model, rarely by the next, and a refused write is
        billed as a write.
        """
        value = moment.isoformat()
        key = (model_id, sk, attribute)
        known = self._bounds.get(key)
        if known is not None and (known >= value if later else known <= value):
            return
        conditional(  # a refused condition: a later (earlier) time is there already
            self.client.update_item,
            TableName=self.models_table,
            Key=to_item({"pk": f"MODEL#{model_id}", "sk": sk}),
            UpdateExpression=f"SET {attribute} = :latest",
            ConditionExpression=f"attribute_not_exists({attribute}) OR {attribute} {'<' if later else '>'} :latest",
            ExpressionAttributeValues=to_item({":latest": value}),
        )
        self._bounds[key] = value

    def counts(self, model_id: str) -> dict[str, Any]:
        """{'total': {...}, 'by_variant': {variant: {...}}, 'by_batch': {batch: {...}}} as stored."""
        items = query_all(
            self.client,
            TableName=self.models_table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :counts)",
            ExpressionAttributeValues=to_item({":pk": f"MODEL#{model_id}", ":counts": COUNTS_SK}),
            ConsistentRead=True,
        )
        result: dict[str, Any] = {"total": {}, "by_variant": {}, "by_batch": {}}
        for item in map(from_item, items):
            values = {
                **dict.fromkeys(COUNTERS, 0),
                **{k: v for k, v in item.items() if k not in ("pk", "sk")},
            }
            if item["sk"] == COUNTS_SK:
                result["total"] = values
            elif item["sk"].startswith(f"{COUNTS_SK}#VARIANT#"):
                result["by_variant"][item["sk"].removeprefix(f"{COUNTS_SK}#VARIANT#")] = values
            else:
                result["by_batch"][item["sk"].removeprefix(f"{COUNTS_SK}#BATCH#")] = values
        return result

    def rows(self, model_id: str, first: date | None = None, last: date | None = None) -> int:
        """Inferences ingested on the days [first, last] of inference_timestamp (open ends: every day
        counted), from the day counters; a model ingested before they existed has more in its total
        than in its days, and an open window counts that total."""
        low = f"{DAY_SK}{first.isoformat()[:7] if first else ''}"
        high = f"{DAY_SK}{last.isoformat()[:7] if last else '~'}"
        items = query_all(
            self.client,
            TableName=self.models_table,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
            ExpressionAttributeValues=to_item({":pk": f"MODEL#{model_id}", ":low": low, ":high": high}),
        )
        start, end = (first or date.min).isoformat(), (last or date.max).isoformat()
        counted = 0
        for item in map(from_item, items):
            month = item["sk"].removeprefix(DAY_SK)
            counted += sum(
                int(amount)
                for name, amount in item.items()
                if name.startswith("d") and start <= f"{month}-{name[1:]}" <= end
            )
        if first is None and last is None:
            return max(counted, int(self.counts(model_id)["total"].get("inferences_ingested", 0)))
        return counted

    def batch_counts(self, model_id: str, batch_id: str) -> dict[str, Any]:
        """A batch's counters, or {} when nothing of it was counted."""
        response = self.client.get_item(
            TableName=self.models_table,
            Key=to_item({"pk": f"MODEL#{model_id}", "sk": f"{COUNTS_SK}#BATCH#{batch_id}"}),
            ConsistentRead=True,
        )
        return from_item(response["Item"]) if "Item" in response else {}

    # -- lifecycles of batches and reference sets ------------------------------------------------

    def check_reference_open(self, model_id: str, received_at: datetime | None = None) -> None:
        """Conflict when the model's reference set is closed: another upload would add to it
        (a notebook cell run twice) and move every drift baseline without a word.

        received_at: when a file arrived (a drop); one put before the set was closed still belongs
        to it (the client closes the set right after putting its file, before it is ingested)."""
        state = self.state(model_id, "REFERENCE")
        closed_at = state.get("uploaded_at")
        arrived_before = (
            received_at is not None
            and closed_at is not None
            and received_at <= datetime.fromisoformat(closed_at)
        )
        if state.get("status") == "uploaded" and not arrived_before:
            held = self.counts(model_id)["total"].get("reference_ingested", 0)
            raise Conflict(
                f"the reference set of model {model_id} is closed ({held} rows): "
                f"DELETE /api/v3/models/{model_id}/reference_data first to upload a new one",
                field="reference_data",
            )

    def reset_reference(self, model_id: str) -> None:
        """Forget the reference set's state and count (its files are deleted by the caller)."""
        self.client.update_item(
            TableName=self.models_table,
            Key=to_item({"pk": f"MODEL#{model_id}", "sk": COUNTS_SK}),
            UpdateExpression="SET reference_ingested = :zero",
            ExpressionAttributeValues=to_item({":zero": 0}),
        )
        self.client.delete_item(
            TableName=self.models_table, Key=to_item({"pk": f"MODEL#{model_id}", "sk": "REFERENCE"})
        )

    def set_state(self, model_id: str, sk: str, **values: Any) -> dict[str, Any]:
        """Set fields of a lifecycle item (BATCH#<id> or REFERENCE); returns the item."""
        values["updated_at"] = datetime.now(UTC).isoformat()
        names = sorted(values)
        response = self.client.update_item(
            TableName=self.models_table,
            Key=to_item({"pk": f"MODEL#{model_id}", "sk": sk}),
            UpdateExpression="SET " + ", ".join(f"#{n} = :{n}" for n in names),
            ExpressionAttributeNames={f"#{n}": n for n in names},
            ExpressionAttributeValues=to_item({f":{n}": values[n] for n in names}),
            ReturnValues="ALL_NEW",
        )
        return from_item(response["Attributes"])

    def clear_state(self, model_id: str, sk: str) -> None:
        """Delete a lifecycle item of the model (a no-op when there is none)."""
        self.client.delete_item(
            TableName=self.models_table, Key=to_item({"pk": f"MODEL#{model_id}", "sk": sk})
        )

    def batches(self, model_id: str) -> dict[str, dict[str, Any]]:
        """Every batch with a lifecycle item (closed, or being closed), by batch id."""
        items = query_all(
            self.client,
            TableName=self.models_table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :batch)",
            ExpressionAttributeValues=to_item({":pk": f"MODEL#{model_id}", ":batch": "BATCH#"}),
            ConsistentRead=True,
        )
        return {item["sk"].removeprefix("BATCH#"): item for item in map(from_item, items)}

    def variant_roles(self, model_id: str) -> dict[str, str]:
        """The role a user gave each variant (champion, challenger, shadow), by variant."""
        items = query_all(
            self.client,
            TableName=self.models_table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :role)",
            ExpressionAttributeValues=to_item({":pk": f"MODEL#{model_id}", ":role": ROLE_SK}),
            ConsistentRead=True,
        )
        return {item["sk"].removeprefix(ROLE_SK): item["role"] for item in map(from_item, items)}

    def set_variant_role(self, model_id: str, variant: str, role: str) -> None:
        """Give a variant its role."""
        self.set_state(model_id, f"{ROLE_SK}{variant}", role=role)

    def state(self, model_id: str, sk: str) -> dict[str, Any]:
        """A lifecycle item of the model (BATCH#<id>, REFERENCE, ...), or {} when there is none."""
        response = self.client.get_item(
            TableName=self.models_table,
            Key=to_item({"pk": f"MODEL#{model_id}", "sk": sk}),
            ConsistentRead=True,
        )
        return from_item(response["Item"]) if "Item" in response else {}
