"""Metrics speed: the drift engine against Evidently, classification metrics against scikit-learn.

    python bench/metrics.py                                  # sagewatch and scikit-learn only
    python bench/metrics.py --evidently-python /path/to/venv/bin/python

Evidently needs pandas < 3, so it lives in its own virtualenv:
    python3.11 -m venv /tmp/evenv && /tmp/evenv/bin/pip install evidently 'pandas<3'

Data: a target of --rows (1,000,000) rows and a reference of --reference (100,000) rows, 20 columns
(15 numeric, 5 categorical; a third of the columns shifted). Drift: PSI, JS, KL, Hellinger and a
hypothesis test (KS / chi-square) of every column. Prints one line per figure, and the largest
difference between sagewatch's and Evidently's values where the definitions match: PSI, JS and
Hellinger of categorical columns (both bin by category; Evidently bins numbers differently, its KL
runs the other way and its tests are computed differently, so those are not compared).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers" / "core"))

from binary_model import binary_model  # noqa: E402

NUMERIC = [f"n{i}" for i in range(15)]
CATEGORICAL = [f"c{i}" for i in range(5)]
# sagewatch metric -> (Evidently numeric method, Evidently categorical method)
METHODS = {
    "PSI": ("psi", "psi"),
    "JSDivergence": ("jensenshannon", "jensenshannon"),
    "KLDivergence": ("kl_div", "kl_div"),
    "HellingerDistance": ("hellinger", "hellinger"),
    "HypothesisTest": ("ks", "chisquare"),
}


def generate(rows: int, seed: int, shifted: bool) -> pa.Table:
    rng = np.random.default_rng(seed)
    columns = {}
    for index, name in enumerate(NUMERIC):
        shift = 0.3 if shifted and index % 3 == 0 else 0.0
        columns[name] = rng.normal(shift, 1.0, rows)
    for index, name in enumerate(CATEGORICAL):
        categories = np.array([f"{name}_{k}" for k in range(6)])
        weights = np.linspace(1, 2, 6) if shifted and index % 3 == 0 else np.ones(6)
        columns[name] = categories[rng.choice(6, rows, p=weights / weights.sum())]
    score = rng.random(rows)
    columns["score"] = score
    columns["label"] = (rng.random(rows) < score * 0.8 + 0.1).astype(np.int64)
    return pa.table(columns)


def model():
    inputs = [{"name": n, "value_type": "FLOAT"} for n in NUMERIC]
    inputs += [
        {"name": n, "value_type": "STRING", "categorical": True, "categories": [f"{n}_{k}" for k in range(6)]}
        for n in CATEGORICAL
    ]
    return binary_model(inputs)


def sagewatch_drift(reference: pa.Table, target: pa.Table) -> tuple[float, dict[str, dict[str, float]]]:
    from sagewatch.metrics.drift import DriftQuery, run_drift

    the_model = model()
    files = [target.slice(i, 100_000) for i in range(0, target.num_rows, 100_000)]

    def load(source, columns, first, last, truth):
        return [reference] if source == "reference" else files

    values = {}
    started = time.perf_counter()
    for metric in METHODS:
        [row] = run_drift(DriftQuery(properties=NUMERIC + CATEGORICAL, metric=metric), the_model, load)
        values[metric] = row
    return time.perf_counter() - started, values


EVIDENTLY_SCRIPT = r"""
import json, sys, time
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
reference = pd.read_parquet(sys.argv[1])
target = pd.read_parquet(sys.argv[2])
methods = json.loads(sys.argv[3])
columns = json.loads(sys.argv[4])
out = {}
started = time.perf_counter()
for metric, (numeric, categorical) in methods.items():
    report = Report([DataDriftPreset(columns=columns, num_method=numeric, cat_method=categorical)])
    snapshot = report.run(target[columns], reference[columns])
    values = {}
    for item in snapshot.dict()["metrics"]:
        config = item.get("config", {})
        column = config.get("column")
        if column is not None and isinstance(item.get("value"), (int, float)):
            values[column] = float(item["value"])
    out[metric] = values
