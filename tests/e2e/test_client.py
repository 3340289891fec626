"""The Python client against `sagewatch local`, the way a data scientist would use it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score

from sagewatch.client import SageWatch, SageWatchError, plot_drift, plot_metric

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def client(stack: dict[str, Any]) -> SageWatch:
    return SageWatch(state_dir=stack["state_dir"])


def frame(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, rows)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, rows),
            "income": rng.normal(50_000 + shift, 10_000, rows),
            "plan": rng.choice(["basic", "pro"], rows),
            "score": np.clip(rng.normal(0.3 + 0.4 * label, 0.2, rows), 0, 1),
            "churned": label,
        }
    )


@pytest.fixture(scope="module")
def model(client: SageWatch) -> dict[str, Any]:
    draft = client.build_model(
        frame(500, 1), {"score": 1}, partner_model_id="client-churn", ground_truth_column="churned"
    )
    review = draft.review()
    assert list(review["name"]) == ["age", "income", "plan", "score", "churned"]
    assert review.set_index("name").loc["plan", "categories"] == ["basic", "pro"]
    model = draft.save(set_reference_data=True)
    assert model["partner_model_id"] == "client-churn"
    return model


def wait_for(read, done, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.5)
        value = read()
    return value


def test_models_by_id_partner_id_and_list(client: SageWatch, model: dict[str, Any]) -> None:
    assert client.get_model(model["id"])["id"] == model["id"]
    assert client.get_model(partner_model_id="client-churn")["id"] == model["id"]
    assert model["id"] in [m["id"] for m in client.list_models()]


def test_send_in_chunks_with_a_summary_of_failures(client: SageWatch, model: dict[str, Any], capsys) -> None:
    data = frame(250, 2)
    data["partner_inference_id"] = [f"c-{i}" for i in range(250)]
    data["inference_timestamp"] = [
        datetime(2026, 11, 24, 10, tzinfo=UTC) + timedelta(minutes=i) for i in range(250)
    ]
    data = data.astype({"age": object})
    data.loc[7, "age"] = "seventy"
    summary = client.send_inferences(model["id"], data.drop(columns=["churned"]), samples_per_send=100)
    assert (summary.success, summary.failure, summary.total) == (249, 1, 250)
    assert summary.failures[0]["partner_inference_id"] == "c-7"
    assert summary.failures[0]["message"] == "age: 'seventy' is not an INTEGER"
    assert "3/3 chunks" in capsys.readouterr().err  # the progress bar
    labels = data[["partner_inference_id", "churned"]]
    assert client.update_ground_truth(model["id"], labels).failure == 0
    status = client.status(model["id"])
    assert (status["total"], status["with_ground_truth"]) == (249, 249)

    result = client.query(model["id"], {"select": [{"function": "accuracyRate"}, {"function": "count"}]})
    kept = data.drop(index=7)
    expected = accuracy_score(kept["churned"], (kept["score"] >= 0.5).astype(int))
    assert result.loc[0, "accuracyRate"] == pytest.approx(expected)
    assert result.loc[0, "count"] == 249


def test_uploads_of_any_size_go_through_upload_urls(client: SageWatch, model: dict[str, Any]) -> None:
    data = frame(300, 3, shift=30_000).drop(columns=["churned"])
    data["batch_id"] = "upload-1"
    data["inference_timestamp"] = datetime(2026, 11, 24, 12, tzinfo=UTC)
    key = client.upload(model["id"], data, kind="inferences", batch_id="upload-1")
    assert key.startswith(f"drops/{model['id']}/inferences/upload-1/")
    status = wait_for(lambda: client.status(model["id"]), lambda s: s["total"] >= 549)
    assert status["total"] == 549


def test_drift_as_a_dataframe_and_plots(client: SageWatch, model: dict[str, Any], tmp_path: Path) -> None:
    drift = client.data_drift(
        model["id"],
        {
            "properties": ["income", "age"],
            "metric": "PSI",
            "target": {
                "source": "inference",
                "filter": [{"property": "batch_id", "comparator": "eq", "value": "upload-1"}],
            },
        },
    )
    assert drift.loc[0, "income"] > 1 > 0.3 > drift.loc[0, "age"]
    series = client.query(
        model["id"],
        {
            "select": [
                {"function": "roundTimestamp", "alias": "hour", "parameters": {"time_interval": "hour"}},
                {"function": "count"},
            ],
            "group_by": [{"alias": "hour"}],
        },
    )
    assert list(series.columns) == ["hour", "count"]
    metric_png = plot_metric(series, "hour", "count", tmp_path / "count.png")
    drift_png = plot_drift(drift, tmp_path / "drift.png")
    for png in (metric_png, drift_png):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000


def test_metrics_rules_alerts_and_notifications(client: SageWatch, model: dict[str, Any]) -> None:
    metric = client.create_metric(
        model["id"],
        "Pro share",
        {
            "select": [
                {"function": "rate", "parameters": {"property": "plan", "comparator": "eq", "value": "pro"}}
            ]
        },
    )
    assert metric["name"] in [m["name"] for m in client.list_metrics(model["id"], default=False)]
    rule = client.create_alert_rule(model["id"], metric["id"], "upper", 0.9, lookback_period=60)
    assert client.update_alert_rule(model["id"], rule["id"], threshold=0.95)["threshold"] == 0.95
    # the scheduler may add default drift rules at any time; the user's own rules are just this one
    rules = client.list_alert_rules(model["id"])
    assert [r["id"] for r in rules if not r["is_default"]] == [rule["id"]]
    client.delete_alert_rule(model["id"], rule["id"])
    config = client.add_notification(model["id"], "team@example.com")
    assert [c["id"] for c in client.list_notifications(model["id"])] == [config["id"]]
    client.delete_notification(config["id"])
    assert [a for a in client.list_alerts(model_id=model["id"]) if a["alert_rule_id"] == rule["id"]] == []


def test_errors_carry_the_status_and_the_servers_message(client: SageWatch) -> None:
    with pytest.raises(SageWatchError) as caught:
        client.get_model(partner_model_id="nobody")
    assert caught.value.status == 404
    assert caught.value.message == "no model with partner_model_id 'nobody'"
    with pytest.raises(SageWatchError) as caught:
        client.query("whatever", {"select": []})
    assert caught.value.status == 400
