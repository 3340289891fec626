"""A 1 M-row window: every default metric of a model measured over one busy day (issue 18).

    python bench/window.py                          # this tree's engine, without and with read caches
    python bench/window.py --baseline 315ac19       # the same, beside the engine as of a commit
    python bench/window.py --rows 200000 --runs 1   # smaller, quicker
    python bench/window.py --only "Accuracy Rate"   # one metric (names as catalog.default_metrics)

The model is a binary classifier with 8 inputs (5 numeric, 3 categorical, some nulls), a score and a
0/1 label. One day of `--rows` inferences arrives in 24 files, one an hour, as capture ingestion
writes them, through the real ingestion service (id index, anomaly scores from the detector fitted
on a 20,000-row reference); 0.2 % of them are sent again in a later hour (duplicates the first write
beats). 85 % are labelled the next day, in 24 files, 1 % of those labelled twice (the later label
wins), so the labels are filed under the inferences' day (labels/).

Measured: each of the model's default metrics (`catalog.default_metrics`) once, over the day, with
`catalog.measure` and the real lake loader (`stores.window.lake_loader`): the CPU time of the
process (time.process_time: every thread, pyarrow's included), wall time, and the peak growth of the
resident set during the measurement (/proc/self/statm sampled every 5 ms, minus the resident set
before it), next to the resident set before. moto keeps the lake's objects in this process, so the
resident set before includes them; the growth is what measuring costs. Three modes, each in a fresh
process: `plain` (the loader as the API uses it: every metric reads the lake), `cached` (a
wrapper keeping each distinct read for good) and `run-reads` (the evaluator run's own wrapper,
sagewatch.alerting.reads.RunReads, when the tree has it). Targets: < 5 s of CPU and
< 512 MB of growth for the whole set.

Everything runs in-process under moto (`moto.mock_aws`) with sagewatch's declared resources; moto's
own work (serving every GET) is part of the CPU time, so `--profile` prints where it goes.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

# --core DIR runs another tree's engine (--baseline extracts one): read before sagewatch is imported
sys.path.insert(
    0,
    sys.argv[sys.argv.index("--core") + 1]
    if "--core" in sys.argv
    else str(Path(__file__).resolve().parents[1] / "layers" / "core"),
)

import numpy as np
import pyarrow as pa
from moto import mock_aws

from sagewatch import container
from sagewatch.alerting import catalog
from sagewatch.local.emulator import serialize_dynamodb_requests
from sagewatch.local.provision import provision
from sagewatch.records import reference_rows, rows_from_columns
from sagewatch.schema import Model, ModelSpec
from sagewatch.services.ingestion import Source
from sagewatch.settings import environment_for, physical_names
from sagewatch.stores import window as window_module
from sagewatch.stores.window import lake_loader

ROOT = Path(__file__).resolve().parents[1]
_CORE = sys.path[0]  # the layers/core sagewatch is imported from
DAY = datetime(2026, 11, 20, tzinfo=UTC)
HOURS = 24
REFERENCE_ROWS = 20_000
DUPLICATE_SHARE = 0.002
LABELLED_SHARE = 0.85
RELABELLED_SHARE = 0.01
CATEGORIES = {
    "region": ["north", "south", "east", "west", "central"],
    "plan": ["free", "basic", "pro", "enterprise"],
    "channel": ["web", "ios", "android", "partner", "store", "phone"],
}
NUMERIC = {"age": "INTEGER", "income": "FLOAT", "tenure": "FLOAT", "balance": "FLOAT", "visits": "INTEGER"}


@contextlib.contextmanager
def moto_stack() -> Iterator[dict[str, str]]:
    """moto in-process with every declared resource (as bench/scale.py and the tests' fixture)."""
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(key, None)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }
    )
    serialize_dynamodb_requests()
    names = physical_names("bench")
    os.environ.update(environment_for(names))
    container.reset()
    with mock_aws():
        yield provision(names)
    container.reset()


