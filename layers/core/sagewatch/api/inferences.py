"""Data over REST, in Arthur v3's shapes: inferences, ground truth, files, upload URLs, batches, reference data.

Multi-row writes answer 207 Multi-Status: each row succeeds or fails alone, with a message naming
the attribute. Everything lands in the same lake, counters and rejected/ as files from S3 do
(sagewatch.services.ingestion), one request being one source.
"""

from __future__ import annotations

import base64
import uuid
from typing import Annotated, Any, Literal

import numpy as np
import pyarrow as pa
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, Field

from sagewatch.api.multipart import parse_multipart
from sagewatch.container import ingestor
from sagewatch.errors import InvalidInput, TooLarge
from sagewatch.paging import pages
from sagewatch.records import RecordRows
from sagewatch.values import has_problem

router = Router()

# Lambda refuses synchronous payloads above 6 MB (API Gateway would carry 10 MB).
MAX_BODY_BYTES = 6 * 1024 * 1024


class Counts(BaseModel):
    """How many rows succeeded and failed, and how many there were."""

    success: int
    failure: int
    total: int


class RowResult(BaseModel):
    """One row's outcome: 200 and "success", or 400 and why it was refused."""

    partner_inference_id: str | None
    status: int
    message: str


class MultiStatus(BaseModel):
    """Arthur's 207 answer: counts, and a result per row in the order sent."""

    counts: Counts
    results: list[RowResult]


class FileFailure(BaseModel):
    """A refused row of a file: where it was (row, line, event) and why."""

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
    """POST .../inferences/upload_url: what the file holds, and the batch its rows belong to."""

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
    """PATCH a batch or the reference set: status uploaded, and optionally how many rows it holds."""

    status: Literal["uploaded"]
    total_record_count: int | None = Field(default=None, ge=0, le=10**12)


class BatchStatus(BaseModel):
    """A batch: its status, rows ingested and, given total_record_count, whether all have arrived."""

    batch_id: str
    status: str
    ingested: int
    total_record_count: int | None = None
    complete: bool | None = None
    uploaded_at: str | None = None


class ReferenceStatus(BaseModel):
    """The reference set: its status (none, receiving or uploaded) and rows ingested."""

    status: str
    ingested: int
    total_record_count: int | None = None
    uploaded_at: str | None = None


def _request_id() -> str:
    return router.current_event.request_context.request_id or str(uuid.uuid4())


def raw_body() -> bytes:
    """The request's body as bytes (413 past what a Lambda accepts)."""
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


def _form() -> dict[str, Any]:
    """The request's multipart/form-data fields."""
    return parse_multipart(raw_body(), router.current_event.headers.get("content-type"))


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
    return _multi_status(ingestor().send_records(model_id, records, _request_id()))


def _update_ground_truth(model_id: str, records: list[Any]) -> MultiStatus:
    rows = ingestor().send_records(model_id, records, _request_id(), ground_truth_only=True)
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


@router.post(
    "/models/<model_id>/inferences/file",
    status_code=207,
    summary="Upload a Parquet or JSON file of inferences (inference_data) or ground truth (ground_truth_data)",
    tags=["inferences"],
)
def upload_file(model_id: str) -> FileStatus:
    parts = _form()
    kind = next((k for k in ("inference_data", "ground_truth_data") if k in parts), None)
    if "inference_data" in parts and "ground_truth_data" in parts:
        raise InvalidInput(
            "send inference_data or ground_truth_data in one request, not both (a second request "
            "sends the other)",
            field="ground_truth_data",
        )
    if kind is None:
        raise InvalidInput(
            "send the file in a form field inference_data or ground_truth_data", field="inference_data"
        )
    # the arthurai SDK always sends the field, empty when no batch is meant
    batch_id = (parts["batch_id"].text.strip() or None) if "batch_id" in parts else None
    count, failures = ingestor().upload_file(model_id, parts[kind].data, kind, batch_id, _request_id())
    return _file_status(count, failures)


