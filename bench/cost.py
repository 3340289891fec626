"""What sagewatch costs to run on AWS: per 10 million inferences ingested and evaluated, a month fixed
per model and per deployment, and a month at 1, 10 and 100 requests/s beside an hourly SageMaker Model
Monitor schedule. docs/cost.md explains the model and the figures.

    python bench/cost.py                 # the hour from noon, 3 runs of each scenario (about 40 min)
    python bench/cost.py --quick         # the hour from 02:00, one run each (about 4 min)
    python bench/cost.py --rates 1,10 --instances 1 --file-minutes 10 --monitor-minutes 10 --repeat 1

Each scenario runs in-process under moto with sagewatch's declared resources and the real handlers:
a binary model of 10 inputs (bench/capture_parse.py's) bound to a SageMaker endpoint, with a
10,000-row reference (so its default rules, Input drift and Anomalous inferences, exist, and every
inference is scored for anomalies at ingest). A simulated day (yesterday's date, so every time is
past): the lake holds the day's inferences up to the measured hour, written straight through the
ingestor's writer a part per capture file (unmeasured); then, in 5-minute steps, each endpoint
instance writes a Data Capture file every `--file-minutes` (one inference per request, 60% CSV and
40% JSON payloads, 30% with an inferenceId), S3's notification puts it on the ingest queue, the queue
is received as Lambda's event source does and the ingest handler is invoked with the message, one
invocation per file (files arrive minutes apart); a minute later the scheduler fans out and the
evaluator handler runs with its clock at that minute. That hour is measured. Before it, the evaluator
runs once unmeasured, as the day's earlier runs would have: its default rules exist and each earlier
file has its partial aggregates (stores/partials.py), so a measured run makes those of its new files
and reads the partials of its windows. With --raw every window is measured from the raw rows, which
reads the day's files (not only the window's), so that cost grows through the day: the hour from
noon, half a day of files before it, is a day's average. --cold empties the evaluator's process
caches (id fingerprints, partials, id indexes) before each run, as a new Lambda container would
start. The idle scenario (traffic the day before, none on the day) gives the fixed cost of a model.

Measured, per invocation: CPU seconds (time.process_time over every thread, less the CPU moto spends
answering in-process and this script's counting), wall time, every AWS request by service and
operation (botocore hooks on every client sagewatch.aws makes), S3 bytes in and out, DynamoDB
request units from the sizes of the items read and written, bytes logged (Powertools loggers, EMF
metric lines, warnings) and the custom metrics named; and the lake's growth per inference.

Assumed (bench/cost_model.py, each with its source): Lambda bills duration, not CPU, and moto's
latency is not AWS's, so each request is held for an assumed latency (S3 30 ms plus its bytes at
100 MB/s, DynamoDB 8 ms, SQS 20 ms; slept, so requests the code makes at once overlap), and the
billed duration is estimated as the CPU plus the summed latencies over their measured overlap, as if
no request overlapped with computing (an upper estimate; CPU alone, the lower bound, is printed
too). A CPU second here is a CPU second of a Graviton2 core (--cpu-factor scales it). Functions are
warm (a cold start is measured and priced apart). Every invocation is traced by X-Ray (below one
invocation a second the default sampling rule's reservoir takes them all) and writes 400 bytes of
platform log lines (START, END, REPORT).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import platform
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
from botocore.handlers import BUILTIN_HANDLERS
from moto.core.botocore_stubber import BotocoreStubber

import cost_model as cm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers" / "core"))

from sagewatch import aws, container  # noqa: E402
from sagewatch.handlers import evaluator as evaluator_handler  # noqa: E402
from sagewatch.handlers import ingest as ingest_handler  # noqa: E402
from sagewatch.handlers import scheduler as scheduler_handler  # noqa: E402
from sagewatch.local.http_bridge import LocalContext  # noqa: E402
from sagewatch.local.pollers import sqs_event  # noqa: E402
from sagewatch.records import reference_rows, rows_from_columns  # noqa: E402
from sagewatch.resources import DECLARATION, Table  # noqa: E402
from sagewatch.schema import Model, ModelSpec  # noqa: E402
from sagewatch.services.ingestion import Source  # noqa: E402
from sagewatch.settings import physical_names  # noqa: E402
from sagewatch.stores import partials as stored_partials  # noqa: E402
from support import moto_stack, process_peak_mb  # noqa: E402

ENDPOINT = "cost-endpoint"
VARIANT = "AllTraffic"
FEATURES = [f"f{i}" for i in range(8)]  # the model of bench/capture_parse.py
CATEGORIES = {"plan": ["basic", "plus", "pro"], "region": ["north", "south", "east", "west"]}
STEP = timedelta(minutes=next(s.rate_minutes for s in DECLARATION.schedules if s.name == "evaluate"))
SCHEDULE_OFFSET = timedelta(minutes=1)  # the schedule fires a minute after a step's files are in
PLATFORM_LOG_BYTES = 400  # START, END and REPORT lines of one invocation (assumed)
ESM_POLL_CONNECTIONS = 5  # long-poll connections per SQS event source when idle (assumed)
ESM_POLL_SECONDS = 20  # each a 20 s long poll
EVENT_SOURCES = (
    2  # the ingest and evaluate queues feed Lambda event sources (infra/ingest.py, infra/monitor.py)
)
TARGET_PER_TEN_MILLION, TARGET_FIXED = 0.25, 1.00  # issue 18
SCHEDULER, INGEST, EVALUATOR = "scheduler", "ingest", "evaluator"
INGEST_EVENTS, EVALUATOR_EVENTS = "ingest events", "evaluator events"  # the event sources' requests


# -- counting AWS requests --------------------------------------------------------------------------


class ByteCount(io.TextIOBase):
    """A text stream that counts the UTF-8 bytes written to it (and keeps EMF metric lines)."""

    def __init__(self) -> None:
        self.bytes = 0
        self.metrics: set[tuple[str, str, tuple[str, ...]]] = set()

    def write(self, text: str) -> int:
        """Count the bytes; note the custom metrics of an EMF line."""
        self.bytes += len(text.encode())
        if '"_aws"' in text:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                self._note_metrics(json.loads(text))
        return len(text)

    def _note_metrics(self, line: dict[str, Any]) -> None:
        for directive in line["_aws"]["CloudWatchMetrics"]:
            for dimensions in directive["Dimensions"]:
                for metric in directive["Metrics"]:
                    self.metrics.add((directive["Namespace"], metric["Name"], tuple(sorted(dimensions))))


@dataclass
class Invocation:
    """One measured Lambda invocation."""

    function: str
    cpu: float  # sagewatch's CPU seconds (moto's and the meter's taken out)
    wall: float  # in-process wall seconds (moto's work and the assumed latencies slept included)
    io: float  # the assumed latencies of its requests over how many were in flight at once
    latency: float  # the assumed latencies of its requests, summed
    log_bytes: int


@dataclass
class Tally:
    """What the requests of one part (a function, or the event sources around it) used."""

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    s3_put_tier: float = 0.0
    s3_get_tier: float = 0.0
    s3_bytes_in: int = 0
    s3_bytes_out: int = 0
    wru: float = 0.0
    rru: float = 0.0
    sqs: float = 0.0


S3_PUT_TIER = {
    "PutObject",
    "CopyObject",
    "PostObject",
    "ListObjects",
    "ListObjectsV2",
    "ListObjectVersions",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
}
S3_FREE = {"DeleteObject", "DeleteObjects"}
PRICED_SERVICES = {"s3", "dynamodb", "sqs"}  # requests priced per request; others are listed apart


class Meter:
    """Every AWS request of every botocore client made after it is installed, while `on`: by part,
    service and operation, with what AWS bills for it; and the CPU moto spends answering in-process.

    Installed as botocore built-in handlers (as moto installs itself), so every client sagewatch.aws
    makes carries it. DynamoDB request units come from item sizes: reads from the items returned,
    puts from the item sent, updates from the item as it is after the update (looked up after the
    measured part, `settle`), deletes and condition checks as 1 KB."""

    def __init__(self, tables: dict[str, Table]) -> None:
        self.tables = tables  # physical name -> declared table (its indexes)
        self.on = False
        self.part = ""
        self.tallies: dict[str, Tally] = {}
        self.deferred: list[tuple[str, str, dict[str, Any], int]] = []
        self.latencies = 0.0  # assumed seconds of the measured requests on AWS
        self.intervals: list[tuple[float, float]] = []  # each measured request's wall interval
        self.moto_cpu = 0.0
        self.meter_cpu = 0.0
        self._lock = threading.Lock()
        BUILTIN_HANDLERS.append(("before-parameter-build", self._before))
        BUILTIN_HANDLERS.append(("after-call", self._after))
        served = BotocoreStubber.process_request
        meter = self

        def timed(stubber: BotocoreStubber, request: Any) -> Any:
            began, started = time.perf_counter(), time.thread_time()
            response = served(stubber, request)
            spent = time.thread_time() - started
            latency = meter.latency(request, response) if meter.on else 0.0
            time.sleep(latency)  # releases the GIL: requests the code makes at once overlap as on AWS
            with meter._lock:
                meter.moto_cpu += spent
                if meter.on:
                    meter.latencies += latency
                    meter.intervals.append((began, time.perf_counter()))
            return response

        BotocoreStubber.process_request = timed  # type: ignore[method-assign]

    @contextlib.contextmanager
    def counting(self, part: str) -> Iterator[Tally]:
        """Count the requests made inside the block under `part`."""
        tally = self.tallies.setdefault(part, Tally())
        self.on, self.part = True, part
        try:
            yield tally
        finally:
            self.on = False

    def _before(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["cost_params"] = params
        if self.on and "Body" in params:  # before botocore streams it (a file-like object by now)
            body = params["Body"]
            context["cost_body"] = (
                len(body) if isinstance(body, bytes | bytearray | str) else _stream_size(body)
            )

    def _after(self, model: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if not self.on:
            return
        started = time.thread_time()
        service, operation = model.service_model.service_name, model.name
        params = context.get("cost_params", {})
        with self._lock:
            tally = self.tallies[self.part]
            tally.requests[(service, operation)] += 1
            if service == "s3":
                self._s3(tally, operation, context.get("cost_body", 0), parsed)
            elif service == "dynamodb":
                self._dynamodb(tally, operation, params, parsed)
            elif service == "sqs":
                tally.sqs += 1
            self.meter_cpu += time.thread_time() - started

    def _s3(self, tally: Tally, operation: str, sent: int, parsed: dict[str, Any]) -> None:
        if operation in S3_FREE:
            return
        if operation in S3_PUT_TIER:
            tally.s3_put_tier += 1
        else:
            tally.s3_get_tier += 1
        if operation == "PutObject":
            tally.s3_bytes_in += sent
        elif operation == "GetObject":
            tally.s3_bytes_out += int(parsed.get("ContentLength") or 0)

    @staticmethod
    def latency(request: Any, response: Any) -> float:
        """The assumed seconds of a request on AWS (cost_model.LATENCIES), from its host and the
        bytes it moved."""
        host = urlsplit(request.url).hostname or ""
        service = next((s for s in ("s3", "dynamodb", "sqs") if s in host.split(".")), "other")
        if service != "s3":
            return cm.request_seconds(service)
        sent = int(request.headers.get("Content-Length") or 0)
        body = response[2] if response else b""
        return cm.request_seconds(service, sent + (len(body) if isinstance(body, bytes | str) else 0))

    def _dynamodb(self, tally: Tally, operation: str, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        table = params.get("TableName", "")
        if operation == "GetItem":
            tally.rru += cm.read_units(cm.item_bytes(parsed.get("Item")), bool(params.get("ConsistentRead")))
        elif operation in ("Query", "Scan"):
            size = sum(cm.item_bytes(item) for item in parsed.get("Items", []))
            consistent = bool(params.get("ConsistentRead")) and "IndexName" not in params
            tally.rru += cm.read_units(size, consistent)
        elif operation == "PutItem":
            tally.wru += self._write(table, params["Item"])
        elif operation == "UpdateItem":
            if params.get("ReturnValues") == "ALL_NEW" and "Attributes" in parsed:
                tally.wru += self._write(table, parsed["Attributes"])
            else:
                self.deferred.append((self.part, table, params["Key"], 1))
        elif operation == "DeleteItem":
            tally.wru += 1
        elif operation == "TransactWriteItems":  # twice the units of the same writes
            for entry in params.get("TransactItems", []):
                ((kind, write),) = entry.items()
                if kind == "Put":
                    tally.wru += 2 * self._write(write["TableName"], write["Item"])
                elif kind == "Update":
                    self.deferred.append((self.part, write["TableName"], write["Key"], 2))
                else:
                    tally.wru += 2
        elif operation == "BatchWriteItem":
            for name, writes in params.get("RequestItems", {}).items():
                for write in writes:
                    put = write.get("PutRequest")
                    tally.wru += self._write(name, put["Item"]) if put else 1
        elif operation == "BatchGetItem":
            for items in parsed.get("Responses", {}).values():
                tally.rru += sum(cm.read_units(cm.item_bytes(item), True) for item in items)

    def _write(self, table: str, item: dict[str, Any]) -> int:
        """Write units of one item: the table's, and each index's that the item is in."""
        declared = self.tables.get(table)
        indexes = sum(1 for i in declared.indexes if i.partition_key.name in item) if declared else 0
        return cm.write_units(cm.item_bytes(item)) * (1 + indexes)

    def settle(self) -> None:
        """Size the updated items (read now, not counted) and add their write units."""
        client = aws.client("dynamodb")
        for part, table, key, factor in self.deferred:
            item = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
            self.tallies[part].wru += factor * (self._write(table, item) if item else 1)
        self.deferred = []


def _stream_size(body: Any) -> int:
    """Bytes from a file-like object's position to its end (0 when it cannot seek)."""
    with contextlib.suppress(AttributeError, OSError):
        position = body.tell()
        body.seek(0, os.SEEK_END)
        size = body.tell() - position
        body.seek(position)
        return size
    return 0


