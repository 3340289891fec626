"""Ingestion: every way rows arrive (S3 capture and ground-truth files, Parquet drops, REST records and
files, the Deepchecks door) ends in one accept path, `SourceWriter`.

A source (an S3 object version, an API request) writes its parts to the lake as
`<source digest>-<part>` and is counted once by the ledger, so processing the same source again
rewrites the same objects and counts nothing twice. Rows that fail go to rejected/ with their
reason; a file no model claims is kept under unrouted/.

Capture files are routed by the endpoint and variant in their key,
`<prefix>/<EndpointName>/<VariantName>/<yyyy>/<mm>/<dd>/<hh>/<name>.jsonl`; a ground-truth file
(recognised by its content, `groundTruthData`) by the endpoint in
`<prefix>/<EndpointName>/<yyyy>/<mm>/<dd>/<hh>/<name>.jsonl`. Files stream in chunks of whole
lines (sagewatch.streams), so memory stays bounded whatever their size.

Every inference written gets its `anomaly_score` (sagewatch.metrics.anomaly), computed over the
part's rows at once: `Detectors` fits a model's detector when its reference set is closed (or, for a
reference dropped to S3, at the first ingest that finds none), stores it beside the reference, and
keeps it in the process keyed by the stored object's ETag, checked with one HEAD per source, so a
replaced reference is never scored against after its detector is.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sagewatch.capture import FirstInFile, Parsed, parse_capture, parse_ground_truth, parse_resilient
from sagewatch.enrichments import EnrichmentsConfig
from sagewatch.errors import Conflict, InvalidInput, ModelNotFound, NotFound, TooLarge
from sagewatch.metrics import anomaly
from sagewatch.metrics.anomaly import Detector, with_scores
from sagewatch.records import (
    RecordRows,
    check_file_columns,
    columns_from_records,
    file_columns,
    reference_rows,
    rejections,
    rows_from_columns,
)
from sagewatch.schema import Model
from sagewatch.stores.ingestion import IngestionLedger, SourceCounts
from sagewatch.stores.lake import LakeStore, source_digest
from sagewatch.stores.models import ModelStore
from sagewatch.stores.objects import SourceObjects
from sagewatch.stores.window import LakeWindow
from sagewatch.streams import CHUNK_BYTES, Lines, chain, in_parallel, is_ground_truth
from sagewatch.tables import inference_schema, labelling
from sagewatch.values import has_problem, identifier_problems

logger = logging.getLogger(__name__)
# What a detector that cannot be read, fitted or applied raises; AWS's errors are not among them (a
# failed call is retried).
SCORING_DEFECTS = (ValueError, TypeError, KeyError, IndexError, ArithmeticError, pa.ArrowException)

DROP_KINDS = ("inferences", "ground_truth", "reference")
DROP_BATCH_ROWS = 100_000
MAX_RECORDS = 100_000
# The status counts distinct and labelled inferences over this many of the latest days with
# inferences by default (at most MAX_STATUS_DAYS): the ledger's counters cover the whole history.
STATUS_DAYS = 7
MAX_STATUS_DAYS = 90
# A compressed upload may inflate; past this it belongs in the capture bucket, not in one request.
MAX_INFLATED_BYTES = 64 * 1024 * 1024
UPLOAD_URL_SECONDS = 3600
_HOUR_PATH = re.compile(r"^\d{4}$|^\d{2}$")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Source:
    """Where rows come from. Its digest names the lake objects it writes and counts it once;
    `request` marks an API request, whose limits are checked before anything is written."""

    digest: str
    name: str
    variant: str | None = None
    request: bool = False

    @classmethod
    def api_request(cls, what: str, request_id: str) -> Source:
        """One API request (by its API Gateway request id): `what` says which door and kind."""
        digest = hashlib.sha256(f"api\n{what}\n{request_id}".encode()).hexdigest()[:32]
        return cls(digest, f"api:{what}:{request_id}", request=True)

    @classmethod
    def s3_object(cls, bucket: str, key: str, etag: str, variant: str | None = None) -> Source:
        """One version (ETag) of one S3 object."""
        return cls(source_digest(bucket, key, etag), f"s3://{bucket}/{key}", variant)


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
    """The endpoint an S3 key belongs to, and the variant for a Data Capture file."""

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


class Detectors:
    """Each model's anomaly detector: fitted on its reference set, stored beside it (the lake), its
    cutoff noted in the ledger (anomaly.LEDGER_STATE, for the default rule), and cached in the process by
    the stored object's ETag."""

    def __init__(
        self,
        lake: LakeStore,
        ledger: IngestionLedger,
        config: Callable[[Model], EnrichmentsConfig] | None = None,
    ) -> None:
        self.lake, self.ledger = lake, ledger
        self.config = config or (lambda model: EnrichmentsConfig())
        self._loaded: dict[str, tuple[str, Detector]] = {}

    def enabled(self, model: Model) -> bool:
        """Whether the model's anomaly detection is on (its enrichments configuration)."""
        return self.config(model).anomaly_detection.enabled

    def fit(self, model: Model) -> Detector | None:
        """Fit the model's detector on its whole reference set and store it (replacing any); None,
        and any stored detector deleted, when the reference is too small or the model has no inputs."""
        inputs = [a.name for a in anomaly.inputs_of(model)]
        reference = self.lake.read_area("reference", model.id, inputs) if inputs else None
        detector = anomaly.fit(reference, model) if reference is not None else None
        if detector is None:
            self.forget(model)
            return None
        body = detector.to_bytes()
        etag = self.lake.write_detector(model.id, body)
        self._loaded[model.id] = (etag, detector)
        self.ledger.set_state(
            model.id,
            anomaly.LEDGER_STATE,
            digest=hashlib.sha256(body).hexdigest()[:32],
            cutoff=detector.cutoff,
            cutoff_quantile=anomaly.CUTOFF_QUANTILE,
            above_cutoff=detector.above_cutoff,
            scored_rows=detector.scored_rows,
            reference_rows=detector.reference_rows,
            fitted_at=_now().isoformat(),
        )
        return detector

    def for_scoring(self, model: Model) -> Detector | None:
        """The detector to score the model's new inferences with: None when anomaly detection is off
        or there is no reference; fitted now when the reference has none yet, or one stored in an
        earlier format (one HEAD when the cached one is current, a GET when it was replaced)."""
        if not self.enabled(model):
            return None
        etag = self.lake.detector_etag(model.id)
        if etag is None:
            return self.fit(model) if self.lake.has_reference(model.id) else None
        cached = self._loaded.get(model.id)
        if cached is not None and cached[0] == etag:
            return cached[1]
        found = self.lake.read_detector(model.id)
        if found is None:  # deleted since the HEAD: the reference is changing
            return None
        body, etag = found
        detector = Detector.from_bytes(body)
        if detector.version < anomaly.FORMAT:
            return self.fit(model)
        self._loaded[model.id] = (etag, detector)
        return detector

    def forget(self, model: Model) -> None:
        """Drop the model's detector: its reference changed (the next ingest or close fits anew)."""
        self.lake.delete_detector(model.id)
        self.ledger.clear_state(model.id, anomaly.LEDGER_STATE)
        self._loaded.pop(model.id, None)


