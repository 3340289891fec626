"""A 1 M-row window: every default metric of a model measured over one busy day (issue 18).

    python bench/window.py                          # this tree's engine, without and with read caches
    python bench/window.py --baseline 315ac19       # the same, beside the engine as of a commit
    python bench/window.py --rows 200000 --runs 1   # smaller, quicker
    python bench/window.py --only "Accuracy Rate"   # one metric (names as catalog.default_metrics)
    python bench/window.py --lambdas --rows 10000000  # the deployed functions' work over the day

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

`--lambdas` measures what the deployed functions do with such a day, moto running as a server in its
own process (so a measuring process holds only what a Lambda container would): the evaluator
function's handler (evaluate_record) with the model's default rules (from per-file partials) and an
accuracy rule over the whole day (from raw rows), in a new container with no partials stored, 5
minutes later in the same one, then in a new one finding them stored; and the query API's answer
over the day (the route it takes past its row limit, and the in-Lambda engine's on the same
window). Each reports CPU, wall, peak RSS (overall and per stage: each rule, its partials, its
raw-row windows) and pyarrow's peak allocation, beside the handler module's import footprint in a
fresh interpreter and the function's declared memory (docs/scale.md has the figures).

Otherwise everything runs in-process under moto (`moto.mock_aws`) with sagewatch's declared resources; moto's
own work (serving every GET) is part of the CPU time, so `--profile` prints where it goes.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import socket
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

from sagewatch import container
from sagewatch.alerting import catalog
from sagewatch.alerting.types import Rule
from sagewatch.local.provision import provision
from sagewatch.records import reference_rows, rows_from_columns
from sagewatch.schema import Model, ModelSpec
from sagewatch.services.ingestion import Source
from sagewatch.settings import environment_for, physical_names
from sagewatch.stores import window as window_module
from sagewatch.stores.window import lake_loader
from support import moto_stack, peak_rss, process_rss_mb, rss_mb

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


# -- --lambdas: the deployed functions' runs over the day, moto in its own process -------------------

SERVER = """
import sys, threading
from moto.server import ThreadedMotoServer
from sagewatch.local.emulator import serialize_dynamodb_requests
serialize_dynamodb_requests()
server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
print("ready", flush=True)
threading.Event().wait()
"""
# The RSS of a fresh interpreter before and after importing a module (a Lambda's cold start).
FOOTPRINT = """
import importlib, os, sys
def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
bare = rss()
importlib.import_module(sys.argv[1])
print(bare, rss())
"""
# The functions as infra/ declares them (infra/monitor.py, infra/api.py): MB of memory.
EVALUATOR_MB, API_MB = 3008, 1769
ATHENA = {"database": "sagewatch", "workgroup": "sagewatch", "results": "bench-athena-results"}
ACCURACY_RULE_MINUTES = 24 * 60  # a performance rule whose window is the whole day


@contextlib.contextmanager
def moto_server() -> Iterator[subprocess.Popen]:
    """sagewatch's declared resources (and an Athena workgroup and Glue database, as infra/storage.py
    makes) on a moto server in its own process (as bench/scale.py --case reads): the processes
    measuring hold only what a Lambda would, moto's objects (S3's, in AWS) are in the server's RSS."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": _CORE},
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        os.environ.pop("AWS_PROFILE", None)
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_REGION": "us-east-1",
            }
        )
        names = physical_names("bench")
        os.environ.update(environment_for(names))
        container.reset()
        provision(names)
        athena_stack()
        container.reset()
        yield server
    finally:
        container.reset()
        os.environ.pop("AWS_ENDPOINT_URL", None)
        server.terminate()
        server.wait()


def athena_stack() -> None:
    """The Glue database, results bucket and workgroup the api function's query route uses; their
    names in the environment (moto's Athena answers every query at once, with no rows)."""
    from sagewatch import aws  # here: trees before the Athena route (--core) need none of this
    from sagewatch.stores.athena import WORKGROUP_ENV
    from sagewatch.stores.catalog import DATABASE_ENV

    aws.client("glue").create_database(DatabaseInput={"Name": ATHENA["database"]})
    aws.client("s3").create_bucket(Bucket=ATHENA["results"])
    aws.client("athena").create_work_group(
        Name=ATHENA["workgroup"],
        Configuration={
            "ResultConfiguration": {"OutputLocation": f"s3://{ATHENA['results']}/"},
            "EnforceWorkGroupConfiguration": True,
        },
    )
    os.environ.update({DATABASE_ENV: ATHENA["database"], WORKGROUP_ENV: ATHENA["workgroup"]})


