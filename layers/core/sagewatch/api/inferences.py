"""Data over REST, in Arthur v3's shapes: inferences, ground truth, files, upload URLs, batches, reference data.

Multi-row writes answer 207 Multi-Status: each row succeeds or fails alone, with a message naming
the attribute. Everything lands in the same lake, counters and rejected/ as files from S3 do
(sagewatch.lake_writer.SourceWriter), one request being one source.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, Field

from sagewatch import aws, jsonl
from sagewatch.api.multipart import Part, parse_multipart
from sagewatch.capture import Parsed, parse_capture, parse_resilient
from sagewatch.errors import InvalidInput, NotFound, TooLarge
from sagewatch.ingest import Lines, ingestor
from sagewatch.lake_writer import SourceWriter
from sagewatch.records import (
    RecordRows,
    check_file_columns,
    columns_from_records,
    reference_rows,
    rejections,
    rows_from_columns,
)
from sagewatch.schema import Model
from sagewatch.stores import ingestion_ledger, lake_store, model_store
from sagewatch.tables import inference_schema
from sagewatch.values import has_problem, identifier_problems

router = Router()

# Lambda refuses synchronous payloads above 6 MB (API Gateway would carry 10 MB).
MAX_BODY_BYTES = 6 * 1024 * 1024
MAX_RECORDS = 100_000
# A compressed upload may inflate; past this it belongs in the capture bucket, not in one request.
MAX_INFLATED_BYTES = 64 * 1024 * 1024
UPLOAD_URL_SECONDS = 3600


class Counts(BaseModel):
    success: int
    failure: int
    total: int


class RowResult(BaseModel):
    partner_inference_id: str | None
    status: int
    message: str


class MultiStatus(BaseModel):
    """Arthur's 207 answer: counts, and a result per row in the order sent."""

    counts: Counts
    results: list[RowResult]


class FileFailure(BaseModel):
    row: int | None = None
    partner_inference_id: str | None = None
    event_id: str | None = None
    inference_index_in_event: int | None = None
    line: int | None = None
    message: str


class FileStatus(BaseModel):
    """The 207 answer to a file: counts, and the rows that failed."""

    counts: Counts
    failures: list[FileFailure]


class UploadRequest(BaseModel):
    kind: Literal["inferences", "ground_truth"] = "inferences"
    # any batch_id a row may carry, but a slash: it is a folder of the drop's key
    batch_id: str | None = Field(default=None, pattern=r"^[^/\x00-\x1f\x7f-\x9f]{1,128}$")


class UploadUrl(BaseModel):
    """A presigned S3 PUT into the drop area; the Parquet ingest picks the file up from there."""

    url: str
    method: str = "PUT"
    key: str
    expires_in: int


class BatchUpdate(BaseModel):
    status: Literal["uploaded"]
    total_record_count: int | None = Field(default=None, ge=0, le=10**12)


class BatchStatus(BaseModel):
    batch_id: str
    status: str
    ingested: int
    total_record_count: int | None = None
    complete: bool | None = None
    uploaded_at: str | None = None


class ReferenceStatus(BaseModel):
    status: str
    ingested: int
    total_record_count: int | None = None
    uploaded_at: str | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _request_id() -> str:
    return router.current_event.request_context.request_id or str(uuid.uuid4())


def _writer(model: Model, what: str) -> SourceWriter:
    """A writer for this request: one request, one source (named after the request id)."""
    request_id = _request_id()
    digest = hashlib.sha256(f"api\n{request_id}".encode()).hexdigest()[:32]
    return ingestor().writer(model, digest, f"api:{what}:{request_id}", request=True)


def raw_body() -> bytes:
    event = router.current_event
    data = (
        base64.b64decode(event.body or "") if event.is_base64_encoded else (event.body or "").encode("utf-8")
    )
    if len(data) > MAX_BODY_BYTES:
        raise TooLarge(
            f"the body is {len(data)} bytes; at most {MAX_BODY_BYTES} go through the API: "
            "ask for an upload URL (POST .../upload_url) for larger files",
            field="body",
        )
    return data


