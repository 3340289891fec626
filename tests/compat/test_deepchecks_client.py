"""deepchecks-client 0.19.2, unchanged but for host and token, works against `sagewatch local`.

The client pins scikit-learn<1.6, pandas<2.2 and numpy<2, so it lives in its own virtualenv
(build/compat/, made on first use from PyPI); deepchecks_flow.py runs there as a user's script
would. Its results are checked here against scikit-learn, and sagewatch's drift scores against the
deepchecks library's own (computed in that virtualenv on the same data).
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from sklearn.metrics import accuracy_score
from tests.compat.venvs import compat_python
from tests.local_stack import clean_env, cli, http

pytestmark = pytest.mark.e2e

CLIENT = ["deepchecks-client==0.19.2", "scikit-learn<1.6", "pandas<2.2", "numpy<2", "category_encoders<2.7"]
DEFAULT_CHECKS = [
    "Feature Drift",
    "Label Drift",
    "Mixed Nulls",
    "New Category Train-Test",
    "New Label Train-Test",
    "Percent Of Nulls",
    "Performance",
    "Prediction Drift",
    "String Mismatch",
]


@pytest.fixture(scope="module")
def client_python() -> Path:
    """The client's own interpreter (created once, then reused from build/compat/)."""
    return compat_python("deepchecks-client-0.19.2", CLIENT)


@pytest.fixture(scope="module")
def writer(stack: dict[str, Any]) -> str:
    return re.search(r"token: (\S+)", cli(stack, "token", "create", "--role", "writer"))[1]