STAGE = ["run"]  # what the measured process is doing now (peaks attributes each sample to it)


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Samples taken while the block runs are the stage `name`'s (within the stage around it)."""
    outer = STAGE[0]
    STAGE[0] = name if outer == "run" else f"{outer} / {name}"
    try:
        yield
    finally:
        STAGE[0] = outer


@contextlib.contextmanager
def peaks(every: float = 0.005) -> Iterator[dict[str, Any]]:
    """The highest resident set and pyarrow allocation seen while the block runs, in MB, overall and
    per stage (`stages`: name -> [peak RSS, peak pyarrow])."""
    found: dict[str, Any] = {"rss": rss_mb(), "arrow": pa.total_allocated_bytes() / 2**20, "stages": {}}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(every):
            rss, arrow = rss_mb(), pa.total_allocated_bytes() / 2**20
            found["rss"] = max(found["rss"], rss)
            found["arrow"] = max(found["arrow"], arrow)
            seen = found["stages"].setdefault(STAGE[0], [rss, arrow])
            seen[0], seen[1] = max(seen[0], rss), max(seen[1], arrow)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield found
    finally:
        done.set()
        sampler.join()
        found["rss"] = max(found["rss"], rss_mb())


def footprint(module: str, repeats: int = 3) -> dict[str, float]:
    """A fresh interpreter's RSS bare and once `module` is imported (median of `repeats`), in MB."""
    bare, loaded = [], []
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, "-c", FOOTPRINT, module],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": _CORE},
        )
        first, second = done.stdout.split()[-2:]
        bare.append(float(first))
        loaded.append(float(second))
    return {"bare_mb": statistics.median(bare), "imported_mb": statistics.median(loaded)}


def evaluator_runs(model: Model, fire: bool) -> dict[str, Any]:
    """The evaluator function's work for the model (its handler's evaluate_record, as an evaluate
    message runs it): just after the day ends (a container's first run: every partial of the day
    made), then 5 minutes later in the same process (a warm container: the partials stored)."""
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from sagewatch.handlers import evaluator as handler
    from sagewatch.services import evaluation

    made: list[Any] = []

    class Counted(evaluation.PartialReads):  # type: ignore[misc,valid-type]
        def __init__(self, *arguments: Any) -> None:
            super().__init__(*arguments)
            made.append(self)

        def measure(self, *arguments: Any) -> Any:
            with stage("partials"):
                return super().measure(*arguments)

    evaluation.PartialReads = Counted
    evaluating = container.evaluator()
    measure, raw, rule_of = evaluating.measure, [0], evaluating.evaluate_rule

    def counted(*arguments: Any, **named: Any) -> catalog.Measurement:
        raw[0] += 1
        with stage("raw rows"):
            return measure(*arguments, **named)

    def ruled(model: Model, rule: Rule, *arguments: Any, **named: Any) -> list[str]:
        with stage(rule.name):
            return rule_of(model, rule, *arguments, **named)

    evaluating.measure = counted
    evaluating.evaluate_rule = ruled  # type: ignore[method-assign]
    record = SQSRecord({"messageId": "bench", "body": json.dumps({"model_id": model.id})})
    runs = []
    for now in (DAY + timedelta(days=1, minutes=2), DAY + timedelta(days=1, minutes=7)):
        evaluating.clock = lambda now=now: now
        raw[0], made[:] = 0, []
        before = rss_mb()
        with peaks() as peak:
            started, clock = time.process_time(), time.perf_counter()
            report = handler.evaluate_record(record)
            cpu, wall = time.process_time() - started, time.perf_counter() - clock
        windows = {
            rule.name: [
                (w["window"], w.get("rows"), w.get("labelled"), w.get("value"), w.get("decision"))
                for w in evaluating.rules.windows(model.id, rule.id)
                if w.get("rows")
            ]
            for rule in evaluating.rules.list(model.id)
        }
        runs.append(
            {
                "now": now.isoformat(),
                "cpu_s": cpu,
                "wall_s": wall,
                "rss_before_mb": before,
                "rss_peak_mb": peak["rss"],
                "rss_growth_mb": peak["rss"] - before,
                "arrow_peak_mb": peak["arrow"],
                "stages_mb": {name: [rss - before, arrow] for name, (rss, arrow) in peak["stages"].items()},
                "rules": report.rules,
                "errors": report.errors,
                "alerts": len(report.alerts),
                "raw_windows": raw[0],
                "partials_made": sum(p.computed for p in made),
                "partials_read": sum(p.read for p in made),
                "windows_with_rows": windows,
            }
        )
    return {"runs": runs}


