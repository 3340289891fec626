"""Stores of the alerting side: custom metrics, rules (with their evaluated windows), alerts,
notification configurations. Each item holds its object as a JSON document plus its keys."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sagewatch.alerting.types import Alert, Metric, NotificationConfig, Rule
from sagewatch.errors import ConcurrentUpdate, NotFound
from sagewatch.stores.dynamo import DynamoStore, conditional, from_item, query_all, to_item

UPDATE_TRIES = 5


class MetricStore(DynamoStore):
    """Custom metrics, in the models table at (MODEL#<model id>, METRIC#<metric id>)."""

    table = "models"

    def put(self, metric: Metric) -> Metric:
        """Store a custom metric (created or replaced)."""
        self.client.put_item(
            TableName=self.table_name,
            Item=to_item(
                {
                    "pk": f"MODEL#{metric.model_id}",
                    "sk": f"METRIC#{metric.id}",
                    "doc": metric.model_dump_json(),
                }
            ),
        )
        return metric

    def list(self, model_id: str) -> list[Metric]:
        """A model's custom metrics."""
        items = query_all(
            self.client,
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :metric)",
            ExpressionAttributeValues=to_item({":pk": f"MODEL#{model_id}", ":metric": "METRIC#"}),
            ConsistentRead=True,
        )
        return [Metric.model_validate_json(from_item(item)["doc"]) for item in items]

    def delete(self, model_id: str, metric_id: str) -> None:
        """Delete a custom metric; NotFound when the model has no such metric."""
        written = conditional(
            self.client.delete_item,
            TableName=self.table_name,
            Key=to_item({"pk": f"MODEL#{model_id}", "sk": f"METRIC#{metric_id}"}),
            ConditionExpression="attribute_exists(pk)",
        )
        if written is None:
            raise NotFound(f"model {model_id} has no custom metric {metric_id!r}", field="metric_id")


WINDOW = "#W#"


class RuleStore(DynamoStore):
    """Rules at (model id, rule id); each evaluated window at (model id, <rule id>#W#<window key>)."""

    table = "rules"

    def put(self, rule: Rule, expected_version: int | None = None) -> Rule:
        """Store a rule; with `expected_version`, only over that version (ConcurrentUpdate otherwise)."""
        arguments: dict[str, Any] = {}
        if expected_version is not None:
            arguments = {
                "ConditionExpression": "version = :v",
                "ExpressionAttributeValues": to_item({":v": expected_version}),
            }
        written = conditional(
            self.client.put_item,
            TableName=self.table_name,
            Item=to_item(
                {
                    "model_id": rule.model_id,
                    "rule_id": rule.id,
                    "version": rule.version,
                    "doc": rule.model_dump_json(),
                }
            ),
            **arguments,
        )
        if written is None:
            raise ConcurrentUpdate("the rule changed meanwhile; read it again and retry")
        return rule

    def list(self, model_id: str) -> list[Rule]:
        """A model's rules (not their windows), oldest first."""
        items = query_all(
            self.client,
            TableName=self.table_name,
            KeyConditionExpression="model_id = :m",
            ExpressionAttributeValues=to_item({":m": model_id}),
            ConsistentRead=True,
        )
        rules = [from_item(item) for item in items if WINDOW not in from_item(item)["rule_id"]]
        return sorted((Rule.model_validate_json(item["doc"]) for item in rules), key=lambda r: r.created_at)

    def get(self, model_id: str, rule_id: str) -> Rule:
        """A model's rule; NotFound when there is none."""
        response = self.client.get_item(
            TableName=self.table_name,
            Key=to_item({"model_id": model_id, "rule_id": rule_id}),
            ConsistentRead=True,
        )
        if "Item" not in response or WINDOW in rule_id:
            raise NotFound(f"model {model_id} has no alert rule {rule_id!r}", field="rule_id")
        return Rule.model_validate_json(from_item(response["Item"])["doc"])

    def delete(self, model_id: str, rule_id: str) -> None:
        """Delete a rule with its evaluated windows; NotFound when there is no such rule."""
        self.get(model_id, rule_id)
        for window in self.windows(model_id, rule_id):
            self.client.delete_item(
                TableName=self.table_name,
                Key=to_item({"model_id": model_id, "rule_id": f"{rule_id}{WINDOW}{window['window']}"}),
            )
        self.client.delete_item(
            TableName=self.table_name, Key=to_item({"model_id": model_id, "rule_id": rule_id})
        )

    def windows(self, model_id: str, rule_id: str) -> list[dict[str, Any]]:
        """The rule's evaluated windows: {window, value, rows, labelled, fired, evaluated_at}."""
        items = query_all(
            self.client,
            TableName=self.table_name,
            KeyConditionExpression="model_id = :m AND begins_with(rule_id, :r)",
            ExpressionAttributeValues=to_item({":m": model_id, ":r": f"{rule_id}{WINDOW}"}),
            ConsistentRead=True,
        )
        return [
            {k: v for k, v in from_item(item).items() if k not in ("model_id", "rule_id")} for item in items
        ]

    def save_window(self, model_id: str, rule_id: str, record: dict[str, Any]) -> None:
        """Record what a run found in one of the rule's windows (`record["window"]` is its key)."""
        self.client.put_item(
            TableName=self.table_name,
            Item=to_item({"model_id": model_id, "rule_id": f"{rule_id}{WINDOW}{record['window']}", **record}),
        )

    def forget_window(self, model_id: str, rule_id: str, window: str) -> None:
        """Drop the record of one of the rule's evaluated windows."""
        self.client.delete_item(
            TableName=self.table_name,
            Key=to_item({"model_id": model_id, "rule_id": f"{rule_id}{WINDOW}{window}"}),
        )


