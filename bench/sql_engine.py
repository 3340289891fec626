"""A query over a window past the API's limit, in the in-Lambda engine and in SQL (issue 18).

    python bench/sql_engine.py                      # 1 M rows, each engine in a fresh process, 3 runs
    python bench/sql_engine.py --rows 3000000 --runs 1

The lake is bench/window.py's (a day of `--rows` inferences of 8 inputs in 24 hourly files, 0.2 %
resent, 85 % labelled the next day), written under moto in this process. The query is a dashboard's
series: per hour, accuracy, count and the mean of two inputs, filtered to one plan. Engines:
`lambda` (metrics.query.run over stores.window.lake_loader: what the API's function runs) and
`duckdb` (sagewatch.local.sql.DuckdbEngine: the same window's files fetched from S3, the query's
sagewatch.metrics.sql DuckDB SQL, its result decoded as the API answers; local mode's stand-in
for Athena, whose time and cost depend on AWS and are not measured here). Printed: wall and CPU
seconds and the peak resident-set growth of each (medians over --runs), and whether both give the
same rows (floats to 1e-9). The routing itself costs one DynamoDB query (the ledger's day counters).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "core"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.window import DAY, make_lake, spec

from sagewatch import container
from sagewatch.local.sql import TABLES, DuckdbEngine
from sagewatch.metrics import filters
from sagewatch.metrics.query import Query, run
from sagewatch.metrics.sql import query_sql
from sagewatch.stores.window import lake_loader
from support import moto_stack, peak_rss, rss_mb

QUERY = {
    "select": [
        {
            "function": "roundTimestamp",
            "alias": "hour",
            "parameters": {"property": "inference_timestamp", "time_interval": "hour"},
        },
        {"function": "accuracyRate"},
        {"function": "count"},
        {"function": "avg", "alias": "mean_income", "parameters": {"property": "income"}},
        {"function": "avg", "alias": "mean_age", "parameters": {"property": "age"}},
    ],
    "filter": [
        {"property": "inference_timestamp", "comparator": "gte", "value": DAY.isoformat()},
        {
            "property": "inference_timestamp",
            "comparator": "lt",
            "value": (DAY + timedelta(days=1)).isoformat(),
        },
        {"property": "plan", "comparator": "eq", "value": "pro"},
    ],
    "group_by": [{"alias": "hour"}],
}


def answer(engine: str) -> list[dict[str, Any]]:
    """The query's rows from one engine, over the lake in this process."""
    model = container.model_store().list()[0]
    query = Query.model_validate(QUERY)
    if engine == "lambda":
        return run(query, model, lake_loader(container.lake_store(), model))
    duckdb = DuckdbEngine(container.lake_store())
    first, last = filters.date_range(query.filter)
    planned = query_sql(query, model, TABLES, "duckdb")
    return planned.rows(duckdb.results(duckdb.start(planned.sql, model, first, last)))


def run_engine(arguments: argparse.Namespace) -> dict[str, Any]:
    with moto_stack():
        model = container.model_store().create(spec())
        made = make_lake(model, arguments.rows)
        before = rss_mb()
        cpu, wall, growth, rows = [], [], [], []
        for _ in range(arguments.runs):
            with peak_rss() as peak:
                started, clock = time.process_time(), time.perf_counter()
                rows = answer(arguments.engine)
                cpu.append(time.process_time() - started)
                wall.append(time.perf_counter() - clock)
            growth.append(peak[0] - before)
        return {
            "engine": arguments.engine,
            "made": made,
            "cpu": cpu,
            "wall": wall,
            "growth": growth,
            "rows": rows,
        }


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--engine", choices=["lambda", "duckdb"], help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.engine:
        print(json.dumps(run_engine(arguments), default=str))
        return
    found = {}
    for engine in ("lambda", "duckdb"):
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--engine",
                engine,
                "--rows",
                str(arguments.rows),
                "--runs",
                str(arguments.runs),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        found[engine] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{arguments.rows:,} rows, {arguments.runs} runs each (medians)")
    for engine, figures in found.items():
        print(
            f"  {engine:7s} wall {statistics.median(figures['wall']):6.2f} s  "
            f"cpu {statistics.median(figures['cpu']):6.2f} s  "
            f"peak RSS growth {statistics.median(figures['growth']):7.1f} MB  "
            f"({len(figures['rows'])} rows)"
        )
    print(f"  same rows: {same(found['lambda']['rows'], found['duckdb']['rows'])}")


if __name__ == "__main__":
    main()
