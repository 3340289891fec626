"""HotspotStore: each hotspot search's result, one JSON object in the lake bucket.

Layout: hotspots/model_id=<id>/<run_id>.json. Run ids begin with the time of the run
(YYYYMMDDTHHMMSSffffff), so the listing's order is the runs' order.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from sagewatch import aws
from sagewatch.errors import NotFound
from sagewatch.settings import Settings
from sagewatch.stores.dynamo import error_code


class HotspotStore:
    """Hotspot runs of every model, as JSON documents."""

    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> HotspotStore:
        return cls((settings or Settings.from_env()).name("data"))

    @property
    def client(self) -> Any:
        return self._client or aws.client("s3")

    @staticmethod
    def _key(model_id: str, run_id: str) -> str:
        return f"hotspots/model_id={model_id}/{run_id}.json"

    def put(self, model_id: str, run_id: str, document: dict[str, Any]) -> None:
        """Store a run's document."""
        self.client.put_object(
            Bucket=self.bucket,
            Key=self._key(model_id, run_id),
            Body=json.dumps(document).encode(),
            ContentType="application/json",
        )

    def get(self, model_id: str, run_id: str) -> dict[str, Any]:
        """A run's document; NotFound naming run_id when there is none."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(model_id, run_id))["Body"].read()
        except ClientError as error:
            if error_code(error) in ("NoSuchKey", "404", "NotFound"):
                raise NotFound(f"model {model_id} has no hotspot run {run_id!r}", field="run_id") from None
            raise
        return json.loads(body)

    def run_ids(self, model_id: str) -> list[str]:
        """The model's run ids, newest first (every page of the listing)."""
        prefix = f"hotspots/model_id={model_id}/"
        paginator = self.client.get_paginator("list_objects_v2")
        keys = [
            item["Key"]
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        ]
        return sorted((k.removeprefix(prefix).removesuffix(".json") for k in keys), reverse=True)
