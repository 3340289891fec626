"""A Deepchecks model and version made through the /api/v1 door, for tests that start from one."""

from __future__ import annotations

from typing import Any

from tests.conftest import Call


def version(
    api: Call, name: str, features: dict[str, str], classes: list[str], task: str = "binary"
) -> dict[str, Any]:
    """Create model `name` with version v1 of these features and classes; the version, with model_id."""
    model = api("POST", "/api/v1/models", {"name": name, "task_type": task}).body
    body = {"name": "v1", "features": features, "classes": classes}
    created = api("POST", f"/api/v1/models/{model['id']}/version", body)
    assert created.status == 200, created.body
    return {**api("GET", f"/api/v1/models/{name}/model-versions/v1").body, "model_id": model["id"]}