def _multi_status(rows: RecordRows) -> MultiStatus:
    failed = has_problem(rows.problem)
    table = pa.table(
        {
            "partner_inference_id": rows.partner_ids,
            "status": pa.array(np.where(failed, 400, 200)),
            "message": pa.array(np.where(failed, rows.problem, "success").astype(str)),
        }
    )
    return MultiStatus(
        counts=Counts(success=int((~failed).sum()), failure=int(failed.sum()), total=len(failed)),
        results=[RowResult(**row) for row in table.to_pylist()],
    )


def _file_status(total: int, failures: list[dict[str, Any]], failed_rows: int | None = None) -> FileStatus:
    failure = len(failures) if failed_rows is None else failed_rows
    return FileStatus(
        counts=Counts(success=total - failure, failure=failure, total=total),
        failures=[
            FileFailure(
                message=f.pop("reason"), **{k: v for k, v in f.items() if k in FileFailure.model_fields}
            )
            for f in failures
        ],
    )


def _check_count(count: int) -> None:
    if count > MAX_RECORDS:
        raise TooLarge(f"{count} records in one request; at most {MAX_RECORDS}", field="body")


# -- records ----------------------------------------------------------------------------------------


@router.post(
    "/models/<model_id>/inferences",
    status_code=207,
    summary="Send inferences (with ground truth if known); each row succeeds or fails alone",
    tags=["inferences"],
)
def send_inferences(
    model_id: str,
    records: Annotated[
        list[Any],
        Body(
            description="[{inference_timestamp?, partner_inference_id?, batch_id?, inference_data: {...}, "
            "ground_truth_timestamp?, ground_truth_data?: {...}}]"
        ),
    ],
) -> MultiStatus:
    model = model_store().get_active(model_id)
    _check_count(len(records))
    columns, read_problems = columns_from_records(records, nested=("inference_data", "ground_truth_data"))
    rows = rows_from_columns(
        columns, len(records), model, source=f"api:{_request_id()}", now=_now(), read_problems=read_problems
    )
    writer = _writer(model, "inferences")
    writer.add(
        _now().date(), inferences=rows.inferences, ground_truth=rows.ground_truth, rejected=rejections(rows)
    )
    writer.finish()
    return _multi_status(rows)


def _update_ground_truth(model_id: str, records: list[Any]) -> MultiStatus:
    model = model_store().get_active(model_id)
    _check_count(len(records))
    columns, read_problems = columns_from_records(records, nested=("ground_truth_data",))
    rows = rows_from_columns(
        columns,
        len(records),
        model,
        source=f"api:{_request_id()}",
        now=_now(),
        require_inference=False,
        read_problems=read_problems,
    )
    writer = _writer(model, "ground_truth")
    writer.add(
        _now().date(), ground_truth=rows.ground_truth, rejected=rejections(rows), rejected_as="ground_truth"
    )
    writer.finish()
    return _multi_status(rows)


GROUND_TRUTH_BODY = Body(
    description="[{partner_inference_id, ground_truth_timestamp?, ground_truth_data: {...}}]; ground truth may "
    "arrive before its inference; the latest ground_truth_timestamp wins"
)


@router.patch(
    "/models/<model_id>/inferences",
    status_code=207,
    summary="Update ground truth by partner_inference_id",
    tags=["inferences"],
)
def update_ground_truth(model_id: str, records: Annotated[list[Any], GROUND_TRUTH_BODY]) -> MultiStatus:
    return _update_ground_truth(model_id, records)


@router.patch(
    "/models/<model_id>/ground_truth",
    status_code=207,
    summary="Update ground truth by partner_inference_id (same as PATCH .../inferences)",
    tags=["inferences"],
)
def update_ground_truth_alias(model_id: str, records: Annotated[list[Any], GROUND_TRUTH_BODY]) -> MultiStatus:
    return _update_ground_truth(model_id, records)


# -- files ------------------------------------------------------------------------------------------


