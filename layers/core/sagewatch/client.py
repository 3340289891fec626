"""The Python client: `SageWatch(url, token)` over sagewatch's REST API.

Without arguments it finds a stack from SAGEWATCH_URL / SAGEWATCH_TOKEN, or from the local.json
that `sagewatch local` writes. Every failed call raises SageWatchError with the HTTP status and
the server's message.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from sagewatch.schema import ClassValue, ModelSpec

if TYPE_CHECKING:
    import pandas as pd


class SageWatchError(Exception):
    """An API call failed: `status` is the HTTP status, `message` the server's explanation."""

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.body = body


class SageWatch:
    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        state_dir: str | Path = ".sagewatch",
        timeout: float = 60,
    ) -> None:
        if url is None or token is None:
            found_url, found_token = _discover(Path(state_dir))
            url, token = url or found_url, token or found_token
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(
        self, method: str, path: str, body: Any = None, query: Mapping[str, Any] | None = None
    ) -> Any:
        """One API call; the decoded JSON answer (None for 204)."""
        url = f"{self.url}{path}"
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                parsed = json.loads(raw)
                message = parsed.get("message", raw.decode(errors="replace"))
            except (ValueError, AttributeError):
                parsed, message = None, raw.decode(errors="replace")
            raise SageWatchError(error.code, message, parsed) from None
        return json.loads(payload) if payload else None

    # models
    def register_model(self, spec: ModelSpec | Mapping[str, Any]) -> dict[str, Any]:
        body = spec.model_dump(mode="json", exclude_none=True) if isinstance(spec, ModelSpec) else dict(spec)
        return self.request("POST", "/api/v3/models", body)

    def build_model(
        self,
        reference: pd.DataFrame,
        pred_to_ground_truth_map: Mapping[str, ClassValue],
        *,
        partner_model_id: str,
        **options: Any,
    ) -> ModelDraft:
        """Infer a schema from reference data (see sagewatch.schema_inference); review it, then save()."""
        from sagewatch.schema_inference import infer_schema

        spec = infer_schema(reference, pred_to_ground_truth_map, partner_model_id=partner_model_id, **options)
        return ModelDraft(self, spec)

    def get_model(
        self, model_id: str | None = None, *, partner_model_id: str | None = None
    ) -> dict[str, Any]:
        if partner_model_id is not None:
            path = f"/api/v3/models/{quote(partner_model_id, safe='')}"
            return self.request("GET", path, query={"id_type": "partner_model_id"})
        if model_id is None:
            raise ValueError("give model_id or partner_model_id")
        return self.request("GET", f"/api/v3/models/{quote(model_id, safe='')}")

    def iter_models(self, include_archived: bool = False, page_size: int = 100) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            answer = self.request(
                "GET",
                "/api/v3/models",
                query={
                    "page": page,
                    "page_size": page_size,
                    "include_archived": str(include_archived).lower(),
                },
            )
            yield from answer["data"]
            if page >= answer["total_pages"]:
                return
            page += 1

    def list_models(self, include_archived: bool = False) -> list[dict[str, Any]]:
        return list(self.iter_models(include_archived))

    def archive_model(self, model_id: str) -> None:
        self.request("DELETE", f"/api/v3/models/{quote(model_id, safe='')}")


class ModelDraft:
    """A model inferred from reference data, not yet registered."""

    def __init__(self, client: SageWatch, spec: ModelSpec) -> None:
        self.client = client
        self.spec = spec

    def review(self) -> pd.DataFrame:
        from sagewatch.schema_inference import review_table

        return review_table(self.spec)

    def save(self) -> dict[str, Any]:
        return self.client.register_model(self.spec)


def _discover(state_dir: Path) -> tuple[str, str]:
    url, token = os.environ.get("SAGEWATCH_URL"), os.environ.get("SAGEWATCH_TOKEN")
    if url and token:
        return url, token
    state = state_dir / "local.json"
    if state.exists():
        stack = json.loads(state.read_text())
        return url or stack["api_url"], token or stack["token"]
    raise SageWatchError(
        0,
        f"no stack found: pass url and token, set SAGEWATCH_URL and SAGEWATCH_TOKEN, or run `sagewatch local` "
        f"(which writes {state})",
    )
