"""Scale: what a run costs as a model's data grows (issue 18). Named cases, each printing its figures.

    python bench/scale.py --case evaluator                   # the evaluator case below
    python bench/scale.py --case evaluator --runs 1          # one run (the baseline takes minutes)
    python bench/scale.py --case reads                       # a window's reads as history grows
    python bench/scale.py --case drift30                     # a 30-day drift query over 100 M rows, as SQL
    python bench/scale.py --list                             # the cases

Every case runs in-process under moto (`moto.mock_aws`) with sagewatch's declared resources, and
prints wall time, peak RSS (sampled while the measured part runs, and the process's high-water mark)
and the S3 requests it made (GET and LIST, counted by a botocore event hook on the shared client).

evaluator: a binary classifier (3 inputs, a score, a 0/1 label) with `--per-day` inferences a day
(46 k) over the last `--days` days, in one lake file an hour; each label arrives about 3 days after
its inference (3 days less up to 12 hours), in one file per hour of arrival; the model waits 3 days
for labels (alerts_delay_seconds). One accuracy rule (5-minute lookback, below 0.8) and the model's
default rules (Input drift, Anomalous inferences). An hour of the labelled inferences is wrong half
the time, so the run raises an alert and reads intervals. Each run is the evaluator Lambda's
`evaluate_model`, the real Evaluator as the handler builds it (sagewatch.container); between runs the
clock moves 5 minutes and the labels that arrived meanwhile are written. Target (issue 18): < 30 s
per run.

reads: every default metric of the same model over the latest hour (a window of about 4,600 rows at
`--reads-per-day` 111 k) with 1 day of history and 10 k labels, with `--history-days` (90) days and
10 k labels, and then with every one of those 10 M inferences labelled. Here moto runs as a server in
its own process (in-process moto lists a prefix by walking the whole bucket and keeps every object in
this process's memory; S3 does neither), so the figures are this process's alone: CPU seconds (best
of `--repeats`) and peak RSS (the RSS of the process before any data, plus the growth while the
window is measured). Target (issue 18): the ratios of time and of peak RSS, 90 days / 1 day and
10 M labels / 10 k, <= 1.2. Setting up 10 M inferences and labels takes about 10 minutes.

drift30: the data_drift request a 30-day window past the API's Lambda runs on Athena (PSI of age,
income, region and score per day against the reference; sagewatch.metrics.sql.drift_sql) over 100 M
rows, simulated: `--drift-sample` rows (1 M) written a file a day by the lake's writer; Athena's bytes
scanned are the compressed bytes per row of the columns the Trino SQL reads (Parquet metadata) x 100 M,
priced at $5 per TB; the time is DuckDB's over the sample (median of `--repeats`), scaled linearly to
100 M rows on this machine (Athena spreads a scan over many workers; its time is not measured here).
The in-Lambda engine runs over the same sample beside it and must give the same rows.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import math
import os
import pstats
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "core"))

from sagewatch import aws, container
from sagewatch.alerting import catalog
from sagewatch.alerting.types import Rule
from sagewatch.local.provision import provision
from sagewatch.metrics.drift import DriftQuery, run_drift
from sagewatch.metrics.sql import SqlTables, drift_base, drift_sql, duckdb_views
from sagewatch.records import reference_rows, rows_from_columns
from sagewatch.schema import Model, ModelSpec
from sagewatch.services.ingestion import Source
from sagewatch.settings import environment_for, physical_names
from sagewatch.stores.window import lake_loader
from sagewatch.tables import inference_schema
from support import moto_stack, peak_rss, process_peak_mb, rss_mb

CORE = Path(__file__).resolve().parents[1] / "layers" / "core"

# -- shared by the cases -----------------------------------------------------------------------------


class S3Calls:
    """S3 requests made through the shared client, by operation (a botocore before-call hook)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.on = False
        aws.client("s3").meta.events.register("before-call.s3", self._count)

    def _count(self, model: object, **_: object) -> None:
        if self.on:
            self.counts[getattr(model, "name", "?")] += 1

    @contextlib.contextmanager
    def counting(self) -> Iterator[Counter[str]]:
        """Count the requests made inside the block (a fresh Counter)."""
        self.counts, self.on = Counter(), True
        try:
            yield self.counts
        finally:
            self.on = False

    @staticmethod
    def line(counts: Counter[str]) -> str:
        gets, lists = counts["GetObject"], counts["ListObjectsV2"]
        others = sum(counts.values()) - gets - lists
        return f"{gets:,} GET, {lists:,} LIST" + (f", {others:,} other" if others else "")


