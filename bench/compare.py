"""Champion against challenger on large windows: the time a comparison takes, and its peak memory.

    python bench/compare.py                        # 10 k, 100 k and 1 M labelled rows per variant

The comparison runs inside the api function, whose answer API Gateway waits 29 s for. Each run is
an A/B split (different requests per variant) of a binary classifier: four metrics, each with its
bootstrap interval.
"""

from __future__ import annotations

import resource
import time

import numpy as np
import pyarrow as pa

from sagewatch.metrics.compare import compare
from sagewatch.schema import Model, ModelSpec, check_spec


def model() -> Model:
    spec = ModelSpec.model_validate(
        {
            "partner_model_id": "bench",
            "output_type": "BINARY",
            "attributes": [
                {"name": "x", "stage": "PIPELINE_INPUT", "value_type": "FLOAT"},
                {"name": "score", "stage": "PREDICTED_VALUE", "value_type": "FLOAT"},
                {
                    "name": "label",
                    "stage": "GROUND_TRUTH",
                    "value_type": "INTEGER",
                    "categorical": True,
                    "categories": [{"value": "0"}, {"value": "1"}],
                },
            ],
            "pred_to_ground_truth_map": {"score": 1},
        }
    )
    checked = check_spec(spec)
    return Model(
        **checked.model_dump(),
        id="bench",
        created_at="2026-11-30T00:00:00Z",
        updated_at="2026-11-30T00:00:00Z",
    )


def rows(n: int, prefix: str, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, n)
    score = np.clip(0.5 + (label - 0.5) * rng.normal(0.4, 0.4, n), 0, 1)
    return pa.table(
        {"partner_inference_id": [f"{prefix}{i}" for i in range(n)], "score": score, "label": label}
    )


def main() -> None:
    bench = model()
    print(f"{'rows per variant':>18} {'compare':>10} {'peak RSS':>10}  verdict")
    for n in (10_000, 100_000, 1_000_000):
        champion, challenger = rows(n, "a", 1), rows(n, "b", 2)
        began = time.perf_counter()
        answer = compare(bench, champion, challenger, "A", "B").as_dict()
        spent = time.perf_counter() - began
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{n:>18,} {spent:>8.2f} s {peak:>7.0f} MB  {answer['verdict']}")


if __name__ == "__main__":
    main()
