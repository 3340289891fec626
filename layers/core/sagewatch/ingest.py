"""Ingesting S3 objects: SageMaker Data Capture and Model Monitor ground-truth files.

One function serves every model. A capture file is routed by the endpoint and variant in its key,
`<prefix>/<EndpointName>/<VariantName>/<yyyy>/<mm>/<dd>/<hh>/<name>.jsonl`; a ground-truth file
(recognised by its content, `groundTruthData`) by the endpoint in
`<prefix>/<EndpointName>/<yyyy>/<mm>/<dd>/<hh>/<name>.jsonl`. Files are streamed in chunks of
whole lines, so memory stays bounded whatever the file's size. A file no model claims is recorded
under unrouted/ in the lake (and logged), never dropped silently.
"""

from __future__ import annotations

import io
import json
import os
import re
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from urllib.parse import unquote_plus

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import BotoCoreError, ClientError

from sagewatch import aws, stores
from sagewatch.capture import Parsed, parse_capture, parse_ground_truth, parse_resilient
from sagewatch.errors import Conflict, InvalidInput, ModelNotFound
from sagewatch.lake_writer import SourceWriter
from sagewatch.records import check_file_columns, reference_rows, rejections, rows_from_columns
from sagewatch.schema import Model
from sagewatch.stores.dynamo import error_code
from sagewatch.stores.ingestion import IngestionLedger
from sagewatch.stores.lake import LakeStore, S3RangeFile, source_digest
from sagewatch.stores.models import ModelStore
from sagewatch.values import has_problem