class AlertStore(DynamoStore):
    """Alerts by id; the by-model index lists a model's alerts by creation time."""

    table = "alerts"

    def create(self, alert: Alert) -> bool:
        """Store a new alert; False if one with this id (the same rule and window) exists."""
        written = conditional(
            self.client.put_item,
            TableName=self.table_name,
            Item=self._item(alert),
            ConditionExpression="attribute_not_exists(alert_id)",
        )
        return written is not None

    def update(
        self, alert_id: str, change: Callable[[Alert], Alert | None], release: str | None = None
    ) -> Alert | None:
        """Change a stored alert without losing a concurrent change: read it, apply `change`, and write
        only if it is still as read (else read again, up to UPDATE_TRIES times; ConcurrentUpdate
        then). Other attributes, such as a send's claim, are kept; `release` names a configuration
        whose claim is dropped in the same write. None when the alert is gone or `change` returns None."""
        for _ in range(UPDATE_TRIES):
            response = self.client.get_item(
                TableName=self.table_name, Key=to_item({"alert_id": alert_id}), ConsistentRead=True
            )
            if "Item" not in response:
                return None
            stored = from_item(response["Item"])["doc"]
            changed = change(Alert.model_validate_json(stored))
            if changed is None:
                return None
            item = self._item(changed)
            names = {"#d": "doc", "#s": "status"}
            expression = "SET #d = :doc, #s = :status"
            if release is not None:
                names["#c"] = f"sending_{release}"
                expression += " REMOVE #c"
            written = conditional(
                self.client.update_item,
                TableName=self.table_name,
                Key=to_item({"alert_id": alert_id}),
                UpdateExpression=expression,
                ConditionExpression="#d = :before",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={
                    ":doc": item["doc"],
                    ":status": item["status"],
                    ":before": to_item({"doc": stored})["doc"],
                },
            )
            if written is not None:
                return changed
        raise ConcurrentUpdate(f"alert {alert_id} kept changing while it was updated", field="alert_id")

    def get(self, alert_id: str) -> Alert:
        """An alert by id; NotFound when there is none."""
        response = self.client.get_item(
            TableName=self.table_name, Key=to_item({"alert_id": alert_id}), ConsistentRead=True
        )
        if "Item" not in response:
            raise NotFound(f"no alert {alert_id!r}", field="alert_id")
        return Alert.model_validate_json(from_item(response["Item"])["doc"])

    def list(self, model_id: str | None = None) -> list[Alert]:
        """Alerts newest first: a model's through the index, or all of them."""
        if model_id is not None:
            items = query_all(
                self.client,
                TableName=self.table_name,
                IndexName="by-model",
                KeyConditionExpression="model_id = :m",
                ExpressionAttributeValues=to_item({":m": model_id}),
                ScanIndexForward=False,
            )
        else:
            paginator = self.client.get_paginator("scan")
            items = [
                i for page in paginator.paginate(TableName=self.table_name) for i in page.get("Items", [])
            ]
        alerts = [Alert.model_validate_json(from_item(item)["doc"]) for item in items]
        return sorted(alerts, key=lambda a: a.timestamp, reverse=True)

    def claim_notification(self, alert: Alert, config_id: str, now: datetime) -> bool:
        """Mark one notification of an alert as being sent, unless another run holds it or sent it."""
        written = conditional(
            self.client.update_item,
            TableName=self.table_name,
            Key=to_item({"alert_id": alert.id}),
            UpdateExpression="SET #c = :claim",
            ConditionExpression="attribute_not_exists(#c) OR #c < :stale",
            ExpressionAttributeNames={"#c": f"sending_{config_id}"},
            ExpressionAttributeValues=to_item({":claim": now.isoformat(), ":stale": _minus_minutes(now, 10)}),
        )
        return written is not None

    def _item(self, alert: Alert) -> dict[str, Any]:
        return to_item(
            {
                "alert_id": alert.id,
                "model_id": alert.model_id,
                "created_at": alert.timestamp.isoformat(),
                "status": alert.status,
                "doc": alert.model_dump_json(),
            }
        )