def rss_mb() -> float:
    """The process's resident set now, in MB (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@contextlib.contextmanager
def peak_rss(every: float = 0.005) -> Iterator[list[float]]:
    """The highest resident set seen while the block runs (sampled every `every` s), in MB: [peak]."""
    found = [rss_mb()]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(every):
            found[0] = max(found[0], rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield found
    finally:
        done.set()
        sampler.join()
        found[0] = max(found[0], rss_mb())


def spec() -> ModelSpec:
    """A binary classifier: 5 numeric and 3 categorical inputs, a score, a 0/1 label."""
    attributes: list[dict[str, Any]] = [
        {"name": name, "stage": "PIPELINE_INPUT", "value_type": kind} for name, kind in NUMERIC.items()
    ]
    attributes += [
        {
            "name": name,
            "stage": "PIPELINE_INPUT",
            "value_type": "STRING",
            "categorical": True,
            "categories": [{"value": v} for v in values],
        }
        for name, values in CATEGORIES.items()
    ]
    attributes += [
        {"name": "score", "stage": "PREDICTED_VALUE", "value_type": "FLOAT"},
        {
            "name": "label",
            "stage": "GROUND_TRUTH",
            "value_type": "INTEGER",
            "categorical": True,
            "categories": [{"value": "0"}, {"value": "1"}],
        },
    ]
    return ModelSpec.model_validate(
        {
            "partner_model_id": "window",
            "output_type": "BINARY",
            "attributes": attributes,
            "pred_to_ground_truth_map": {"score": 1},
        }
    )


def inputs(rng: np.random.Generator, count: int) -> dict[str, pa.Array]:
    """Input columns: numbers and categories, about 1 % missing each."""
    values: dict[str, np.ndarray] = {
        "age": rng.integers(18, 90, count),
        "income": rng.lognormal(10, 0.5, count),
        "tenure": rng.exponential(3.0, count),
        "balance": rng.normal(1000, 400, count),
        "visits": rng.poisson(4, count),
    }
    values |= {name: rng.choice(choices, count) for name, choices in CATEGORIES.items()}
    return {
        name: pa.array(column, mask=rng.random(count) < 0.01 if name not in ("age",) else None)
        for name, column in values.items()
    }


def write(model: Model, columns: dict[str, pa.Array], now: datetime, inference: bool) -> None:
    """One source, written through the ingestion service's writer."""
    writer = container.ingestor().writer(model, Source(uuid.uuid4().hex, "bench"))
    count = len(next(iter(columns.values())))
    rows = rows_from_columns(columns, count, model, source="bench", now=now, require_inference=inference)
    assert rows.failures == 0, rows.problem
    if inference:
        writer.add(now.date(), inferences=rows.inferences)
    else:
        writer.add(now.date(), ground_truth=rows.ground_truth)
    writer.finish()


def ids(rng: np.random.Generator, count: int) -> np.ndarray:
    """UUID-like ids (as SageMaker's inferenceIds often are), made without a loop per id."""
    raw = rng.integers(0, 16, (count, 32), dtype=np.uint8)
    chars = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[raw]
    dashed = np.insert(chars, [8, 12, 16, 20], ord("-"), axis=1)
    return dashed.view("S36").ravel().astype(str)


def times(hour: int, count: int, rng: np.random.Generator) -> pa.Array:
    start = int((DAY + timedelta(hours=hour)).timestamp() * 1e6)
    micros = np.sort(start + rng.integers(0, 3_600_000_000, count))
    return pa.array(micros, pa.timestamp("us", tz="UTC"))


