"""EndpointInvoker: rows sent to a model's SageMaker endpoint (InvokeEndpoint), predictions read back.

Rows go as CSV (text/csv, no header, the model's inputs in position order) as RFC 4180 writes it,
which SageMaker's CSV deserializers read: a value holding a comma, a quote or a line break is quoted
(its quotes doubled), other values go bare, nulls as empty fields, and booleans as 1 and 0 (the
built-in algorithms and most models read numbers only). Requests stay under SageMaker's 6 MB payload
limit (MAX_REQUEST_BYTES) and MAX_ROWS_PER_REQUEST rows. Answers read (`read_predictions`), one or more numbers per row:
- text/csv: one line per row of one or more numbers, or one line of one number per row;
- JSON: a list (numbers, or lists of numbers), or {"predictions": [...]} whose items are numbers,
  lists, or objects with "score", "scores", "probabilities" or "probability" (SageMaker's built-in
  containers answer so).
Throttling (ThrottlingException, 429), a model not ready yet and 5xx are retried here with
exponential backoff and jitter, up to `attempts` calls; sagewatch.aws gives this client no botocore
retries of its own, so a call is never retried at two levels. botocore's refusals become sagewatch's
errors naming `explainability.endpoint_name`; rows the endpoint refused (a row too large to send is
RowsRefused; the model failing on them, SageMaker's ModelError, is its subclass ModelFailed, which
may be the rows' fault or the container's: the caller tells them apart), and a caller's deadline that
the next call or wait would pass is OutOfTime.
"""

from __future__ import annotations

import io
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from botocore.exceptions import ClientError

from sagewatch import aws
from sagewatch.errors import Forbidden, InvalidInput, NotFound, SagewatchError, Throttled
from sagewatch.stores.dynamo import error_code
from sagewatch.stores.endpoints import MONITORED_TAG

# SageMaker refuses request payloads over 6 MB: each request stays under 5 MB.
MAX_REQUEST_BYTES = 5_000_000
# And under this many rows, so one request's model latency stays well within the 60 s SageMaker allows.
MAX_ROWS_PER_REQUEST = 10_000
ATTEMPTS = 6
RETRIED_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "ModelNotReadyException",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalDependencyException",
    }
)
FIELD = "explainability.endpoint_name"
SCORE_KEYS = ("score", "scores", "probabilities", "probability")
# What RFC 4180 quotes: a field holding a comma, a double quote or a line break.
NEEDS_QUOTES = r'[",\r\n]'


class RowsRefused(InvalidInput):
    """The rows' own fault, not the endpoint's: the model failed on them (ModelError), or one is too
    large to send. Explaining other rows may still work."""


class ModelFailed(RowsRefused):
    """SageMaker's ModelError: the model's container failed on the rows (their fault, or its own)."""


class OutOfTime(SagewatchError):
    """The caller's deadline would pass before the next call (or retry) ends: nothing more was sent."""

    status: ClassVar[int] = 503


@dataclass
class InvocationCounts:
    """What an invoker has sent: calls (retries included), rows given to the model (answered, or
    failed on: a model error), and retried calls."""

    calls: int = 0
    rows: int = 0
    retries: int = 0