@router.post(
    "/models/<model_id>/inferences/integrations/sagemaker_data_capture",
    status_code=207,
    summary="Upload a SageMaker Data Capture JSONL file (form field inference_data)",
    tags=["inferences"],
)
def upload_capture(model_id: str) -> FileStatus:
    parts = _form()
    if "inference_data" not in parts:
        raise InvalidInput("send the .jsonl file in the form field inference_data", field="inference_data")
    total, rejected = ingestor().upload_capture(model_id, parts["inference_data"].data, _request_id())
    failures = [
        {
            "event_id": r.get("event_id"),
            "inference_index_in_event": r.get("inference_index"),
            "line": r.get("line"),
            "partner_inference_id": r.get("partner_inference_id"),
            "reason": r["reason"],
        }
        for r in rejected
    ]
    return _file_status(total, failures)


@router.post(
    "/models/<model_id>/inferences/upload_url",
    summary="A presigned S3 PUT for a Parquet file of any size (ingested from the drop area)",
    tags=["inferences"],
)
def inference_upload_url(model_id: str, request: Annotated[UploadRequest, Body()]) -> UploadUrl:
    return UploadUrl(**ingestor().upload_url(model_id, request.kind, request.batch_id))


# -- batches ----------------------------------------------------------------------------------------


@router.patch(
    "/models/<model_id>/batches/<batch_id>",
    summary="Close a batch (status uploaded): a batch model's rules evaluate it then",
    tags=["batches"],
)
def close_batch(model_id: str, batch_id: str, update: Annotated[BatchUpdate, Body()]) -> BatchStatus:
    return BatchStatus(**ingestor().close_batch(model_id, batch_id, update.status, update.total_record_count))


@router.get("/models/<model_id>/batches/<batch_id>", summary="A batch's counts and status", tags=["batches"])
def get_batch(model_id: str, batch_id: str) -> BatchStatus:
    return BatchStatus(**ingestor().batch_status(model_id, batch_id))


# -- reference data ---------------------------------------------------------------------------------


@router.post(
    "/models/<model_id>/reference_data",
    status_code=207,
    summary="Upload reference data (form field reference_data: Parquet or JSON); PATCH closes the set",
    tags=["reference data"],
)
def upload_reference(model_id: str) -> FileStatus:
    parts = _form()
    if "reference_data" not in parts:
        raise InvalidInput("send the file in the form field reference_data", field="reference_data")
    count, failures = ingestor().upload_reference(
        model_id, parts["reference_data"].data, "reference_data", _request_id()
    )
    return _file_status(count, failures)


@router.post(
    "/models/<model_id>/reference_data/upload_url",
    summary="A presigned S3 PUT for a reference Parquet file of any size",
    tags=["reference data"],
)
def reference_upload_url(model_id: str) -> UploadUrl:
    return UploadUrl(**ingestor().upload_url(model_id, "reference"))


@router.patch(
    "/models/<model_id>/reference_data",
    summary="Close the reference set (status uploaded)",
    tags=["reference data"],
)
def close_reference(model_id: str, update: Annotated[BatchUpdate, Body()]) -> ReferenceStatus:
    return ReferenceStatus(**ingestor().close_reference(model_id, update.status, update.total_record_count))


@router.delete(
    "/models/<model_id>/reference_data",
    status_code=204,
    summary="Delete the reference set, to upload a new one (drift baselines follow the new set)",
    tags=["reference data"],
)
def delete_reference(model_id: str) -> None:
    ingestor().delete_reference(model_id)


@router.get(
    "/models/<model_id>/reference_data", summary="The reference set's status", tags=["reference data"]
)
def reference_status(model_id: str) -> ReferenceStatus:
    return ReferenceStatus(**ingestor().reference_status(model_id))


# -- rejected rows ----------------------------------------------------------------------------------


class RejectedRow(BaseModel):
    """A refused row: the source it came from, why, and where it was in that source."""

    source: str
    reason: str
    line: int | None = None
    row: int | None = None
    event_id: str | None = None
    inference_index: int | None = None
    partner_inference_id: str | None = None


class RejectedPage(BaseModel):
    """A page of a model's refused rows, newest day first."""

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
    chosen, paging = pages(ingestor().rejected(model_id), page, page_size)
    return RejectedPage(
        data=[
            RejectedRow(**{k: v for k, v in row.items() if k in RejectedRow.model_fields}) for row in chosen
        ],
        **paging,
    )
