"""The Python client: `SageWatch(url, token)` over sagewatch's REST API.

Without arguments it finds a stack from SAGEWATCH_URL / SAGEWATCH_TOKEN, or from the local.json
that `sagewatch local` writes. Every failed call raises SageWatchError with the HTTP status and
the server's message.

    client = SageWatch()
    model = client.build_model(reference_df, {"score": 1}, partner_model_id="churn",
                               ground_truth_column="churned").save()
    client.send_inferences(model["id"], production_df)         # chunks, progress, failures summary
    client.update_ground_truth(model["id"], labels_df)
    client.query(model["id"], {"select": [{"function": "accuracyRate"}]})   # a DataFrame
"""

from __future__ import annotations

import http.client
import io
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from sagewatch.client.schema_inference import infer_schema, review_table
from sagewatch.schema import ClassValue, ModelSpec

if TYPE_CHECKING:
    import pandas as pd

# How long query() waits for a query the API runs in Athena (202, polled) before giving up.
QUERY_WAIT_SECONDS = 900.0
IDENTITY = ("partner_inference_id", "inference_timestamp", "batch_id", "ground_truth_timestamp")


def model_path(model_id: str, rest: str = "") -> str:
    """The API path of a model (its id percent-encoded, as any id a caller holds), and what follows."""
    return f"/api/v3/models/{quote(model_id, safe='')}{rest}"


class SageWatchError(Exception):
    """An API call failed: `status` is the HTTP status, `message` the server's explanation."""

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        # status 0: no HTTP answer (nothing reachable, or nothing to reach): the message alone
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status
        self.message = message
        self.body = body


@dataclass
class SendSummary:
    """What a send did: counts, and the rows that failed with their messages."""

    success: int = 0
    failure: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    partner_inference_ids: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """How many rows were sent: successes and failures."""
        return self.success + self.failure