print(json.dumps({"seconds": time.perf_counter() - started, "values": out}))
"""


def evidently_drift(python: str, reference: pa.Table, target: pa.Table) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(folder) / "reference.parquet", Path(folder) / "target.parquet"]
        pq.write_table(reference, paths[0])
        pq.write_table(target, paths[1])
        script = Path(folder) / "run.py"
        script.write_text(EVIDENTLY_SCRIPT)
        done = subprocess.run(
            [
                python,
                str(script),
                str(paths[0]),
                str(paths[1]),
                json.dumps(METHODS),
                json.dumps(NUMERIC + CATEGORICAL),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        return result["seconds"], result["values"]


def comparable(metric: str, ours: float, theirs: float) -> tuple[float, float]:
    """Bring both to the same quantity: Evidently reports the JS distance, the root of ours."""
    return (float(np.sqrt(ours)), theirs) if metric == "JSDivergence" else (ours, theirs)


def classification(rows: int) -> tuple[float, float, float]:
    from sklearn import metrics as skm

    from sagewatch.metrics.query import Query, run

    table = generate(rows, 3, False).select(["score", "label"])
    table = table.append_column("partner_inference_id", pa.array(np.arange(rows).astype(str)))
    the_model = model()
    query = Query.model_validate(
        {"select": [{"function": f} for f in ("accuracyRate", "precision", "recall", "f1", "auc")]}
    )
    started = time.perf_counter()
    [row] = run(query, the_model, lambda *_: [table.slice(i, 100_000) for i in range(0, rows, 100_000)])
    ours = time.perf_counter() - started
    y = table.column("label").to_numpy()
    score = table.column("score").to_numpy()
    started = time.perf_counter()
    predicted = score >= 0.5
    reference = {
        "accuracyRate": skm.accuracy_score(y, predicted),
        "precision": skm.precision_score(y, predicted),
        "recall": skm.recall_score(y, predicted),
        "f1": skm.f1_score(y, predicted),
        "auc": skm.roc_auc_score(y, score),
    }
    theirs = time.perf_counter() - started
    difference = max(abs(row[k] - v) for k, v in reference.items())
    return ours, theirs, difference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference", type=int, default=100_000)
    parser.add_argument("--evidently-python", help="python of a virtualenv with evidently and pandas<3")
    args = parser.parse_args()
    reference = generate(args.reference, 1, False)
    target = generate(args.rows, 2, True)
    print(f"data: target {args.rows:,} rows x 20 columns, reference {args.reference:,} rows")
    ours, values = sagewatch_drift(reference, target)
    print(f"{'sagewatch drift (5 statistics x 20 columns)':<48} {ours:8.2f} s")
    if args.evidently_python:
        theirs, their_values = evidently_drift(args.evidently_python, reference, target)
        print(f"{'Evidently DataDriftPreset (same 5 x 20)':<48} {theirs:8.2f} s")
        print(f"{'Evidently time / sagewatch time':<48} {theirs / ours:8.1f}x  (target >= 20x)")
        largest = 0.0
        # Same definitions: PSI, Hellinger and JS (Evidently reports its root). Evidently's KL is
        # KL(reference || current), ours KL(current || reference); its tests differ too.
        for metric in ("PSI", "JSDivergence", "HellingerDistance"):
            for column in CATEGORICAL:
                if column in their_values.get(metric, {}):
                    a, b = comparable(metric, values[metric][column], their_values[metric][column])
                    largest = max(largest, abs(a - b))
        print(f"{'largest difference, categorical columns':<48} {largest:8.2e}")
    ours, theirs, difference = classification(args.rows)
    print(f"{'sagewatch accuracy, precision, recall, f1, auc':<48} {ours:8.2f} s")
    print(f"{'scikit-learn, the same five':<48} {theirs:8.2f} s")
    print(f"{'scikit-learn time / sagewatch time':<48} {theirs / ours:8.2f}x  (target >= 1x)")
    print(f"{'largest difference (auc within its bin bound)':<48} {difference:8.2e}")


if __name__ == "__main__":
    main()