CHUNK_BYTES = 8 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
# A Data Capture line holds at most a 6 MB request and a 6 MB response, base64: 16 MB.
MAX_LINE_BYTES = 32 * 1024 * 1024
DROP_KINDS = ("inferences", "ground_truth", "reference")
DROP_BATCH_ROWS = 100_000
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

    def writer(
        self, model: Model, digest: str, source: str, variant: str | None = None, *, request: bool = False
    ) -> SourceWriter:
        return SourceWriter(self.lake, self.ledger, model, digest, source, variant, request=request)

    def ingest_object(self, bucket: str, key: str, etag: str | None = None) -> IngestReport:
        """Ingest one S3 object: a Parquet drop in the lake bucket, else a capture or ground-truth file."""
        head = self.s3.head_object(Bucket=bucket, Key=key)
        etag = (etag or head["ETag"]).strip('"')
        if bucket == self.lake.bucket:
            if key.startswith("drops/"):
                return self.ingest_drop(bucket, key, etag, head)
            return IngestReport(
                f"s3://{bucket}/{key}", "skipped", reason="only drops/ of the lake bucket is ingested"
            )
        return self.ingest_capture(bucket, key, etag, head)

    def ingest_capture(self, bucket: str, key: str, etag: str, head: dict[str, Any]) -> IngestReport:
        source = f"s3://{bucket}/{key}"
        digest = source_digest(bucket, key, etag)
        chunks = self._chunks(bucket, key, etag)
        first = next(chunks, None)
        if first is None:
            if chunks.rejections():
                reason = "; ".join(r["reason"] for r in chunks.rejections())
                return self.set_aside(source, etag, digest, "capture", reason, None)
            return IngestReport(source, "skipped", reason="the file is empty")
        ground_truth = is_ground_truth(first[1])
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
        ingested_at = _now()
        writer = self.writer(model, digest, source, where.variant)

        def parse_buffer(buffer: bytes, first_line: int) -> Parsed:
            if ground_truth:
                return parse_ground_truth(
                    buffer,
                    model,
                    source=source,
                    received_at=received_at,
                    first_line=first_line,
                    ingested_at=ingested_at,
                )
            return parse_capture(
                buffer,
                model,
                source=source,
                variant=where.variant,
                first_line=first_line,
                ingested_at=ingested_at,
            )

        def parse(chunk: tuple[int, bytes]) -> Parsed:
            first_line, buffer = chunk
            return parse_resilient(parse_buffer, buffer, first_line)

        day = received_at.date() if ground_truth else _day_of(key, received_at)
        for parsed in in_parallel(parse, _chain(first, chunks)):
            writer.add(
                day,
                ground_truth=parsed.rows if ground_truth else None,
                inferences=None if ground_truth else parsed.rows,
                rejected=parsed.rejected,
                rejected_as=kind,
            )
        if chunks.rejections():  # over-long lines, a broken gzip stream: what came before is kept
            writer.add(day, rejected=chunks.rejections(), rejected_as=kind)
        return self._report(writer, kind)

    def ingest_drop(self, bucket: str, key: str, etag: str, head: dict[str, Any]) -> IngestReport:
        """A Parquet file under drops/<model id or partner_model_id>/<kind>/[<batch_id>/]<file>."""
        source = f"s3://{bucket}/{key}"
        digest = source_digest(bucket, key, etag)
        parts = key.split("/")
        kind = parts[2] if len(parts) in (4, 5) else None
        if kind not in DROP_KINDS:
            reason = "a drop's key is drops/<model>/<inferences|ground_truth|reference>/[<batch_id>/]<file>.parquet"
            return self.set_aside(source, etag, digest, "drop", reason, None)
        model = self._model_of(parts[1])
        if model is None:
            return self.set_aside(
                source, etag, digest, kind, f"no active model with id or partner_model_id {parts[1]!r}", None
            )
        batch_id = parts[3] if len(parts) == 5 else None
        received_at = head.get("LastModified") or _now()
        writer = self.writer(model, digest, source)
        rejected_as = "ground_truth" if kind == "ground_truth" else "inferences"
        if kind == "reference":
            try:
                self.ledger.check_reference_open(model.id, received_at)
            except Conflict as closed:  # a closed set takes no more rows: the file is refused whole
                rows = [{"row": None, "reason": closed.message}]
                writer.add(received_at.date(), rejected=rows, rejected_as="inferences")
                return self._report(writer, kind)
        size = int(head.get("ContentLength") or 0)
        stream = io.BufferedReader(S3RangeFile(self.s3, bucket, key, etag, size), buffer_size=CHUNK_BYTES)
        try:
            parquet = pq.ParquetFile(stream)
            check_file_columns(parquet.schema_arrow, model)
        except (pa.ArrowException, OSError, InvalidInput) as error:
            reason = error.message if isinstance(error, InvalidInput) else f"not a Parquet file: {error}"
            rows = parquet.metadata.num_rows if isinstance(error, InvalidInput) else 1
            writer.add(
                received_at.date(),
                rejected=[{"row": None, "rows": rows, "reason": reason}],
                rejected_as=rejected_as,
                rejected_rows=rows,
            )
            return self._report(writer, kind)
        first_row = 0
        for batch in parquet.iter_batches(batch_size=DROP_BATCH_ROWS):
            self._add_records(writer, batch, kind, batch_id, received_at, first_row)
            first_row += batch.num_rows
        return self._report(writer, kind)

    def _add_records(
        self,
        writer: SourceWriter,
        batch: pa.RecordBatch,
        kind: str,
        batch_id: str | None,
        received_at: datetime,
        first_row: int,
    ) -> None:
        columns = {name: batch.column(name) for name in batch.schema.names}
        if kind == "reference":
            table, problem = reference_rows(columns, batch.num_rows, writer.model)
            failed = [
                {"row": int(i) + first_row, "reason": problem[i]}
                for i in np.flatnonzero(has_problem(problem))
            ]
            writer.add(received_at.date(), reference=table, rejected=failed)
            return
        rows = rows_from_columns(
            columns,
            batch.num_rows,
            writer.model,
            source=writer.source,
            now=_now(),
            batch_id=batch_id,
            require_inference=kind == "inferences",
        )
        writer.add(
            received_at.date(),
            inferences=rows.inferences,
            ground_truth=rows.ground_truth,
            rejected=rejections(rows, first_row),
            rejected_as="inferences" if kind == "inferences" else "ground_truth",
        )

    def _model_of(self, reference: str) -> Model | None:
        """An active model by id, else by partner_model_id."""
        for find in (self.models.get, self.models.get_by_partner_id):
            try:
                model = find(reference)
            except ModelNotFound:
                continue
            return None if model.archived else model
        return None

    @staticmethod
    def _report(writer: SourceWriter, kind: str) -> IngestReport:
        counted = writer.finish()
        counts = writer.counts()
        ingested = {
            "inferences": counts.inferences,
            "ground_truth": counts.ground_truth,
            "reference": counts.reference,
        }
        rejected = counts.ground_truth_rejected if kind == "ground_truth" else counts.inferences_rejected
        return IngestReport(
            writer.source,
            "ingested" if counted else "duplicate",
            model_id=writer.model.id,
            kind=kind,
            ingested=ingested.get(kind, 0),
            rejected=rejected,
            keys=writer.keys,
        )

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

    def _chunks(self, bucket: str, key: str, etag: str) -> Lines:
        """(first line number, buffer of whole lines) of the object, CHUNK_BYTES at a time;
        gzip-compressed objects (by their magic bytes, whatever the key) are decompressed on the way."""
        body = self.s3.get_object(Bucket=bucket, Key=key, IfMatch=etag)["Body"]
        return Lines(body.iter_chunks(CHUNK_BYTES))


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