@contextlib.contextmanager
def logs_counted() -> Iterator[ByteCount]:
    """Count what the handlers log (the Powertools loggers, EMF metrics on stdout, warnings of other
    loggers, which Lambda's runtime would write) instead of printing it."""
    counter = ByteCount()
    swapped = []
    for name, found in logging.root.manager.loggerDict.items():
        if name.startswith("sagewatch-") and isinstance(found, logging.Logger):
            for handler in found.handlers:
                if isinstance(handler, logging.StreamHandler):
                    swapped.append((handler, handler.setStream(counter)))
    others = logging.StreamHandler(counter)
    others.setLevel(logging.WARNING)
    others.addFilter(lambda record: not record.name.startswith("sagewatch-"))
    logging.root.addHandler(others)
    try:
        with contextlib.redirect_stdout(counter):
            yield counter
    finally:
        logging.root.removeHandler(others)
        for handler, stream in swapped:
            handler.setStream(stream)


# -- the simulated deployment ----------------------------------------------------------------------


def register_model() -> Model:
    """The bench model (bench/capture_parse.py's inputs), bound to ENDPOINT, with a closed 10,000-row
    reference (its anomaly detector fitted)."""
    attributes = [{"name": n, "stage": "PIPELINE_INPUT", "value_type": "FLOAT"} for n in FEATURES]
    attributes += [
        {"name": n, "stage": "PIPELINE_INPUT", "value_type": "STRING", "categorical": True, "categories": c}
        for n, c in CATEGORIES.items()
    ]
    attributes += [
        {"name": "score", "stage": "PREDICTED_VALUE", "value_type": "FLOAT"},
        {
            "name": "label",
            "stage": "GROUND_TRUTH",
            "value_type": "INTEGER",
            "categorical": True,
            "categories": ["0", "1"],
        },
    ]
    spec = ModelSpec.model_validate(
        {
            "partner_model_id": "cost",
            "output_type": "BINARY",
            "attributes": attributes,
            "pred_to_ground_truth_map": {"score": 1},
            "sagemaker": {"endpoint_name": ENDPOINT},
        }
    )
    model = container.model_store().create(spec)
    rng = np.random.default_rng(7)
    rows = 10_000
    columns: dict[str, pa.Array] = {n: pa.array(rng.normal(0, 1, rows)) for n in FEATURES}
    columns |= {n: pa.array(rng.choice(c, rows)) for n, c in CATEGORIES.items()}
    columns |= {"score": pa.array(rng.random(rows)), "label": pa.array(rng.integers(0, 2, rows))}
    table, _ = reference_rows(columns, rows, model)
    ingestor = container.ingestor()
    ingestor.accept(model, Source.api_request("reference", uuid.uuid4().hex), reference=table)
    ingestor.close_reference(model.id, "uploaded", None)
    return model


