"""Alert quality, measured: false alerts on a healthy model, detection delay on a sick one.

    python bench/alert_quality.py                          # 28 days, both data sets
    python bench/alert_quality.py --evidently PYTHON --nannyml PYTHON    # Evidently and NannyML beside

Two models on real tabular data: the breast-cancer classifier the demo uses (30 numeric inputs,
569 rows: the demo's split is 340 reference rows, 229 held out) and the US Census employment model
NannyML ships (ACS Massachusetts, 16 inputs, 15 of them categorical; its 68,785 2015 rows split at
random, half the reference, half held out), read from the nannyml wheel (pip downloads it; nothing
of it is imported). Nothing moves in the windows: each is drawn with replacement from the data
set's rows, and the reference is drawn the same way, so the two are independent samples of one
distribution. Lines marked * draw windows from the held-out rows alone and use the demo's
reference: those rows differ from the reference by their own sampling, a real and fixed difference
in every window, which a test can find once windows are large enough:

- stationary: DAYS days of hours at 150 and 10,000 rows per hour through the default rule (Input
  Drift below 0.0001, one alert per incident); false alerts per model-week, and the windows that
  crossed. Beside it, the default of before: one PSI rule per input at the 99th percentile of its
  reference noise.
- shifts of known size at 1,000 rows per window, starting at a random minute of a window: a mean
  shift of 0.25, 0.5 and 1 reference sd in each numeric input, a category's share up 10 points in
  each categorical input, and 5% of labels flipped (an accuracy rule 2 points under the reference's
  accuracy, firing only once its interval is past the threshold): the share detected within 2
  windows, and the windows to detect (the window the shift starts in counts as 1).
- with --evidently PYTHON and --nannyml PYTHON (interpreters with evidently, or nannyml, installed:
  they pin pandas and numpy apart from sagewatch's, so each lives in its own environment), the
  first TOOL_HOURS windows and TOOL_TRIALS of the 0.5 sd and category streams per input through Evidently's DataDriftPreset
  defaults and NannyML's univariate drift defaults (Jensen-Shannon, its constant 0.1 threshold),
  as alert rules: any drifted column, and half the columns drifted (Evidently's dataset drift).

Every sagewatch figure goes through the product's code path: catalog.measure on the default
metric, the rule's threshold, windows.continues_incident; only the storage is a table in memory.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sagewatch.alerting import catalog, windows
from sagewatch.client.schema_inference import infer_schema
from sagewatch.metrics.drift import DriftQuery, run_drift
from sagewatch.schema import Model, Stage, check_spec
from sagewatch.services.evaluation import DRIFT_FALSE_ALARM_RATE

START = datetime(2026, 1, 5, tzinfo=UTC)
SHIFT_ROWS = 1000
TRIALS = 8  # shifted streams per input and size
TOOL_HOURS = 48  # the stationary windows other tools see (Evidently takes seconds a window)
TOOL_TRIALS = 2  # the shifted streams per input they see
MAX_WINDOWS = 4
LABEL_MARGIN = 0.02


@dataclass
class Dataset:
    name: str
    model: Model
    reference: pa.Table
    held_out: pd.DataFrame
    population: pd.DataFrame  # the rows the reference was drawn from: reference and held out
    numeric: list[str]
    categorical: list[str]
    prediction: str
    truth: str


def _model(reference: pd.DataFrame, prediction: str, truth: str, name: str) -> Model:
    spec = check_spec(
        infer_schema(reference, {prediction: 1}, partner_model_id=name, ground_truth_column=truth)
    )
    now = datetime.now(UTC)
    return Model(**spec.model_dump(), id=name, created_at=now, updated_at=now)


def breast_cancer() -> Dataset:
    """The demo's classifier, its reference and held-out rows."""
    from sagewatch.client.demo import _dataset

    features, malignant, model, reference, production = _dataset()
    frames = []
    for rows in (reference, production):
        frame = features.iloc[rows].reset_index(drop=True)
        frame["malignant_probability"] = model.predict_proba(features.iloc[rows])[:, 1]
        frame["diagnosis"] = malignant.iloc[rows].to_numpy()
        frames.append(frame)
    ref, held = frames
    return Dataset(
        "breast cancer",
        _model(ref, "malignant_probability", "diagnosis", "breast-cancer"),
        pa.Table.from_pandas(ref, preserve_index=False),
        held,
        pd.concat([ref, held], ignore_index=True),
        list(features.columns),
        [],
        "malignant_probability",
        "diagnosis",
    )