# -- the evaluator case ------------------------------------------------------------------------------

NOW = datetime(2026, 11, 25, 12, 2, tzinfo=UTC)
LABEL_DELAY = timedelta(days=3)
LABEL_EARLY = timedelta(hours=12)  # a label arrives up to this much before LABEL_DELAY has passed
INPUTS = ("age", "income", "region")


def _spec() -> ModelSpec:
    attributes = [
        {"name": "age", "stage": "PIPELINE_INPUT", "value_type": "INTEGER"},
        {"name": "income", "stage": "PIPELINE_INPUT", "value_type": "FLOAT"},
        {
            "name": "region",
            "stage": "PIPELINE_INPUT",
            "value_type": "STRING",
            "categorical": True,
            "categories": [{"value": "north"}, {"value": "south"}],
        },
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
            "partner_model_id": "scale",
            "output_type": "BINARY",
            "attributes": attributes,
            "pred_to_ground_truth_map": {"score": 1},
            "alerts_delay_seconds": int(LABEL_DELAY.total_seconds()),
        }
    )


@dataclass
class Stream:
    """The model's inferences (made up front) and their labels, written as they arrive."""

    model: Model
    ids: np.ndarray
    times: np.ndarray  # inference times, datetime64[us]
    labels: np.ndarray
    arrives: np.ndarray  # each label's arrival, datetime64[us]
    written_until: np.datetime64 = field(default_factory=lambda: np.datetime64("1970-01-01T00:00", "us"))


def _write(model: Model, columns: dict[str, object], now: datetime, inference: bool) -> None:
    writer = container.ingestor().writer(model, Source(uuid.uuid4().hex, "bench"))
    count = len(next(iter(columns.values())))  # type: ignore[arg-type]
    rows = rows_from_columns(
        {k: pa.array(v) for k, v in columns.items()},
        count,
        model,
        source="bench",
        now=now,
        require_inference=inference,
    )
    assert rows.failures == 0, rows.problem
    if inference:
        writer.add(now.date(), inferences=rows.inferences)
    else:
        writer.add(now.date(), ground_truth=rows.ground_truth)
    writer.finish()


def _as_datetimes(values: np.ndarray) -> list[datetime]:
    return [
        datetime.fromtimestamp(int(v) / 1e6, tz=UTC) for v in values.astype("datetime64[us]").astype(np.int64)
    ]


def write_reference(model: Model, rng: np.random.Generator, size: int = 5_000) -> None:
    """The model's reference set: `size` rows like its inferences, labels at random."""
    table, _ = reference_rows(
        {
            "age": pa.array(rng.integers(18, 90, size)),
            "income": pa.array(rng.normal(0, 1, size)),
            "region": pa.array(rng.choice(["north", "south"], size)),
            "score": pa.array(rng.random(size)),
            "label": pa.array(rng.integers(0, 2, size)),
        },
        size,
        model,
    )
    writer = container.ingestor().writer(model, Source(uuid.uuid4().hex, "bench"))
    writer.add(NOW.date(), reference=table)
    writer.finish()


