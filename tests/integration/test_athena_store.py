"""sagewatch.stores.athena against moto's Athena: queries started in the workgroup, polled, their
results read back typed, their tags read from the query text."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest
from tests import athena as moto_athena

from sagewatch import aws as sagewatch_aws
from sagewatch.errors import NotFound
from sagewatch.stores.athena import AthenaStore, tag, tagged


@pytest.fixture
def store(aws: dict[str, str]):
    moto_athena.create_stack()
    yield AthenaStore(moto_athena.WORKGROUP, sleep=lambda s: None)
    moto_athena.finish_immediately()


def test_results_come_back_typed_as_athena_describes_them(store: AthenaStore) -> None:
    rows = pa.table(
        {
            "region": pa.array(["north", None, "south"]),
            "n": pa.array([3, 0, None], pa.int64()),
            "rate": pa.array([0.25, float("nan"), float("inf")]),
            "flag": pa.array([True, False, None]),
            "day": pa.array(
                [
                    datetime(2026, 11, 25, tzinfo=UTC),
                    None,
                    datetime(2026, 11, 26, 10, 30, 0, 123000, tzinfo=UTC),
                ],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )
    moto_athena.queue_result(rows)
    query_id = store.start("SELECT 1")
    assert store.wait(query_id, 5).state == "SUCCEEDED"
    found = store.results(query_id)
    assert found.schema == rows.schema
    assert found.column("region").to_pylist() == ["north", None, "south"]
    assert found.column("n").to_pylist() == [3, 0, None]
    rate = found.column("rate").to_pylist()
    assert rate[0] == 0.25 and rate[1] != rate[1] and rate[2] == float("inf")
    assert found.column("flag").to_pylist() == [True, False, None]
    assert found.column("day").to_pylist() == rows.column("day").to_pylist()


def test_a_running_query_is_polled_until_the_time_given_then_left(store: AthenaStore) -> None:
    moto_athena.keep_running(5)
    now = [0.0]
    waited = []
    store.clock = lambda: now[0]

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        now[0] += seconds

    store.sleep = sleep
    query_id = store.start("SELECT 1")
    found = store.wait(query_id, 1.0)
    assert found.state in ("QUEUED", "RUNNING") and not found.done
    assert sum(waited) == pytest.approx(1.0)
    assert waited[:3] == pytest.approx([0.2, 0.4, 0.4])  # backing off, never past the deadline
    for _ in range(20):
        found = store.execution(query_id)
    assert found.state == "SUCCEEDED"


def test_a_failed_query_says_so_and_another_workgroups_query_is_not_found(store: AthenaStore) -> None:
    query_id = store.start("SELECT 1")
    moto_athena.fail(query_id)
    found = store.wait(query_id, 5)
    assert found.state == "FAILED" and found.done
    athena = sagewatch_aws.client("athena")
    athena.create_work_group(
        Name="other", Configuration={"ResultConfiguration": {"OutputLocation": "s3://x/"}}
    )
    elsewhere = athena.start_query_execution(QueryString="SELECT 1", WorkGroup="other")["QueryExecutionId"]
    with pytest.raises(NotFound):
        store.execution(elsewhere)


def test_a_tag_survives_in_the_query_text_athena_keeps(store: AthenaStore) -> None:
    what = {"kind": "query", "model_id": "m", "body": {"select": [{"function": "count"}], "note": "*/ --"}}
    query_id = store.start(tag("SELECT 1", what))
    assert tagged(store.execution(query_id).sql) == what
    assert tagged("SELECT 1") is None