def api_query(model: Model, in_lambda: bool) -> dict[str, Any]:
    """The query API's answer to a query over the day (count, accuracy, average score): the route the
    api function takes (the SQL engine past its row limit, else the in-Lambda engine), or with
    `in_lambda` the in-Lambda engine whatever the window's size (what the route spares)."""
    from sagewatch.metrics.query import Query

    watching = container.monitoring()
    started_sql: list[str] = []
    if in_lambda:
        watching.sql = None
    elif watching.sql is not None:
        start = watching.sql.start

        def recorded(*arguments: Any) -> str:
            started_sql.append(arguments[0])
            return start(*arguments)

        watching.sql.start = recorded  # type: ignore[method-assign]
    body = Query.model_validate(
        {
            "select": [
                {"function": "count"},
                {"function": "accuracyRate"},
                {"function": "avg", "parameters": {"property": "score"}},
            ],
            "from": "inference",
            "filter": [
                {"property": "inference_timestamp", "comparator": "gte", "value": DAY.isoformat()},
                {
                    "property": "inference_timestamp",
                    "comparator": "lt",
                    "value": (DAY + timedelta(days=1)).isoformat(),
                },
            ],
        }
    )
    before = rss_mb()
    with peaks() as peak:
        started, clock = time.process_time(), time.perf_counter()
        try:
            answer: Any = watching.query(model.id, body)
        except KeyError as error:  # moto's Athena answers a query with no columns at all
            if not started_sql:
                raise
            answer = f"moto's empty Athena result not decoded ({error})"
        cpu, wall = time.process_time() - started, time.perf_counter() - clock
    return {
        "route": "sql" if started_sql else "in-lambda",
        "sql_rows_limit": watching.sql_rows,
        "cpu_s": cpu,
        "wall_s": wall,
        "rss_before_mb": before,
        "rss_peak_mb": peak["rss"],
        "rss_growth_mb": peak["rss"] - before,
        "arrow_peak_mb": peak["arrow"],
        "answer": answer if isinstance(answer, list) else repr(answer),
    }


def lambda_part(arguments: argparse.Namespace) -> dict[str, Any]:
    """One measurement of --lambdas, in this (fresh) process, against the moto server the
    environment names."""
    container.reset()
    model = container.model_store().get(arguments.model_id)
    if arguments.part == "evaluator":
        return evaluator_runs(model, arguments.fire)
    return api_query(model, in_lambda=arguments.part == "query-in-lambda")


