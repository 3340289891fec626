"""The identity policy over whole columns (sagewatch.tables): first writes of inferences, the latest
ground truth, each against a plain-Python resolution of the same rows, with the real fingerprints
and with fingerprints that collide (so every match goes through the exact resolution)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from sagewatch import tables
from sagewatch.tables import first_writes, latest_ground_truth

pytestmark = pytest.mark.unit

START = datetime(2026, 11, 20, tzinfo=UTC)
TIME = pa.timestamp("us", tz="UTC")


@pytest.fixture(params=["fingerprints", "colliding fingerprints"])
def collisions(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.param == "colliding fingerprints":  # most distinct ids share one: their length mod 2
        monkeypatch.setattr(
            tables,
            "id_fingerprints",
            lambda ids: (pc.utf8_length(pc.fill_null(ids, "")).to_numpy(zero_copy_only=False) % 2).astype(
                np.uint32
            ),
        )


def inferences(seed: int, n: int = 400) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            "partner_inference_id": f"id-{rng.integers(0, 60)}",
            "variant": [None, "AllTraffic", "shadow"][rng.integers(0, 3)],
            "ingested_at": None
            if rng.random() < 0.05
            else START + timedelta(minutes=int(rng.integers(0, 4))),
            "source": [None, "a", "b"][rng.integers(0, 3)],
            "row": index,
        }
        for index in range(n)
    ]


@pytest.mark.parametrize("seed", range(4))
def test_first_writes_keep_the_earliest_write_of_each_id_and_variant_in_place(seed: int, collisions) -> None:
    rows = inferences(seed)
    table = pa.table(
        {
            "partner_inference_id": pa.array([r["partner_inference_id"] for r in rows]),
            "variant": pa.array([r["variant"] for r in rows], pa.string()),
            "ingested_at": pa.array([r["ingested_at"] for r in rows], TIME),
            "source": pa.array([r["source"] for r in rows], pa.string()),
            "row": pa.array([r["row"] for r in rows]),
        }
    )
    best: dict[tuple, tuple] = {}
    for r in rows:  # missing times and sources sort last; then the row that comes first
        rank = (
            r["ingested_at"] is None,
            r["ingested_at"] or START,
            r["source"] is None,
            r["source"] or "",
            r["row"],
        )
        key = (r["partner_inference_id"], r["variant"])
        best[key] = min(best.get(key, rank), rank)
    assert first_writes(table).column("row").to_pylist() == sorted(rank[-1] for rank in best.values())


@pytest.mark.parametrize("seed", range(4))
def test_the_latest_ground_truth_of_each_id_wins_in_place(seed: int, collisions) -> None:
    rng = np.random.default_rng(seed)
    n = 300
    ids = [f"id-{i}" for i in rng.integers(0, 80, n)]
    times = [START + timedelta(hours=int(h)) for h in rng.integers(0, 3, n)]
    written = [START + timedelta(days=int(d)) for d in rng.integers(0, 3, n)]
    table = pa.table(
        {
            "partner_inference_id": ids,
            "ground_truth_timestamp": pa.array(times, TIME),
            "ingested_at": pa.array(written, TIME),
            "row": list(range(n)),
        }
    )
    best: dict[str, tuple] = {}
    for row, (i, t, w) in enumerate(zip(ids, times, written, strict=True)):
        rank = (-t.timestamp(), -w.timestamp(), row)  # latest time, then latest write, then first row
        best[i] = min(best.get(i, rank), rank)
    assert latest_ground_truth(table).column("row").to_pylist() == sorted(rank[-1] for rank in best.values())