class Ingestor:
    """Routes, parses and stores source objects; the stores are injected, AWS stays at the edges.
    `enrichments` gives a model's enrichments configuration (default: every default)."""

    def __init__(
        self,
        models: ModelStore,
        lake: LakeStore,
        ledger: IngestionLedger,
        objects: SourceObjects,
        enrichments: Callable[[Model], EnrichmentsConfig] | None = None,
    ) -> None:
        self.models = models
        self.lake = lake
        self.ledger = ledger
        self.objects = objects
        self.detectors = Detectors(lake, ledger, enrichments)

    def writer(self, model: Model, source: Source) -> SourceWriter:
        """A writer for a source that arrives in parts (a file streamed chunk by chunk)."""
        return SourceWriter(
            self.lake, self.ledger, model, source, detector=lambda: self.detectors.for_scoring(model)
        )

    def accept(
        self,
        model: Model,
        source: Source,
        *,
        inferences: pa.Table | None = None,
        ground_truth: pa.Table | None = None,
        reference: pa.Table | None = None,
        rejected: list[dict[str, Any]] | None = None,
        rejected_as: str = "inferences",
    ) -> bool:
        """Write what a one-part source (an API request) produced and count it; False for a replay."""
        writer = self.writer(model, source)
        writer.add(
            _now().date(),
            inferences=inferences,
            ground_truth=ground_truth,
            reference=reference,
            rejected=rejected,
            rejected_as=rejected_as,
        )
        return writer.finish()

    def ingest_object(self, bucket: str, key: str, etag: str | None = None) -> IngestReport:
        """Ingest one S3 object: a Parquet drop in the lake bucket, else a capture or ground-truth file."""
        head = self.objects.head(bucket, key)
        etag = (etag or head["ETag"]).strip('"')
        if bucket == self.lake.bucket:
            if key.startswith("drops/"):
                return self.ingest_drop(bucket, key, etag, head)
            return IngestReport(
                f"s3://{bucket}/{key}", "skipped", reason="only drops/ of the lake bucket is ingested"
            )
        return self.ingest_capture(bucket, key, etag, head)

    def ingest_capture(self, bucket: str, key: str, etag: str, head: dict[str, Any]) -> IngestReport:
        """A Data Capture or Model Monitor ground-truth file, routed to its model by its key."""
        source = f"s3://{bucket}/{key}"
        digest = source_digest(bucket, key, etag)
        chunks = Lines(self.objects.chunks(bucket, key, etag, CHUNK_BYTES))
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
        writer = self.writer(model, Source(digest, source, where.variant))

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
        first_in_file = FirstInFile()
        for parsed in in_parallel(parse, chain(first, chunks)):
            if not ground_truth:  # ground truth sent twice: the latest wins, as ever
                parsed = first_in_file.keep_first(parsed)
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
        writer = self.writer(model, Source(digest, source))
        rejected_as = "ground_truth" if kind == "ground_truth" else "inferences"
        if kind == "reference":
            try:
                self.ledger.check_reference_open(model.id, received_at)
            except Conflict as closed:  # a closed set takes no more rows: the file is refused whole
                rows = [{"row": None, "reason": closed.message}]
                writer.add(received_at.date(), rejected=rows, rejected_as="inferences")
                return self._report(writer, kind)
        size = int(head.get("ContentLength") or 0)
        stream = self.objects.open(bucket, key, etag, size, buffer_size=CHUNK_BYTES)
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

    # -- API requests: one request is one source ---------------------------------------------------

    def send_records(
        self, model_id: str, records: list[Any], request_id: str, *, ground_truth_only: bool = False
    ) -> RecordRows:
        """REST records (inferences with optional ground truth, or ground truth alone by
        partner_inference_id): each row stored or refused alone; the rows say which and why."""
        model = self.models.get_active(model_id)
        _check_count(len(records))
        what = "ground_truth" if ground_truth_only else "inferences"
        source = Source.api_request(what, request_id)
        nested = ("ground_truth_data",) if ground_truth_only else ("inference_data", "ground_truth_data")
        columns, read_problems = columns_from_records(records, nested=nested)
        rows = rows_from_columns(
            columns,
            len(records),
            model,
            source=source.name,
            now=_now(),
            require_inference=not ground_truth_only,
            read_problems=read_problems,
        )
        self.accept(
            model,
            source,
            inferences=None if ground_truth_only else rows.inferences,
            ground_truth=rows.ground_truth,
            rejected=rejections(rows),
            rejected_as=what,
        )
        return rows

    def upload_file(
        self, model_id: str, data: bytes, field: str, batch_id: str | None, request_id: str
    ) -> tuple[int, list[dict[str, Any]]]:
        """A Parquet or JSON file of inferences (field inference_data) or ground truth
        (ground_truth_data): (rows in the file, the rows refused with their reasons)."""
        model = self.models.get_active(model_id)
        columns, count = file_columns(data, field, model)
        _check_count(count)
        inferences = field == "inference_data"
        source = Source.api_request("file", request_id)
        rows = rows_from_columns(
            columns,
            count,
            model,
            source=source.name,
            now=_now(),
            batch_id=batch_id,
            require_inference=inferences,
        )
        failures = rejections(rows)
        self.accept(
            model,
            source,
            inferences=rows.inferences if inferences else None,
            ground_truth=rows.ground_truth,
            rejected=failures,
            rejected_as="inferences" if inferences else "ground_truth",
        )
        return count, [dict(f) for f in failures]

    def upload_capture(self, model_id: str, data: bytes, request_id: str) -> tuple[int, list[dict[str, Any]]]:
        """A Data Capture JSONL file (gzip or not) sent in a request: (rows, the refused rows)."""
        model = self.models.get_active(model_id)
        source = Source.api_request("capture", request_id)
        now = _now()
        chunks = Lines([data])
        pieces, size, first_in_file = [], 0, FirstInFile()
        for first_line, buffer in chunks:
            size += len(buffer)
            if size > MAX_INFLATED_BYTES:
                raise TooLarge(
                    f"the file holds more than {MAX_INFLATED_BYTES} bytes uncompressed: put it in the capture "
                    "bucket instead",
                    field="inference_data",
                )
            parsed = parse_resilient(
                lambda text, line: parse_capture(
                    text, model, source=source.name, first_line=line, ingested_at=now
                ),
                buffer,
                first_line,
            )
            pieces.append(first_in_file.keep_first(parsed))
        rows = pa.concat_tables([p.rows for p in pieces]) if pieces else inference_schema(model).empty_table()
        rejected = [r for p in pieces for r in p.rejected] + [
            {"event_id": None, "inference_index": None, **r} for r in chunks.rejections()
        ]
        _check_count(rows.num_rows + len(rejected))
        self.accept(model, source, inferences=rows, rejected=rejected)
        return rows.num_rows + len(rejected), rejected

    def upload_url(self, model_id: str, kind: str, batch_id: str | None = None) -> dict[str, Any]:
        """A presigned PUT into the drop area, ingested from there (`kind`: inferences, ground_truth
        or reference; a reference set must still be open)."""
        model = self.models.get_active(model_id)
        if kind == "reference":
            self.ledger.check_reference_open(model.id)
        folder = f"drops/{model.id}/{kind}" + (f"/{batch_id}" if batch_id else "")
        key = f"{folder}/{uuid.uuid4().hex}.parquet"
        return {
            "url": self.lake.upload_url(key, UPLOAD_URL_SECONDS),
            "key": key,
            "expires_in": UPLOAD_URL_SECONDS,
        }

    # -- batches and the reference set ---------------------------------------------------------------

    def close_batch(self, model_id: str, batch_id: str, status: str, total: int | None) -> dict[str, Any]:
        """Mark a batch uploaded (a batch model's rules evaluate it then); returns its status."""
        model = self.models.get_active(model_id)
        batch_id = checked_batch_id(batch_id)
        values: dict[str, Any] = {"status": status, "uploaded_at": _now().isoformat()}
        if total is not None:
            values["total_record_count"] = total
        self.ledger.set_state(model.id, f"BATCH#{batch_id}", **values)
        return self._batch_status(model, batch_id)

    def batch_status(self, model_id: str, batch_id: str) -> dict[str, Any]:
        """A batch's counts and status (404 if nothing of it arrived and it was never closed)."""
        return self._batch_status(self.models.get(model_id), checked_batch_id(batch_id))

    def _batch_status(self, model: Model, batch_id: str) -> dict[str, Any]:
        state = self.ledger.state(model.id, f"BATCH#{batch_id}")
        ingested = self.ledger.batch_counts(model.id, batch_id).get("inferences_ingested", 0)
        if not state and not ingested:
            raise NotFound(f"model {model.id} has no batch {batch_id!r}", field="batch_id")
        total = state.get("total_record_count")
        return {
            "batch_id": batch_id,
            "status": state.get("status", "receiving"),
            "ingested": ingested,
            "total_record_count": total,
            "complete": None if total is None else ingested >= total,
            "uploaded_at": state.get("uploaded_at"),
        }

    def upload_reference(
        self, model_id: str, data: bytes, field: str, request_id: str
    ) -> tuple[int, list[dict[str, Any]]]:
        """A reference file (Parquet or JSON) while the set is open: (rows, the refused rows)."""
        model = self.models.get_active(model_id)
        self.ledger.check_reference_open(model.id)
        columns, count = file_columns(data, field, model)
        reference, problem = reference_rows(columns, count, model)
        failures = [{"row": int(i), "reason": problem[i]} for i in np.flatnonzero(has_problem(problem))]
        self.accept(
            model, Source.api_request("reference", request_id), reference=reference, rejected=failures
        )
        self.ledger.set_state(model.id, "REFERENCE", status="receiving")
        return count, [dict(f) for f in failures]

    def close_reference(self, model_id: str, status: str, total: int | None) -> dict[str, Any]:
        """Close the reference set: it takes no more rows until deleted."""
        model = self.models.get_active(model_id)
        values: dict[str, Any] = {"status": status, "uploaded_at": _now().isoformat()}
        if total is not None:
            values["total_record_count"] = total
        self.ledger.set_state(model.id, "REFERENCE", **values)
        if self.detectors.enabled(model):
            self.detectors.fit(model)
        return self._reference_status(model)

    def delete_reference(self, model_id: str) -> None:
        """Delete the reference set, so a new one can be uploaded (drift baselines and the anomaly
        detector, stored under it, follow it)."""
        model = self.models.get_active(model_id)
        self.lake.delete_prefix(f"reference/model_id={model.id}/")
        self.detectors.forget(model)
        self.ledger.reset_reference(model.id)

    def reference_status(self, model_id: str) -> dict[str, Any]:
        """The reference set's status and row count."""
        return self._reference_status(self.models.get(model_id))

    def _reference_status(self, model: Model) -> dict[str, Any]:
        state = self.ledger.state(model.id, "REFERENCE")
        ingested = self.ledger.counts(model.id)["total"].get("reference_ingested", 0)
        return {
            "status": state.get("status", "receiving" if ingested else "none"),
            "ingested": ingested,
            "total_record_count": state.get("total_record_count"),
            "uploaded_at": state.get("uploaded_at"),
        }

    # -- what arrived ----------------------------------------------------------------------------

    def rejected(self, model_id: str) -> list[dict[str, Any]]:
        """The model's rejected rows with their reasons, newest day first."""
        return self.lake.rejected(self.models.get(model_id).id)

    def status(self, model: Model, days: int = STATUS_DAYS) -> dict[str, Any]:
        """Counters kept at ingestion over the whole history (total and by variant, from the ledger),
        and what the lake holds over its latest `days` days of inferences once duplicates are resolved
        (distinct inferences, duplicates, labelled): read like a window of those days, so the cost
        follows `days`, not the model's history."""
        stored = self.ledger.counts(model.id)
        recent = self.lake.days("inferences", model.id)[-days:]
        if not recent:
            return {"counters": stored, "counted_from": None, "counted_to": None, **labelling(None, None)}
        first, last = recent[0], recent[-1]
        identity = ["partner_inference_id", "variant", "ingested_at", "source"]
        read = labelling(
            self.lake.read_area("inferences", model.id, identity, first, last),
            LakeWindow(self.lake, model).ground_truth(first, last),
        )
        return {"counters": stored, "counted_from": first, "counted_to": last, **read}

    def unrouted(self) -> list[dict[str, Any]]:
        """Files kept aside because no model claims them."""
        return self.lake.unrouted()


