"""Ingesting S3 objects: SageMaker Data Capture and Model Monitor ground-truth files.

One function serves every model. A capture file is routed by the endpoint and variant in its key,
`<prefix>/<EndpointName>/<VariantName>/<yyyy>/<mm>/<dd>/<hh>/<name>.jsonl`; a ground-truth file
(recognised by its content, `groundTruthData`) by the endpoint in
`<prefix>/<EndpointName>/<yyyy>/<mm>/<dd>/<hh>/<name>.jsonl`. Files are streamed in chunks of
whole lines, so memory stays bounded whatever the file's size. A file no model claims is recorded
under unrouted/ in the lake (and logged), never dropped silently.
"""

from __future__ import annotations

import json
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from urllib.parse import unquote_plus

import numpy as np
import pyarrow.compute as pc
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from sagewatch import aws, stores
from sagewatch.capture import Parsed, parse_capture, parse_ground_truth
from sagewatch.schema import Model
from sagewatch.stores.ingestion import IngestionLedger, SourceCounts
from sagewatch.stores.lake import LakeStore, source_digest
from sagewatch.stores.models import ModelStore

CHUNK_BYTES = 8 * 1024 * 1024
T = TypeVar("T")
R = TypeVar("R")
_HOUR_PATH = re.compile(r"^\d{4}$|^\d{2}$")


@dataclass
class IngestReport:
    """What happened to one source object."""

    source: str
    outcome: str  # ingested | duplicate | unrouted | skipped
    model_id: str | None = None
    kind: str | None = None
    ingested: int = 0
    rejected: int = 0
    reason: str | None = None
    keys: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CaptureKey:
    endpoint: str
    variant: str | None


def endpoint_of(key: str, ground_truth: bool) -> CaptureKey | None:
    """Endpoint (and variant, for capture files) from a key ending in yyyy/mm/dd/hh/<name>."""
    parts = key.split("/")
    hour_parts = parts[-5:-1]
    if len(hour_parts) != 4 or not all(_HOUR_PATH.match(p) for p in hour_parts):
        return None
    before = parts[:-5]
    if ground_truth:
        return CaptureKey(before[-1], None) if before else None
    return CaptureKey(before[-2], before[-1]) if len(before) >= 2 else None


class Ingestor:
    """Routes, parses and stores source objects; the stores are injected, AWS stays at the edges."""

    def __init__(self, models: ModelStore, lake: LakeStore, ledger: IngestionLedger, s3: Any = None) -> None:
        self.models = models
        self.lake = lake
        self.ledger = ledger
        self._s3 = s3

    @property
    def s3(self) -> Any:
        return self._s3 or aws.client("s3")

    def ingest_object(self, bucket: str, key: str, etag: str | None = None) -> IngestReport:
        source = f"s3://{bucket}/{key}"
        head = self.s3.head_object(Bucket=bucket, Key=key)
        etag = (etag or head["ETag"]).strip('"')
        digest = source_digest(bucket, key, etag)
        chunks = self._chunks(bucket, key, etag)
        first = next(chunks, None)
        if first is None:
            return IngestReport(source, "skipped", reason="the file is empty")
        ground_truth = b'"groundTruthData"' in first[1][:65536]
        kind = "ground_truth" if ground_truth else "inferences"
        where = endpoint_of(key, ground_truth)
        model = self.models.find_by_endpoint(where.endpoint, where.variant) if where else None
        if where is None or model is None:
            reason = (
                "the key does not end in <endpoint>/[<variant>/]<yyyy>/<mm>/<dd>/<hh>/<file>"
                if where is None
                else f"no model monitors endpoint {where.endpoint!r}"
                + (f" variant {where.variant!r}" if where.variant else "")
            )
            return self.set_aside(source, etag, digest, kind, reason, where)

        received_at = head.get("LastModified") or _now()
        report = IngestReport(source, "ingested", model_id=model.id, kind=kind)
        latest = None

        def parse(chunk: tuple[int, bytes]) -> Parsed:
            first_line, buffer = chunk
            return self._parse(buffer, model, ground_truth, source, where.variant, received_at, first_line)

        for part, parsed in enumerate(in_parallel(parse, _chain(first, chunks))):
            name = f"{digest}-{part:05d}"
            time_column = "ground_truth_timestamp" if ground_truth else "inference_timestamp"
            report.keys += self.lake.write_rows(kind, model.id, parsed.rows, time_column, name)
            day = received_at.date() if ground_truth else _day_of(key, received_at)
            rejected_key = self.lake.write_rejected(model.id, day, name, source, parsed.rejected)
            report.keys += [rejected_key] if rejected_key else []
            report.ingested += parsed.rows.num_rows
            report.rejected += len(parsed.rejected)
            if parsed.rows.num_rows and not ground_truth:
                chunk_latest = pc.max(parsed.rows.column("inference_timestamp")).as_py()
                latest = chunk_latest if latest is None or chunk_latest > latest else latest
        counts = SourceCounts(kind, report.ingested, report.rejected, latest, where.variant)
        if not self.ledger.record(model.id, digest, counts):
            report.outcome = "duplicate"
        return report

    def set_aside(
        self, source: str, etag: str, digest: str, kind: str, reason: str, where: CaptureKey | None
    ) -> IngestReport:
        """Keep a record of a file no model claims (under unrouted/), to report and replay it."""
        record = {
            "source": source,
            "etag": etag,
            "kind": kind,
            "reason": reason,
            "endpoint": where.endpoint if where else None,
            "variant": where.variant if where else None,
            "seen_at": _now().isoformat(),
        }
        self.lake.write_unrouted(digest, record)
        return IngestReport(source, "unrouted", kind=kind, reason=reason)

    @staticmethod
    def _parse(
        buffer: bytes,
        model: Model,
        ground_truth: bool,
        source: str,
        variant: str | None,
        received_at: datetime,
        first_line: int,
    ) -> Parsed:
        if ground_truth:
            return parse_ground_truth(
                buffer, model, source=source, received_at=received_at, first_line=first_line
            )
        return parse_capture(buffer, model, source=source, variant=variant, first_line=first_line)

    def _chunks(self, bucket: str, key: str, etag: str) -> Iterator[tuple[int, bytes]]:
        """(first line number, buffer of whole lines) of the object, CHUNK_BYTES at a time."""
        body = self.s3.get_object(Bucket=bucket, Key=key, IfMatch=etag)["Body"]
        return whole_lines(body.iter_chunks(CHUNK_BYTES))