def make_lake(model: Model, rows: int, seed: int = 0) -> dict[str, int]:
    """The reference, a day of inferences (a file an hour) and the next day's labels (module docstring)."""
    rng = np.random.default_rng(seed)
    reference = inputs(rng, REFERENCE_ROWS)
    reference["score"] = pa.array(rng.random(REFERENCE_ROWS))
    reference["label"] = pa.array(rng.integers(0, 2, REFERENCE_ROWS))
    table, _ = reference_rows(reference, REFERENCE_ROWS, model)
    writer = container.ingestor().writer(model, Source(uuid.uuid4().hex, "bench"))
    writer.add(DAY.date(), reference=table)
    writer.finish()

    names = ids(rng, rows)
    hour_of = np.sort(rng.integers(0, HOURS, rows))
    score = rng.random(rows)
    again = rng.choice(rows, int(rows * DUPLICATE_SHARE), replace=False)
    resent_rows = 0
    for hour in range(HOURS):
        part = np.flatnonzero(hour_of == hour)
        resent = again[hour_of[again] < hour - 1]  # sent before, seen again an hour or more later
        resent = resent[rng.random(len(resent)) < 1 / HOURS]
        chosen = np.concatenate([part, resent])
        resent_rows += len(resent)
        count = len(chosen)
        columns = inputs(rng, count)
        columns["partner_inference_id"] = pa.array(names[chosen])
        columns["inference_timestamp"] = times(hour, count, rng)
        columns["score"] = pa.array(np.where(np.arange(count) < len(part), score[chosen], rng.random(count)))
        write(model, columns, DAY + timedelta(hours=hour + 1), inference=True)

    labelled = np.flatnonzero(rng.random(rows) < LABELLED_SHARE)
    right = rng.random(len(labelled)) < 0.85
    truth = np.where(right, score[labelled] >= 0.5, score[labelled] < 0.5).astype(np.int64)
    twice = rng.choice(len(labelled), int(len(labelled) * RELABELLED_SHARE), replace=False)
    arrival = np.sort(rng.integers(0, HOURS, len(labelled)))
    for hour in range(HOURS):
        part = np.flatnonzero(arrival == hour)
        at = DAY + timedelta(days=1, hours=hour)
        moment = pa.array(np.full(len(part), int(at.timestamp() * 1e6)), pa.timestamp("us", tz="UTC"))
        columns = {
            "partner_inference_id": pa.array(names[labelled[part]]),
            "ground_truth_timestamp": moment,
            "label": pa.array(truth[part]),
        }
        write(model, columns, at, inference=False)
    later = DAY + timedelta(days=2)
    write(
        model,
        {
            "partner_inference_id": pa.array(names[labelled[twice]]),
            "ground_truth_timestamp": pa.array([later] * len(twice), pa.timestamp("us", tz="UTC")),
            "label": pa.array(1 - truth[twice]),
        },
        later,
        inference=False,
    )
    return {"inferences": rows, "resent": resent_rows, "labelled": len(labelled)}


class Cached:
    """A loader keeping each distinct read (source, columns, days, with ground truth) for later calls,
    as an evaluator run's wrapper does."""

    def __init__(self, load: Any) -> None:
        self.load = load
        self.kept: dict[tuple, list[pa.Table]] = {}

    def __call__(
        self, source: str, columns: list[str], first: date | None, last: date | None, truth: bool
    ) -> list[pa.Table]:
        key = (source, tuple(columns), first, last, truth)
        if key not in self.kept:
            self.kept[key] = self.load(source, columns, first, last, truth)
        return list(self.kept[key])


def measure_all(model: Model, mode: str, only: list[str] | None = None) -> dict[str, Any]:
    """Every default metric (or those named in `only`) measured once over the day, with a fresh
    loader: as it is (plain), wrapped in Cached, or in the evaluator's RunReads (run-reads)."""
    load: Any = lake_loader(container.lake_store(), model)
    calls = [0]
    inner = load

    def counted(*arguments: Any) -> list[pa.Table]:
        calls[0] += 1
        return inner(*arguments)

    if mode == "run-reads":  # imported here: older trees (--baseline) have no alerting/reads.py
        from sagewatch.alerting.reads import RunReads

        load = RunReads(counted)
    else:
        load = Cached(counted) if mode == "cached" else counted
    window = catalog.Window(start=DAY, end=DAY + timedelta(days=1))
    values = {}
    for metric in catalog.default_metrics(model):
        if only and metric.name not in only:
            continue
        found = catalog.measure(metric, model, load, window)
        values[metric.name] = (found.value, found.rows, found.labelled)
    return {"values": values, "loads": calls[0]}


def run_mode(arguments: argparse.Namespace) -> dict[str, Any]:
    """Set the lake up, then measure every default metric `--runs` times; figures as a dict."""
    with moto_stack():
        began = time.perf_counter()
        model = container.model_store().create(spec())
        made = make_lake(model, arguments.rows)
        setup = time.perf_counter() - began
        before = rss_mb()
        pool = pa.default_memory_pool()
        arrow_before = pool.max_memory()
        cpu, wall, peaks, result = [], [], [], {}
        for run in range(arguments.runs):
            profile = cProfile.Profile() if arguments.profile and run == 0 else None
            with peak_rss() as peak:
                started, clock = time.process_time(), time.perf_counter()
                only = arguments.only.split(",") if arguments.only else None
                if profile:
                    result = profile.runcall(measure_all, model, arguments.mode, only)
                else:
                    result = measure_all(model, arguments.mode, only)
                cpu.append(time.process_time() - started)
                wall.append(time.perf_counter() - clock)
            peaks.append(peak[0])
            if profile:
                pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(60)
                pstats.Stats(profile, stream=sys.stderr).sort_stats("tottime").print_stats(30)
        return {
            "mode": arguments.mode,
            "core": _CORE,
            "setup_s": setup,
            "made": made,
            "metrics": len(result["values"]),
            "loads": result["loads"],
            "cpu_s": cpu,
            "wall_s": wall,
            "rss_before_mb": before,
            "rss_growth_mb": max(peaks) - before,
            "rss_growth_runs_mb": [peak - before for peak in peaks],
            "arrow_pool": pool.backend_name,
            "arrow_peak_mb": (pool.max_memory() or 0) / 2**20,
            "arrow_peak_before_mb": (arrow_before or 0) / 2**20,
            "values": result["values"],
        }


