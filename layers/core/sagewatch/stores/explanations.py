"""ExplanationBudget: how many explanations a model has had this hour, counted atomically, and the
inferences asked for that wait for the evaluator's next run.

One item per model in the models table, (MODEL#<id>, EXPLANATIONS#BUDGET), holding the hour and its
count. `reserve` takes one explanation out of the hour's budget by a conditional update, so the
evaluator's scheduled explanations and the API's on-demand ones never exceed it together; `release`
gives it back when the explanation did not happen. Another, (MODEL#<id>, EXPLANATIONS#QUEUE), holds
a string set of queued inferences (at most MAX_QUEUED), added and removed atomically, each as
"<inference day>/<partner_inference_id>" so the evaluator reads that day's files only.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sagewatch import aws
from sagewatch.settings import Settings
from sagewatch.stores.dynamo import conditional, from_item, to_item

BUDGET_SK = "EXPLANATIONS#BUDGET"
QUEUE_SK = "EXPLANATIONS#QUEUE"
# Inferences queued per model at most (an id is ~100 bytes: the item stays far under 400 KB).
MAX_QUEUED = 100


class ExplanationBudget:
    """The models' hourly explanation counts (see the module docstring)."""

    def __init__(self, models_table: str, client: Any = None) -> None:
        self.models_table = models_table
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> ExplanationBudget:
        return cls((settings or Settings.from_env()).name("models"))

    @property
    def client(self) -> Any:
        return self._client or aws.client("dynamodb")

    def reserve(self, model_id: str, hour: datetime, limit: int) -> bool:
        """Count one explanation in `hour` (a whole hour, UTC); False when `limit` are counted already."""
        if limit < 1:
            return False
        key = to_item({"pk": f"MODEL#{model_id}", "sk": BUDGET_SK})
        stamp = hour.isoformat()
        for _ in range(2):  # a new hour begun by another caller meanwhile: counted in it on the second pass
            same_hour = conditional(
                self.client.update_item,
                TableName=self.models_table,
                Key=key,
                UpdateExpression="ADD spent :one",
                ConditionExpression="#hour = :hour AND spent < :limit",
                ExpressionAttributeNames={"#hour": "hour"},
                ExpressionAttributeValues=to_item({":one": 1, ":hour": stamp, ":limit": limit}),
            )
            if same_hour is not None:
                return True
            new_hour = conditional(  # the first of a new hour (or ever)
                self.client.update_item,
                TableName=self.models_table,
                Key=key,
                UpdateExpression="SET #hour = :hour, spent = :one",
                ConditionExpression="attribute_not_exists(#hour) OR #hour < :hour",
                ExpressionAttributeNames={"#hour": "hour"},
                ExpressionAttributeValues=to_item({":one": 1, ":hour": stamp}),
            )
            if new_hour is not None:
                return True
        return False

    def spent(self, model_id: str, hour: datetime) -> int:
        """Explanations counted in `hour` so far."""
        response = self.client.get_item(
            TableName=self.models_table,
            Key=to_item({"pk": f"MODEL#{model_id}", "sk": BUDGET_SK}),
            ConsistentRead=True,
        )
        item = from_item(response.get("Item", {}))
        return int(item.get("spent", 0)) if item.get("hour") == hour.isoformat() else 0

    def release(self, model_id: str, hour: datetime) -> None:
        """Give back one explanation reserved in `hour` (none when the hour has turned meanwhile)."""
        conditional(
            self.client.update_item,
            TableName=self.models_table,
            Key=to_item({"pk": f"MODEL#{model_id}", "sk": BUDGET_SK}),
            UpdateExpression="ADD spent :minus_one",
            ConditionExpression="#hour = :hour AND spent > :zero",
            ExpressionAttributeNames={"#hour": "hour"},
            ExpressionAttributeValues=to_item({":minus_one": -1, ":hour": hour.isoformat(), ":zero": 0}),
        )

    def queue(self, model_id: str, partner_inference_id: str, day: date) -> bool:
        """Queue an inference (of UTC `day`) for the evaluator's next run; False when MAX_QUEUED
        others wait already."""
        entry = _entry(partner_inference_id, day)
        queued = conditional(
            self.client.update_item,
            TableName=self.models_table,
            Key=to_item({"pk": f"MODEL#{model_id}", "sk": QUEUE_SK}),
            UpdateExpression="ADD ids :id",
            ConditionExpression="attribute_not_exists(ids) OR size(ids) < :most OR contains(ids, :one)",
            ExpressionAttributeValues={
                ":id": {"SS": [entry]},
                ":one": {"S": entry},
                ":most": {"N": str(MAX_QUEUED)},
            },
        )
        return queued is not None

    def queued(self, model_id: str) -> dict[str, date]:
        """The inferences queued for the model and their days, by partner_inference_id."""
        response = self.client.get_item(
            TableName=self.models_table,
            Key=to_item({"pk": f"MODEL#{model_id}", "sk": QUEUE_SK}),
            ConsistentRead=True,
        )
        entries = sorted(response.get("Item", {}).get("ids", {}).get("SS", []))
        return {entry[11:]: date.fromisoformat(entry[:10]) for entry in entries}

    def dequeue(self, model_id: str, inferences: dict[str, date]) -> None:
        """Take inferences (partner_inference_id: day, as `queued` gives) off the model's queue."""
        if inferences:
            self.client.update_item(
                TableName=self.models_table,
                Key=to_item({"pk": f"MODEL#{model_id}", "sk": QUEUE_SK}),
                UpdateExpression="DELETE ids :ids",
                ExpressionAttributeValues={
                    ":ids": {"SS": sorted({_entry(pid, day) for pid, day in inferences.items()})}
                },
            )


def _entry(partner_inference_id: str, day: date) -> str:
    return f"{day.isoformat()}/{partner_inference_id}"