def _read_file(part: Part, model: Model) -> tuple[dict[str, pa.Array], int]:
    """Columns of a Parquet file (whose column types must fit the attributes), or of JSON records
    (a list, or JSON Lines), whose values are typed one by one like REST records."""
    if part.data[:4] == b"PAR1":
        try:
            table = pq.read_table(pa.BufferReader(part.data))
        except (pa.ArrowException, OSError) as error:  # a corrupt footer is an OSError
            raise InvalidInput(
                f"{part.name}: not a readable Parquet file: {error}", field=part.name
            ) from None
        check_file_columns(table.schema, model)
        return {name: table.column(name).combine_chunks() for name in table.column_names}, table.num_rows
    text = part.data.strip()
    if not text:
        raise InvalidInput(f"{part.name} is empty", field=part.name)
    try:
        decoded = text.decode("utf-8")
        lines = (
            [jsonl.loads(line) for line in decoded.splitlines() if line.strip()]
            if not decoded.startswith("[")
            else None
        )
        records = jsonl.loads(decoded) if lines is None else lines
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError alike
        raise InvalidInput(
            f"{part.name}: neither Parquet nor JSON records ({error})", field=part.name
        ) from None
    if not isinstance(records, list):
        raise InvalidInput(f"{part.name}: JSON records must be a list of objects", field=part.name)
    columns, problems = columns_from_records(records, nested=())
    if has_problem(problems).any():
        raise InvalidInput(f"{part.name}: every record must be a JSON object", field=part.name)
    check_file_columns(pa.schema([(name, pa.null()) for name in columns]), model)
    return columns, len(records)


@router.post(
    "/models/<model_id>/inferences/file",
    status_code=207,
    summary="Upload a Parquet or JSON file of inferences (inference_data) or ground truth (ground_truth_data)",
    tags=["inferences"],
)
def upload_file(model_id: str) -> FileStatus:
    model = model_store().get_active(model_id)
    parts = parse_multipart(raw_body(), router.current_event.headers.get("content-type"))
    kind = next((k for k in ("inference_data", "ground_truth_data") if k in parts), None)
    if kind is None:
        raise InvalidInput(
            "send the file in a form field inference_data or ground_truth_data", field="inference_data"
        )
    columns, count = _read_file(parts[kind], model)
    _check_count(count)
    # the arthurai SDK always sends the field, empty when no batch is meant
    batch_id = (parts["batch_id"].text.strip() or None) if "batch_id" in parts else None
    inferences = kind == "inference_data"
    rows = rows_from_columns(
        columns,
        count,
        model,
        source=f"api:{_request_id()}",
        now=_now(),
        batch_id=batch_id,
        require_inference=inferences,
    )
    writer = _writer(model, "file")
    failures = rejections(rows)
    writer.add(
        _now().date(),
        inferences=rows.inferences if inferences else None,
        ground_truth=rows.ground_truth,
        rejected=failures,
        rejected_as="inferences" if inferences else "ground_truth",
    )
    writer.finish()
    return _file_status(count, [dict(f) for f in failures])


@router.post(
    "/models/<model_id>/inferences/integrations/sagemaker_data_capture",
    status_code=207,
    summary="Upload a SageMaker Data Capture JSONL file (form field inference_data)",
    tags=["inferences"],
)
def upload_capture(model_id: str) -> FileStatus:
    model = model_store().get_active(model_id)
    parts = parse_multipart(raw_body(), router.current_event.headers.get("content-type"))
    if "inference_data" not in parts:
        raise InvalidInput("send the .jsonl file in the form field inference_data", field="inference_data")
    writer = _writer(model, "capture")
    now = _now()
    chunks = Lines([parts["inference_data"].data])  # gzip or not
    pieces, size = [], 0
    for first_line, buffer in chunks:
        size += len(buffer)
        if size > MAX_INFLATED_BYTES:
            raise TooLarge(
                f"the file holds more than {MAX_INFLATED_BYTES} bytes uncompressed: put it in the capture "
                "bucket instead",
                field="inference_data",
            )
        pieces.append(
            parse_resilient(
                lambda text, line: parse_capture(
                    text, model, source=writer.source, first_line=line, ingested_at=now
                ),
                buffer,
                first_line,
            )
        )
    rows = pa.concat_tables([p.rows for p in pieces]) if pieces else inference_schema(model).empty_table()
    rejected = [r for p in pieces for r in p.rejected] + [
        {"event_id": None, "inference_index": None, **r} for r in chunks.rejections()
    ]
    parsed = Parsed(rows, rejected)
    _check_count(parsed.rows.num_rows + len(parsed.rejected))
    writer.add(_now().date(), inferences=parsed.rows, rejected=parsed.rejected)
    writer.finish()
    failures = [
        {
            "event_id": r["event_id"],
            "inference_index_in_event": r["inference_index"],
            "line": r["line"],
            "reason": r["reason"],
        }
        for r in parsed.rejected
    ]
    return _file_status(parsed.rows.num_rows + len(failures), failures)