@pytest.fixture(scope="module")
def flow(
    client_python: Path,
    stack: dict[str, Any],
    writer: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the user's script once; (what it sent, what the client returned)."""
    out = tmp_path_factory.mktemp("deepchecks")
    done = subprocess.run(
        [
            str(client_python),
            str(Path(__file__).with_name("deepchecks_flow.py")),
            stack["api_url"],
            writer,
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=clean_env(),
        cwd=out,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((out / "sent.json").read_text()), json.loads((out / "results.json").read_text())


def test_the_users_flow_gets_back_what_it_sent(flow: tuple) -> None:
    sent, results = flow
    assert set(results["schema_features"].values()) == {"numeric"} and len(results["schema_features"]) == 30
    assert results["reference_rows"] == 300
    assert results["statistics"] == {"num_samples": len(sent["ids"]), "num_labeled_samples": sent["labelled"]}
    assert results["production_ids"] == sorted(sent["ids"])
    assert results["checks"] == DEFAULT_CHECKS
    assert list(results["versions"]) == ["v1"]


def test_one_model_in_both_vocabularies(flow: tuple, stack: dict[str, Any]) -> None:
    sent, results = flow
    status, model = http(stack, "GET", f"/api/v3/models/{results['model_id']}", stack["token"])
    assert status == 200
    assert (model["partner_model_id"], model["output_type"]) == ("breast-cancer", "BINARY")
    assert (model["alerts_delay_seconds"], model["alerts_delay_labels_ratio"]) == (3600, 0.5)
    labels = {a["label"]: a["stage"] for a in model["attributes"] if a["label"]}
    assert labels["mean radius"] == "PIPELINE_INPUT"
    status, body = http(
        stack,
        "POST",
        f"/api/v3/models/{results['model_id']}/inferences/query",
        stack["token"],
        {"select": [{"function": "accuracyRate"}]},
    )
    assert status == 200
    labelled = sent["labelled"]
    expected = accuracy_score(sent["labels"][:labelled], sent["predictions"][:labelled])
    assert body["query_result"][0]["accuracyRate"] == pytest.approx(expected)
    assert body["query_result"][0]["labelled_count"] == labelled


def _drift(stack: dict[str, Any], model_id: str, body: dict[str, Any]) -> dict[str, Any]:
    status, found = http(
        stack, "POST", f"/api/v3/models/{model_id}/inferences/query/data_drift", stack["token"], body
    )
    assert status == 200, found
    return found["query_result"][0]


def test_drift_scores_are_deepchecks_own(flow: tuple, stack: dict[str, Any]) -> None:
    _, results = flow
    model_id = results["model_id"]
    status, metrics = http(stack, "GET", f"/api/v3/models/{model_id}/metrics?default=false", stack["token"])
    assert status == 200
    feature_drift = next(m for m in metrics["metrics"] if m["name"] == "Aggregated Feature Drift")
    ours = _drift(stack, model_id, feature_drift["query"])
    theirs = results["deepchecks"]
    # KS D at 1,000 quantile edges of the reference: within one bin's share (1/300 here) of exact
    assert ours["aggregate"] == pytest.approx(theirs["feature_drift"]["L3 Weighted Drift Score"], abs=1 / 300)
    for column, value in theirs["feature_drift_per_feature"].items():
        assert ours[column.replace(" ", "_")] == pytest.approx(value, abs=1 / 300), column
    label = _drift(stack, model_id, {"properties": ["_dc_label"], "metric": "DriftScore"})
    assert label["_dc_label"] == pytest.approx(theirs["label_drift"]["Label Drift Score"], rel=1e-9)


def test_a_default_rule_alerts_on_the_injected_drift(flow: tuple, stack: dict[str, Any]) -> None:
    _, results = flow
    deadline = time.monotonic() + 90  # the local runtime evaluates every few seconds
    fired: list[str] = []
    while time.monotonic() < deadline and "Aggregated Feature Drift > 0.15" not in fired:
        time.sleep(1)
        _, alerts = http(stack, "GET", f"/api/v3/alerts?model_id={results['model_id']}", stack["token"])
        fired = [a["rule_name"] for a in alerts["data"]]
    assert "Aggregated Feature Drift > 0.15" in fired
    assert "Prediction Drift > 0.2" in fired


def test_bad_input_gets_the_clients_error_path_and_loses_nothing(flow: tuple) -> None:
    sent, results = flow
    errors = results["errors"]
    assert errors["missing_columns"][0] == 400 and errors["missing_columns"][1]["field"] == "area error"
    assert errors["wrong_type"][0] == 400
    assert errors["wrong_type"][1]["field"] == "mean radius"
    assert "'large' is not a FLOAT" in errors["wrong_type"][1]["message"]
    assert errors["unknown_version"] == "Model breast-cancer does not have a version with name v9."
    assert errors["unknown_version_id"] == 404
    assert results["count_after_errors"] == {"monitor_count": len(sent["ids"]), "reference_count": 300}


def test_checks_say_how_they_are_evaluated(flow: tuple, stack: dict[str, Any], writer: str) -> None:
    _, results = flow
    basic = {"Authorization": f"Basic {writer}"}
    status, checks = http(stack, "GET", f"/api/v1/models/{results['model_id']}/checks", None, headers=basic)
    assert status == 200
    by_name = {c["name"]: c["sagewatch"] for c in checks}
    assert by_name["Feature Drift"]["evaluated"] is True
    assert by_name["Mixed Nulls"] == {"evaluated": False, "reason": by_name["Mixed Nulls"]["reason"]}
    assert "null" in by_name["Mixed Nulls"]["reason"]
    assert by_name["New Category Train-Test"]["evaluated"] is False  # no categorical features


def test_basic_tokens_keep_their_roles(stack: dict[str, Any]) -> None:
    reader = re.search(r"token: (\S+)", cli(stack, "token", "create", "--role", "reader"))[1]
    headers = {"Authorization": f"Basic {reader}"}
    assert http(stack, "GET", "/api/v1/say-hello", None, headers=headers)[0] == 200
    status, body = http(
        stack, "POST", "/api/v1/models", None, {"name": "x", "task_type": "binary"}, headers=headers
    )
    assert status == 403 and "needs a writer token" in body["message"]
    encoded = base64.b64encode(reader.encode()).decode()  # Basic user:password is not a sagewatch token
    assert (
        http(stack, "GET", "/api/v1/say-hello", None, headers={"Authorization": f"Basic {encoded}"})[0] == 401
    )


def test_versions_keep_one_schema_and_errors_name_the_field(stack: dict[str, Any], writer: str) -> None:
    basic = {"Authorization": f"Basic {writer}"}

    def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return http(stack, method, f"/api/v1{path}", None, body, headers=basic)

    status, created = call("POST", "/models", {"name": "dc-regression", "task_type": "regression"})
    assert status == 200
    model_id = created["id"]
    assert call("POST", "/models", {"name": "dc-regression", "task_type": "binary"})[0] == 409
    assert call("GET", "/models/no-such-model?identifier_kind=name")[0] == 404
    status, body = call(
        "POST",
        f"/models/{model_id}/version",
        {"name": "v1", "features": {"x": "numeric"}, "classes": ["a", "b"]},
    )
    assert (status, body["field"]) == (400, "classes")
    status, body = call(
        "POST", f"/models/{model_id}/version", {"name": "v1", "features": {"x": "array_float"}}
    )
    assert (status, body["field"]) == (400, "features.x")
    assert (
        call(
            "POST",
            f"/models/{model_id}/version",
            {"name": "v1", "features": {"size (cm)": "numeric", "n": "integer"}},
        )[0]
        == 200
    )
    status, body = call("POST", f"/models/{model_id}/version", {"name": "v2", "features": {"z": "numeric"}})
    assert (status, body["field"]) == (409, "features")
    status, model = http(stack, "GET", f"/api/v3/models/{model_id}", stack["token"])
    assert {(a["name"], a["label"]) for a in model["attributes"] if a["stage"] == "PIPELINE_INPUT"} == {
        ("size__cm_", "size (cm)"),
        ("n", "n"),
    }
    version = call("GET", "/models/dc-regression/model-versions/v1")[1]
    sample = {
        "_dc_sample_id": "s1",
        "_dc_time": "2026-11-24T10:00:00Z",
        "size (cm)": 1.5,
        "n": 2,
        "_dc_prediction": "big",
    }
    status, body = call("POST", f"/model-versions/{version['id']}/data", [sample])
    assert (status, body["field"]) == (400, "_dc_prediction")
    status, body = call("POST", f"/model-versions/{version['id']}/data", [{**sample, "_dc_prediction": 2.5}])
    assert status == 200 and body["stored"] == 1
    assert call("GET", f"/model-versions/{version['id']}/count-samples")[1]["monitor_count"] == 1