class SageWatch:
    """A client of one sagewatch API; without url and token it finds them (see the module docstring)."""

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

    # -- transport ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Mapping[str, Any] | None = None,
        raw: bytes | None = None,
        content_type: str | None = None,
    ) -> Any:
        """One API call; the decoded JSON answer (None for 204)."""
        url = f"{self.url}{path}"
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        data = (
            raw
            if raw is not None
            else (None if body is None else json.dumps(body, default=_json_default).encode())
        )
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type or "application/json"
        try:
            request = urllib.request.Request(url, data=data, method=method, headers=headers)
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            raw_error = error.read()
            try:
                parsed = json.loads(raw_error)
                message = parsed.get("message", raw_error.decode(errors="replace"))
            except (ValueError, AttributeError):
                parsed, message = None, raw_error.decode(errors="replace")
            raise SageWatchError(error.code, message, parsed) from None
        except urllib.error.URLError as error:
            raise SageWatchError(0, f"cannot reach {self.url}: {error.reason}") from None
        except (ValueError, http.client.HTTPException) as error:  # a malformed URL or token
            raise SageWatchError(0, f"cannot call {self.url}: {error}") from None
        return json.loads(payload) if payload else None

    def _pages(self, path: str, key: str, query: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            answer = self.request("GET", path, query={**(query or {}), "page": page, "page_size": 100})
            yield from answer[key]
            if page >= answer["total_pages"]:
                return
            page += 1

    # -- models ------------------------------------------------------------------------------

    def register_model(self, spec: ModelSpec | Mapping[str, Any]) -> dict[str, Any]:
        """Register a model from a ModelSpec (or its JSON shape); the model created."""
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
        """Infer a schema from reference data (see sagewatch.client.schema_inference); review it, then save()."""

        spec = infer_schema(reference, pred_to_ground_truth_map, partner_model_id=partner_model_id, **options)
        return ModelDraft(self, spec, reference)

    def get_model(
        self, model_id: str | None = None, *, partner_model_id: str | None = None
    ) -> dict[str, Any]:
        """A model by id, or by partner_model_id when that is given."""
        if partner_model_id is not None:
            path = f"/api/v3/models/{quote(partner_model_id, safe='')}"
            return self.request("GET", path, query={"id_type": "partner_model_id"})
        if model_id is None:
            raise ValueError("give model_id or partner_model_id")
        return self.request("GET", model_path(model_id))

    def find_model(self, reference: str) -> dict[str, Any]:
        """A model by id, else by partner_model_id."""
        try:
            return self.get_model(reference)
        except SageWatchError as error:
            if error.status != 404:
                raise
            return self.get_model(partner_model_id=reference)

    def iter_models(self, include_archived: bool = False) -> Iterator[dict[str, Any]]:
        """Every model, fetched page by page (archived ones too if asked)."""
        return self._pages("/api/v3/models", "data", {"include_archived": str(include_archived).lower()})

    def list_models(self, include_archived: bool = False) -> list[dict[str, Any]]:
        """Every model as a list (archived ones too if asked)."""
        return list(self.iter_models(include_archived))

    def archive_model(self, model_id: str) -> None:
        """Archive a model (DELETE): it accepts no more data or changes."""
        self.request("DELETE", model_path(model_id))

    def variants(self, model_id: str) -> list[dict[str, Any]]:
        """The model's variants: role, inferences, traffic share, first and latest inference."""
        return self.request("GET", model_path(model_id, "/variants"))["data"]

    def set_variant_role(self, model_id: str, variant: str, role: str) -> dict[str, Any]:
        """Give a variant its role: champion (one per model), challenger or shadow."""
        return self.request(
            "PUT", model_path(model_id, f"/variants/{quote(variant, safe='')}"), {"role": role}
        )

    def compare_variants(
        self,
        model_id: str,
        challenger: str,
        champion: str | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
    ) -> dict[str, Any]:
        """Is the challenger better? Both variants' metrics, the difference's interval, a test, a verdict."""
        body = {
            "challenger": challenger,
            "champion": champion,
            "start_time": start_time.isoformat() if start_time else None,
            "end_time": end_time.isoformat() if end_time else None,
        }
        return self.request(
            "POST",
            model_path(model_id, "/variants/compare"),
            {k: v for k, v in body.items() if v is not None},
        )

    def enrichments(self, model_id: str) -> dict[str, Any]:
        """Each enrichment (anomaly_detection, explainability, hotspots): enabled, status, config."""
        return self.request("GET", model_path(model_id, "/enrichments"))

    def update_enrichments(self, model_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Turn enrichments on or off and set them: {"explainability": {"enabled": True, "config": {...}}}."""
        return self.request("PATCH", model_path(model_id, "/enrichments"), dict(changes))

    def find_hotspots(
        self,
        model_id: str,
        start_time: datetime | str | None = None,
        end_time: datetime | str | None = None,
        batch_id: str | None = None,
    ) -> dict[str, Any]:
        """Search a window (or a batch) for hotspots, the regions where the model does markedly worse
        than overall; the run, with its hotspots ranked, is stored and returned."""
        body = {"start_time": start_time, "end_time": end_time, "batch_id": batch_id}
        return self.request(
            "POST",
            model_path(model_id, "/hotspots"),
            {k: v.isoformat() if isinstance(v, datetime) else v for k, v in body.items() if v is not None},
        )

    def explain(self, model_id: str, partner_inference_id: str) -> dict[str, Any]:
        """An inference's SHAP attributions, computed by calling the model's endpoint (or as stored)."""
        return self.request(
            "GET", model_path(model_id, f"/inferences/{quote(partner_inference_id, safe='')}/explanation")
        )

    def endpoint_health(self, model_id: str) -> dict[str, Any]:
        """The model's SageMaker endpoint: its state, and each variant's calls, errors and latency of the last hour."""
        return self.request("GET", model_path(model_id, "/endpoint"))

    def status(self, model_id: str) -> dict[str, Any]:
        """A model's ingestion status: rows and files ingested and rejected, duplicates, labelled share."""
        return self.request("GET", model_path(model_id, "/inferences/status"))

    # -- data --------------------------------------------------------------------------------

    def send_inferences(
        self,
        model_id: str,
        data: pd.DataFrame | Iterable[Mapping[str, Any]],
        samples_per_send: int = 10_000,
        progress: bool = True,
    ) -> SendSummary:
        """Send inferences in chunks. `data` is a DataFrame of flat rows (attributes, with optional
        partner_inference_id, inference_timestamp, batch_id and ground truth columns) or Arthur
        records ({inference_data: {...}, ...})."""
        model = self.get_model(model_id)
        truths = {
            a["name"] for a in model["attributes"] if a["stage"] in ("GROUND_TRUTH", "GROUND_TRUTH_CLASS")
        }
        records = _records(data, truths)
        return self._send_chunks(
            "POST", model_path(model_id, "/inferences"), records, samples_per_send, progress
        )

    def update_ground_truth(
        self,
        model_id: str,
        data: pd.DataFrame | Iterable[Mapping[str, Any]],
        samples_per_send: int = 10_000,
        progress: bool = False,
    ) -> SendSummary:
        """Ground truth by partner_inference_id, from a DataFrame (partner_inference_id, the ground
        truth columns, optional ground_truth_timestamp) or Arthur records."""
        rows = _rows(data)
        records = [
            r
            if "ground_truth_data" in r
            else {
                **{k: r[k] for k in ("partner_inference_id", "ground_truth_timestamp") if k in r},
                "ground_truth_data": {k: v for k, v in r.items() if k not in IDENTITY},
            }
            for r in rows
        ]
        return self._send_chunks(
            "PATCH", model_path(model_id, "/inferences"), records, samples_per_send, progress
        )

    def _send_chunks(
        self, method: str, path: str, records: list[dict[str, Any]], size: int, progress: bool
    ) -> SendSummary:
        summary = SendSummary()
        chunks = list(json_chunks(records, size))
        for index, body in enumerate(chunks):
            answer = self.request(method, path, raw=body, content_type="application/json")
            summary.success += answer["counts"]["success"]
            summary.failure += answer["counts"]["failure"]
            for result in answer["results"]:
                summary.partner_inference_ids.append(result["partner_inference_id"])
                if result["status"] >= 300:
                    summary.failures.append(result)
            if progress:
                _bar(index + 1, len(chunks), f"{summary.total:,} sent, {summary.failure:,} failed")
        if progress and chunks:
            print(file=sys.stderr)
        return summary

    def upload(self, model_id: str, data: Any, kind: str = "inferences", batch_id: str | None = None) -> str:
        """Upload a Parquet file (a path, bytes, a DataFrame or an Arrow table) of any size through a
        presigned URL; it is ingested from the drop area. Returns the object's key."""
        body = _parquet_bytes(data)
        if kind == "reference":
            upload = self.request("POST", model_path(model_id, "/reference_data/upload_url"))
        else:
            upload = self.request(
                "POST",
                model_path(model_id, "/inferences/upload_url"),
                {"kind": kind, "batch_id": batch_id},
            )
        request = urllib.request.Request(
            upload["url"], data=body, method="PUT", headers={"Content-Type": "application/octet-stream"}
        )
        with urllib.request.urlopen(request, timeout=max(self.timeout, 600)):
            pass
        return upload["key"]

    def set_reference_data(self, model_id: str, data: Any, close: bool = True) -> dict[str, Any] | None:
        """Reference data of any size, through an upload URL; `close` marks the set uploaded."""
        self.upload(model_id, data, kind="reference")
        if close:
            return self.request("PATCH", model_path(model_id, "/reference_data"), {"status": "uploaded"})
        return None

    def close_batch(
        self, model_id: str, batch_id: str, total_record_count: int | None = None
    ) -> dict[str, Any]:
        """Close a batch (status uploaded), optionally with the rows it should hold; its status."""
        return self.request(
            "PATCH",
            model_path(model_id, f"/batches/{quote(batch_id, safe='')}"),
            {"status": "uploaded", "total_record_count": total_record_count},
        )

    # -- metrics -----------------------------------------------------------------------------

    def query(self, model_id: str, body: Mapping[str, Any], wait: float = QUERY_WAIT_SECONDS) -> pd.DataFrame:
        """Run a query (Arthur's query body) over a model's data; the rows as a DataFrame. A window
        the API runs in Athena may answer 202 (still running): its poll URL is followed until the
        rows come, for at most `wait` seconds (then SageWatchError 408 names the query id)."""
        import pandas as pd

        answer = self.request("POST", model_path(model_id, "/inferences/query"), dict(body))
        return pd.DataFrame(self.wait_for_query(answer, wait)["query_result"])

    def wait_for_query(self, answer: dict[str, Any], wait: float = QUERY_WAIT_SECONDS) -> dict[str, Any]:
        """A query's answer once it has rows: a 202's `poll` URL is asked again (every 1 s, growing
        to 5 s) until it answers them, for at most `wait` seconds."""
        deadline = time.monotonic() + wait
        pause = 1.0
        while "query_result" not in answer and "poll" in answer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SageWatchError(
                    408,
                    f"query {answer['query_id']} still running after {wait:.0f} s: "
                    f"GET {answer['poll']} later, or call wait_for_query again",
                    answer,
                )
            time.sleep(min(pause, left))
            pause = min(pause * 1.5, 5.0)
            answer = self.request("GET", answer["poll"])
        return answer

    def data_drift(
        self, model_id: str, body: Mapping[str, Any], wait: float = QUERY_WAIT_SECONDS
    ) -> pd.DataFrame:
        """Run a data_drift query over a model's data; the rows as a DataFrame (a 202 waited for, as
        query() does)."""
        import pandas as pd

        answer = self.request("POST", model_path(model_id, "/inferences/query/data_drift"), dict(body))
        return pd.DataFrame(self.wait_for_query(answer, wait)["query_result"])

    def create_metric(
        self, model_id: str, name: str, query: Mapping[str, Any], data_drift: bool = False, **fields: Any
    ) -> dict[str, Any]:
        """Create a custom metric from a query (a data_drift query if `data_drift`); the metric."""
        endpoint = model_path(model_id, "/inferences/query") + ("/data_drift" if data_drift else "")
        return self.request(
            "POST",
            f"/api/v4/models/{model_id}/metrics",
            {"name": name, "query": dict(query), "endpoint": endpoint, **fields},
        )

    def list_metrics(self, model_id: str, **filters: Any) -> list[dict[str, Any]]:
        """A model's metrics, default and custom; `filters` go as query parameters."""
        return list(self._pages(f"/api/v4/models/{model_id}/metrics", "metrics", filters))

    # -- alerting ----------------------------------------------------------------------------

    def create_alert_rule(
        self, model_id: str, metric_id: str, bound: str, threshold: float, **fields: Any
    ) -> dict[str, Any]:
        """Create an alert rule on a metric (bound upper or lower, threshold, other RuleSpec fields)."""
        return self.request(
            "POST",
            model_path(model_id, "/alert_rules"),
            {"metric_id": metric_id, "bound": bound, "threshold": threshold, **fields},
        )

    def list_alert_rules(self, model_id: str) -> list[dict[str, Any]]:
        """A model's alert rules, every page."""
        return list(self._pages(model_path(model_id, "/alert_rules"), "data"))

    def update_alert_rule(self, model_id: str, rule_id: str, **changes: Any) -> dict[str, Any]:
        """Change fields of an alert rule; the rule as it now is."""
        return self.request("PATCH", model_path(model_id, f"/alert_rules/{quote(rule_id, safe='')}"), changes)

    def delete_alert_rule(self, model_id: str, rule_id: str) -> None:
        """Delete an alert rule."""
        self.request("DELETE", model_path(model_id, f"/alert_rules/{quote(rule_id, safe='')}"))

    def list_alerts(self, **filters: Any) -> list[dict[str, Any]]:
        """Alerts, newest first, every page; `filters` (model_id, status, ...) go as query parameters."""
        return list(self._pages("/api/v3/alerts", "data", filters))

    def update_alert(self, alert_id: str, status: str) -> dict[str, Any]:
        """Set an alert's status (new, acknowledged or resolved); the alert."""
        return self.request("PATCH", f"/api/v3/alerts/{quote(alert_id, safe='')}", {"status": status})

    def add_notification(self, model_id: str, destination: str, type: str = "email") -> dict[str, Any]:
        """Send a model's alerts to `destination`: an email address, or a webhook URL with type "webhook"."""
        return self.request(
            "POST",
            "/api/v3/alert_notification_configurations",
            {"model_id": model_id, "type": type, "destination": destination},
        )

    def list_notifications(self, model_id: str | None = None) -> list[dict[str, Any]]:
        """Notification configurations, of one model or of all."""
        return list(self._pages("/api/v3/alert_notification_configurations", "data", {"model_id": model_id}))

    def delete_notification(self, config_id: str) -> None:
        """Delete a notification configuration."""
        self.request("DELETE", f"/api/v3/alert_notification_configurations/{config_id}")


class ModelDraft:
    """A model inferred from reference data, not yet registered."""

    def __init__(self, client: SageWatch, spec: ModelSpec, reference: pd.DataFrame | None = None) -> None:
        self.client = client
        self.spec = spec
        self.reference = reference

    def review(self) -> pd.DataFrame:
        """The inferred attributes as a table, to check before save()."""
        return review_table(self.spec)

    def save(self, set_reference_data: bool = False) -> dict[str, Any]:
        """Register the model (and, if asked, upload the reference data it was built from)."""
        model = self.client.register_model(self.spec)
        if set_reference_data and self.reference is not None:
            self.client.set_reference_data(model["id"], self.reference)
        return model


def plot_metric(frame: pd.DataFrame, x: str, y: str, path: str | Path, title: str | None = None) -> Path:
    """A metric over time (a query's result) saved as a PNG; needs matplotlib (`pip install sagewatch[plots]`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 3.5))
    axes.plot(frame[x], frame[y], marker="o")
    axes.set_xlabel(x)
    axes.set_ylabel(y)
    axes.set_title(title or f"{y} by {x}")
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)


def plot_drift(frame: pd.DataFrame, path: str | Path, title: str = "Drift per attribute") -> Path:
    """One drift value per attribute (a data_drift result's single row) as a bar chart PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    row = frame.iloc[0].drop(labels=[c for c in ("rollup", "reason", "window_size") if c in frame.columns])
    values = row.astype(float).sort_values(ascending=False)
    figure, axes = plt.subplots(figsize=(8, max(2.5, 0.3 * len(values))))
    axes.barh(values.index[::-1], values.to_numpy()[::-1])
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)


# A request reaches the api Lambda inside an event of at most 6 MB (6,291,556 bytes): the body is a
# JSON string there, so its quotes and backslashes are escaped once more (headers take a few KB).
MAX_REQUEST_BYTES = 5_800_000


def event_size(body: bytes) -> int:
    """How many bytes `body` takes inside the Lambda event (as an escaped JSON string)."""
    return len(json.dumps(body.decode("utf-8")))


def json_chunks(
    records: list[dict[str, Any]], max_rows: int, max_bytes: int = MAX_REQUEST_BYTES
) -> Iterator[bytes]:
    """The records as JSON request bodies of at most `max_rows` rows and `max_bytes` bytes each,
    measured as the body travels (escaped inside the Lambda event).

    A chunk that comes out too large is cut to the share of it that fits, so every body passes
    Lambda's payload limit whatever the rows hold."""
    start = 0
    while start < len(records):
        count = min(max_rows, len(records) - start)
        body = json.dumps(records[start : start + count], default=_json_default).encode()
        size = event_size(body)
        while size > max_bytes and count > 1:
            count = max(1, int(count * max_bytes / size * 0.95))
            body = json.dumps(records[start : start + count], default=_json_default).encode()
            size = event_size(body)
        if size > max_bytes:
            raise SageWatchError(
                413, f"record {start} alone is {size} bytes; at most {max_bytes} per request"
            )
        yield body
        start += count


def _records(data: Any, truths: set[str]) -> list[dict[str, Any]]:
    """Arthur records from a DataFrame of flat rows (or records given as they are)."""
    rows = _rows(data)
    if rows and "inference_data" in rows[0]:
        return rows
    records = []
    for row in rows:
        record = {k: row[k] for k in IDENTITY if k in row and row[k] is not None}
        record["inference_data"] = {k: v for k, v in row.items() if k not in IDENTITY and k not in truths}
        truth = {k: v for k, v in row.items() if k in truths and v is not None}
        if truth:
            record["ground_truth_data"] = truth
        records.append(record)
    return records


def _rows(data: Any) -> list[dict[str, Any]]:
    if hasattr(data, "to_dict"):
        import pandas as pd

        frame = data.astype(object).where(pd.notna(data), None)
        return frame.to_dict(orient="records")
    return [dict(row) for row in data]


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _parquet_bytes(data: Any) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(data, bytes):
        return data
    if isinstance(data, str | Path):
        return Path(data).read_bytes()
    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _bar(done: int, total: int, text: str) -> None:
    width = 30
    filled = int(width * done / total)
    print(
        f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} chunks, {text}",
        end="",
        file=sys.stderr,
        flush=True,
    )


def _discover(state_dir: Path) -> tuple[str, str]:
    url, token = os.environ.get("SAGEWATCH_URL"), os.environ.get("SAGEWATCH_TOKEN")
    if url and token:
        return url, token
    state = state_dir / "local.json"
    if state.exists():
        try:
            stack = json.loads(state.read_text())
            return url or stack["api_url"], token or stack["token"]
        except (ValueError, TypeError, KeyError):
            raise SageWatchError(
                0, f"{state} is not a state file of `sagewatch local`: remove it and start the stack again"
            ) from None
    raise SageWatchError(
        0,
        "no stack found: set SAGEWATCH_URL and SAGEWATCH_TOKEN (or give SageWatch(url, token)), or run "
        f"`sagewatch local` (which writes {state})",
    )