def baseline_core(ref: str) -> str:
    """The layers/core of a commit, extracted to a temporary folder (git archive: no checkout)."""
    target = Path(tempfile.mkdtemp(prefix="sagewatch-baseline-"))
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "layers/core"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return str(target / "layers" / "core")


def line(name: str, figures: dict[str, Any]) -> str:
    cpu, wall = statistics.median(figures["cpu_s"]), statistics.median(figures["wall_s"])
    return (
        f"  {name:<22} CPU {cpu:6.2f} s  wall {wall:6.2f} s  (median of {len(figures['cpu_s'])})  "
        f"RSS growth {figures['rss_growth_mb']:6.0f} MB over {figures['rss_before_mb']:.0f} MB "
        f"(per run {', '.join(f'{g:.0f}' for g in figures['rss_growth_runs_mb'])})  "
        f"{figures['loads']} loads for {figures['metrics']} metrics"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="inferences in the day")
    parser.add_argument("--runs", type=int, default=3, help="measurements of the whole set (median)")
    parser.add_argument("--mode", choices=["plain", "cached", "run-reads"], help="one mode, in this process")
    parser.add_argument(
        "--modes", default="plain,cached,run-reads", help="the modes to run, each in a process"
    )
    parser.add_argument("--baseline", help="also run the engine as of this commit (e.g. 315ac19)")
    parser.add_argument("--core", help="the layers/core folder to import sagewatch from")
    parser.add_argument("--cache-mb", type=int, help="a loader's cache (stores/window.py CACHE_BYTES)")
    parser.add_argument("--only", help="measure only these default metrics (names, comma-separated)")
    parser.add_argument("--profile", action="store_true", help="profile the first run (to stderr)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON (with --mode)")
    arguments = parser.parse_args()
    if arguments.cache_mb is not None:
        window_module.CACHE_BYTES = arguments.cache_mb * 2**20
    if arguments.mode:
        figures = run_mode(arguments)
        print(json.dumps(figures, default=str) if arguments.json else line(arguments.mode, figures))
        return
    cores = [("this tree", _CORE)]
    if arguments.baseline:
        cores.insert(0, (f"at {arguments.baseline}", baseline_core(arguments.baseline)))
    print(
        f"window: {arguments.rows:,} inferences in {HOURS} hourly files, "
        f"{arguments.only or 'every default metric'} once; targets < 5 s CPU, < 512 MB RSS growth"
    )
    results = {}
    for label, core in cores:
        for mode in arguments.modes.split(","):
            if mode == "run-reads" and not (Path(core) / "sagewatch" / "alerting" / "reads.py").exists():
                print(f"{label}: no alerting/reads.py, no run-reads mode")
                continue
            command = [
                sys.executable,
                __file__,
                "--mode",
                mode,
                "--json",
                "--core",
                core,
                "--rows",
                str(arguments.rows),
                "--runs",
                str(arguments.runs),
            ]
            if arguments.profile:
                command.append("--profile")
            if arguments.only:
                command += ["--only", arguments.only]
            if arguments.cache_mb is not None:
                command += ["--cache-mb", str(arguments.cache_mb)]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            if arguments.profile:
                print(done.stderr, file=sys.stderr)
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            results[(label, mode)] = figures
            print(f"{label} (setup {figures['setup_s']:.0f} s)")
            print(line(mode, figures), flush=True)
    if arguments.baseline:
        reference = results[(cores[0][0], "plain")]["values"]
        for (label, mode), figures in results.items():
            differing = {
                name: (reference.get(name), value)
                for name, value in figures["values"].items()
                if not _same(reference.get(name), value)
            }
            print(f"values {label} {mode}: {differing or 'equal to the baseline'}")


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a == b
    (x, rows_a, labelled_a), (y, rows_b, labelled_b) = a, b
    close = x == y or (x is not None and y is not None and abs(x - y) <= 1e-9 * max(1.0, abs(x)))
    return close and (rows_a, labelled_a) == (rows_b, labelled_b)


if __name__ == "__main__":
    main()
