"""An evaluation run's reads (sagewatch.alerting.reads): each read once, a window's rows those its
filter keeps, and what is kept bounded by a byte budget."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa

from sagewatch.alerting.reads import RunReads

DAY = date(2026, 11, 25)
MIDNIGHT = datetime(2026, 11, 25, tzinfo=UTC)
TIME = pa.timestamp("us", tz="UTC")


class Lake:
    """A loader over tables made up front, one list per day, counting the reads it is asked for."""

    def __init__(self, days: dict[date, list[pa.Table]]) -> None:
        self.days = days
        self.asked: list[tuple] = []

    def __call__(self, source, columns, first, last, truth) -> list[pa.Table]:
        self.asked.append((source, tuple(columns), first, last, truth))
        if source == "reference":
            return [pa.table({"x": [1.0, 2.0]})]
        return [t.select([c for c in columns if c in t.column_names]) for t in self.days.get(first, [])]


def file_of(times: list[datetime | None], start: int = 0) -> pa.Table:
    return pa.table(
        {
            "inference_timestamp": pa.array(times, TIME),
            "n": pa.array(np.arange(start, start + len(times))),
        }
    )


def at(minutes: float) -> datetime:
    return MIDNIGHT + timedelta(minutes=minutes)


def test_each_distinct_read_goes_to_the_lake_once() -> None:
    # GIVEN a run's reads over a lake of one day
    lake = Lake({DAY: [file_of([at(1), at(2)])]})
    reads = RunReads(lake)

    # WHEN the same read is asked for many times, and another read once
    for _ in range(50):
        reads("inference", ["n", "inference_timestamp"], DAY, DAY, True)
    reads("inference", ["n", "inference_timestamp"], DAY, DAY, False)
    reads("reference", ["x"], None, None, False)

    # THEN the lake is asked once per distinct read, and the tables are what the lake gives
    assert len(lake.asked) == reads.reads == 3
    [table] = reads("inference", ["n", "inference_timestamp"], DAY, DAY, True)
    assert table.column("n").to_pylist() == [0, 1]


def test_a_windows_rows_are_those_its_filter_keeps_in_file_order() -> None:
    # GIVEN files of a day with unsorted times, a missing time, rows on the window's bounds, and a
    # file with no row in the window
    files = [
        file_of([at(9), at(5), None, at(10), at(4.999), at(7), at(5)], start=0),
        file_of([at(30), at(31)], start=100),
        file_of([at(6), at(12), at(9.5)], start=200),
    ]
    reads = RunReads(Lake({DAY: files}))
    start, end = at(5), at(10)

    # WHEN the window [00:05, 00:10) reads the day
    found = reads.within(start, end)("inference", ["inference_timestamp", "n"], DAY, DAY, True)

    # THEN each file gives the rows in [start, end), in its order; the file without any is left out
    expected = [
        [
            row["n"]
            for row in f.to_pylist()
            if row["inference_timestamp"] and start <= row["inference_timestamp"] < end
        ]
        for f in files
    ]
    assert [t.column("n").to_pylist() for t in found] == [e for e in expected if e]
    assert [t.column("n").to_pylist() for t in found] == [[0, 1, 5, 6], [200, 202]]

    # AND the index it searched counts in what the run keeps (16 bytes a row)
    assert reads.kept_bytes == sum(f.nbytes for f in files) + 16 * sum(f.num_rows for f in files)


def test_other_sources_and_files_without_times_pass_through_a_window_whole() -> None:
    # GIVEN a day whose file has no time column, and the reference
    lake = Lake({DAY: [pa.table({"n": [1, 2, 3]})]})
    window = RunReads(lake).within(at(0), at(5))

    # WHEN a window reads them, THEN it gets them whole (the query's own filter decides)
    assert window("inference", ["n"], DAY, DAY, False)[0].num_rows == 3
    assert window("reference", ["x"], None, None, False)[0].num_rows == 2


def test_what_a_run_keeps_stays_within_its_budget() -> None:
    # GIVEN days of 100,000 rows (about 1.6 MB of Arrow each) and a budget of about two of them
    rows = 100_000
    days = {
        DAY + timedelta(days=d): [file_of([at(d * 1440 + m % 1440) for m in range(rows)])] for d in range(5)
    }
    one_day = days[DAY][0].nbytes
    lake = Lake(days)
    reads = RunReads(lake, budget_bytes=2 * one_day)

    # WHEN a run reads the days one after another, then the latest again
    for day in days:
        reads("inference", ["inference_timestamp", "n"], day, day, False)
        assert reads.kept_bytes <= 2 * one_day
    reads("inference", ["inference_timestamp", "n"], DAY + timedelta(days=4), DAY + timedelta(days=4), False)

    # THEN it keeps the last two days only (a read of the newest is not read again)
    assert [key[2] for key in reads.kept] == [DAY + timedelta(days=3), DAY + timedelta(days=4)]
    assert len(lake.asked) == 5

    # AND a day it forgot is read again when asked for
    reads("inference", ["inference_timestamp", "n"], DAY, DAY, False)
    assert len(lake.asked) == 6


def test_a_read_larger_than_the_budget_is_still_given_and_kept_alone() -> None:
    lake = Lake({DAY: [file_of([at(1)] * 1000)], DAY + timedelta(days=1): [file_of([at(1441)])]})
    reads = RunReads(lake, budget_bytes=10)
    assert reads("inference", ["inference_timestamp"], DAY, DAY, False)[0].num_rows == 1000
    assert len(reads.kept) == 1
    reads("inference", ["inference_timestamp"], DAY + timedelta(days=1), DAY + timedelta(days=1), False)
    assert len(reads.kept) == 1