def make_stream(model: Model, per_day: int, days: int, quick: bool = False, seed: int = 0) -> Stream:
    """Write the reference and `days` days of inferences up to NOW, one file an hour; labels are
    made up front and written as they arrive (`write_labels`): about 3 days late, an hour of them
    wrong half the time; `quick`, within 10 minutes, all of them wrong half the time."""
    rng = np.random.default_rng(seed)
    write_reference(model, rng)
    start = np.datetime64((NOW - timedelta(days=days)).replace(tzinfo=None), "us")
    span = int(timedelta(days=days).total_seconds() * 1e6)
    count = per_day * days
    times = np.sort(start + rng.integers(0, span, count).astype("timedelta64[us]"))
    score = rng.random(count)
    right = rng.random(count) < 0.9
    # an hour of labelled inferences, ending where labels are arriving now, is wrong half the time
    now64 = np.datetime64(NOW.replace(tzinfo=None), "us")
    dip_end = now64 - np.timedelta64(int(LABEL_DELAY.total_seconds()), "s") + np.timedelta64(15, "m")
    dip = (times >= dip_end - np.timedelta64(60, "m")) & (times < dip_end)
    right[dip | quick] = rng.random(int((dip | quick).sum())) < 0.5
    labels = np.where(right, score >= 0.5, score < 0.5).astype(np.int64)
    if quick:
        arrives = times + rng.integers(0, 600 * 10**6, count).astype("timedelta64[us]")
    else:
        early = rng.integers(0, int(LABEL_EARLY.total_seconds() * 1e6), count).astype("timedelta64[us]")
        arrives = times + np.timedelta64(int(LABEL_DELAY.total_seconds()), "s") - early
    ids = np.array([f"i{n}" for n in range(count)])

    hours = times.astype("datetime64[h]")
    bounds = np.flatnonzero(np.diff(hours.astype(np.int64))) + 1
    for part in np.split(np.arange(count), bounds):
        hour_end = _as_datetimes(hours[part[:1]] + np.timedelta64(1, "h"))[0]
        _write(
            model,
            {
                "partner_inference_id": ids[part],
                "inference_timestamp": _as_datetimes(times[part]),
                "age": rng.integers(18, 90, len(part)),
                "income": rng.normal(0, 1, len(part)),
                "region": rng.choice(["north", "south"], len(part)),
                "score": score[part],
            },
            min(hour_end, NOW),
            inference=True,
        )
    stream = Stream(model, ids, times, labels, arrives)
    write_labels(stream, NOW, hourly=True)
    return stream


def write_labels(stream: Stream, until: datetime, hourly: bool = False) -> int:
    """Write the labels that arrived since the last write, up to `until`: one file per hour of
    arrival (`hourly`), else one file. Returns how many."""
    end = np.datetime64(until.replace(tzinfo=None), "us")
    due = np.flatnonzero((stream.arrives > stream.written_until) & (stream.arrives <= end))
    due = due[np.argsort(stream.arrives[due], kind="stable")]
    stream.written_until = end
    if not len(due):
        return 0
    hours = stream.arrives[due].astype("datetime64[h]").astype(np.int64)
    parts = np.split(due, np.flatnonzero(np.diff(hours)) + 1) if hourly else [due]
    for part in parts:
        _write(
            stream.model,
            {
                "partner_inference_id": stream.ids[part],
                "ground_truth_timestamp": _as_datetimes(stream.arrives[part]),
                "label": stream.labels[part],
            },
            _as_datetimes(stream.arrives[part[-1:]])[0],
            inference=False,
        )
    return len(due)


def _windows_measured(evaluator: object) -> Callable[[], int]:
    """Count the evaluator's window measurements from now on (wrapping its `measure`)."""
    measured = [0]
    inner = evaluator.measure  # type: ignore[attr-defined]

    def measure(*args: object, **kwargs: object) -> catalog.Measurement:
        measured[0] += 1
        return inner(*args, **kwargs)

    evaluator.measure = measure  # type: ignore[attr-defined]
    return lambda: measured[0]


@contextlib.contextmanager
def _intervals_read() -> Iterator[Callable[[], int]]:
    """Count the intervals the evaluator reads inside the block (catalog.interval wrapped)."""
    read = [0]
    inner = catalog.interval

    def interval(*args: object, **kwargs: object) -> catalog.Interval | None:
        read[0] += 1
        return inner(*args, **kwargs)  # type: ignore[arg-type]

    catalog.interval = interval  # type: ignore[assignment]
    try:
        yield lambda: read[0]
    finally:
        catalog.interval = inner  # type: ignore[assignment]


def evaluator_case(arguments: argparse.Namespace) -> None:
    """Labels about 3 days late (module docstring): each run looks at 865 windows, a few labelled."""
    _evaluator_runs(arguments, quick=False)


def evaluator_alerting_case(arguments: argparse.Namespace) -> None:
    """The evaluator case with every label arriving within 10 minutes, all hours wrong half the time:
    the first run finds 860 windows labelled and crossing, and reads an interval for each."""
    _evaluator_runs(arguments, quick=True)