def lambdas_case(arguments: argparse.Namespace) -> None:
    """--lambdas: the day written to a moto server, then each function's work in a fresh process."""
    with moto_server() as server:
        began = time.perf_counter()
        # the day's window is measured once 80 % of it is labelled (85 % are), not 3 days later
        model = container.model_store().create(spec().model_copy(update={"alerts_delay_labels_ratio": 0.8}))
        made = make_lake(model, arguments.rows)
        accuracy = next(m for m in catalog.default_metrics(model) if m.name == "Accuracy Rate")
        container.monitoring().rules.put(
            Rule(
                id=str(uuid.uuid4()),
                model_id=model.id,
                name="Accuracy over the day",
                metric_id=accuracy.id,
                metric_name=accuracy.name,
                bound="lower",
                threshold=0.9 if arguments.fire else 0.5,  # the day's accuracy is about 0.85
                lookback_period=ACCURACY_RULE_MINUTES,
                created_at=DAY,
            )
        )
        setup = time.perf_counter() - began
        moto_mb = process_rss_mb(server.pid)
        print(
            f"lambdas: {made['inferences']:,} inferences in {HOURS} files ({made['labelled']:,} labelled), "
            f"set up in {setup:.0f} s on a moto server holding {moto_mb:,.0f} MB of RSS",
            flush=True,
        )
        figures: dict[str, Any] = {"made": made, "setup_s": setup, "moto_rss_mb": moto_mb}
        for module in ("sagewatch.handlers.evaluator", "sagewatch.handlers.api"):
            figures[module] = footprint(module)
            print(
                f"  {module}: a fresh interpreter {figures[module]['bare_mb']:.0f} MB, "
                f"{figures[module]['imported_mb']:.0f} MB with it imported",
                flush=True,
            )
        for number, part in enumerate(arguments.parts.split(",")):
            command = [sys.executable, __file__, "--part", part, "--model-id", model.id, "--core", _CORE]
            if arguments.fire:
                command.append("--fire")
            done = subprocess.run(command, capture_output=True, text=True, env={**os.environ})
            if done.returncode:
                print(f"  {part}: failed\n{done.stderr[-4000:]}", flush=True)
                continue
            figures[f"{part} {number}"] = found = json.loads(done.stdout.strip().splitlines()[-1])
            function = "sagewatch.handlers.evaluator" if part == "evaluator" else "sagewatch.handlers.api"
            declared = EVALUATOR_MB if part == "evaluator" else API_MB
            imported = figures[function]["imported_mb"]
            for run_number, run in enumerate(found.get("runs", [found])):
                # the process's own peak (its RSS before a first run, bench and sagewatch imported, is
                # about the handler's import footprint), and never less than that footprint + growth
                need = max(run["rss_peak_mb"], imported + run["rss_growth_mb"])
                name = f"{part} run {run_number + 1}" if part == "evaluator" else f"{part} ({run['route']})"
                print(
                    f"  {name:<26} CPU {run['cpu_s']:6.1f} s  wall {run['wall_s']:6.1f} s  "
                    f"RSS {run['rss_before_mb']:,.0f} MB before, growth {run['rss_growth_mb']:6,.0f} MB "
                    f"(pyarrow at most {run['arrow_peak_mb']:,.0f} MB); peak {need:,.0f} MB of "
                    f"{declared:,} MB declared: {'fits' if need < declared else 'DOES NOT FIT'}",
                    flush=True,
                )
                if part == "evaluator":
                    print(
                        f"    {run['rules']} rules, {run['raw_windows']} windows from raw rows, partials "
                        f"made {run['partials_made']}, read {run['partials_read']}, errors {run['errors']}",
                        flush=True,
                    )
                    for name, (growth, arrow) in run.get("stages_mb", {}).items():
                        print(
                            f"    stage {name}: RSS growth {growth:.0f} MB, pyarrow {arrow:.0f} MB",
                            flush=True,
                        )
                    for rule, seen in run["windows_with_rows"].items():
                        print(f"    {rule}: {seen[-3:]}", flush=True)
                else:
                    print(f"    answer {run['answer']}", flush=True)
        if arguments.json_out:
            Path(arguments.json_out).write_text(json.dumps(figures, default=str, indent=1))


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
    parser.add_argument(
        "--lambdas",
        action="store_true",
        help="the evaluator's run and the API's query over the day, each in a fresh process, moto apart",
    )
    parser.add_argument(
        "--parts",
        default="evaluator,evaluator,query,query-in-lambda",
        help="with --lambdas: what to measure, each in a fresh process (a second evaluator: a new "
        "container finding the partials stored)",
    )
    parser.add_argument("--fire", action="store_true", help="with --lambdas: the accuracy rule fires")
    parser.add_argument("--json-out", help="with --lambdas: the figures to this file")
    parser.add_argument("--part", help=argparse.SUPPRESS)  # one --lambdas measurement (internal)
    parser.add_argument("--model-id", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.part:
        print(json.dumps(lambda_part(arguments), default=str))
        return
    if arguments.lambdas:
        lambdas_case(arguments)
        return
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
