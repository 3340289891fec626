"""The arthurai SDK (3.33.3), unchanged but for its url and key, works against `sagewatch local`.

The SDK pins pandas 1.5 and numpy<2, so it lives in its own virtualenv (build/compat/, made on first
use from PyPI); arthurai_flow.py runs there as a user's script would. What the SDK returned is
checked here against values computed independently (scikit-learn, numpy) from the same DataFrames.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, mean_squared_error
from tests.compat.data import CompatData, write_data
from tests.compat.venvs import compat_python
from tests.local_stack import clean_env, cli

pytestmark = pytest.mark.e2e

SDK = "arthurai==3.33.3"


@pytest.fixture(scope="module")
def sdk_python() -> Path:
    """The SDK's own interpreter (created once, then reused from build/compat/)."""
    return compat_python("arthurai-3.33.3", [SDK, "numpy<2"])


@pytest.fixture(scope="module")
def flow(sdk_python: Path, stack: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """Run the whole SDK flow once with a writer token; (data sent, what the SDK returned)."""
    created = cli(stack, "token", "create", "--role", "writer", "--description", "arthurai sdk")
    token = re.search(r"token: (\S+)", created)[1]
    data = write_data(tmp_path_factory.mktemp("arthurai"))
    done = subprocess.run(
        [
            str(sdk_python),
            str(Path(__file__).with_name("arthurai_flow.py")),
            stack["api_url"],
            token,
            str(data.directory),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=clean_env(),
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return data, json.loads((data.directory / "results.json").read_text())


def labelled_binary(data: CompatData) -> pd.DataFrame:
    """Every binary inference that got ground truth, with its label."""
    stream = data.frames["binary_stream"].merge(data.frames["binary_ground_truth"], on="partner_inference_id")
    bulk = data.frames["binary_bulk"].merge(
        data.frames["binary_bulk_ground_truth"], on="partner_inference_id"
    )
    return pd.concat([stream.assign(batch_id=None), bulk.assign(batch_id="bulk-1")], ignore_index=True)


def all_binary(data: CompatData) -> pd.DataFrame:
    return pd.concat(
        [data.frames["binary_stream"], data.frames["binary_stream_no_ids"], data.frames["binary_bulk"]],
        ignore_index=True,
    )


def test_registration_infers_the_schema_and_the_model_is_found_by_partner_id(flow: tuple) -> None:
    _, results = flow
    assert results["binary_review"] == {
        "x1": "PIPELINE_INPUT",
        "x2": "PIPELINE_INPUT",
        "color": "PIPELINE_INPUT",
        "label": "GROUND_TRUTH_CLASS",
        "pred_0": "PREDICTED_VALUE",
        "pred_1": "PREDICTED_VALUE",
    }
    fetched = results["binary_fetched"]
    assert fetched["id"] == results["binary_id"]
    assert fetched["status"].endswith("Ready")
    assert fetched["attributes"] == sorted(["x1", "x2", "color", "label", "pred_0", "pred_1"])
    assert fetched["positive"] == ["pred_1"]


def test_every_inference_sent_is_counted_once(flow: tuple) -> None:
    data, results = flow
    assert results["no_id_counts"] == {"success": 40, "failure": 0, "total": 40}
    assert results["bulk_counts"] == {"success": 500, "failure": 0, "total": 500}
    assert results["bulk_gt_counts"] == {"success": 500, "failure": 0, "total": 500}
    assert results["count"] == [{"count": len(all_binary(data))}]
    labelled = len(labelled_binary(data))
    assert results["labelled_count"] == [{"count": labelled}]
    assert results["not_null_count"] == [{"count": labelled}]


def test_accuracy_matches_scikit_learn_overall_and_per_batch(flow: tuple) -> None:
    data, results = flow
    labelled = labelled_binary(data)
    predicted = (labelled["pred_1"] >= 0.5).astype(int)
    (overall,) = results["accuracy"]
    assert overall["accuracyRate"] == pytest.approx(accuracy_score(labelled["label"], predicted))
    assert overall["labelled_count"] == len(labelled)
    by_batch = {row["batch_id"]: row["accuracyRate"] for row in results["accuracy_by_batch"]}
    for batch_id, rows in labelled.groupby(labelled["batch_id"].fillna("__none__")):
        key = None if batch_id == "__none__" else batch_id
        expected = accuracy_score(rows["label"], (rows["pred_1"] >= 0.5).astype(int))
        assert by_batch[key] == pytest.approx(expected)


def test_hourly_time_series_counts_match(flow: tuple) -> None:
    data, results = flow
    hours = all_binary(data)["inference_timestamp"].dt.floor("h")
    expected = [
        {"hour": hour.isoformat(), "count": int(count)}
        for hour, count in hours.value_counts().sort_index().items()
    ]
    assert results["hourly_counts"] == expected


def _psi(base: np.ndarray, target: np.ndarray, bins: int) -> float:
    """PSI over the base's quantile bins, computed by hand (no bin is empty at these sizes)."""
    edges = np.quantile(base, np.linspace(0, 1, bins + 1))[1:-1]
    base_share = np.bincount(np.searchsorted(edges, base, side="right"), minlength=bins) / len(base)
    target_share = np.bincount(np.searchsorted(edges, target, side="right"), minlength=bins) / len(target)
    return float(np.sum((target_share - base_share) * np.log(target_share / base_share)))


def _categorical_psi(base: pd.Series, target: pd.Series) -> float:
    base_share = base.value_counts(normalize=True)
    target_share = target.value_counts(normalize=True).reindex(base_share.index)
    return float(np.sum((target_share - base_share) * np.log(target_share / base_share)))


def test_drift_against_the_reference_matches_a_hand_computed_psi(flow: tuple) -> None:
    data, results = flow
    (row,) = results["drift"]
    reference, inferences = data.frames["binary_reference"], all_binary(data)
    assert row["x1"] == pytest.approx(
        _psi(reference["x1"].to_numpy(), inferences["x1"].to_numpy(), 10), rel=1e-6
    )
    assert row["color"] == pytest.approx(_categorical_psi(reference["color"], inferences["color"]), rel=1e-6)
    assert row["x1"] > 0.1 > row["color"]  # x1 was shifted in the stream; color was not
    hours = sorted({r["rollup"] for r in results["drift_hourly"]})
    assert hours == [r["hour"] for r in results["hourly_counts"]]


def test_regression_rmse_matches_scikit_learn(flow: tuple) -> None:
    data, results = flow
    joined = data.frames["regression_stream"].merge(
        data.frames["regression_ground_truth"], on="partner_inference_id"
    )
    expected = mean_squared_error(joined["actual"], joined["predicted"]) ** 0.5
    assert results["rmse"] == [{"rmse": pytest.approx(expected), "labelled_count": len(joined)}]


def test_metrics_rules_and_alerts_round_trip(flow: tuple) -> None:
    data, results = flow
    assert {"compat accuracy", "compat mean prediction"} <= set(results["metrics"])
    assert {"accuracy below 99%", "mean prediction above 0.1"} <= set(results["rules"])
    assert results["accuracy_rule"] == {"name": "accuracy below 99%", "threshold": 0.99, "bound": "lower"}
    assert results["updated_threshold"] == 0.995
    assert results["alerts"], "the mean-prediction rule raised no alert within 90 s"
    inferences = all_binary(data)
    for alert in results["alerts"]:
        assert alert["rule"] == "mean prediction above 0.1"
        start, end = pd.Timestamp(alert["window_start"]), pd.Timestamp(alert["window_end"])
        inside = inferences[
            (inferences["inference_timestamp"] >= start) & (inferences["inference_timestamp"] < end)
        ]
        assert alert["metric_value"] == pytest.approx(inside["pred_1"].mean())
    assert results["acknowledged"] == "acknowledged"
    assert results["acknowledged_listed"] == ["acknowledged"]


def test_enrichments_are_read_and_set_through_the_sdk(flow: tuple) -> None:
    _, results = flow
    # anomaly detection is on by itself once the reference set exists; hotspots wait to be enabled
    before = results["enrichments_before"]
    assert before["anomaly_detection"] == {"enabled": True, "status": "Ready", "config": {}}
    assert before["hotspots"]["enabled"] is False
    after = results["enrichments_after"]
    assert after["hotspots"]["enabled"] is True and after["hotspots"]["status"] == "Ready"
    assert results["hotspots_enrichment"] == after["hotspots"]
    # every status is one the SDK's enrichment waiter knows
    assert {e["status"] for e in after.values()} <= {"Disabled", "Pending", "Training", "Ready", "Failed"}


def test_find_hotspots_answers_in_arthurs_shape(flow: tuple) -> None:
    _, results = flow
    found = results["hotspots_found"]
    assert isinstance(found["data"], list)
    for hotspot in found["data"]:  # hotspots are the regions doing worse than the threshold asked
        assert hotspot["accuracy"] < 0.99


@pytest.mark.parametrize(
    ("call", "says"),
    [
        ("explainability_package", "SageMaker endpoint"),
        ("explainability_no_endpoint", "endpoint_name"),
        ("explanation_not_enabled", "explainability"),
    ],
)
def test_explainability_sagewatch_cannot_run_is_a_400_saying_what_to_send(
    flow: tuple, call: str, says: str
) -> None:
    _, results = flow
    refused = results[call]
    assert refused["type"] == "ResponseClientError", refused
    assert refused["message"].startswith("400") and says in refused["message"], refused
