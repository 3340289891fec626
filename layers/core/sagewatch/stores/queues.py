"""EvaluateQueue: the SQS queue that carries one evaluate message per model to the evaluator."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sagewatch import aws
from sagewatch.settings import Settings

SEND_ATTEMPTS = 4


class EvaluateQueue:
    """Sends evaluate messages in batches of ten, resending what SQS reports Failed (a batch call
    succeeds even when some of its messages do not)."""

    def __init__(
        self, queue_name: str, client: Any = None, pause: Callable[[float], None] = time.sleep
    ) -> None:
        self.queue_name = queue_name
        self._client = client
        self.pause = pause
        self._queue_url: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> EvaluateQueue:
        return cls((settings or Settings.from_env()).name("evaluate"))

    @property
    def client(self) -> Any:
        return self._client or aws.client("sqs")

    @property
    def queue_url(self) -> str:
        """The queue's URL, looked up once per process (a queue's URL never changes)."""
        if self._queue_url is None:
            self._queue_url = self.client.get_queue_url(QueueName=self.queue_name)["QueueUrl"]
        return self._queue_url

    def send(self, model_ids: list[str], scheduled_at: datetime) -> list[str]:
        """Queue one message per model; returns the ids still unsent after SEND_ATTEMPTS."""
        queue_url = self.queue_url
        moment = scheduled_at.isoformat()
        unsent: list[str] = []
        for start in range(0, len(model_ids), 10):
            chunk = model_ids[start : start + 10]
            entries = [
                {"Id": str(i), "MessageBody": json.dumps({"model_id": model_id, "scheduled_at": moment})}
                for i, model_id in enumerate(chunk)
            ]
            unsent += [chunk[int(e["Id"])] for e in self._send_all(queue_url, entries)]
        return unsent

    def _send_all(self, queue_url: str, entries: list[dict[str, str]]) -> list[dict[str, str]]:
        pending = entries
        for attempt in range(SEND_ATTEMPTS):
            response = self.client.send_message_batch(QueueUrl=queue_url, Entries=pending)
            failed = {failure["Id"] for failure in response.get("Failed", [])}
            pending = [entry for entry in pending if entry["Id"] in failed]
            if not pending:
                return []
            if attempt < SEND_ATTEMPTS - 1:
                self.pause(0.2 * 2**attempt)
        return pending