class Lines:
    """The whole-line chunks of a byte stream, gunzipped when it is gzip (several members allowed).

    Decompression is bounded (at most CHUNK_BYTES out per step, so a gzip bomb cannot fill
    memory). A corrupt or truncated gzip stream ends the lines where it breaks and says why in
    `broken`, so what came before is still ingested and the rest is reported, not lost silently.
    """

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self.broken: str | None = None
        self.too_long: list[int] = []  # numbers of lines longer than MAX_LINE_BYTES, skipped
        self._lines = whole_lines(self._plain(iter(pieces)), self.too_long)

    def rejections(self) -> list[dict[str, Any]]:
        """What could not be cut into lines, as rejected entries."""
        limit = f"{MAX_LINE_BYTES // 2**20} MB"
        found = [{"line": n, "reason": f"the line is longer than {limit}"} for n in self.too_long]
        return found + ([{"line": None, "reason": self.broken}] if self.broken else [])

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        return self._lines

    def __next__(self) -> tuple[int, bytes]:
        return next(self._lines)

    def _plain(self, pieces: Iterator[bytes]) -> Iterator[bytes]:
        first = next(pieces, b"")
        if not first.startswith(GZIP_MAGIC):
            if first:
                yield first
            yield from pieces
            return
        decompressor, fed, produced = zlib.decompressobj(wbits=31), False, 0
        try:
            for piece in _chain(first, pieces):
                data = piece
                while data:
                    out = decompressor.decompress(data, CHUNK_BYTES)
                    fed = True
                    produced += len(out)
                    if out:
                        yield out
                    data = decompressor.unconsumed_tail
                    if decompressor.eof:  # another gzip member may follow
                        data = decompressor.unused_data + data
                        decompressor, fed = zlib.decompressobj(wbits=31), False
        except zlib.error as error:
            self.broken = f"the gzip stream is corrupt after {produced} decompressed bytes ({error})"
            return
        if fed and not decompressor.eof:
            yield decompressor.flush()
            self.broken = f"the gzip stream is truncated after {produced} decompressed bytes"


def whole_lines(
    pieces: Iterable[bytes], too_long: list[int] | None = None, max_line: int | None = None
) -> Iterator[tuple[int, bytes]]:
    """Re-cut a byte stream at line ends: (number of the first line, buffer of whole lines).

    A line longer than `max_line` (default MAX_LINE_BYTES) is skipped, not accumulated: its number
    goes to `too_long`, so a stream without line ends (a gzip bomb of one line) keeps memory bounded.
    """
    max_line = MAX_LINE_BYTES if max_line is None else max_line
    carry = b""
    line = 1
    skipping = False
    for piece in pieces:
        if skipping:  # inside an over-long line: drop bytes up to its end
            end = piece.find(b"\n")
            if end < 0:
                continue
            piece, skipping, line = piece[end + 1 :], False, line + 1
        if carry and len(carry) + max(piece.find(b"\n"), 0) > max_line and b"\n" in piece:
            # the line begun in earlier pieces ends in this one, past the limit: drop it whole
            if too_long is not None:
                too_long.append(line)
            piece, carry, line = piece[piece.find(b"\n") + 1 :], b"", line + 1
        buffer = carry + piece
        cut = buffer.rfind(b"\n") + 1
        if cut == 0:
            carry = buffer
            if len(carry) > max_line:
                if too_long is not None:
                    too_long.append(line)
                carry, skipping = b"", True
            continue
        carry = buffer[cut:]
        whole = buffer[:cut]
        yield line, whole
        line += int(np.count_nonzero(np.frombuffer(whole, dtype=np.uint8) == 10))
    if skipping:
        return
    if len(carry) > max_line:
        if too_long is not None:
            too_long.append(line)
    elif carry.strip():
        yield line, carry