def capture_file(rng: random.Random, start: datetime, seconds: float, count: int, first: int) -> bytes:
    """A Data Capture file of `count` requests of one inference each, spread over `seconds` from
    `start`: 60% CSV and 40% JSON payloads, 30% with an inferenceId (as bench/capture_parse.py)."""
    offsets = sorted(rng.random() * seconds for _ in range(count))
    lines = []
    for n, offset in enumerate(offsets):
        event = first + n
        values = [round(rng.gauss(0, 1), 6) for _ in FEATURES] + [rng.choice(c) for c in CATEGORIES.values()]
        score = round(rng.random(), 6)
        if rng.random() < 0.6:
            sent = {
                "observedContentType": "text/csv",
                "mode": "INPUT",
                "data": ",".join(map(str, values)) + "\n",
                "encoding": "CSV",
            }
            answer = {
                "observedContentType": "text/csv; charset=utf-8",
                "mode": "OUTPUT",
                "data": f"{score}\n",
                "encoding": "CSV",
            }
        else:
            sent = {
                "observedContentType": "application/json",
                "mode": "INPUT",
                "data": json.dumps({"instances": [{"features": values}]}),
                "encoding": "JSON",
            }
            answer = {
                "observedContentType": "application/json",
                "mode": "OUTPUT",
                "data": json.dumps({"predictions": [{"score": score}]}),
                "encoding": "JSON",
            }
        when = start + timedelta(seconds=offset)
        metadata = {
            "eventId": f"{event:08x}-7c1e-4b2a-9f00-{event:012x}",
            "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        }
        if rng.random() < 0.3:
            metadata["inferenceId"] = f"req-{event}"
        line = {"captureData": {"endpointInput": sent, "endpointOutput": answer}, "eventMetadata": metadata}
        lines.append(json.dumps({**line, "eventVersion": "0"}))
    return ("\n".join(lines) + "\n").encode()


@dataclass
class Scenario:
    """One model's traffic on a simulated day: `rate` inferences/s from midnight. An idle model
    (`busy` False) had its traffic the day before and none on the measured day."""

    name: str
    rate: float
    busy: bool = True


@dataclass
class Measured:
    """One scenario's measured hour."""

    scenario: Scenario
    invocations: list[Invocation]
    tallies: dict[str, Tally]
    inferences: int
    files: int
    capture_bytes: int
    lake_bytes: int  # the lake's growth over the hour
    metrics: set[tuple[str, str, tuple[str, ...]]]


class Simulation:
    """One model on a fresh moto stack, driven step by step through the real handlers."""

    def __init__(
        self, meter: Meter, names: dict[str, str], model: Model, instances: int, file_minutes: int, seed: int
    ) -> None:
        self.meter, self.names, self.model = meter, names, model
        self.instances, self.file_minutes = instances, file_minutes
        self.rng = random.Random(seed)
        self.sqs = aws.client("sqs")
        self.s3 = aws.client("s3")
        self.events = 0
        self.invocations: list[Invocation] = []
        self.measuring = False
        self.metrics: set[tuple[str, str, tuple[str, ...]]] = set()
        self.raw = False  # the evaluator measures every window from raw rows (no partials)
        self.cold = False  # the evaluator's process caches emptied before each run (a cold Lambda)

    def invoke(self, function: str, call: Callable[[], Any]) -> Any:
        """Run one invocation, measured when the hour is."""
        if not self.measuring:
            with logs_counted():
                return call()
        meter = self.meter
        moto_before, meter_before, latency_before = meter.moto_cpu, meter.meter_cpu, meter.latencies
        meter.intervals = []
        with logs_counted() as logs, meter.counting(function):
            cpu, wall = time.process_time(), time.perf_counter()
            result = call()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        cpu -= (meter.moto_cpu - moto_before) + (meter.meter_cpu - meter_before)
        self.metrics |= logs.metrics
        latency = meter.latencies - latency_before
        self.invocations.append(
            Invocation(
                function,
                cpu=max(cpu, 0.0),
                wall=wall,
                io=latency / cm.concurrency(meter.intervals),
                latency=latency,
                log_bytes=logs.bytes + PLATFORM_LOG_BYTES,
            )
        )
        return result

    def counted(self, part: str) -> contextlib.AbstractContextManager[Any]:
        """Count the block's requests under `part` while the hour is measured."""
        return self.meter.counting(part) if self.measuring else contextlib.nullcontext()

    def receive(self, queue: str, part: str) -> list[dict[str, Any]]:
        """The messages waiting on a queue, received as Lambda's event source does."""
        with self.counted(part):
            found = self.sqs.receive_message(
                QueueUrl=self.names[f"{queue}_url"], MaxNumberOfMessages=10, AttributeNames=["All"]
            )
        return found.get("Messages", [])

    def delete(self, queue: str, part: str, messages: list[dict[str, Any]]) -> None:
        """Delete handled messages, as the event source does after a successful invocation."""
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        with self.counted(part):
            self.sqs.delete_message_batch(QueueUrl=self.names[f"{queue}_url"], Entries=entries)

    def files_due(self, end: datetime, rate: float) -> list[tuple[datetime, int]]:
        """(start, inferences) of each capture file written in the step ending at `end`."""
        minute = int(end.timestamp() // 60)
        if not rate or minute % self.file_minutes:
            return []
        seconds = self.file_minutes * 60
        count = round(rate * seconds / self.instances)
        return [(end - timedelta(seconds=seconds), count)] * self.instances

    def step(self, end: datetime, rate: float) -> tuple[int, int]:
        """The step ending at `end`: each instance's capture file (if it writes one now) ingested by
        one invocation; then the schedule a minute later. Returns (inferences, capture bytes)."""
        inferences = written = 0
        arn = f"arn:aws:sqs:us-east-1:123456789012:{self.names['ingest']}"
        seconds = self.file_minutes * 60
        for instance, (start, count) in enumerate(self.files_due(end, rate)):
            body = capture_file(self.rng, start, seconds, count, self.events)
            self.events += count
            key = f"datacapture/{ENDPOINT}/{VARIANT}/{start:%Y/%m/%d/%H}/{start:%M-%S}-{instance}-{uuid.uuid4()}.jsonl"
            self.s3.put_object(Bucket=self.names["capture"], Key=key, Body=body)  # SageMaker's PUT, not ours
            if self.measuring:  # S3's notification is a SendMessage to the ingest queue
                self.meter.tallies.setdefault(INGEST_EVENTS, Tally()).sqs += 1
            messages = self.receive("ingest", INGEST_EVENTS)
            event = sqs_event(messages, arn, "us-east-1")
            context = LocalContext(function_name="sagewatch-ingest")
            result = self.invoke(INGEST, lambda e=event, c=context: ingest_handler.handler(e, c))
            assert not result["batchItemFailures"], result
            self.delete("ingest", INGEST_EVENTS, messages)
            inferences += count
            written += len(body)
        self.evaluate(end + SCHEDULE_OFFSET)
        return inferences, written

    def evaluate(self, now: datetime) -> None:
        """The schedule at `now`: the scheduler fans out, the evaluator runs each model's message."""
        for service in (container.evaluator(), container.hotspots(), container.explanations()):
            service.clock = lambda now=now: now
        container.evaluator().partials = not self.raw
        if self.cold:  # what a new Lambda container would not have: fingerprints, partials, id indexes
            for cache in (stored_partials._DAYS, stored_partials._TABLES):
                cache.items.clear()
                cache.total = 0
            container.lake_store()._indexes.clear()
            container.lake_store()._indexed_bytes = 0
        self.invoke(SCHEDULER, lambda: scheduler_handler.schedule(now))
        arn = f"arn:aws:sqs:us-east-1:123456789012:{self.names['evaluate']}"
        while messages := self.receive("evaluate", EVALUATOR_EVENTS):
            for message in messages:  # batch size 1, as the stack's event source
                event = sqs_event([message], arn, "us-east-1")
                context = LocalContext(function_name="sagewatch-evaluator")
                result = self.invoke(EVALUATOR, lambda e=event, c=context: evaluator_handler.handler(e, c))
                assert not result["batchItemFailures"], result
                self.delete("evaluate", EVALUATOR_EVENTS, [message])

    def history(self, start: datetime, end: datetime, rate: float) -> None:
        """Inferences from `start` to `end` written straight to the lake, a part per capture file as
        the ingest handler writes them (the ingestor's writer: anomaly scores, id index, ledger)."""
        np_rng = np.random.default_rng(self.rng.randrange(2**32))
        seconds = self.file_minutes * 60
        now = start
        while now < end:
            now += STEP
            for start_of_file, count in self.files_due(now, rate):
                first = np.datetime64(start_of_file.replace(tzinfo=None), "ms")
                offsets = np.sort(np_rng.integers(0, seconds * 1000, count)).astype("timedelta64[ms]")
                columns: dict[str, pa.Array] = {
                    "partner_inference_id": pa.array([f"h{self.events + n}" for n in range(count)]),
                    "inference_timestamp": pa.array(first + offsets).cast(pa.timestamp("ms", tz="UTC")),
                    **{n: pa.array(np_rng.normal(0, 1, count)) for n in FEATURES},
                    **{n: pa.array(np_rng.choice(c, count)) for n, c in CATEGORIES.items()},
                    "score": pa.array(np_rng.random(count)),
                }
                self.events += count
                source = f"s3://{self.names['capture']}/history/{uuid.uuid4()}.jsonl"
                rows = rows_from_columns(columns, count, self.model, source=source, now=now)
                table = rows.inferences
                table = table.set_column(
                    table.schema.get_field_index("variant"), "variant", pa.array([VARIANT] * table.num_rows)
                )
                writer = container.ingestor().writer(self.model, Source(uuid.uuid4().hex, source, VARIANT))
                writer.add(start_of_file.date(), inferences=table)
                if now >= end:  # the ledger counts once (its counters' values cost nothing here)
                    writer.finish()

    def lake_bytes(self) -> int:
        """Bytes stored in the data bucket now."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.names["data"])
        return sum(o["Size"] for page in pages for o in page.get("Contents", []))

    def run(self, scenario: Scenario, day: datetime, hour: int, warmup_hours: int) -> Measured:
        """The scenario on `day` (its midnight): the lake's history up to `warmup_hours` before
        `hour` o'clock written straight (no evaluator), the warm-up hours run in full, then the
        hour from `hour` o'clock run in full and measured."""
        measured_from = day + timedelta(hours=hour)
        warm_from = measured_from - timedelta(hours=warmup_hours)
        if scenario.busy:
            self.history(day, warm_from, scenario.rate)
        else:
            self.history(day - timedelta(days=1), measured_from - timedelta(days=1), scenario.rate)
        # the day's earlier runs, unmeasured: what they leave (default rules, partials of the day's
        # files so far) is there at the measured hour, as on a model evaluated since midnight
        self.evaluate(warm_from - timedelta(minutes=4))
        rate = scenario.rate if scenario.busy else 0.0
        inferences = files_bytes = files = lake_before = 0
        now = warm_from
        while now < measured_from + timedelta(hours=1):
            now += STEP
            if now > measured_from and not self.measuring:
                self.measuring, lake_before = True, self.lake_bytes()
            count, written = self.step(now, rate)
            if self.measuring:
                inferences, files_bytes = inferences + count, files_bytes + written
                files += len(self.files_due(now, rate))
        self.meter.settle()
        return Measured(
            scenario,
            self.invocations,
            dict(self.meter.tallies),
            inferences,
            files,
            files_bytes,
            self.lake_bytes() - lake_before,
            self.metrics,
        )


def measure(scenario: Scenario, arguments: argparse.Namespace, meter: Meter) -> Measured:
    """One scenario on a fresh stack, on yesterday's date (so every time it uses is past)."""
    names = physical_names("cost")
    meter.tables, meter.tallies = {names[t.name]: t for t in DECLARATION.tables}, {}
    with moto_stack(names) as created:
        model = register_model()
        simulation = Simulation(meter, created, model, arguments.instances, arguments.file_minutes, seed=11)
        simulation.raw, simulation.cold = arguments.raw, arguments.cold
        day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
        return simulation.run(scenario, day, arguments.hour, arguments.warmup_hours)


# -- from measurements to usage ----------------------------------------------------------------------


def usage_of(measured: Measured, parts: tuple[str, ...], cpu_factor: float, bound: str) -> cm.Usage:
    """The hour's usage by these parts (functions and their event sources). `bound`: "estimate"
    (CPU + assumed request time) or "cpu" (CPU alone: the lower bound of the billed duration)."""
    functions: dict[str, cm.FunctionUse] = {}
    log_bytes = traces = 0.0
    for invocation in measured.invocations:
        if invocation.function not in parts:
            continue
        seconds = invocation.cpu * cpu_factor + (invocation.io if bound == "estimate" else 0.0)
        functions[invocation.function] = functions.get(invocation.function, cm.FunctionUse()).plus(
            cm.FunctionUse(1, seconds)
        )
        log_bytes += invocation.log_bytes
        traces += 1
    tallies = [measured.tallies[p] for p in parts if p in measured.tallies]
    return cm.Usage(
        functions=functions,
        s3_put_tier=sum(t.s3_put_tier for t in tallies),
        s3_get_tier=sum(t.s3_get_tier for t in tallies),
        dynamodb_wru=sum(t.wru for t in tallies),
        dynamodb_rru=sum(t.rru for t in tallies),
        sqs_requests=sum(t.sqs for t in tallies),
        log_bytes=log_bytes,
        traces=traces,
        stored_gb_months=measured.lake_bytes / 1e9 if INGEST in parts else 0.0,
    )


MODEL_PARTS = (INGEST, INGEST_EVENTS, EVALUATOR, EVALUATOR_EVENTS)


def cold_start() -> dict[str, float]:
    """Seconds to import each handler in a fresh process (Lambda's INIT phase, billed since 2025)."""
    found = {}
    for name in (INGEST, EVALUATOR):
        code = (
            "import sys, time; sys.path.insert(0, 'layers/core'); started = time.perf_counter(); "
            f"import sagewatch.handlers.{name}; print(time.perf_counter() - started)"
        )
        runs = [
            float(
                subprocess.run(
                    [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
                ).stdout
            )
            for _ in range(3)
        ]
        found[name] = statistics.median(runs)
    return found


# -- the report ----------------------------------------------------------------------------------


def dollars(value: float) -> str:
    """A dollar amount with the precision its size needs."""
    return (
        f"${value:,.2f}" if abs(value) >= 10 else f"${value:,.4f}" if abs(value) >= 0.01 else f"${value:.6f}"
    )


def print_items(title: str, items: dict[str, float], width: int = 44) -> None:
    """A bill: its items, largest first (zeros left out), and its total."""
    print(title)
    for name, value in sorted(items.items(), key=lambda item: -item[1]):
        if value:
            print(f"  {name:<{width}} {dollars(value):>12}")
    print(f"  {'total':<{width}} {dollars(cm.total(items)):>12}")


def requests_line(tallies: dict[str, Tally], parts: tuple[str, ...]) -> str:
    """The requests of some parts, by service and operation."""
    counts: Counter[tuple[str, str]] = Counter()
    for part in parts:
        if part in tallies:
            counts.update(tallies[part].requests)
    return ", ".join(f"{s} {o} {n:,}" for (s, o), n in sorted(counts.items())) or "none"


def report(
    arguments: argparse.Namespace, runs: dict[str, list[Measured]], specs: dict[str, cm.LambdaSpec]
) -> None:
    """Print the figures (module docstring), from the run of each scenario whose cost is the median."""
    hours, factor = cm.HOURS_PER_MONTH, arguments.cpu_factor

    def hourly(measured: Measured, bound: str = "estimate", parts: tuple[str, ...] = MODEL_PARTS) -> cm.Usage:
        return usage_of(measured, parts, factor, bound)

    results = {
        name: sorted(found, key=lambda m: cm.total(cm.cost_items(hourly(m), specs)))[len(found) // 2]
        for name, found in runs.items()
    }
    idle = results["idle"]
    print(
        f"\n== measured: one model's hour from {arguments.hour:02d}:00 UTC (the median of {arguments.repeat} "
        f"run(s) by cost; the process's peak RSS {process_peak_mb():,.0f} MB) =="
    )
    for name, measured in results.items():
        by_function: dict[str, list[Invocation]] = {}
        for invocation in measured.invocations:
            by_function.setdefault(invocation.function, []).append(invocation)
        each = max(measured.inferences, 1)
        print(
            f"{name}: {measured.inferences:,} inferences in {measured.files} capture files "
            f"({measured.capture_bytes / each:,.0f} B an inference in capture files, "
            f"{measured.lake_bytes / each:,.0f} B in the lake)"
        )
        for function, invocations in by_function.items():
            cpu = [i.cpu for i in invocations]
            print(
                f"  {function:<9} {len(invocations):3d} invocations: CPU {sum(cpu):7.2f} s "
                f"(median {statistics.median(cpu):.3f} s), in-process wall {sum(i.wall for i in invocations):6.2f} s, "
                f"assumed request time {sum(i.latency for i in invocations):6.2f} s "
                f"({sum(i.io for i in invocations):.2f} s as overlapped), "
                f"logs {sum(i.log_bytes for i in invocations) / 1e3:,.1f} kB"
            )
        if measured.inferences:
            ingest_cpu = sum(i.cpu for i in by_function.get(INGEST, []))
            print(f"  ingest CPU per million inferences: {ingest_cpu / measured.inferences * 1e6:,.1f} s")
        for part in MODEL_PARTS:
            tally = measured.tallies.get(part)
            if tally is not None and tally.requests:
                moved = (
                    f"; S3 {tally.s3_bytes_out / 1e6:,.1f} MB read, {tally.s3_bytes_in / 1e6:,.1f} MB written"
                )
                print(
                    f"  {part} requests: {requests_line(measured.tallies, (part,))}"
                    + (moved if "s3" in {s for s, _ in tally.requests} else "")
                )

    unpriced = Counter[tuple[str, str]]()
    for measured in results.values():
        for tally in measured.tallies.values():
            unpriced.update({k: n for k, n in tally.requests.items() if k[0] not in PRICED_SERVICES})
    if unpriced:  # e.g. Athena, whose price is the bytes a query scans: added to the model when used
        print(
            "  requests not priced: " + ", ".join(f"{s} {o} {n:,}" for (s, o), n in sorted(unpriced.items()))
        )
    busy = {name: m for name, m in results.items() if name != "idle"}
    print(
        "\n== per 10 million inferences ingested and evaluated (a model's hour at the rate, less its idle hour) =="
    )
    columns, lower, ingesting = {}, {}, {}
    for name, measured in busy.items():
        variable = cm.cost_items(hourly(measured).minus(hourly(idle)), specs)
        columns[name] = cm.per_ten_million(variable, measured.inferences)
        ingest = cm.cost_items(hourly(measured, parts=(INGEST, INGEST_EVENTS)), specs)
        ingesting[name] = cm.total(cm.per_ten_million(ingest, measured.inferences))
        floor = cm.cost_items(hourly(measured, "cpu").minus(hourly(idle, "cpu")), specs)
        lower[name] = cm.total(cm.per_ten_million(floor, measured.inferences))
    items = sorted(
        {i for c in columns.values() for i in c},
        key=lambda i: -max(abs(c.get(i, 0)) for c in columns.values()),
    )
    width = 40
    print(f"  {'':<{width}}" + "".join(f"{name:>12}" for name in columns))
    for item in items:
        if any(round(c.get(item, 0.0), 6) for c in columns.values()):
            print(
                f"  {item:<{width}}" + "".join(f"{dollars(c.get(item, 0.0)):>12}" for c in columns.values())
            )
    totals = {name: cm.total(c) for name, c in columns.items()}
    print(f"  {'total':<{width}}" + "".join(f"{dollars(t):>12}" for t in totals.values()))
    print(f"  {'  of it, ingest':<{width}}" + "".join(f"{dollars(v):>12}" for v in ingesting.values()))
    print(
        f"  {'  of it, evaluation':<{width}}"
        + "".join(f"{dollars(totals[n] - ingesting[n]):>12}" for n in totals)
    )
    print(
        f"  {'total, billing CPU alone (lower bound)':<{width}}"
        + "".join(f"{dollars(v):>12}" for v in lower.values())
    )
    verdicts = ("met" if t <= TARGET_PER_TEN_MILLION else "NOT met" for t in totals.values())
    print(
        f"  {f'target <= {dollars(TARGET_PER_TEN_MILLION)}':<{width}}" + "".join(f"{v:>12}" for v in verdicts)
    )

    runs_a_month = hours * 60 // int(STEP.total_seconds() // 60)
    fixed_items = cm.cost_items(hourly(idle).times(hours), specs)
    fixed = cm.total(fixed_items)
    print_items(
        f"\n== fixed: a model with no data arriving, a month ({runs_a_month:,} evaluator runs) ==",
        fixed_items,
    )
    print(f"  target <= {dollars(TARGET_FIXED)} a month: {'met' if fixed <= TARGET_FIXED else 'NOT met'}")

    deployment = cm.cost_items(hourly(idle, parts=(SCHEDULER,)).times(hours), specs)
    metrics = set().union(*(m.metrics for m in results.values()))
    polls = EVENT_SOURCES * ESM_POLL_CONNECTIONS * hours * 3600 / ESM_POLL_SECONDS
    alarms = sum(1 for q in DECLARATION.queues if q.dead_letter) + sum(1 for n in specs if n != "api")
    deployment |= {
        f"SQS idle long polls of {EVENT_SOURCES} event sources (assumed)": polls * cm.price("sqs_request"),
        f"CloudWatch custom metrics ({len(metrics)}, from the EMF lines)": len(metrics)
        * cm.price("custom_metric_month"),
        "CloudWatch dashboard (1)": cm.price("dashboard_month"),
        f"CloudWatch alarms ({alarms})": alarms * cm.price("alarm_month"),
        "EventBridge scheduled rule": cm.price("eventbridge_scheduled_event"),
    }
    print()
    print_items("== per deployment, whatever the number of models: a month ==", deployment, 60)

    monitor = cm.model_monitor_monthly(hours, arguments.monitor_minutes)
    print(
        f"\n== a month of one model (the deployment's {dollars(cm.total(deployment))} apart) beside an hourly "
        f"SageMaker Model Monitor schedule: {hours} jobs on one ml.m5.xlarge at "
        f"{dollars(cm.price('sagemaker_processing_m5_xlarge_hour'))}/h, each billed {arguments.monitor_minutes:g} min (assumed) =="
    )
    print(f"  {'rate':>8} {'inferences':>14} {'sagewatch':>11} {'of it, lake':>12} {'Model Monitor':>14}")
    print(f"  {'none':>8} {0:>14,} {dollars(fixed):>11} {dollars(0):>12} {dollars(monitor):>14}")
    for name, measured in busy.items():
        rate = measured.scenario.rate
        items = cm.cost_items(hourly(measured).times(hours), specs)
        print(
            f"  {name:>8} {rate * 3600 * hours:>14,.0f} {dollars(cm.total(items)):>11} "
            f"{dollars(items['S3 storage (lake)']):>12} {dollars(monitor):>14}"
        )
    print("  (the lake: a month of inferences kept a month; each further month kept adds as much)")

    print("\n== cold starts (not in the figures above: functions are taken as warm) ==")
    for name, seconds in cold_start().items():
        spec = specs[name]
        cost = seconds * factor * spec.memory_gb * cm.price(f"lambda_gb_second_{spec.architecture}")
        print(
            f"  {name}: importing the handler takes {seconds:.2f} s here; a cold start bills about {dollars(cost)}, "
            f"one an hour {dollars(cost * hours)} a month"
        )


def main() -> None:
    # the scheduler and an idle evaluator publish no metric: Powertools warns at each flush
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument(
        "--rates", default="1,10,100", help="requests (one inference each) a second, comma-separated"
    )
    parser.add_argument(
        "--instances", type=int, default=2, help="endpoint instances, each writing its own files"
    )
    parser.add_argument(
        "--file-minutes", type=int, default=5, help="minutes between an instance's capture files"
    )
    parser.add_argument("--hour", type=int, default=12, help="the measured hour's start (o'clock, UTC)")
    parser.add_argument(
        "--warmup-hours", type=int, default=0, help="hours run in full before the measured one"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each scenario (the median is reported)"
    )
    parser.add_argument(
        "--cpu-factor", type=float, default=1.0, help="Lambda CPU seconds per CPU second here"
    )
    parser.add_argument(
        "--monitor-minutes", type=float, default=5.0, help="billed minutes per Model Monitor job"
    )
    parser.add_argument(
        "--quick", action="store_true", help="--hour 2 --repeat 1 (minutes, not half an hour)"
    )
    parser.add_argument(
        "--raw", action="store_true", help="the evaluator reads raw rows only (no partial aggregates)"
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="every evaluator run in a new Lambda container (its process caches emptied first)",
    )
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.hour, arguments.repeat = 2, 1
    if not arguments.warmup_hours <= arguments.hour <= 23:
        parser.error("--hour must be within the day, after the warm-up hours")
    if arguments.file_minutes % int(STEP.total_seconds() // 60):
        parser.error(f"--file-minutes must be a multiple of the schedule's {STEP}")
    specs = cm.declared_functions()
    print(
        f"sagewatch cost model, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({platform.machine()}, {os.cpu_count()} cores); us-east-1 prices of {cm.PRICES_TAKEN}"
    )
    print(
        "declared: "
        + ", ".join(f"{s.name} {s.architecture} {s.memory_mb} MB" for s in specs.values())
        + f"; evaluations every {STEP.total_seconds() / 60:g} min; {arguments.instances} endpoint instances, "
        f"each writing a capture file every {arguments.file_minutes} min; measured: the hour from "
        f"{arguments.hour:02d}:00 UTC, the day's earlier hours in the lake; evaluator: "
        + ("raw rows only" if arguments.raw else "partial aggregates")
        + (", a cold container each run" if arguments.cold else ", warm")
    )
    meter = Meter({})
    runs: dict[str, list[Measured]] = {}
    scenarios = [Scenario("idle", 1.0, busy=False)]
    scenarios += [Scenario(f"{float(r):g}/s", float(r)) for r in arguments.rates.split(",")]
    for repeat in range(arguments.repeat):
        for scenario in scenarios:  # interleaved, so noise hits each alike
            started = time.perf_counter()
            measured = measure(scenario, arguments, meter)
            runs.setdefault(scenario.name, []).append(measured)
            cpu = Counter[str]()
            for invocation in measured.invocations:
                cpu[invocation.function] += invocation.cpu
            hour = usage_of(measured, MODEL_PARTS, arguments.cpu_factor, "estimate")
            print(
                f"  run {repeat + 1}, {scenario.name}: {time.perf_counter() - started:.0f} s; the hour: "
                f"{measured.inferences:,} inferences, CPU ingest {cpu[INGEST]:.1f} s, evaluator "
                f"{cpu[EVALUATOR]:.1f} s, {dollars(cm.total(cm.cost_items(hour, specs)))}",
                flush=True,
            )
    report(arguments, runs, specs)


if __name__ == "__main__":
    main()
