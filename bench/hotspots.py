"""A hotspot search over a large labelled window: the time it takes, and its peak memory.

    python bench/hotspots.py                 # 100 k labelled rows x 30 inputs (24 numbers, 6 categories)
    python bench/hotspots.py --rows 1000000

The search runs inside the api function (POST .../hotspots, enrichments/hotspots/find), whose answer
API Gateway waits 29 s for, and in the evaluator on its schedule. The window is a binary classifier
wrong on 15% of rows and on 70% of a planted segment; the figure is the search alone (the lake read
is the query engine's, measured in bench/metrics.py).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pyarrow as pa

from binary_model import binary_model
from sagewatch.metrics import hotspots
from sagewatch.schema import Model

NUMBERS, CATEGORIES = 24, 6


def model() -> Model:
    inputs = [{"name": f"x{i}", "value_type": "FLOAT"} for i in range(NUMBERS)]
    inputs += [
        {
            "name": f"c{i}",
            "value_type": "STRING",
            "categorical": True,
            "categories": [f"v{k}" for k in range(12)],
        }
        for i in range(CATEGORIES)
    ]
    return binary_model(inputs)


def window(rows: int, seed: int = 0) -> tuple[pa.Table, np.ndarray]:
    rng = np.random.default_rng(seed)
    columns = {f"x{i}": rng.normal(size=rows) for i in range(NUMBERS)}
    columns |= {f"c{i}": rng.choice([f"v{k}" for k in range(12)], rows) for i in range(CATEGORIES)}
    planted = (columns["x0"] > 1.0) & np.isin(columns["c0"], ["v1", "v2"])
    truth = rng.integers(0, 2, rows)
    wrong = rng.random(rows) < np.where(planted, 0.7, 0.15)
    score = np.where(np.where(wrong, 1 - truth, truth) == 1, 0.8, 0.2)
    return pa.table({**columns, "score": score, "label": truth}), planted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    table, planted = window(arguments.rows)
    chosen = model()
    times = []
    for _ in range(arguments.repeat):
        started = time.perf_counter()
        result = hotspots.search(chosen, table)
        times.append(time.perf_counter() - started)
    top = result["hotspots"][0]
    found = np.zeros(arguments.rows, dtype=bool)
    found[top["rows"]] = True
    jaccard = (found & planted).sum() / (found | planted).sum()
    print(f"{arguments.rows:,} labelled rows x {NUMBERS + CATEGORIES} inputs ({CATEGORIES} categorical)")
    print(f"search: best {min(times):.2f} s, median {sorted(times)[len(times) // 2]:.2f} s of {len(times)}")
    print(f"tree nodes {result['nodes']}, hotspots {len(result['hotspots'])}, top Jaccard {jaccard:.3f}")
    started = time.perf_counter()
    full = hotspots.search(chosen, table, hotspots.StoppingRules(min_decrease=0.0))
    print(f"a full tree (min_decrease 0): {time.perf_counter() - started:.2f} s, {full['nodes']} nodes")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (process) {peak:.0f} MB")


if __name__ == "__main__":
    main()