def _upload_url(model: Model, kind: str, batch_id: str | None) -> UploadUrl:
    folder = f"drops/{model.id}/{kind}" + (f"/{batch_id}" if batch_id else "")
    key = f"{folder}/{uuid.uuid4().hex}.parquet"
    url = aws.client("s3").generate_presigned_url(
        "put_object", Params={"Bucket": lake_store().bucket, "Key": key}, ExpiresIn=UPLOAD_URL_SECONDS
    )
    return UploadUrl(url=url, key=key, expires_in=UPLOAD_URL_SECONDS)


@router.post(
    "/models/<model_id>/inferences/upload_url",
    summary="A presigned S3 PUT for a Parquet file of any size (ingested from the drop area)",
    tags=["inferences"],
)
def inference_upload_url(model_id: str, request: Annotated[UploadRequest, Body()]) -> UploadUrl:
    return _upload_url(model_store().get_active(model_id), request.kind, request.batch_id)


# -- batches ----------------------------------------------------------------------------------------


def _batch_path_id(batch_id: str) -> str:
    """A batch id from a path, percent-decoded (`b%201` is the batch "b 1"), held to the rule rows'
    batch_ids are held to."""
    batch_id = unquote(batch_id)
    problem = identifier_problems(pa.array([batch_id]), "batch_id")[0]
    if problem is not None:
        raise InvalidInput(problem, field="batch_id")
    return batch_id


def _batch_status(model: Model, batch_id: str) -> BatchStatus:
    state = ingestion_ledger().state(model.id, f"BATCH#{batch_id}")
    ingested = ingestion_ledger().batch_counts(model.id, batch_id).get("inferences_ingested", 0)
    if not state and not ingested:
        raise NotFound(f"model {model.id} has no batch {batch_id!r}", field="batch_id")
    total = state.get("total_record_count")
    return BatchStatus(
        batch_id=batch_id,
        status=state.get("status", "receiving"),
        ingested=ingested,
        total_record_count=total,
        complete=None if total is None else ingested >= total,
        uploaded_at=state.get("uploaded_at"),
    )


@router.patch(
    "/models/<model_id>/batches/<batch_id>",
    summary="Close a batch (status uploaded): a batch model's rules evaluate it then",
    tags=["batches"],
)
def close_batch(model_id: str, batch_id: str, update: Annotated[BatchUpdate, Body()]) -> BatchStatus:
    model = model_store().get_active(model_id)
    batch_id = _batch_path_id(batch_id)
    values: dict[str, Any] = {"status": update.status, "uploaded_at": _now().isoformat()}
    if update.total_record_count is not None:
        values["total_record_count"] = update.total_record_count
    ingestion_ledger().set_state(model.id, f"BATCH#{batch_id}", **values)
    return _batch_status(model, batch_id)


@router.get("/models/<model_id>/batches/<batch_id>", summary="A batch's counts and status", tags=["batches"])
def get_batch(model_id: str, batch_id: str) -> BatchStatus:
    return _batch_status(model_store().get(model_id), _batch_path_id(batch_id))


# -- reference data ---------------------------------------------------------------------------------


