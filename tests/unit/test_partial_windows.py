"""The pieces of the partial path checked against brute force: minute rows assigned to the windows
holding them (sliding windows overlap), and the files sharing an id fingerprint (partners), found
file by file or all at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from sagewatch.metrics.partials import MINUTE, WINDOW, assign
from sagewatch.stores.partials import LakeFile, _Prints

pytestmark = pytest.mark.unit
START = datetime(2026, 11, 25, tzinfo=UTC)


def test_each_minute_row_is_assigned_to_every_window_holding_it() -> None:
    # GIVEN two files' minute rows (repeated minutes, out of order) and aligned, sliding and empty windows
    rng = np.random.default_rng(0)
    parts = []
    for size in (50, 80):
        minutes = rng.integers(0, 300, size)
        parts.append(
            pa.table(
                {
                    MINUTE: pa.array(
                        [START + timedelta(minutes=int(m)) for m in minutes], pa.timestamp("us", "UTC")
                    ),
                    "value": pa.array(rng.random(size)),
                }
            )
        )
    spans = [
        (START + timedelta(minutes=a), START + timedelta(minutes=b))
        for a, b in [(0, 60), (60, 120), (30, 90), (500, 560), (0, 300), (299, 300)]
    ]

    # WHEN they are assigned
    assigned = assign(parts, spans)

    # THEN each window holds exactly the rows whose minute is in it (by brute force), each once
    rows = pa.concat_tables(parts)
    minutes = np.array([(t - START).total_seconds() // 60 for t in rows.column(MINUTE).to_pylist()])
    values = rows.column("value").to_numpy()
    windows = assigned.column(WINDOW).to_numpy()
    for number, (start, end) in enumerate(spans):
        low, high = ((moment - START).total_seconds() // 60 for moment in (start, end))
        expected = np.sort(values[(minutes >= low) & (minutes < high)])
        found = np.sort(assigned.column("value").to_numpy()[windows == number])
        assert np.array_equal(found, expected), (start, end)


def test_partners_are_the_files_sharing_a_fingerprint_however_the_files_arrive() -> None:
    # GIVEN files whose fingerprints overlap here and there (some shared by three files)
    rng = np.random.default_rng(1)
    files = [LakeFile(f"k/{n}.parquet", f"f{n}", f"e{n}") for n in range(12)]
    prints = [np.unique(rng.integers(0, 4000, 300).astype(np.uint64)) for _ in files]
    expected = {
        a.name: {
            b.name for b, q in zip(files, prints, strict=True) if b is not a and np.intersect1d(p, q).size
        }
        for a, p in zip(files, prints, strict=True)
    }

    # WHEN they are added all at once (a cold process), or the first ones at once and the rest one by one
    together = _Prints()
    together.extend(files, prints)
    apart = _Prints()
    apart.extend(files[:10], prints[:10])
    for file, found in zip(files[10:], prints[10:], strict=True):
        apart.extend([file], [found])

    # THEN both find the partners brute force does, and hold every fingerprint, sorted
    assert together.partners == expected
    assert apart.partners == expected
    for found in (together, apart):
        assert np.array_equal(found.prints, np.sort(np.concatenate(prints)))
        owners = {name: found.prints[found.owners == number] for number, name in enumerate(found.names)}
        assert all(np.array_equal(owners[f.name], p) for f, p in zip(files, prints, strict=True))