def acs_employment(cache: Path) -> Dataset:
    """NannyML's ACS employment data for Massachusetts, 2015 rows split in half."""
    wheel = next(cache.glob("nannyml-*.whl"), None)
    if wheel is None:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "nannyml", "-d", str(cache)],
            check=True,
        )
        wheel = next(cache.glob("nannyml-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        data = pd.read_parquet(archive.open("nannyml/datasets/data/employment_MA_reference.pq"))
    data = data.drop(columns=["id", "year", "prediction"])
    categorical = [c for c in data.columns if isinstance(data[c].dtype, pd.CategoricalDtype)]
    for name in categorical:
        data[name] = data[name].astype(str)
    order = np.random.default_rng(0).permutation(len(data))
    half = len(order) // 2
    ref = data.iloc[order[:half]].reset_index(drop=True)
    held = data.iloc[order[half:]].reset_index(drop=True)
    return Dataset(
        "ACS employment",
        _model(ref, "predicted_probability", "employed", "acs-employment"),
        pa.Table.from_pandas(ref, preserve_index=False),
        held,
        data,
        ["AGEP"],
        categorical,
        "predicted_probability",
        "employed",
    )


def independent(data: Dataset, draw: int = 0) -> Dataset:
    """The data set with a reference drawn from its population with replacement: the reference and
    every window are then independent samples of one distribution, which is what "no drift" is."""
    rows = np.random.default_rng(11 + draw).integers(0, len(data.population), data.reference.num_rows)
    sample = data.population.iloc[rows].reset_index(drop=True)
    return dataclasses.replace(data, reference=pa.Table.from_pandas(sample, preserve_index=False))


def loader(reference: pa.Table, window: pa.Table) -> Callable:
    """The query engine's Loader over two in-memory tables: the reference and one window."""

    def load(source, columns, first, last, with_truth):
        table = reference if source == "reference" else window
        return [table.select([c for c in columns if c in table.column_names])]

    return load


def metric_named(model: Model, name: str) -> catalog.Metric:
    return next(m for m in catalog.default_metrics(model) if m.name == name)


class Watcher:
    """The default rule (and the old per-input PSI rules) over a stream of windows, as the evaluator
    decides: a crossing next to the latest incident extends it."""

    def __init__(self, data: Dataset, psi_window: int) -> None:
        self.data = data
        self.metric = metric_named(data.model, catalog.INPUT_DRIFT)
        self.inputs = [a.name for a in data.model.by_stage(Stage.PIPELINE_INPUT)]
        load = loader(data.reference, data.reference)
        [self.psi_thresholds] = run_drift(
            DriftQuery(properties=self.inputs, metric="Thresholds", window_size=psi_window), data.model, load
        )

    def p_value(self, window: pa.Table) -> tuple[float, dict]:
        measured = catalog.measure(self.metric, self.data.model, loader(self.data.reference, window))
        return measured.value, measured.details or {}

    def psi_crossings(self, window: pa.Table) -> int:
        """Inputs whose PSI is past its dynamic threshold: the old default raised an alert for each."""
        [row] = run_drift(
            DriftQuery(properties=self.inputs, metric="PSI"),
            self.data.model,
            loader(self.data.reference, window),
        )
        return sum(1 for p in self.inputs if row[p] is not None and row[p] > self.psi_thresholds[p])


def incidents(crossings: list[bool]) -> int:
    """Alerts raised for hourly windows crossing or not: one per incident, as the evaluator merges them."""
    count, end = 0, None
    for hour, crossed in enumerate(crossings):
        start = START + timedelta(hours=hour)
        if crossed:
            if not windows.continues_incident(start, end, 60):
                count += 1
            end = start + timedelta(hours=1)
    return count


def stationary(
    data: Dataset, rows: int, days: int, export: Path | None, pool: str, old_rules: bool = True
) -> dict:
    """False alerts per model-week over `days` of healthy hourly windows drawn from `pool` (and the
    old per-input PSI rules' alerts, when `old_rules`)."""
    watcher = Watcher(data, rows)
    rng = np.random.default_rng(rows)
    hours = days * 24
    source = data.population if pool == "population" else data.held_out
    new, old, spent = [], [], 0.0
    for hour in range(hours):
        chosen = source.iloc[rng.integers(0, len(source), rows)]
        window = pa.Table.from_pandas(chosen, preserve_index=False)
        if export is not None and hour < TOOL_HOURS:
            chosen.to_parquet(export / f"{rows}-{hour:04d}.parquet")
        began = time.perf_counter()
        p, _ = watcher.p_value(window)
        spent += time.perf_counter() - began
        new.append(p is not None and p < DRIFT_FALSE_ALARM_RATE)
        old.append(watcher.psi_crossings(window) if old_rules else 0)
    weeks = days / 7
    return {
        "alerts_per_week": incidents(new) / weeks,
        "crossing_windows": sum(new),
        "old_alerts_per_week": sum(old) / weeks,  # one alert per input and window, as the old default
        "old_crossing_windows": sum(1 for count in old if count),
        "ms_per_window": spent / hours * 1000,
        "windows": hours,
    }


def shifted_stream(
    data: Dataset, rng: np.random.Generator, change: Callable[[pd.DataFrame], pd.DataFrame]
) -> list[pa.Table]:
    """MAX_WINDOWS windows of SHIFT_ROWS rows; the change starts at a random point of the first."""
    begins = rng.uniform(0, 1)
    stream = []
    for index in range(MAX_WINDOWS):
        chosen = data.population.iloc[rng.integers(0, len(data.population), SHIFT_ROWS)].reset_index(
            drop=True
        )
        position = np.arange(SHIFT_ROWS) / SHIFT_ROWS + index
        after = position >= begins
        if after.any():
            chosen.loc[after] = change(chosen.loc[after].copy()).to_numpy()
        stream.append(
            pa.Table.from_pandas(chosen.astype(data.held_out.dtypes.to_dict()), preserve_index=False)
        )
    return stream


def save(streams: list[list[pa.Table]], folder: Path, label: str) -> None:
    """Shifted streams as Parquet files named <kind>~<input>~<trial>~<window> for Evidently."""
    for trial, stream in enumerate(streams):
        for index, window in enumerate(stream):
            pq.write_table(window, folder / f"{label}~{trial}~{index}.parquet")


def delay(stream: list[pa.Table], detects: Callable[[pa.Table], bool]) -> int | None:
    """Windows until the first detection (the one the shift starts in counts as 1); None if none."""
    for index, window in enumerate(stream):
        if detects(window):
            return index + 1
    return None


def shifts(data: Dataset, export: Path | None = None) -> list[dict]:
    """Detection of each kind of shift, per input; the 0.5 sd and category streams exported for
    Evidently when `export` is given."""
    watcher = Watcher(data, SHIFT_ROWS)
    rng = np.random.default_rng(7)
    found = []
    drifted = lambda window: (watcher.p_value(window)[0] or 1.0) < DRIFT_FALSE_ALARM_RATE  # noqa: E731
    reference = data.reference.to_pandas()
    for size in (0.25, 0.5, 1.0):
        for name in data.numeric:
            move = size * float(reference[name].std())

            def change(frame: pd.DataFrame, name: str = name, move: float = move) -> pd.DataFrame:
                frame[name] = frame[name] + move
                return frame

            streams = [shifted_stream(data, rng, change) for _ in range(TRIALS)]
            if export is not None and size == 0.5:
                save(streams[:TOOL_TRIALS], export, f"mean +{size:g} sd~{name}")
            delays = [delay(stream, drifted) for stream in streams]
            found.append({"shift": f"mean +{size:g} sd", "input": name, "delays": delays})
    for name in data.categorical:
        shares = reference[name].value_counts(normalize=True)
        target, share = shares.index[1], float(shares.iloc[1])  # the second most common has room to grow

        def change(
            frame: pd.DataFrame, name: str = name, target: str = target, share: float = share
        ) -> pd.DataFrame:
            others = frame.index[frame[name] != target]
            moved = rng.random(len(others)) < 0.10 / (1 - share)
            frame.loc[others[moved], name] = target
            return frame

        streams = [shifted_stream(data, rng, change) for _ in range(TRIALS)]
        if export is not None:
            save(streams[:TOOL_TRIALS], export, f"category +10 points~{name}")
        delays = [delay(stream, drifted) for stream in streams]
        found.append({"shift": "category +10 points", "input": name, "delays": delays})
    found.append({"shift": "5% labels flipped", "input": data.truth, "delays": label_flips(data, rng)})
    return found


def label_flips(data: Dataset, rng: np.random.Generator) -> list[int | None]:
    """An accuracy rule LABEL_MARGIN under the reference's accuracy, on streams with 5% of labels flipped."""
    accuracy = metric_named(data.model, "Accuracy Rate")
    reference_accuracy = catalog.measure(accuracy, data.model, loader(data.reference, data.reference)).value
    threshold = reference_accuracy - LABEL_MARGIN

    def change(frame: pd.DataFrame) -> pd.DataFrame:
        flip = rng.random(len(frame)) < 0.05
        frame.loc[flip, data.truth] = 1 - frame.loc[flip, data.truth]
        return frame

    def detects(window: pa.Table) -> bool:
        load = loader(data.reference, window)
        measured = catalog.measure(accuracy, data.model, load)
        if measured.value is None or measured.value >= threshold:
            return False
        spread = catalog.interval(accuracy, data.model, load, None, measured)
        return spread is not None and spread.excludes(threshold, "lower")

    return [delay(shifted_stream(data, rng, change), detects) for _ in range(TRIALS)]


EVIDENTLY = """
import json, sys, glob, pandas as pd
from evidently import Report, Dataset, DataDefinition
from evidently.presets import DataDriftPreset
folder, reference_file, numeric, categorical = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
columns = numeric + categorical
reference = Dataset.from_pandas(pd.read_parquet(reference_file)[columns], data_definition=definition)
out = {}
for path in sorted(glob.glob(folder + "/*.parquet")):
    window = Dataset.from_pandas(pd.read_parquet(path)[columns], data_definition=definition)
    result = Report([DataDriftPreset()]).run(window, reference).dict()
    drifted = share = None
    for metric in result["metrics"]:
        if metric["metric_name"].startswith("DriftedColumnsCount"):
            drifted, share = metric["value"]["count"], metric["value"]["share"]
    out[path.rsplit("/", 1)[1]] = [drifted, share]
print(json.dumps(out))
"""


NANNYML = """import json, sys, glob, warnings
import pandas as pd, nannyml as nml
warnings.filterwarnings("ignore")
folder, reference_file, numeric, categorical = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
columns = numeric + categorical
reference = pd.read_parquet(reference_file)[columns]
files = sorted(glob.glob(folder + "/*.parquet"))
sizes = {}
for path in files:
    frame = pd.read_parquet(path)[columns]
    sizes.setdefault(len(frame), []).append((path.rsplit("/", 1)[1], frame))
out = {}
for rows, named in sizes.items():
    calculator = nml.UnivariateDriftCalculator(column_names=columns, chunk_size=rows, continuous_methods=["jensen_shannon"], categorical_methods=["jensen_shannon"])
    calculator.fit(reference)
    analysis = pd.concat([f for _, f in named], ignore_index=True)
    result = calculator.calculate(analysis).filter(period="analysis").to_df()
    alerts = result.loc[:, [c for c in result.columns if c[-1] == "alert"]]
    flags = alerts.any(axis=1).tolist()
    counts = alerts.sum(axis=1).tolist()
    for (name, _), flag, count in zip(named, flags, counts):
        out[name] = [int(count), count / len(columns)]
print(json.dumps(out))
"""

TOOLS = {"Evidently": EVIDENTLY, "NannyML": NANNYML}


def run_tool(tool: str, python: str, data: Dataset, folder: Path) -> dict[str, tuple[float, float]]:
    """Another tool's default drift alerts on every window exported to `folder` (Evidently's
    DataDriftPreset, NannyML's univariate drift with Jensen-Shannon): per file, the columns it
    calls drifted and their share."""
    reference_file = folder / "reference.pq"
    data.reference.to_pandas().to_parquet(reference_file)
    answer = subprocess.run(
        [
            python,
            "-c",
            TOOLS[tool],
            str(folder),
            str(reference_file),
            json.dumps(data.numeric),
            json.dumps(data.categorical),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return {name: (drifted, share) for name, (drifted, share) in json.loads(answer.stdout).items()}


def tool_stationary(tool: str, python: str, data: Dataset, folder: Path) -> dict[int, dict]:
    """Another tool's false alerts per model-week over the exported healthy windows, as alert rules."""
    by_size: dict[int, dict] = {}
    for name, (drifted, share) in sorted(run_tool(tool, python, data, folder).items()):
        rows = int(name.split("-")[0])
        entry = by_size.setdefault(rows, {"any": [], "dataset": []})
        entry["any"].append(bool(drifted))
        entry["dataset"].append(share is not None and share >= 0.5)
    return {
        rows: {
            "any_column_alerts_per_week": incidents(e["any"]) / (len(e["any"]) / 168),
            "any_column_crossing_windows": sum(e["any"]),
            "dataset_alerts_per_week": incidents(e["dataset"]) / (len(e["dataset"]) / 168),
            "windows": len(e["any"]),
        }
        for rows, e in by_size.items()
    }


def tool_delays(tool: str, python: str, data: Dataset, folder: Path) -> dict[str, list[int | None]]:
    """Another tool's detection delay (any column drifted) on each exported shifted stream, by kind."""
    results = run_tool(tool, python, data, folder)
    streams: dict[str, dict[int, bool]] = {}
    for name, (drifted, _) in results.items():
        stream, index = name.removesuffix(".parquet").rsplit("~", 1)
        streams.setdefault(stream, {})[int(index)] = bool(drifted)
    found: dict[str, list[int | None]] = {}
    for stream, flags in sorted(streams.items()):
        first = next((i + 1 for i in sorted(flags) if flags[i]), None)
        found.setdefault(stream.split("~")[0], []).append(first)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--evidently", help="a Python interpreter with evidently installed")
    parser.add_argument("--nannyml", help="a Python interpreter with nannyml installed")
    parser.add_argument("--references", type=int, default=5, help="reference draws for stationary traffic")
    parser.add_argument("--part", choices=("all", "stationary", "shifts"), default="all")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "sagewatch-bench"))
    arguments = parser.parse_args()
    cache = Path(arguments.cache)
    cache.mkdir(parents=True, exist_ok=True)
    print(f"default rule: Input Drift below {DRIFT_FALSE_ALARM_RATE} (family-wise), hourly windows")
    print(f"stationary traffic, {arguments.days} days; target <= 1 false alert per model-week\n")
    print(
        f"{'model':<16}{'rows/h':>8}{'alerts/wk':>11}{'crossed':>9}{'old PSI alerts/wk':>19}{'old crossed':>13}{'ms/window':>11}"
    )
    others = {name: getattr(arguments, name.lower()) for name in TOOLS if getattr(arguments, name.lower())}
    for held in (breast_cancer(), acs_employment(cache)) if arguments.part != "shifts" else ():
        for pool, data in (("population", independent(held)), ("held-out", held)):
            with tempfile.TemporaryDirectory() as folder:
                export = Path(folder) if others and pool == "population" else None
                for rows in (150, 10_000):
                    found = stationary(data, rows, arguments.days, export, pool, pool == "population")
                    old = (
                        f"{found['old_alerts_per_week']:>19.2f}{found['old_crossing_windows']:>9}/{found['windows']:<5}"
                        if pool == "population"
                        else f"{'':>19}{'':>15}"
                    )
                    print(
                        f"{data.name + (' *' if pool == 'held-out' else ''):<16}{rows:>8,}"
                        f"{found['alerts_per_week']:>11.2f}{found['crossing_windows']:>5}/{found['windows']:<5}"
                        f"{old}{found['ms_per_window']:>9.1f}"
                    )
                    if pool == "population" and arguments.references > 1:
                        weekly = [found["alerts_per_week"]] + [
                            stationary(independent(held, draw), rows, arguments.days, None, pool, False)[
                                "alerts_per_week"
                            ]
                            for draw in range(1, arguments.references)
                        ]
                        print(
                            f"{'':<16}{'':>8}  over {len(weekly)} reference draws: mean {np.mean(weekly):.2f}/wk, "
                            f"worst {max(weekly):.2f}/wk ({', '.join(f'{w:.2f}' for w in weekly)})"
                        )
                for tool, python in others.items() if export else ():
                    for rows, found in sorted(tool_stationary(tool, python, data, Path(folder)).items()):
                        print(
                            f"{'  ' + tool + (' *' if pool == 'held-out' else ''):<16}{rows:>8,}  any column: "
                            f"{found['any_column_alerts_per_week']:.2f}/wk "
                            f"({found['any_column_crossing_windows']}/{found['windows']} windows crossed); "
                            f"half the columns: {found['dataset_alerts_per_week']:.2f}/wk"
                        )
        print()
    print("* windows from the held-out rows alone, against the demo's reference (see the docstring)")
    print(
        f"  Evidently and NannyML: the first {TOOL_HOURS} windows of each size; {TOOL_TRIALS} streams per input\n"
    )
    print(
        f"shifts at {SHIFT_ROWS:,} rows per window, {TRIALS} streams per input; target: 0.5 sd detected within 2 windows\n"
    )
    print(f"{'model':<16}{'shift':<22}{'inputs':>7}{'within 2':>10}{'mean windows':>14}{'missed':>8}")
    for data in (
        (independent(breast_cancer()), independent(acs_employment(cache)))
        if arguments.part != "stationary"
        else ()
    ):
        with tempfile.TemporaryDirectory() as folder:
            rows = shifts(data, Path(folder) if others else None)
            theirs = {tool: tool_delays(tool, python, data, Path(folder)) for tool, python in others.items()}
        for kind in dict.fromkeys(r["shift"] for r in rows):
            chosen = [r for r in rows if r["shift"] == kind]
            print_delays(data.name, kind, len(chosen), [d for r in chosen for d in r["delays"]])
            for tool, found in theirs.items():
                if kind in found:
                    print_delays(f"  {tool}", kind, len(chosen), found[kind])
            if kind == "mean +0.5 sd":
                worst = [r["input"] for r in chosen if any(d is None or d > 2 for d in r["delays"])]
                if worst:
                    print(f"{'':<16}  not always within 2 windows: {', '.join(worst)}")


def print_delays(name: str, kind: str, inputs: int, delays: list[int | None]) -> None:
    hit = [d for d in delays if d is not None]
    within = sum(1 for d in hit if d <= 2) / len(delays)
    mean = f"{np.mean(hit):.2f}" if hit else "-"
    print(f"{name:<16}{kind:<22}{inputs:>7}{within:>9.0%}{mean:>14}{len(delays) - len(hit):>8}")


if __name__ == "__main__":
    main()