def _evaluator_runs(arguments: argparse.Namespace, quick: bool) -> None:
    with moto_stack(), _intervals_read() as intervals:
        started = time.perf_counter()
        model = container.model_store().create(_spec())
        stream = make_stream(model, arguments.per_day, arguments.days, quick)
        accuracy = next(m for m in catalog.default_metrics(model) if m.name == "Accuracy Rate")
        evaluator = container.evaluator()
        evaluator.partials = not arguments.raw  # the default rules' windows from partials, or raw rows
        evaluator.rules.put(
            Rule(
                id=uuid.uuid4().hex,
                model_id=model.id,
                name="accuracy",
                metric_id=accuracy.id,
                bound="lower",
                threshold=0.8,
                lookback_period=5,
                created_at=NOW,
            )
        )
        print(
            f"evaluator{'-alerting' if quick else ''}: {len(stream.ids):,} inferences over "
            f"{arguments.days} days ({arguments.per_day:,} a day, a file an hour), labels "
            f"{'within 10 minutes' if quick else '3 days late'}; set up in {time.perf_counter() - started:.0f} s"
        )
        calls = S3Calls()
        measured = _windows_measured(evaluator)
        seconds = []
        for run in range(arguments.runs):
            moment = NOW + timedelta(minutes=5 * run)
            if run:
                write_labels(stream, moment)
            evaluator.clock = lambda moment=moment: moment
            before, spread = measured(), intervals()
            profile = cProfile.Profile() if arguments.profile and run == arguments.runs - 1 else None
            with calls.counting() as counts, peak_rss() as peak:
                began = time.perf_counter()
                if profile:
                    report = profile.runcall(evaluator.evaluate_model, model.id)
                else:
                    report = evaluator.evaluate_model(model.id)
                seconds.append(time.perf_counter() - began)
            assert not report.errors, report.errors
            print(
                f"  run {run + 1} at {moment:%H:%M}: {seconds[-1]:7.2f} s  peak RSS {peak[0]:5.0f} MB  "
                f"{measured() - before:4d} windows  {intervals() - spread:4d} intervals  "
                f"{report.rules} rules  {len(report.alerts)} alerts  "
                f"S3 {S3Calls.line(counts)}"
            )
            if profile:
                pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
        rules = evaluator.rules.list(model.id)
        alerts = evaluator.alerts.list(model.id)
        print(
            f"evaluator run: median {statistics.median(seconds):.2f} s of {len(seconds)} "
            f"(target < 30 s); rules {', '.join(r.name for r in rules)}; {len(alerts)} alerts; "
            f"{'raw rows only' if arguments.raw else 'partials where they answer'}; "
            f"process peak RSS {process_peak_mb():.0f} MB"
        )


# -- the reads case ----------------------------------------------------------------------------------

WINDOW = catalog.Window(NOW - timedelta(hours=1), NOW)