def is_ground_truth(buffer: bytes, lines: int = 100) -> bool:
    """Whether a file holds Model Monitor ground truth: its first line that is a JSON object with
    `groundTruthData` or `captureData` says (junk lines before it are passed over)."""
    for text in buffer.split(b"\n", lines)[:lines]:
        if not text.strip():
            continue
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            continue
        if isinstance(document, dict) and ("groundTruthData" in document or "captureData" in document):
            return "groundTruthData" in document
    return False


def _chain(first: T, rest: Iterator[T]) -> Iterator[T]:
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
metrics = Metrics(namespace="sagewatch", service="ingest")
tracer = Tracer()  # X-Ray in Lambda (boto3 calls as subsegments); off elsewhere
processor = BatchProcessor(event_type=EventType.SQS)


def ingestor() -> Ingestor:
    return Ingestor(stores.model_store(), stores.lake_store(), stores.ingestion_ledger())


def ingest_record(record: SQSRecord) -> list[IngestReport]:
    """Ingest every object an SQS message announces; raising marks the message failed (retried)."""
    reports = []
    for bucket, key, etag in s3_objects(record.body):
        report = ingest_safely(ingestor(), bucket, key, etag)
        log = logger.warning if report.outcome == "unrouted" else logger.info
        log("ingested" if report.outcome != "unrouted" else "set aside", extra={"report": asdict(report)})
        _count(report)
        reports.append(report)
    return reports


# The object changed (a newer version has its own event) or is gone: retrying cannot help.
_OBJECT_GONE = {"NoSuchKey", "404", "PreconditionFailed", "412"}


def ingest_safely(ingestor: Ingestor, bucket: str, key: str, etag: str | None) -> IngestReport:
    """Ingest one object; a failure that retrying cannot cure is recorded, never parked silently.

    - AWS refused or failed a call (throttling, a timeout): raise, so SQS retries the message.
    - The object is gone or was overwritten since the event: skipped, with a log line.
    - Anything else is the file's own fault (or a defect its content triggers): the file is set
      aside under unrouted/ with the error as its reason, logged with its traceback, and the
      message succeeds; replaying the file later (after a fix) ingests it, counted once.
    """
    source = f"s3://{bucket}/{key}"
    try:
        return ingestor.ingest_object(bucket, key, etag)
    except ClientError as error:
        if error_code(error) in _OBJECT_GONE:
            logger.warning("the object is gone or changed since its event", extra={"source": source})
            return IngestReport(
                source, "skipped", reason=f"the object is gone or changed ({error_code(error)})"
            )
        raise
    except BotoCoreError:
        raise
    except Exception as error:
        logger.exception("the file could not be ingested; set aside", extra={"source": source})
        reason = f"the file could not be ingested ({type(error).__name__}: {str(error)[:300]})"
        digest = source_digest(bucket, key, (etag or "").strip('"'))
        return ingestor.set_aside(source, (etag or "").strip('"'), digest, "unreadable", reason, None)


def _count(report: IngestReport) -> None:
    """CloudWatch metrics (the dashboard's ingest widgets): rows ingested and rejected, files set aside."""
    if report.outcome == "unrouted":
        metrics.add_metric(name="FilesUnrouted", unit=MetricUnit.Count, value=1)
    elif report.outcome == "ingested":
        kind = "GroundTruth" if report.kind == "ground_truth" else "Inferences"
        metrics.add_metric(name=f"{kind}Ingested", unit=MetricUnit.Count, value=report.ingested)
        metrics.add_metric(name=f"{kind}Rejected", unit=MetricUnit.Count, value=report.rejected)


@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The ingest Lambda's entry point."""
    return process_partial_response(
        event=event, record_handler=ingest_record, processor=processor, context=context
    )