def checked_batch_id(batch_id: str) -> str:
    """A batch id from a path, percent-decoded (`b%201` is the batch "b 1"), held to the rule rows'
    batch_ids are held to."""
    batch_id = unquote(batch_id)
    problem = identifier_problems(pa.array([batch_id]), "batch_id")[0]
    if problem is not None:
        raise InvalidInput(problem, field="batch_id")
    return batch_id


def _check_count(count: int) -> None:
    if count > MAX_RECORDS:
        raise TooLarge(f"{count} records in one request; at most {MAX_RECORDS}", field="body")


def _day_of(key: str, fallback: datetime) -> date:
    """The hour folder's day in a capture key, else the fallback's."""
    parts = key.split("/")[-5:-2]
    try:
        return date(int(parts[0]), int(parts[1]), int(parts[2]))
    except (ValueError, IndexError):
        return fallback.date()


# A request is answered within API Gateway's 29 s: these bound what one request may write.
# (Files from S3 have no such bound: the ingest Lambda runs for minutes and answers nobody.)
MAX_DAYS_PER_REQUEST = 1000
MAX_BATCHES_PER_REQUEST = 1000


class SourceWriter:
    """Writes what one source produced and counts it once.

    For an API request (`Source.request`) its limits (days, batch_ids) are checked in `add` before
    anything is written, so a refused request (4xx) leaves no object behind. Inferences are written
    with their anomaly scores: `detector` is asked once, at the first inferences (None: null scores).
    """

    def __init__(
        self,
        lake: LakeStore,
        ledger: IngestionLedger,
        model: Model,
        source: Source,
        detector: Callable[[], Detector | None] | None = None,
    ) -> None:
        self.lake, self.ledger, self.model = lake, ledger, model
        self.find_detector = detector
        self.detector: Detector | None = None
        self.looked_for_detector = detector is None
        self.digest, self.source, self.variant = source.digest, source.name, source.variant
        self.request = source.request
        self.part = 0
        self.keys: list[str] = []
        self.tally: Counter[str] = Counter()
        self.batches: Counter[str] = Counter()
        self.days: Counter[str] = Counter()
        self.latest: datetime | None = None
        self.latest_label: datetime | None = None
        self.earliest: datetime | None = None

    def add(
        self,
        day: date,
        *,
        inferences: pa.Table | None = None,
        ground_truth: pa.Table | None = None,
        reference: pa.Table | None = None,
        rejected: list[dict[str, Any]] | None = None,
        rejected_as: str = "inferences",
        rejected_rows: int | None = None,
    ) -> None:
        """Write one part: rows by area and rejected rows (`rejected_as` says whose counter they raise;
        `rejected_rows` how many rows they stand for, when one entry refuses a whole file)."""
        if self.request:
            check_request(inferences, ground_truth, self.batches)
        name = f"{self.digest}-{self.part:05d}"
        self.part += 1
        model_id = self.model.id
        if inferences is not None and inferences.num_rows:
            inferences = with_scores(inferences, self.scores(inferences))
            self.lake.write_id_index(model_id, inferences, name)  # first: rows written are always indexed
            self.keys += self.lake.write_rows("inferences", model_id, inferences, "inference_timestamp", name)
            self.tally["inferences"] += inferences.num_rows
            self.latest = _later(self.latest, pc.max(inferences.column("inference_timestamp")).as_py())
            first = pc.min(inferences.column("inference_timestamp")).as_py()
            self.earliest = (
                first if self.earliest is None or (first and first < self.earliest) else self.earliest
            )
            days = pc.value_counts(pc.strftime(inferences.column("inference_timestamp"), format="%Y-%m-%d"))
            for value, count in zip(
                days.field("values").to_pylist(), days.field("counts").to_pylist(), strict=True
            ):
                self.days[value] += count
            batches = inferences.column("batch_id").drop_null()
            if len(batches):
                counts = pc.value_counts(batches)
                for value, count in zip(
                    counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
                ):
                    self.batches[value] += count
        if ground_truth is not None and ground_truth.num_rows:
            self.keys += self.lake.write_ground_truth(model_id, ground_truth, name)
            self.tally["ground_truth"] += ground_truth.num_rows
            self.latest_label = _later(
                self.latest_label, pc.max(ground_truth.column("ground_truth_timestamp")).as_py()
            )
        if reference is not None and reference.num_rows:
            if not self.tally["reference"]:  # the reference changes: its detector is refitted
                self.lake.delete_detector(model_id)
                self.ledger.clear_state(model_id, anomaly.LEDGER_STATE)
            self.keys.append(self.lake.write_reference(model_id, reference, name))
            self.tally["reference"] += reference.num_rows
        if rejected:
            key = self.lake.write_rejected(model_id, day, name, self.source, rejected)
            self.keys += [key] if key else []
            self.tally[f"{rejected_as}_rejected"] += len(rejected) if rejected_rows is None else rejected_rows

    def scores(self, inferences: pa.Table) -> pa.Array | None:
        """The rows' anomaly scores, or None without a detector. Scoring never fails an ingest: a
        detector that cannot be read or fitted (a defect, not AWS) leaves the rows unscored (null),
        logged, rather than sink rows already written (a capture file's earlier parts) or a request."""
        try:
            if not self.looked_for_detector and self.find_detector is not None:
                self.looked_for_detector = True
                self.detector = self.find_detector()
            return self.detector.score(inferences) if self.detector is not None else None
        except SCORING_DEFECTS:
            logger.exception("anomaly scores left null", extra={"model_id": self.model.id})
            self.detector = None
            return None

    def counts(self) -> SourceCounts:
        """What the source produced so far, as the ledger counts it."""
        return SourceCounts(
            inferences=self.tally["inferences"],
            inferences_rejected=self.tally["inferences_rejected"],
            ground_truth=self.tally["ground_truth"],
            ground_truth_rejected=self.tally["ground_truth_rejected"],
            reference=self.tally["reference"],
            earliest_inference=self.earliest,
            latest_inference=self.latest,
            latest_ground_truth=self.latest_label,
            variant=self.variant,
            batches=dict(self.batches),
            days=dict(self.days),
        )

    def finish(self) -> bool:
        """Count the source; False if it had been counted before (a replay)."""
        return self.ledger.record(self.model.id, self.digest, self.counts())


