"""A model's first and latest inference times in the ingestion ledger: a min and a max over every
source, whatever order sources arrive in and whichever Lambda container counts them; a write whose
condition cannot hold (a file later than the model's first inference, the usual case) is not sent,
as DynamoDB bills a refused conditional write like any other."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import Call
from tests.inputs import record, register

from sagewatch import aws as sagewatch_aws
from sagewatch import container
from sagewatch.settings import Settings
from sagewatch.stores.ingestion import IngestionLedger, SourceCounts

START = datetime(2026, 11, 25, tzinfo=UTC)


@pytest.fixture
def updates(aws: dict[str, str]) -> Iterator[list[dict[str, Any]]]:
    """Every UpdateItem sent on the process's DynamoDB client, as its parameters."""
    sent: list[dict[str, Any]] = []
    client = sagewatch_aws.client("dynamodb")
    keep = lambda params, **_: sent.append(params)  # noqa: E731
    client.meta.events.register("provide-client-params.dynamodb.UpdateItem", keep)
    yield sent
    client.meta.events.unregister("provide-client-params.dynamodb.UpdateItem", keep)


def container_ledger() -> IngestionLedger:
    """A ledger as a new Lambda container builds it (nothing known yet)."""
    return IngestionLedger.from_settings(Settings.from_env())


def source(minutes: list[int], variant: str | None = None) -> SourceCounts:
    times = [START + timedelta(minutes=m) for m in minutes]
    return SourceCounts(
        inferences=len(times),
        earliest_inference=min(times),
        latest_inference=max(times),
        variant=variant,
        days={START.date().isoformat(): len(times)},
    )


def stored(ledger: IngestionLedger, model_id: str, variant: str | None = None) -> tuple[str, str]:
    counts = ledger.counts(model_id)
    scope = counts["by_variant"][variant] if variant else counts["total"]
    return scope["earliest_inferences_timestamp"], scope["latest_inferences_timestamp"]


def moves(sent: list[dict[str, Any]], attribute: str) -> int:
    return sum(attribute in params["UpdateExpression"] for params in sent)


def test_files_in_time_order_write_the_first_inference_time_once(updates: list[dict[str, Any]]) -> None:
    ledger = container_ledger()
    for hour in range(12):  # a capture file every 5 minutes, each later than the last
        ledger.record("m", f"file-{hour}", source([5 * hour, 5 * hour + 4], variant="AllTraffic"))
    assert stored(ledger, "m") == ((START).isoformat(), (START + timedelta(minutes=59)).isoformat())
    assert stored(ledger, "m", "AllTraffic") == stored(ledger, "m")
    assert moves(updates, "earliest_inferences_timestamp") == 2  # the first file: total and variant
    assert moves(updates, "latest_inferences_timestamp") == 24  # each file moves the latest on


def test_an_earlier_file_counted_by_another_container_still_moves_the_first_time(
    updates: list[dict[str, Any]],
) -> None:
    warm, other = container_ledger(), container_ledger()
    warm.record("m", "noon", source([720, 725]))
    other.record("m", "late-morning-file", source([600, 610]))  # a late file, another container
    assert stored(warm, "m") == (
        (START + timedelta(minutes=600)).isoformat(),
        (START + timedelta(minutes=725)).isoformat(),
    )
    # the warm container believes the first time is noon: it tries, DynamoDB refuses, nothing moves
    warm.record("m", "between", source([650, 730]))
    assert stored(warm, "m") == (
        (START + timedelta(minutes=600)).isoformat(),
        (START + timedelta(minutes=730)).isoformat(),
    )
    # and a file inside what it has written itself is not sent at all
    before = len(updates)
    warm.record("m", "inside", source([700, 705]))
    assert len(updates) == before
    assert stored(warm, "m")[0] == (START + timedelta(minutes=600)).isoformat()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    files=st.lists(
        st.tuples(st.integers(0, 2), st.lists(st.integers(0, 1439), min_size=1, max_size=3)),
        min_size=1,
        max_size=12,
    ),
    replays=st.lists(st.integers(0, 11), max_size=4),
)
def test_first_and_latest_times_are_the_min_and_max_of_every_file_in_any_order(
    updates: list[dict[str, Any]], files: list[tuple[int, list[int]]], replays: list[int]
) -> None:
    containers = [container_ledger() for _ in range(3)]
    model_id = f"m-{id(files)}-{len(updates)}"  # a fresh model for each example
    for number, (which, minutes) in enumerate(files):
        containers[which].record(model_id, f"file-{number}", source(minutes))
    for number in replays:  # a replayed source: counted once, times unchanged
        if number < len(files):
            which, minutes = files[number]
            assert not containers[(which + 1) % 3].record(model_id, f"file-{number}", source(minutes))
    every = [m for _, minutes in files for m in minutes]
    assert stored(containers[0], model_id) == (
        (START + timedelta(minutes=min(every))).isoformat(),
        (START + timedelta(minutes=max(every))).isoformat(),
    )
    assert containers[0].counts(model_id)["total"]["inferences_ingested"] == sum(len(m) for _, m in files)


# Times as a user sends them, one request each, in an order where the text sent and the stored text
# (UTC, microseconds only when not zero) sort differently from the times they name: a fraction
# against a whole second, other offsets, no offset (UTC), a date alone (midnight UTC).
SENT_TIMES = [
    "2026-11-25T12:00:00.5+02:00",  # 10:00:00.5 UTC
    "2026-11-25T10:00:00Z",  # half a second earlier, a whole second
    "2026-11-25T09:59:59.999999-00:30",  # 10:29:59.999999 UTC
    "2026-11-25 10:29:59.9999",  # no offset: UTC, earlier than the last by 99 microseconds
    "2026-11-25T23:45:00Z",
    "2026-11-26T00:30+01:00",  # 23:30 UTC: later text, earlier time
    "2026-11-26T00:44:59.5+01:00",  # 23:44:59.5 UTC, just before the latest
    "2026-11-25",  # midnight UTC: the first
]


def test_times_sent_in_any_iso_form_through_the_api_keep_the_true_first_and_latest(
    api: Call, updates: list[dict[str, Any]]
) -> None:
    model_id = register(api)
    path = f"/api/v3/models/{model_id}"
    for number, sent in enumerate(SENT_TIMES, start=1):
        answer = api("POST", f"{path}/inferences", [record(inference_timestamp=sent)])
        assert answer.body["counts"]["success"] == 1, answer.body
        labels = [
            {"partner_inference_id": "x", "ground_truth_timestamp": sent, "ground_truth_data": {"churned": 1}}
        ]
        assert api("PATCH", f"{path}/ground_truth", labels).status < 300
        times = [_utc(t) for t in SENT_TIMES[:number]]
        total = container.ingestion_ledger().counts(model_id)["total"]
        stored = [
            datetime.fromisoformat(total[name])
            for name in (
                "earliest_inferences_timestamp",
                "latest_inferences_timestamp",
                "latest_ground_truth_timestamp",
            )
        ]
        assert stored == [min(times), max(times), max(times)], sent
    # sent only when it could move: the first times of requests 1, 2 and 8, the latest of 1, 3 and 5
    assert moves(updates, "earliest_inferences_timestamp") == 3
    assert moves(updates, "latest_inferences_timestamp") == 3
    assert moves(updates, "latest_ground_truth_timestamp") == 3


def _utc(text: str) -> datetime:
    """An ISO 8601 time as a UTC datetime, read by Python (no offset: UTC)."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