def write_inferences(model: Model, days: int, per_day: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`days` days of `per_day` inferences up to NOW, a file an hour; their ids and times."""
    rng = np.random.default_rng(seed)
    count = days * per_day
    start = np.datetime64((NOW - timedelta(days=days)).replace(tzinfo=None), "us")
    times = np.sort(start + rng.integers(0, int(days * 86_400e6), count).astype("timedelta64[us]"))
    ids = np.char.add("i", np.arange(count).astype(str))
    hours = times.astype("datetime64[h]").astype(np.int64)
    for part in np.split(np.arange(count), np.flatnonzero(np.diff(hours)) + 1):
        _write(
            model,
            {
                "partner_inference_id": ids[part],
                "inference_timestamp": _as_datetimes(times[part]),
                "age": rng.integers(18, 90, len(part)),
                "income": rng.normal(0, 1, len(part)),
                "region": rng.choice(["north", "south"], len(part)),
                "score": rng.random(len(part)),
            },
            NOW,
            inference=True,
        )
    return ids, times


def write_labels_of(
    model: Model, ids: np.ndarray, times: np.ndarray, chosen: np.ndarray, seed: int = 0
) -> None:
    """Labels of the `chosen` inferences, timed LABEL_DELAY after them, a file per day of arrival."""
    rng = np.random.default_rng(seed)
    arrives = times[chosen] + np.timedelta64(int(LABEL_DELAY.total_seconds()), "s")
    days_of = arrives.astype("datetime64[D]").astype(np.int64)
    for part in np.split(np.arange(len(chosen)), np.flatnonzero(np.diff(days_of)) + 1):
        _write(
            model,
            {
                "partner_inference_id": ids[chosen[part]],
                "ground_truth_timestamp": _as_datetimes(arrives[part]),
                "label": rng.integers(0, 2, len(part)),
            },
            NOW,
            inference=False,
        )


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


@contextlib.contextmanager
def moto_server_stack() -> Iterator[dict[str, str]]:
    """sagewatch's declared resources on a moto server in its own process, so this process's CPU time
    and memory are sagewatch's alone (in-process moto lists a prefix by walking the whole bucket, and
    holds every object in this process's memory; real S3 does neither)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(CORE)},
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
        yield provision(names)
    finally:
        container.reset()
        os.environ.pop("AWS_ENDPOINT_URL", None)
        server.terminate()
        server.wait()


def evaluate_window(model: Model) -> list[catalog.Measurement]:
    """Every default metric of the model over the latest hour, as an evaluator run measures it."""
    load = lake_loader(container.lake_store(), model)
    return [catalog.measure(metric, model, load, WINDOW) for metric in catalog.default_metrics(model)]


def reads_case(arguments: argparse.Namespace) -> None:
    """A 1-hour window's evaluation (every default metric) as the history and the labels received grow."""
    per_day, days, labelled = arguments.reads_per_day, arguments.history_days, 10_000
    imports = rss_mb()  # what a Lambda process holds before it reads anything
    figures: dict[str, tuple[float, float]] = {}

    def measure(name: str, model: Model, setup: float) -> None:
        calls = S3Calls()
        seconds, engine, growth = [], [], []
        for _ in range(arguments.repeats):
            before = rss_mb()
            with calls.counting() as counts, peak_rss() as peak:
                began, cpu = time.perf_counter(), time.process_time()
                measured = evaluate_window(model)
                seconds.append(time.perf_counter() - began)
                engine.append(time.process_time() - cpu)
            growth.append(peak[0] - before)
        figures[name] = (min(engine), imports + statistics.median(growth))
        print(
            f"  {name:34s} (set up in {setup:4.0f} s): {max(m.rows for m in measured):,} rows, "
            f"{len(measured)} metrics: wall median {statistics.median(seconds):.2f} s, CPU best "
            f"{figures[name][0]:.2f} s median {statistics.median(engine):.2f} s; RSS +{statistics.median(growth):.0f} MB over {imports:.0f} MB; S3 {S3Calls.line(counts)}"
        )

    with moto_server_stack():
        began = time.perf_counter()
        model = container.model_store().create(_spec())
        write_reference(model, np.random.default_rng(0))
        ids, times = write_inferences(model, 1, per_day)
        write_labels_of(model, ids, times, np.arange(max(0, len(ids) - labelled), len(ids)))
        measure("1 day, 10 k labels", model, time.perf_counter() - began)
    with moto_server_stack():
        began = time.perf_counter()
        model = container.model_store().create(_spec())
        write_reference(model, np.random.default_rng(0))
        ids, times = write_inferences(model, days, per_day)
        write_labels_of(model, ids, times, np.arange(max(0, len(ids) - labelled), len(ids)))
        measure(f"{days} days, 10 k labels", model, time.perf_counter() - began)
        began = time.perf_counter()
        # every inference of the days before the window's, so the window's own labels stay the same
        before = np.flatnonzero(times < np.datetime64(NOW.date().isoformat(), "us"))
        write_labels_of(model, ids, times, before, seed=1)
        total = labelled + len(before)
        measure(f"{days} days, {total / 1e6:.0f} M labels", model, time.perf_counter() - began)
    (base_s, base_mb), (hist_s, hist_mb), (lab_s, lab_mb) = figures.values()
    print(
        f"reads: history ({days} days / 1 day): time {hist_s / base_s:.2f}, peak RSS {hist_mb / base_mb:.2f}; "
        f"labels ({total / 1e6:.0f} M / 10 k): time {lab_s / hist_s:.2f}, peak RSS {lab_mb / hist_mb:.2f} "
        "(target <= 1.2)"
    )


# -- the drift30 case --------------------------------------------------------------------------------

DRIFT_DAYS = 30
DRIFT_ROWS = 100_000_000
# Athena's price: $5 per TB of data scanned, each query billed at least 10 MB
# (https://aws.amazon.com/athena/pricing/, us-east-1)
ATHENA_DOLLARS_PER_TB = 5.0
ATHENA_MINIMUM_BYTES = 10 * 10**6


def write_drift_days(model: Model, rows: int, seed: int = 0) -> None:
    """`rows` inferences over the DRIFT_DAYS days before NOW, one lake file a day (the lake's own
    writer: zstd Parquet under inferences/model_id=/date=/), inputs drifting slowly day by day."""
    rng = np.random.default_rng(seed)
    lake = container.lake_store()
    schema = inference_schema(model)
    per_day = rows // DRIFT_DAYS
    start = np.datetime64((NOW - timedelta(days=DRIFT_DAYS)).date().isoformat(), "us")
    for day in range(DRIFT_DAYS):
        moments = (
            start
            + np.timedelta64(day, "D")
            + rng.integers(0, 86_400_000_000, per_day).astype("timedelta64[us]")
        )
        shift = day / DRIFT_DAYS
        columns = {
            # SageMaker's inference ids are UUIDs: random text, which Parquet barely compresses
            "partner_inference_id": np.array([uuid.UUID(bytes=rng.bytes(16)).hex for _ in range(per_day)]),
            "inference_timestamp": np.sort(moments),
            "batch_id": None,
            "source": "capture",
            "variant": "AllTraffic",
            "ingested_at": np.full(per_day, start + np.timedelta64(day + 1, "D")),  # one ingest a file
            "age": rng.integers(18, 90, per_day) + np.int64(10 * shift),
            "income": rng.normal(shift, 1, per_day),
            "region": rng.choice(["north", "south"], per_day, p=[0.5 + 0.3 * shift, 0.5 - 0.3 * shift]),
            "score": rng.random(per_day),
            "anomaly_score": rng.random(per_day),
        }
        table = pa.table(
            {
                f.name: pa.nulls(per_day, f.type)
                if columns[f.name] is None
                else pa.array(
                    np.full(per_day, columns[f.name]) if isinstance(columns[f.name], str) else columns[f.name]
                ).cast(f.type)
                for f in schema
            }
        )
        lake.write_rows("inferences", model.id, table, "inference_timestamp", f"day-{day:02d}")


def column_bytes(bodies: list[bytes], columns: set[str]) -> tuple[dict[str, int], int]:
    """Compressed bytes of each of `columns` over Parquet files (what Athena scans), and their rows."""
    found: Counter[str] = Counter()
    rows = 0
    for body in bodies:
        metadata = pq.ParquetFile(pa.BufferReader(body)).metadata
        rows += metadata.num_rows
        for group in range(metadata.num_row_groups):
            for index in range(metadata.num_columns):
                chunk = metadata.row_group(group).column(index)
                if chunk.path_in_schema in columns:
                    found[chunk.path_in_schema] += chunk.total_compressed_size
    return dict(found), rows


def same_rows(a: object, b: object) -> bool:
    """Equal answers, floats to 1e-9."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_rows(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_rows(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def drift30_case(arguments: argparse.Namespace) -> None:
    """A 30-day drift query (PSI of 4 properties per day against the reference) over 100 M rows as
    Athena runs it: the bytes it scans (the lake's measured bytes per row of the columns its SQL
    reads, x 100 M), their price, and DuckDB's time over a sample of the lake, scaled to 100 M rows."""
    sample = arguments.drift_sample
    request = DriftQuery.model_validate(
        {
            "properties": ["age", "income", "region", "score"],
            "metric": "PSI",
            "rollup": "day",
            "target": {
                "source": "inference",
                "filter": [
                    {
                        "property": "inference_timestamp",
                        "comparator": "gte",
                        "value": (NOW - timedelta(days=DRIFT_DAYS)).date().isoformat(),
                    },
                    {"property": "inference_timestamp", "comparator": "lt", "value": NOW.date().isoformat()},
                ],
            },
        }
    )
    with moto_stack(), tempfile.TemporaryDirectory() as root:
        began = time.perf_counter()
        model = container.model_store().create(_spec())
        write_reference(model, np.random.default_rng(0))
        write_drift_days(model, sample)
        lake = container.lake_store()
        keys = [k for k in lake.keys(f"inferences/model_id={model.id}/") if k.endswith(".parquet")]
        bodies = [lake.client.get_object(Bucket=lake.bucket, Key=k)["Body"].read() for k in keys]
        print(f"drift30: {len(keys)} files, {sample:,} rows written in {time.perf_counter() - began:.1f} s")

        base = drift_base(request, model, lake_loader(lake, model))
        athena = SqlTables(
            "sagewatch.inferences",
            "sagewatch.labels",
            "sagewatch.ground_truth",
            "sagewatch.reference",
            ("$path",),
        )
        trino = drift_sql(request, model, athena, "trino", base).sql
        read = {c.name for c in sqlglot.parse_one(trino, read="trino").find_all(sqlglot.exp.Column)}
        sizes, rows = column_bytes(bodies, read & set(inference_schema(model).names))
        per_row = sum(sizes.values()) / rows
        scanned = max(per_row * DRIFT_ROWS, ATHENA_MINIMUM_BYTES)
        print(
            f"  Trino SQL: {len(trino.encode()):,} bytes; inference columns it reads: {', '.join(sorted(sizes))}"
        )
        print(
            "  bytes per row of those columns (zstd Parquet, "
            f"{rows // len(keys):,}-row files): {per_row:.2f} ("
            + ", ".join(f"{name} {size / rows:.2f}" for name, size in sorted(sizes.items()))
            + ")"
        )
        print(
            f"  Athena over {DRIFT_ROWS / 1e6:.0f} M rows: {scanned / 1e9:.2f} GB scanned, "
            f"${scanned / 1e12 * ATHENA_DOLLARS_PER_TB:.4f} a query at ${ATHENA_DOLLARS_PER_TB:.0f}/TB"
        )

        for key, body in zip(keys, bodies, strict=True):
            (Path(root) / key).parent.mkdir(parents=True, exist_ok=True)
            (Path(root) / key).write_bytes(body)
        globs = {"inferences": str(Path(root) / "inferences" / f"model_id={model.id}" / "*" / "*.parquet")}
        local = SqlTables("inferences", "labels", "ground_truth", "reference", ("place",))
        connection = duckdb.connect()
        for statement in duckdb_views(model, local, globs):
            connection.execute(statement)
        planned = drift_sql(request, model, local, "duckdb", base)
        seconds = []
        for _ in range(arguments.repeats):
            began = time.perf_counter()
            answer = planned.rows(connection.sql(planned.sql).to_arrow_table())
            seconds.append(time.perf_counter() - began)
        took = statistics.median(seconds)
        print(
            f"  DuckDB over the sample ({os.cpu_count()} cores): median {took:.2f} s of {len(seconds)} "
            f"(min {min(seconds):.2f}), {sample / took / 1e6:.2f} M rows/s -> {DRIFT_ROWS / 1e6:.0f} M rows: "
            f"{took * DRIFT_ROWS / sample:.0f} s"
        )
        began = time.perf_counter()
        with peak_rss() as peak:
            engine = run_drift(request, model, lake_loader(lake, model))
        print(
            f"  in-Lambda engine over the sample: {time.perf_counter() - began:.2f} s, peak RSS "
            f"{peak[0]:.0f} MB; {len(engine)} windows, same as the SQL's: {same_rows(answer, engine)}"
        )


# -- the cases --------------------------------------------------------------------------------------

CASES: dict[str, Callable[[argparse.Namespace], None]] = {
    "evaluator": evaluator_case,
    "evaluator-alerting": evaluator_alerting_case,
    "reads": reads_case,
    "drift30": drift30_case,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", choices=sorted(CASES), action="append", help="a case to run (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the cases and stop")
    parser.add_argument("--runs", type=int, default=3, help="evaluator: runs, 5 minutes apart")
    parser.add_argument("--per-day", type=int, default=46_000, help="evaluator: inferences a day")
    parser.add_argument("--days", type=int, default=5, help="evaluator: days of inferences")
    parser.add_argument("--profile", action="store_true", help="print a profile of the last run")
    parser.add_argument(
        "--raw", action="store_true", help="evaluator: every window from raw rows (no partials)"
    )
    parser.add_argument("--reads-per-day", type=int, default=111_112, help="reads: inferences a day")
    parser.add_argument("--history-days", type=int, default=90, help="reads: days of history")
    parser.add_argument("--repeats", type=int, default=7, help="reads: measurements of the window")
    parser.add_argument("--drift-sample", type=int, default=1_000_000, help="drift30: rows written")
    arguments = parser.parse_args()
    if arguments.list:
        for name, case in CASES.items():
            print(f"{name}: {(case.__doc__ or '').strip()}")
        return
    for name in arguments.case or list(CASES):
        CASES[name](arguments)


if __name__ == "__main__":
    main()