@router.post(
    "/models/<model_id>/reference_data",
    status_code=207,
    summary="Upload reference data (form field reference_data: Parquet or JSON); PATCH closes the set",
    tags=["reference data"],
)
def upload_reference(model_id: str) -> FileStatus:
    model = model_store().get_active(model_id)
    ingestion_ledger().check_reference_open(model.id)
    parts = parse_multipart(raw_body(), router.current_event.headers.get("content-type"))
    if "reference_data" not in parts:
        raise InvalidInput("send the file in the form field reference_data", field="reference_data")
    columns, count = _read_file(parts["reference_data"], model)
    reference, problem = reference_rows(columns, count, model)
    failures = [{"row": int(i), "reason": problem[i]} for i in np.flatnonzero(has_problem(problem))]
    writer = _writer(model, "reference")
    writer.add(_now().date(), reference=reference, rejected=[dict(f) for f in failures])
    writer.finish()
    ingestion_ledger().set_state(model.id, "REFERENCE", status="receiving")
    return _file_status(count, failures)


@router.post(
    "/models/<model_id>/reference_data/upload_url",
    summary="A presigned S3 PUT for a reference Parquet file of any size",
    tags=["reference data"],
)
def reference_upload_url(model_id: str) -> UploadUrl:
    model = model_store().get_active(model_id)
    ingestion_ledger().check_reference_open(model.id)
    return _upload_url(model, "reference", None)


def _reference_status(model: Model) -> ReferenceStatus:
    state = ingestion_ledger().state(model.id, "REFERENCE")
    ingested = ingestion_ledger().counts(model.id)["total"].get("reference_ingested", 0)
    return ReferenceStatus(
        status=state.get("status", "receiving" if ingested else "none"),
        ingested=ingested,
        total_record_count=state.get("total_record_count"),
        uploaded_at=state.get("uploaded_at"),
    )


@router.patch(
    "/models/<model_id>/reference_data",
    summary="Close the reference set (status uploaded)",
    tags=["reference data"],
)
def close_reference(model_id: str, update: Annotated[BatchUpdate, Body()]) -> ReferenceStatus:
    model = model_store().get_active(model_id)
    values: dict[str, Any] = {"status": update.status, "uploaded_at": _now().isoformat()}
    if update.total_record_count is not None:
        values["total_record_count"] = update.total_record_count
    ingestion_ledger().set_state(model.id, "REFERENCE", **values)
    return _reference_status(model)


@router.delete(
    "/models/<model_id>/reference_data",
    status_code=204,
    summary="Delete the reference set, to upload a new one (drift baselines follow the new set)",
    tags=["reference data"],
)
def delete_reference(model_id: str) -> None:
    model = model_store().get_active(model_id)
    lake_store().delete_prefix(f"reference/model_id={model.id}/")
    ingestion_ledger().reset_reference(model.id)


@router.get(
    "/models/<model_id>/reference_data", summary="The reference set's status", tags=["reference data"]
)
def reference_status(model_id: str) -> ReferenceStatus:
    return _reference_status(model_store().get(model_id))


# -- rejected rows ----------------------------------------------------------------------------------


class RejectedRow(BaseModel):
    source: str
    reason: str
    line: int | None = None
    row: int | None = None
    event_id: str | None = None
    inference_index: int | None = None
    partner_inference_id: str | None = None


class RejectedPage(BaseModel):
    data: list[RejectedRow]
    page: int
    page_size: int
    total_count: int
    total_pages: int


@router.get(
    "/models/<model_id>/inferences/rejected",
    summary="Rejected rows with their reasons, newest day first",
    tags=["inferences"],
)
def rejected_rows(
    model_id: str,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> RejectedPage:
    model = model_store().get(model_id)
    rows = lake_store().rejected(model.id)
    start = (page - 1) * page_size
    return RejectedPage(
        data=[
            RejectedRow(**{k: v for k, v in row.items() if k in RejectedRow.model_fields})
            for row in rows[start : start + page_size]
        ],
        page=page,
        page_size=page_size,
        total_count=len(rows),
        total_pages=max(1, -(-len(rows) // page_size)),
    )
