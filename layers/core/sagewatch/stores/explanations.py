"""ExplanationBudget: how many explanations a model has had this hour, counted atomically.

One item per model in the models table, (MODEL#<id>, EXPLANATIONS#BUDGET), holding the hour and its
count. `reserve` takes one explanation out of the hour's budget by a conditional update, so the
evaluator's scheduled explanations and the API's on-demand ones never exceed it together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sagewatch import aws
from sagewatch.settings import Settings
from sagewatch.stores.dynamo import conditional, from_item, to_item

BUDGET_SK = "EXPLANATIONS#BUDGET"


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