def _later(current: datetime | None, candidate: datetime | None) -> datetime | None:
    """The later of two times, either possibly unknown."""
    if current is None or (candidate is not None and candidate > current):
        return candidate
    return current


def check_request(
    inferences: pa.Table | None, ground_truth: pa.Table | None, batches_so_far: Counter[str] | None = None
) -> None:
    """Refuse (413) a request whose rows span more days or batch_ids than one request may write."""
    for table, column in ((inferences, "inference_timestamp"), (ground_truth, "ground_truth_timestamp")):
        if table is None or table.num_rows == 0:
            continue
        days = len(pc.unique(pc.strftime(table.column(column), format="%Y-%m-%d")))
        if days > MAX_DAYS_PER_REQUEST:
            raise TooLarge(
                f"the rows span {days} days of {column}; at most {MAX_DAYS_PER_REQUEST} per request: "
                "send them in parts, or as a file through an upload URL",
                field=column,
            )
    if inferences is not None and inferences.num_rows:
        batches = set(pc.unique(inferences.column("batch_id").drop_null()).to_pylist())
        batches |= set(batches_so_far or ())
        if len(batches) > MAX_BATCHES_PER_REQUEST:
            raise TooLarge(
                f"{len(batches)} batch_ids in one request; at most {MAX_BATCHES_PER_REQUEST}",
                field="batch_id",
            )