def _minus_minutes(moment: datetime, minutes: int) -> str:
    return (moment - timedelta(minutes=minutes)).isoformat()


class NotificationStore(DynamoStore):
    """Notification configurations by id; the by-model index lists a model's."""

    table = "notifications"

    def put(self, config: NotificationConfig) -> NotificationConfig:
        """Store a notification configuration (created or replaced)."""
        self.client.put_item(
            TableName=self.table_name,
            Item=to_item(
                {"config_id": config.id, "model_id": config.model_id, "doc": config.model_dump_json()}
            ),
        )
        return config

    def get(self, config_id: str) -> NotificationConfig:
        """A notification configuration by id; NotFound when there is none."""
        response = self.client.get_item(TableName=self.table_name, Key=to_item({"config_id": config_id}))
        if "Item" not in response:
            raise NotFound(f"no notification configuration {config_id!r}", field="config_id")
        return NotificationConfig.model_validate_json(from_item(response["Item"])["doc"])

    def list(self, model_id: str | None = None) -> list[NotificationConfig]:
        """Notification configurations, of one model or all, oldest first."""
        if model_id is not None:
            items = query_all(
                self.client,
                TableName=self.table_name,
                IndexName="by-model",
                KeyConditionExpression="model_id = :m",
                ExpressionAttributeValues=to_item({":m": model_id}),
            )
        else:
            paginator = self.client.get_paginator("scan")
            items = [
                i for page in paginator.paginate(TableName=self.table_name) for i in page.get("Items", [])
            ]
        configs = [NotificationConfig.model_validate_json(from_item(item)["doc"]) for item in items]
        return sorted(configs, key=lambda c: c.created_at)

    def delete(self, config_id: str) -> None:
        """Delete a notification configuration; NotFound when there is none."""
        self.get(config_id)
        self.client.delete_item(TableName=self.table_name, Key=to_item({"config_id": config_id}))