class EndpointInvoker:
    """Predictions of rows by a SageMaker endpoint (see the module docstring).

    `client` is boto3's sagemaker-runtime client by default, or anything with its `invoke_endpoint`
    (local mode's stand-in, sagewatch.local.endpoints). `sleep` waits between attempts.
    """

    def __init__(
        self,
        client: Any = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        attempts: int = ATTEMPTS,
        base_delay: float = 0.5,
        max_delay: float = 20.0,
        max_rows: int = MAX_ROWS_PER_REQUEST,
        max_bytes: int = MAX_REQUEST_BYTES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.sleep, self.attempts, self.base_delay, self.max_delay = sleep, attempts, base_delay, max_delay
        self.max_rows, self.max_bytes, self.monotonic = max_rows, max_bytes, monotonic
        self.counts = InvocationCounts()

    @property
    def client(self) -> Any:
        """The process's sagemaker-runtime client (or the one given)."""
        return self._client or aws.client("sagemaker-runtime")

    def predict(
        self,
        endpoint: str,
        variant: str | None,
        columns: Sequence[np.ndarray],
        deadline: float | None = None,
    ) -> np.ndarray:
        """The endpoint's predictions (rows, outputs) of the rows whose input columns are given;
        OutOfTime before a call or a wait that would end past `deadline` (of `monotonic`), judged
        by the last call's time."""
        body, ends = encode_rows(columns)
        rows = len(ends)
        answers, start, offset, last_call = [], 0, 0, 0.0
        while start < rows:
            stop = min(
                start + self.max_rows, int(np.searchsorted(ends, offset + self.max_bytes, side="right"))
            )
            if stop <= start:
                raise RowsRefused(
                    f"one row of the model's inputs is over {self.max_bytes:,} bytes as CSV: too large to send",
                    field=FIELD,
                )
            end = int(ends[stop - 1])
            began = self.monotonic()
            answers.append(
                self._invoke(endpoint, variant, body[offset:end], stop - start, deadline, last_call)
            )
            last_call = self.monotonic() - began
            start, offset = stop, end
        if not answers:
            return np.zeros((0, 1))
        widths = {a.shape[1] for a in answers}
        if len(widths) > 1:
            raise InvalidInput(
                f"endpoint {endpoint!r} answered {sorted(widths)} numbers per row in different calls",
                field=FIELD,
            )
        return np.vstack(answers)

    def _invoke(
        self,
        endpoint: str,
        variant: str | None,
        body: bytes,
        rows: int,
        deadline: float | None = None,
        expected_seconds: float = 0.0,
    ) -> np.ndarray:
        request = {"EndpointName": endpoint, "ContentType": "text/csv", "Accept": "text/csv", "Body": body}
        if variant:
            request["TargetVariant"] = variant
        wait = 0.0
        for attempt in range(self.attempts):
            if deadline is not None and self.monotonic() + wait + expected_seconds > deadline:
                raise OutOfTime(
                    f"endpoint {endpoint!r}: the next call would end past the time allowed", field=FIELD
                )
            if wait:
                self.sleep(wait)
            self.counts.calls += 1
            try:
                answer = self.client.invoke_endpoint(**request)
            except ClientError as error:
                if error_code(error) == "ModelError":
                    self.counts.rows += rows  # the model ran on them (and failed)
                if not _retried(error) or attempt == self.attempts - 1:
                    raise _refusal(error, endpoint, variant, self.attempts) from None
                self.counts.retries += 1
                delay = min(self.max_delay, self.base_delay * 2**attempt)
                wait = delay / 2 + random.uniform(0, delay / 2)  # equal jitter: callers spread out
                continue
            self.counts.rows += rows
            return read_predictions(answer["Body"].read(), answer.get("ContentType"), rows, endpoint)
        raise AssertionError("unreachable: the last attempt returns or raises")


def encode_rows(columns: Sequence[np.ndarray]) -> tuple[bytes, np.ndarray]:
    """The rows as CSV without a header (see the module docstring), and where each row ends in it
    (the byte after its line break: a quoted value may hold line breaks of its own)."""
    if not columns:
        return b"", np.zeros(0, dtype=np.int64)
    fields = [csv_field(pa.array(np.asarray(c))) for c in columns]
    lines = pc.binary_join_element_wise(*fields, ",")
    lines = pc.binary_join_element_wise(lines, pa.scalar(""), "\n")  # each line ended by its break
    _, offsets, data = lines.buffers()
    offsets = np.frombuffer(offsets, dtype=np.int32)[lines.offset : lines.offset + len(lines) + 1]
    body = data.to_pybytes()[offsets[0] : offsets[-1]]
    return body, (offsets[1:] - offsets[0]).astype(np.int64)


def csv_field(values: pa.Array) -> pa.Array:
    """One column's CSV fields: quoted (quotes doubled) only where RFC 4180 needs it, booleans as
    1 and 0, nulls empty."""
    if pa.types.is_null(values.type):
        return pa.array([""] * len(values), pa.string())
    if pa.types.is_boolean(values.type):
        values = values.cast(pa.int8())
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        quoted = pc.binary_join_element_wise(
            pa.scalar('"'), pc.replace_substring(values, '"', '""'), pa.scalar('"'), ""
        )
        values = pc.if_else(pc.match_substring_regex(values, NEEDS_QUOTES), quoted, values)
    return pc.fill_null(values.cast(pa.string()), "")


def read_predictions(body: bytes, content_type: str | None, rows: int, endpoint: str) -> np.ndarray:
    """The answer of one call as (rows, outputs) floats; InvalidInput naming the endpoint when it
    is none of the forms the module docstring lists, or not one answer per row."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        if "json" in (content_type or "") or text[:1] in ("[", "{"):
            found = _json_predictions(json.loads(text))
        else:
            table = pacsv.read_csv(
                io.BytesIO(text.encode() + b"\n"),  # one line unended is "empty" to pyarrow
                read_options=pacsv.ReadOptions(autogenerate_column_names=True),
            )
            found = np.column_stack([c.to_numpy(zero_copy_only=False) for c in table.columns]).astype(float)
    except (ValueError, TypeError, KeyError, pa.ArrowInvalid) as error:
        raise InvalidInput(
            f"endpoint {endpoint!r} answered what sagewatch cannot read as predictions ({error}): "
            "CSV lines of numbers, a JSON list, or {'predictions': [...]}",
            field=FIELD,
        ) from None
    found = found.reshape(len(found), -1) if found.ndim < 2 else found
    if found.shape[0] == 1 and found.shape[1] == rows and rows > 1:
        found = found.T  # one line of one number per row (SageMaker's XGBoost answers so)
    if found.shape[0] != rows:
        raise InvalidInput(
            f"endpoint {endpoint!r} answered {found.shape[0]} predictions for {rows} rows", field=FIELD
        )
    return found


def _json_predictions(document: Any) -> np.ndarray:
    if isinstance(document, dict):
        document = document["predictions"]
    if not isinstance(document, list):
        raise ValueError("no list of predictions")
    if document and isinstance(document[0], dict):
        document = [next(item[k] for k in SCORE_KEYS if k in item) for item in document]
    return np.asarray(document, dtype=float)


def _retried(error: ClientError) -> bool:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return error_code(error) in RETRIED_CODES or status == 429 or status >= 500


def _refusal(error: ClientError, endpoint: str, variant: str | None, attempts: int) -> SagewatchError:
    """What a refused call means to the user, naming the field to change."""
    code, message = error_code(error), error.response.get("Error", {}).get("Message", "")
    if _retried(error):
        return Throttled(
            f"endpoint {endpoint!r} still refused after {attempts} attempts ({code}: {message}); "
            "lower explainability.explanations_per_hour, or give the endpoint more instances",
            field=FIELD,
        )
    if code in ("AccessDeniedException", "AccessDenied"):
        return Forbidden(
            f"sagewatch may not invoke endpoint {endpoint!r}: tag it {MONITORED_TAG}=true", field=FIELD
        )
    if code in ("ValidationError", "ValidationException") and "not found" in message.lower():
        return NotFound(f"no SageMaker endpoint {endpoint!r} ({message})", field=FIELD)
    if code in ("ValidationError", "ValidationException"):
        field = "explainability.variant" if variant and "variant" in message.lower() else FIELD
        return InvalidInput(f"endpoint {endpoint!r} refused the call: {message}", field=field)
    if code == "ModelError":
        return ModelFailed(
            f"the model behind endpoint {endpoint!r} failed on sagewatch's rows ({message}): it must take "
            "text/csv rows of the model's inputs in position order",
            field=FIELD,
        )
    return SagewatchError(f"endpoint {endpoint!r}: {code}: {message}", field=FIELD)
