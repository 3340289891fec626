"""A user's arthurai 3.33.3 code, pointed at sagewatch: run in the SDK's own virtualenv.

    python arthurai_flow.py <api url> <token> <data dir>

Reads the DataFrames test_arthurai_sdk.py wrote to <data dir>, performs the whole flow with the SDK
(register, send, label, bulk files, query, drift, metrics, alert rules, alerts) and writes what the
SDK returned to <data dir>/results.json; the test checks those against its own computations.
Only the SDK's public calls are used, as a user's script would.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from arthurai import ArthurAI
from arthurai.common.constants import Enrichment, InputType, OutputType
from arthurai.common.exceptions import ArthurError
from arthurai.core.alerts import AlertRuleBound, AlertRuleSeverity, AlertStatus


def frame(name: str) -> pd.DataFrame:
    return pd.read_parquet(DATA / f"{name}.parquet")


def records(rows: list[dict]) -> list[dict]:
    """Query results as plain JSON (timestamps as strings, as the API sent them)."""
    return json.loads(json.dumps(rows, default=str))


def refused(call) -> dict:
    """What the SDK raised for a call sagewatch cannot honour (it must be a 4xx, never a 5xx)."""
    try:
        call()
    except ArthurError as error:
        return {"type": type(error).__name__, "message": str(error)}
    return {"type": None, "message": "accepted"}


URL, TOKEN, DATA = sys.argv[1], sys.argv[2], Path(sys.argv[3])
config = json.loads((DATA / "config.json").read_text())
results: dict = {}

# -- connect: the only change from a user's Arthur code is the url and key (and http locally) -----
arthur = ArthurAI(url=URL, access_key=TOKEN, allow_insecure=URL.startswith("http://"))

# -- a binary classifier built from its reference DataFrame -------------------------------------
binary = arthur.model(
    partner_model_id=config["binary_partner_id"],
    display_name="compat binary",
    input_type=InputType.Tabular,
    output_type=OutputType.Multiclass,
)
reference = frame("binary_reference")
binary.build(
    reference,
    pred_to_ground_truth_map={"pred_0": 0, "pred_1": 1},
    positive_predicted_attr="pred_1",
    ground_truth_column="label",
)
review = binary.review()
results["binary_review"] = {row["name"]: row["stage"] for row in review.to_dict("records")}
results["binary_id"] = binary.save()
fetched = arthur.get_model(config["binary_partner_id"], id_type="partner_model_id")
results["binary_fetched"] = {
    "id": fetched.id,
    "status": str(fetched.status),
    "attributes": sorted(a.name for a in fetched.attributes),
    "positive": [a.name for a in fetched.attributes if a.is_positive_predicted_attribute],
}

# -- streaming inferences with ids, then without (the SDK generates them), ground truth later ----
with_ids = frame("binary_stream")
binary.send_inferences(with_ids)
without_ids = frame("binary_stream_no_ids")
sent = binary.send_inferences(without_ids)
results["no_id_counts"] = sent["counts"]
binary.update_inference_ground_truths(frame("binary_ground_truth"))

# -- bulk Parquet: inferences in a batch, their ground truth -------------------------------------
bulk_response, _ = binary.send_bulk_inferences(batch_id="bulk-1", data=frame("binary_bulk"))
results["bulk_counts"] = bulk_response["counts"]
results["bulk_gt_counts"] = binary.send_bulk_ground_truths(data=frame("binary_bulk_ground_truth"))["counts"]

# -- queries --------------------------------------------------------------------------------------
results["count"] = records(binary.query({"select": [{"function": "count"}]}))
results["accuracy"] = records(
    binary.query({"select": [{"function": "accuracyRate", "parameters": {"threshold": 0.5}}]})
)
results["accuracy_by_batch"] = records(
    binary.query(
        {
            "select": [{"property": "batch_id"}, {"function": "accuracyRate"}],
            "group_by": [{"property": "batch_id"}],
        }
    )
)
results["hourly_counts"] = records(
    binary.query(
        {
            "select": [
                {"function": "count"},
                {
                    "function": "roundTimestamp",
                    "alias": "hour",
                    "parameters": {"property": "inference_timestamp", "time_interval": "hour"},
                },
            ],
            "group_by": [{"alias": "hour"}],
            "order_by": [{"alias": "hour", "direction": "asc"}],
        }
    )
)
results["labelled_count"] = records(binary.query({"select": [{"function": "count"}], "from": "ground_truth"}))
results["not_null_count"] = records(
    binary.query(
        {"select": [{"function": "count"}], "filter": [{"property": "label", "comparator": "NotNull"}]}
    )
)
drift_query = {
    "properties": ["x1", "color"],
    "num_bins": 10,
    "base": {"source": "reference"},
    "target": {"source": "inference"},
    "metric": "PSI",
}
results["drift"] = records(binary.query(drift_query, query_type="drift"))
results["drift_hourly"] = records(binary.query({**drift_query, "rollup": "hour"}, query_type="drift"))

# -- a regression model ---------------------------------------------------------------------------
regression = arthur.model(
    partner_model_id=config["regression_partner_id"],
    input_type=InputType.Tabular,
    output_type=OutputType.Regression,
)
regression.build(frame("regression_reference"), pred_to_ground_truth_map={"predicted": "actual"})
results["regression_id"] = regression.save()
regression.send_inferences(frame("regression_stream"))
regression.update_inference_ground_truths(frame("regression_ground_truth"))
results["rmse"] = records(regression.query({"select": [{"function": "rmse"}]}))

# -- metrics, alert rules, alerts -----------------------------------------------------------------
metric_id = binary.create_metric(
    name="compat accuracy",
    query={"select": [{"function": "accuracyRate", "parameters": {"threshold": 0.5}}]},
)
results["metrics"] = sorted(m.name for m in binary.get_metrics())
accuracy_rule = binary.create_alert_rule(
    metric_id=metric_id,
    bound=AlertRuleBound.Lower,
    threshold=0.99,
    severity=AlertRuleSeverity.Warning,
    name="accuracy below 99%",
    lookback_period=60,
)
results["accuracy_rule"] = {
    "name": accuracy_rule.name,
    "threshold": accuracy_rule.threshold,
    "bound": str(accuracy_rule.bound),
}
accuracy_rule.threshold = 0.995
results["updated_threshold"] = binary.update_alert_rule(accuracy_rule).threshold
# accuracy needs labels, and its windows wait for them; mean prediction can fire at once
mean_metric_id = binary.create_metric(
    name="compat mean prediction",
    query={"select": [{"function": "avg", "parameters": {"property": "pred_1"}}]},
)
mean_rule = binary.create_alert_rule(
    metric_id=mean_metric_id,
    bound=AlertRuleBound.Upper,
    threshold=0.1,
    severity=AlertRuleSeverity.Critical,
    name="mean prediction above 0.1",
    lookback_period=60,
)
results["metrics"] = sorted(m.name for m in binary.get_metrics())
results["rules"] = sorted(r.name for r in binary.get_alert_rules())

alerts = []
deadline = time.monotonic() + 90  # the local runtime evaluates every few seconds
while not alerts and time.monotonic() < deadline:
    time.sleep(1)
    alerts = binary.get_alerts(alert_rule_id=mean_rule.id)
results["alerts"] = [
    {
        "metric_value": a.metric_value,
        "status": a.status,
        "rule": a.alert_rule.name,
        "window_start": a.window_start,
        "window_end": a.window_end,
    }
    for a in alerts
]
if alerts:
    results["acknowledged"] = binary.update_alert(AlertStatus.Acknowledged, alerts[0].id).status
    results["acknowledged_listed"] = [
        a.status for a in binary.get_alerts(status="acknowledged") if a.id == alerts[0].id
    ]

# -- enrichments: anomaly detection on by itself, hotspots, explainability by the model's endpoint -
results["enrichments_before"] = binary.get_enrichments()
binary.enable_hotspots()
binary.update_enrichment(Enrichment.AnomalyDetection, True)
results["enrichments_after"] = binary.get_enrichments()
results["hotspots_enrichment"] = binary.get_enrichment(Enrichment.Hotspots)
results["hotspots_found"] = binary.find_hotspots(metric="accuracy", threshold=0.99, batch_id="bulk-1")

# explainability as Arthur runs it (the model's code uploaded) cannot run here; the 400 says what to send
project = DATA / "explainer_project"
project.mkdir(exist_ok=True)
(project / "entrypoint.py").write_text(  # the binary model of data.py: pred_1 from x1 and x2
    "import numpy as np\n\n"
    "def predict(x):\n"
    "    x = np.asarray(x)\n"
    "    p = 1 / (1 + np.exp(-(1.5 * x[:, 0].astype(float) + x[:, 1].astype(float) - 0.5)))\n"
    "    return np.stack([1 - p, p], axis=1)\n"
)
(project / "requirements.txt").write_text(f"numpy=={np.__version__}\n")
results["explainability_package"] = refused(
    lambda: binary.enable_explainability(
        df=reference.head(50),
        project_directory=str(project),
        user_predict_function_import_path="entrypoint",
        requirements_file="requirements.txt",
        python_version="3.8",
    )
)
results["explainability_no_endpoint"] = refused(
    lambda: binary.update_enrichment(Enrichment.Explainability, True, {"explanation_algo": "shap"})
)
results["explanation_not_enabled"] = refused(
    lambda: binary.explain_inference(config["explained_id"], algorithm="shap")
)

(DATA / "results.json").write_text(json.dumps(results, indent=2, default=str))
print(json.dumps({k: v for k, v in results.items() if k in ("binary_id", "regression_id")}))
