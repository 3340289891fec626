"""What a Lambda refuses that a laptop allows, as the local runtime and the tests apply it."""

from __future__ import annotations

import json
import time

import pandas  # noqa: F401 - imported here, as a test process would have it: it must still be missing
import pytest

from sagewatch.client import event_size, json_chunks
from sagewatch.local import lambda_limits
from sagewatch.local.lambda_limits import LAMBDA_PAYLOAD_BYTES, LambdaImports, api_limits
from sagewatch.services.deepchecks import records_json


def test_packages_the_layer_lacks_are_missing_while_a_handler_runs_even_if_imported() -> None:
    import pyarrow as pa

    with LambdaImports().active():
        with pytest.raises(ModuleNotFoundError):
            pa.table({"a": [1]}).to_pandas()  # pyarrow imports pandas lazily, as the Lambda would try
        with pytest.raises(ModuleNotFoundError):
            __import__("scipy.stats")
        __import__("numpy")  # the layer's own packages import as usual
        __import__("aws_lambda_powertools.event_handler")
    assert pa.table({"a": [1]}).to_pandas().shape == (1, 1)  # and everything is back afterwards


def answer(body: str = "{}") -> dict:
    return {"statusCode": 200, "headers": {}, "body": body, "isBase64Encoded": False}


def test_an_event_over_lambdas_6_mb_is_refused_and_the_handler_never_runs() -> None:
    called = []
    limited = api_limits(lambda event, context: called.append(1) or answer(), report=lambda line: None)
    result = limited({"body": "x" * LAMBDA_PAYLOAD_BYTES}, None)
    assert result["statusCode"] == 413 and called == []
    assert limited({"body": "x" * 1000}, None)["statusCode"] == 200


def test_a_response_over_6_mb_is_what_api_gateway_answers_instead() -> None:
    limited = api_limits(lambda event, context: answer("y" * LAMBDA_PAYLOAD_BYTES), report=lambda line: None)
    assert limited({}, None)["statusCode"] == 500


def test_a_handler_slower_than_api_gateway_waits_is_reported_and_answered_503(monkeypatch) -> None:
    monkeypatch.setattr(lambda_limits, "API_TIMEOUT_SECONDS", 0.01)
    lines: list[str] = []
    limited = api_limits(lambda event, context: time.sleep(0.05) or answer(), report=lines.append)
    assert limited({}, None)["statusCode"] == 503
    assert "API Gateway answers 503 after 29 s" in lines[0]


def test_wide_rows_are_sent_in_chunks_that_fit_lambda() -> None:
    """The demo's 31-column model: 10,000 rows are 8.5 MB of JSON, over what Lambda accepts."""
    records = [
        {
            "partner_inference_id": f"id-{i}",
            "inference_data": {f"feature_{c}": 1234.5678 + i for c in range(31)},
        }
        for i in range(10_000)
    ]
    bodies = list(json_chunks(records, 10_000))
    assert len(bodies) > 1 and all(event_size(body) <= 5_800_000 for body in bodies)
    assert [r for body in bodies for r in json.loads(body)] == records


def test_rows_full_of_quotes_are_measured_as_they_travel_escaped() -> None:
    """Each quote is escaped again inside the Lambda event: 4.75 MB of such JSON is over 6 MB there."""
    records = [
        {"inference_data": {f"text_{c}": 'say "hi" \\ to "all"' for c in range(40)}} for _ in range(30_000)
    ]
    bodies = list(json_chunks(records, 10_000))
    assert all(len(json.dumps({"body": body.decode()})) < LAMBDA_PAYLOAD_BYTES for body in bodies)
    assert sum(len(json.loads(body)) for body in bodies) == 30_000


def test_deepchecks_samples_fit_lambdas_response_once_escaped_twice() -> None:
    import pyarrow as pa

    table = pa.table({f"text_{c}": ['"quoted" a\\b c"d'] * 5_000 for c in range(30)})
    text = records_json(table, limit=1_000_000)
    rows = json.loads(text)
    assert 0 < len(rows) < 5_000  # a sample of the rows asked for
    assert len(json.dumps({"body": json.dumps(text)})) <= 1_000_000 + 100
