"""Properties of REST writes, fuzzed through the real api handler on moto.

- A refused request (any 4xx but the 207 of per-row answers) changes no lake object and no counter.
- An answered request (207) stores exactly the rows it reports as successes, each bad row failing
  alone with a message; retrying it changes neither the distinct inferences nor a query's count.

The request limits are lowered (days, batch_ids, records) so that examples cross them cheaply.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests import factories
from tests.conftest import Call
from tests.lake import lake_keys

from sagewatch import container
from sagewatch.services import ingestion

pytestmark = pytest.mark.fuzz

BASE = datetime(2026, 11, 20, tzinfo=UTC)
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# A fault of one record: (what is changed, the value), sent as JSON text so non-JSON tokens fit.
ROW_FAULTS = {
    "age past int64": ("age", str(2**63)),
    "age a fraction": ("age", "1.5"),
    "age text": ("age", '"sixty"'),
    "income Infinity": ("income", "Infinity"),
    "income -Infinity": ("income", "-Infinity"),
    "income overflows": ("income", "1e400"),
    "time calendar-invalid": ("inference_timestamp", '"2026-13-45T99:00:00Z"'),
    "time out of range": ("inference_timestamp", '"0001-01-01T00:00:00Z"'),
    "time past int64": ("inference_timestamp", str(2**63)),
    "empty id": ("partner_inference_id", '""'),
    "NUL in id": ("partner_inference_id", '"a\\u0000b"'),
    "batch_id too long": ("batch_id", json.dumps("b" * 2000)),
    "batch_id nested": ("batch_id", "[[[[1]]]]"),
    "label not a class": ("churned", "7"),
    "unknown attribute": ("colour", '"red"'),
}
IDENTITY = ("partner_inference_id", "inference_timestamp", "batch_id")


def _record_text(fields: dict[str, str]) -> str:
    """A record from JSON fragments: identity fields at the top, attributes inside inference_data."""
    inner = {k: v for k, v in fields.items() if k not in IDENTITY and k != "churned"}
    outer = {k: v for k, v in fields.items() if k in IDENTITY}
    parts = [f'"{k}": {v}' for k, v in outer.items()]
    parts.append('"inference_data": {' + ", ".join(f'"{k}": {v}' for k, v in inner.items()) + "}")
    if "churned" in fields:
        parts.append('"ground_truth_data": {"churned": ' + fields["churned"] + "}")
    return "{" + ", ".join(parts) + "}"


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, int, bool]:
    """(body, how many records are good, whether a request limit is crossed)."""
    count = draw(st.integers(1, 12))
    texts, good, good_days, good_batches = [], 0, set(), set()
    days = draw(st.integers(1, 8))
    batches = draw(st.integers(0, 8))
    for index in range(count):
        fields = {
            "partner_inference_id": '"@ID@"',  # made unique when sent: examples replay while shrinking
            "inference_timestamp": json.dumps(
                (BASE + timedelta(days=index % days, minutes=index)).isoformat()
            ),
            "age": str(draw(st.integers(0, 120))),
            "income": repr(draw(st.floats(-1e9, 1e9))),
            "region": json.dumps(draw(st.sampled_from(["north", "south"]))),
            "predicted_probability": repr(draw(st.floats(0, 1))),
            "churned": str(draw(st.integers(0, 1))),
        }
        if batches:
            fields["batch_id"] = json.dumps(f"batch-{index % batches}")
        fault = draw(st.one_of(st.none(), st.sampled_from(sorted(ROW_FAULTS))))
        if fault is None:
            good += 1
            good_days.add(index % days)
            if batches:
                good_batches.add(index % batches)
        else:
            name, value = ROW_FAULTS[fault]
            fields[name] = value
        texts.append(_record_text(fields))
    body = ("[" + ", ".join(texts) + "]").encode()
    shape = draw(st.sampled_from(["list", "list", "list", "deep", "object"]))
    if shape == "deep":
        body = b"[" * 3000 + b"]" * 3000
    elif shape == "object":
        body = b'{"records": ' + body + b"}"
    crossed = shape != "list" or len(good_days) > LIMIT or len(good_batches) > LIMIT or count > LIMIT_RECORDS
    return body, good, crossed


LIMIT = 5
LIMIT_RECORDS = 10


@pytest.fixture
def model_id(api: Call, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(ingestion, "MAX_DAYS_PER_REQUEST", LIMIT)
    monkeypatch.setattr(ingestion, "MAX_BATCHES_PER_REQUEST", LIMIT)
    monkeypatch.setattr(ingestion, "MAX_RECORDS", LIMIT_RECORDS)
    answer = api("POST", "/api/v3/models", factories.binary_probability())
    assert answer.status == 201
    return answer.body["id"]


def _counters(model_id: str) -> dict[str, Any]:
    return container.ingestion_ledger().counts(model_id)["total"]


def _distinct(api: Call, model_id: str) -> tuple[int, int]:
    # every day the examples wrote (up to 8): the status reads the latest 7 by default
    status = api("GET", f"/api/v3/models/{model_id}/inferences/status?days=90").body
    count = api("POST", f"/api/v3/models/{model_id}/inferences/query", {"select": [{"function": "count"}]})
    return status["total"], count.body["query_result"][0]["count"]


@FUZZ
@given(request=requests())
def test_a_refused_request_stores_nothing_and_an_answered_one_stores_its_successes_once(
    api: Call, model_id: str, request: tuple[bytes, int, bool]
) -> None:
    body, good, crossed = request
    while b"@ID@" in body:
        body = body.replace(b"@ID@", uuid.uuid4().hex.encode(), 1)
    keys, counters = lake_keys(), _counters(model_id)
    before = _distinct(api, model_id)

    answer = api("POST", f"/api/v3/models/{model_id}/inferences", body)

    if answer.status != 207:
        assert 400 <= answer.status < 500 and answer.body["message"], answer.body
        assert crossed, answer.body
        assert lake_keys() == keys
        assert _counters(model_id) == counters
        return
    assert not crossed
    assert answer.body["counts"]["success"] == good
    failures = [r for r in answer.body["results"] if r["status"] != 200]
    assert all(r["status"] == 400 and r["message"] for r in failures)
    after = _distinct(api, model_id)
    assert after == (before[0] + good, before[1] + good)
    assert _counters(model_id).get("inferences_ingested", 0) == counters.get("inferences_ingested", 0) + good

    retried = api("POST", f"/api/v3/models/{model_id}/inferences", body)
    assert retried.status == 207 and retried.body["counts"] == answer.body["counts"]
    assert _distinct(api, model_id) == after