def in_parallel(function: Callable[[T], R], items: Iterable[T], workers: int | None = None) -> Iterator[R]:
    """function(item) for each item, in order, `workers` at a time (pyarrow's kernels release the
    GIL). At most `workers` items are in flight, which keeps memory bounded."""
    workers = workers or min(4, os.cpu_count() or 1)
    if workers == 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(workers) as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def whole_lines(pieces: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Re-cut a byte stream at line ends: (number of the first line, buffer of whole lines)."""
    carry = b""
    line = 1
    for piece in pieces:
        buffer = carry + piece
        cut = buffer.rfind(b"\n") + 1
        if cut == 0:
            carry = buffer
            continue
        carry = buffer[cut:]
        whole = buffer[:cut]
        yield line, whole
        line += int(np.count_nonzero(np.frombuffer(whole, dtype=np.uint8) == 10))
    if carry.strip():
        yield line, carry


def _chain(first: tuple[int, bytes], rest: Iterator[tuple[int, bytes]]) -> Iterator[tuple[int, bytes]]:
    yield first
    yield from rest


def _day_of(key: str, fallback: datetime) -> date:
    """The hour folder's day in a capture key, else the fallback's."""
    parts = key.split("/")[-5:-2]
    try:
        return date(int(parts[0]), int(parts[1]), int(parts[2]))
    except (ValueError, IndexError):
        return fallback.date()


def _now() -> datetime:
    return datetime.now(UTC)


def s3_objects(sqs_body: str) -> list[tuple[str, str, str | None]]:
    """(bucket, key, etag) of each ObjectCreated record in an SQS message from S3.

    Keys arrive URL-encoded; S3's s3:TestEvent (sent when notifications are configured) has none.
    """
    message = json.loads(sqs_body)
    if "Message" in message and "Records" not in message:  # delivered through SNS
        message = json.loads(message["Message"])
    objects = []
    for record in message.get("Records", []):
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record["s3"]
        objects.append((s3["bucket"]["name"], unquote_plus(s3["object"]["key"]), s3["object"].get("eTag")))
    return objects


# -- the ingest Lambda: S3 events through SQS, with partial batch failures ---------------------------

logger = Logger(service="sagewatch-ingest")
processor = BatchProcessor(event_type=EventType.SQS)


def ingestor() -> Ingestor:
    return Ingestor(stores.model_store(), stores.lake_store(), stores.ingestion_ledger())


def ingest_record(record: SQSRecord) -> list[IngestReport]:
    """Ingest every object an SQS message announces; raising marks the message failed (retried)."""
    reports = []
    for bucket, key, etag in s3_objects(record.body):
        if bucket == stores.lake_store().bucket:
            if key.startswith("drops/"):
                digest = source_digest(bucket, key, etag or "")
                reports.append(
                    ingestor().set_aside(
                        f"s3://{bucket}/{key}",
                        etag or "",
                        digest,
                        "drop",
                        "Parquet drops are not ingested yet",
                        None,
                    )
                )
            continue
        report = ingestor().ingest_object(bucket, key, etag)
        log = logger.warning if report.outcome == "unrouted" else logger.info
        log("ingested" if report.outcome != "unrouted" else "set aside", extra={"report": asdict(report)})
        reports.append(report)
    return reports


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The ingest Lambda's entry point."""
    return process_partial_response(
        event=event, record_handler=ingest_record, processor=processor, context=context
    )
