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

from sagewatch import aws
from sagewatch.settings import Settings
from sagewatch.stores.ingestion import IngestionLedger, SourceCounts

START = datetime(2026, 11, 25, tzinfo=UTC)


@pytest.fixture
def updates(aws: dict[str, str]) -> Iterator[list[dict[str, Any]]]:
    """Every UpdateItem sent on the process's DynamoDB client, as its parameters."""
    sent: list[dict[str, Any]] = []
    client = aws_client()
    record = lambda params, **_: sent.append(params)  # noqa: E731
    client.meta.events.register("provide-client-params.dynamodb.UpdateItem", record)
    yield sent
    client.meta.events.unregister("provide-client-params.dynamodb.UpdateItem", record)


def aws_client() -> Any:
    return aws.client("dynamodb")


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
