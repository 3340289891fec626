"""A Deepchecks user's production-data script, run unchanged (but for host and token) against sagewatch.

Runs inside the deepchecks-client virtualenv: `python deepchecks_flow.py <host> <token> <out_dir>`.
The data is scikit-learn's breast cancer dataset (shipped in the scikit-learn wheel): the reference
is its first 300 rows, production the rest, half of it with a feature shifted. What the client
returned goes to <out_dir>/results.json, what was sent to <out_dir>/sent.json, for the test to check.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from deepchecks.tabular import Dataset
from deepchecks_client import DeepchecksClient, create_schema, read_schema
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

warnings.filterwarnings("ignore")
host, token, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
results: dict = {}

# -- the model and its data (a user's own pipeline) -------------------------------------------------
bunch = load_breast_cancer(as_frame=True)
frame = bunch.frame.rename(columns={"target": "label"})
frame["label"] = frame["label"].map({0: "malignant", 1: "benign"})
features = list(bunch.feature_names)
reference, production = frame.iloc[:300].reset_index(drop=True), frame.iloc[300:].reset_index(drop=True)
classifier = LogisticRegression(max_iter=5000).fit(reference[features], reference["label"])
classes = sorted(classifier.classes_)  # ["benign", "malignant"]
importance = dict(zip(features, np.abs(classifier.coef_[0]) / np.abs(classifier.coef_[0]).sum(), strict=True))

reference_dataset = Dataset(reference, label="label", cat_features=[], features=features)
create_schema(reference_dataset, schema_output_file=str(out / "schema.yaml"))
schema = read_schema(str(out / "schema.yaml"))
results["schema_features"] = schema["features"]

# -- the Deepchecks client, as in Deepchecks' quickstart ------------------------------------------
client = DeepchecksClient(host=host, token=token)
model = client.get_or_create_model(
    "breast-cancer",
    task_type="binary",
    description="logistic regression on the breast cancer dataset",
    create_model_defaults=True,
    alerts_delay_labels_ratio=0.5,
    alerts_delay_seconds=3600,
    monitoring_frequency="hour",
)
version = model.version("v1", schema=schema, feature_importance=importance, model_classes=classes)
version.upload_reference(
    reference_dataset,
    predictions=classifier.predict(reference[features]),
    prediction_probas=classifier.predict_proba(reference[features]),
)
results["reference_rows"] = len(version.get_reference_data())

# production: samples 10 s apart within the last complete hour (the hourly monitors' window);
# the second half drifts
hour = (int(time.time()) // 3600 - 1) * 3600
production.loc[len(production) // 2 :, "mean radius"] += 8.0
production.loc[len(production) // 2 :, "worst radius"] += 12.0
predictions = classifier.predict(production[features])
probabilities = classifier.predict_proba(production[features])
ids = [f"bc-{i}" for i in range(len(production))]
timestamps = [hour + 10 * i for i in range(len(production))]
batch = len(production) - 5
version.log_batch(
    sample_ids=np.array(ids[:batch]),
    data=production.loc[: batch - 1, features],
    predictions=predictions[:batch],
    prediction_probas=probabilities[:batch],
    timestamps=np.array(timestamps[:batch]),
)
for i in range(batch, len(production)):  # the last few one at a time, as a service would
    version.log_sample(
        values=production.loc[i, features].to_dict(),
        sample_id=ids[i],
        prediction=predictions[i],
        prediction_proba=probabilities[i],
        timestamp=timestamps[i],
    )
version.send()

labelled = len(production) - 20  # the last 20 never get a label
model.log_batch_labels(
    sample_ids=ids[: labelled - 3], labels=production.loc[: labelled - 4, "label"].tolist()
)
for i in range(labelled - 3, labelled):
    model.log_label(ids[i], production.loc[i, "label"])
model.send()

results["statistics"] = version.time_window_statistics(hour, hour + 3600)
results["production_ids"] = sorted(version.get_production_data(hour, hour + 3600)["_dc_sample_id"].tolist())
results["checks"] = sorted(model.get_checks())
results["versions"] = model.get_versions()

# -- the client's own error paths ------------------------------------------------------------------
errors = {}
try:
    client.api.upload_samples(
        version.model_version_id, [{"_dc_sample_id": "bad-1", "_dc_time": "2026-11-25T00:00:00Z"}]
    )
except httpx.HTTPStatusError as error:
    errors["missing_columns"] = [error.response.status_code, error.response.json()]
bad = dict(production.loc[0, features].to_dict(), _dc_sample_id="bad-2", _dc_prediction="benign")
bad["mean radius"] = "large"
try:
    client.api.upload_samples(version.model_version_id, [bad])
except httpx.HTTPStatusError as error:
    errors["wrong_type"] = [error.response.status_code, error.response.json()]
try:
    client.get_model_version("breast-cancer", "v9")
except ValueError as error:
    errors["unknown_version"] = str(error)
try:
    client.api.fetch_model_version_by_id("no-such-version")
except httpx.HTTPStatusError as error:
    errors["unknown_version_id"] = error.response.status_code
results["errors"] = errors
results["count_after_errors"] = client.api.get_samples_count(version.model_version_id)
results["model_id"] = model.model["id"]

# -- Deepchecks' own values for the whole production set, computed by the deepchecks library ------
from deepchecks.tabular.checks import FeatureDrift, LabelDrift  # noqa: E402

labelled_production = production.iloc[:labelled]
production_dataset = Dataset(production, label="label", cat_features=[], features=features)
results["deepchecks"] = {
    "feature_drift": FeatureDrift(aggregation_method="l3_weighted", n_samples=None)
    .run(reference_dataset, production_dataset, feature_importance=pd.Series(importance))
    .reduce_output(),
    "feature_drift_per_feature": FeatureDrift(aggregation_method="none", n_samples=None)
    .run(reference_dataset, production_dataset, feature_importance=pd.Series(importance))
    .reduce_output(),
    "label_drift": LabelDrift(n_samples=None)
    .run(reference_dataset, Dataset(labelled_production, label="label", cat_features=[], features=features))
    .reduce_output(),
}
sent = {
    "ids": ids,
    "labels": production["label"].tolist(),
    "predictions": [str(p) for p in predictions],
    "labelled": labelled,
}
(out / "sent.json").write_text(json.dumps(sent))
(out / "results.json").write_text(json.dumps(results, default=str))
