"""The rows sagewatch sends an endpoint (sagewatch.stores.invocations): CSV as RFC 4180 writes it,
read back by Python's csv module (an independent reader), so a value holding a comma, a quote or a
line break reaches the model whole; booleans as 1 and 0; a row too large to send is the row's fault;
a deadline stops the calls before one would end past it."""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError

from sagewatch.local.endpoints import StandInRuntime
from sagewatch.stores.invocations import EndpointInvoker, ModelFailed, OutOfTime, RowsRefused, encode_rows


def test_values_needing_quotes_are_quoted_and_read_back_whole() -> None:
    # GIVEN rows with a comma, a quote, line breaks, a null, a boolean and numbers
    columns = [
        np.array([1, 22, 333]),
        np.array([1.5, 0.25, -2.0]),
        np.array(["no,rth", 'say "hi"', "two\nlines\r\n"], dtype=object),
        np.array([True, False, True]),
        np.array([None, "plain", ""], dtype=object),
    ]

    # WHEN they are encoded
    body, ends = encode_rows(columns)

    # THEN Python's csv reader reads back every value, booleans as 1 and 0, the null as empty
    rows = list(csv.reader(io.StringIO(body.decode(), newline="")))
    assert rows == [
        ["1", "1.5", "no,rth", "1", ""],
        ["22", "0.25", 'say "hi"', "0", "plain"],
        ["333", "-2", "two\nlines\r\n", "1", ""],
    ]
    # THEN only what needs quotes is quoted, and the row ends fall after each row's own line break
    assert body.startswith(b'1,1.5,"no,rth",1,\n22,')
    assert [body[end - 1 : end] for end in ends] == [b"\n"] * 3
    assert list(csv.reader(io.StringIO(body[ends[0] : ends[1]].decode(), newline=""))) == [rows[1]]


def test_a_comma_in_a_value_reaches_the_model_whole() -> None:
    # GIVEN an endpoint echoing the length of each row's text input
    runtime = StandInRuntime()
    runtime.register("echo", lambda rows: np.array([len(str(v)) for v in rows[:, 1]], dtype=float))
    invoker = EndpointInvoker(runtime, max_rows=2)  # two calls: the row ends must be right

    # WHEN rows with a comma, a quote and a line break are sent
    values = np.array(["no,rth", 'a"b', "x\ny"], dtype=object)
    answers = invoker.predict("echo", None, [np.array([1, 2, 3]), values])

    # THEN the model saw each value whole
    assert answers[:, 0].tolist() == [6.0, 3.0, 3.0]
    assert invoker.counts.calls == 2


def test_a_row_too_large_to_send_is_the_rows_fault() -> None:
    invoker = EndpointInvoker(StandInRuntime(), max_bytes=10)
    with pytest.raises(RowsRefused, match="too large to send") as refused:
        invoker.predict("any", None, [np.array(["x" * 20], dtype=object)])
    assert invoker.counts.calls == 0
    assert not isinstance(refused.value, ModelFailed)  # certainly the row's: never the model's


def test_a_failing_model_is_a_model_error_counted_as_rows_given() -> None:
    # GIVEN a stand-in whose model raises, as a real container answers 5xx
    runtime = StandInRuntime()

    def predict(rows: Any) -> Any:
        raise ValueError("Input X contains NaN")

    runtime.register("broken", predict)
    invoker = EndpointInvoker(runtime)
    # THEN the raw call is SageMaker's ModelError (424) with the model's message
    with pytest.raises(ClientError) as raw:
        runtime.invoke_endpoint(EndpointName="broken", Body=b"1\n", ContentType="text/csv")
    assert raw.value.response["Error"]["Code"] == "ModelError"
    assert raw.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert "Input X contains NaN" in raw.value.response["Error"]["Message"]
    # THEN the invoker says the model failed on the rows, not retried, and counts them as given to it
    with pytest.raises(ModelFailed, match="Input X contains NaN"):
        invoker.predict("broken", None, [np.array([1.0, 2.0])])
    assert (invoker.counts.calls, invoker.counts.rows, invoker.counts.retries) == (1, 2, 0)


def test_no_call_starts_that_would_end_past_the_deadline() -> None:
    # GIVEN an endpoint each call of which takes 8 s (on the invoker's clock), 3 calls to make
    now = [0.0]
    runtime = StandInRuntime()

    def slow(rows: Any) -> Any:
        now[0] += 8.0
        return np.zeros(len(rows))

    runtime.register("slow", slow)
    invoker = EndpointInvoker(runtime, max_rows=1, monotonic=lambda: now[0])

    # WHEN the rows are sent with a deadline at 20 s, THEN the third call is not made
    with pytest.raises(OutOfTime):
        invoker.predict("slow", None, [np.array([1.0, 2.0, 3.0])], deadline=20.0)
    assert (invoker.counts.calls, now[0]) == (2, 16.0)
    # WHEN the deadline has room, THEN every call is made
    assert invoker.predict("slow", None, [np.array([1.0, 2.0, 3.0])], deadline=100.0).shape == (3, 1)
