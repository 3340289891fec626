"""What a data_drift poll's check of its base costs (services/monitoring.table_digest, issue 18).

    python bench/drift_base_digest.py               # 100 k, 1 M and 2 M rows, 5 runs each

A drift started in the SQL engine tags its query with a digest of the base it fitted its bins on;
its poll reads the base again (as it did before, to decode the counts) and digests it again, so a
base that changed answers 409 instead of mixed bins. The base here is a reference-like table of
`--columns` columns (doubles with 5 % nulls, integers, a 3-category string), as drift_base returns
it. Printed per size: the digest's wall seconds (median, min and max over --runs), beside the time
of reading the same table from an in-memory Parquet file (what the base's read already costs,
without S3), and the peak of pyarrow's allocation while digesting.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "core"))

from sagewatch.services.monitoring import table_digest


def base_table(rows: int, columns: int, seed: int = 1) -> pa.Table:
    """A reference-like base: doubles (5 % null), integers and a category, `columns` in all."""
    rng = np.random.default_rng(seed)
    data: dict[str, pa.Array] = {}
    for n in range(columns):
        kind = n % 3
        if kind == 0:
            data[f"c{n}"] = pa.array(rng.normal(size=rows), mask=rng.random(rows) < 0.05)
        elif kind == 1:
            data[f"c{n}"] = pa.array(rng.integers(0, 1000, rows))
        else:
            data[f"c{n}"] = pa.array(rng.choice(["north", "south", "east"], rows))
    return pa.table(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[100_000, 1_000_000, 2_000_000])
    parser.add_argument("--columns", type=int, default=8)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for rows in args.rows:
        table = base_table(rows, args.columns)
        sink = io.BytesIO()
        pq.write_table(table, sink)
        digests, reads, peaks = [], [], []
        for _ in range(args.runs):
            start = time.perf_counter()
            pq.read_table(io.BytesIO(sink.getvalue()))
            reads.append(time.perf_counter() - start)
            pool = pa.default_memory_pool()
            before = pool.bytes_allocated()
            start = time.perf_counter()
            table_digest(table)
            digests.append(time.perf_counter() - start)
            peaks.append((pool.max_memory() - before) / 2**20)
        print(
            f"{rows:>9,} rows x {args.columns}: digest {statistics.median(digests):.3f} s "
            f"(min {min(digests):.3f}, max {max(digests):.3f}); Parquet read of it "
            f"{statistics.median(reads):.3f} s; table {table.nbytes / 2**20:.0f} MB, pool peak "
            f"{max(peaks):.0f} MB over the run's start"
        )


if __name__ == "__main__":
    main()
