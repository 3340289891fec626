"""Inferences counted per day of inference_timestamp in the ingestion ledger: how many rows a window
holds, known without reading the lake (what routes a query to Athena or DuckDB)."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from tests.conftest import Call
from tests.inputs import records, register

from sagewatch import container
from sagewatch.stores.ingestion import MAX_TRANSACTION_ITEMS, SourceCounts


def test_rows_sent_through_the_api_are_counted_by_their_day(api: Call) -> None:
    model_id = register(api)
    sent = records(30, seed=4)
    assert api("POST", f"/api/v3/models/{model_id}/inferences", sent).body["counts"]["failure"] == 0
    by_day = Counter(r["inference_timestamp"][:10] for r in sent)
    ledger = container.ingestion_ledger()
    for day, count in by_day.items():
        assert ledger.rows(model_id, date.fromisoformat(day), date.fromisoformat(day)) == count
    assert ledger.rows(model_id) == ledger.rows(model_id, date(2026, 11, 25), date(2026, 11, 26)) == 30
    assert ledger.rows(model_id, date(2026, 11, 27)) == 0


def test_a_source_spanning_more_months_than_a_transaction_holds_is_counted_once(aws) -> None:
    ledger = container.ingestion_ledger()
    first = date(2016, 1, 1)
    # every third day for ten years: 121 month items, and 120 batches, past one transaction
    days = {(first + timedelta(days=3 * n)).isoformat(): n + 1 for n in range(1218)}
    batches = {f"b{n:03d}": 1 for n in range(120)}
    counts = SourceCounts(inferences=sum(days.values()), days=days, batches=batches)
    assert len({d[:7] for d in days}) + len(batches) > 2 * MAX_TRANSACTION_ITEMS
    assert ledger.record("m", "digest", counts)
    assert not ledger.record("m", "digest", counts)  # a replay counts nothing
    expected = sum(n for day, n in days.items() if "2020-03-02" <= day <= "2021-04-30")
    assert ledger.rows("m", date(2020, 3, 2), date(2021, 4, 30)) == expected
    assert ledger.rows("m", date(2020, 3, 2)) == sum(n for day, n in days.items() if day >= "2020-03-02")
    assert ledger.rows("m") == sum(days.values())
    assert sorted(ledger.counts("m")["by_batch"]) == sorted(batches)  # days are not batches


def test_an_open_window_counts_the_total_of_a_model_ingested_before_day_counters(aws) -> None:
    ledger = container.ingestion_ledger()
    ledger.record("m", "old", SourceCounts(inferences=500))  # no days: written before day counters
    ledger.record("m", "new", SourceCounts(inferences=20, days={"2026-05-01": 20}))
    assert ledger.rows("m") == 520
    assert ledger.rows("m", date(2026, 5, 1), date(2026, 5, 1)) == 20
