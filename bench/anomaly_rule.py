"""The default "Anomalous inferences" rule's false alarms and detections, by reference size.

    python bench/anomaly_rule.py                 # 30 references of each size, two kinds of data
    python bench/anomaly_rule.py --references 10

For each reference size (100, 300, 1,000, 10,000 rows) and each of `--references` seeded references,
a detector is fitted (sagewatch.metrics.anomaly) and 50,000 new rows drawn like the reference are
scored: their share above the cutoff is the share p an hour like the reference has. The rule alarms
on an hour of n rows with k above the cutoff when rateTest's p-value (metrics.functions.upper_tail,
with the detector's share and scored rows) is below 0.0001; so for each hour size n the chance of a
false alarm is P(Binomial(n, p) >= k*), k* the fewest rows above the cutoff that alarm, computed
exactly. Printed per size: the mean false-alarm chance per hour over the references, the worst
reference's, and how many references exceed 0.0001; then the detection chance of an hour of 300
rows with 30 far outliers (age 150, income 3,000; 270 like the reference), and the lowest far-off
score against the cutoff. The same for Gaussian data (three normal inputs and a category; far
outliers 6 standard deviations off on each).

    python bench/anomaly_rule.py --share 0.02    # the alternative: a binomial test of a fixed 2%

With --share, the test takes that share as exact (share_rows 0) instead of the detector's count, for
comparison with the default rule's design.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers" / "core"))

from binary_model import binary_model  # noqa: E402
from sagewatch.metrics import anomaly  # noqa: E402
from sagewatch.metrics.functions import upper_tail  # noqa: E402
from sagewatch.schema import Model  # noqa: E402

SIZES = (100, 300, 1000, 10_000)
HOURS = (1, 10, 100, 1000, 10_000)
ALARM = 0.0001
POOL = 50_000


def model(inputs: dict[str, str]) -> Model:
    """A binary model whose inputs are `inputs` (name: value type)."""
    return binary_model([{"name": n, "value_type": t} for n, t in inputs.items()])


def churn(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "age": rng.integers(18, 90, rows),
            "income": rng.normal(1000, 100, rows),
            "region": rng.choice(["north", "south"], rows, p=[0.7, 0.3]),
        }
    )


def churn_far(rows: int) -> pa.Table:
    return pa.table({"age": [150] * rows, "income": [3000.0] * rows, "region": ["south"] * rows})


def gaussian(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "a": rng.normal(size=rows),
            "b": rng.normal(size=rows),
            "c": rng.normal(size=rows),
            "plan": rng.choice(["basic", "plus", "pro"], rows, p=[0.6, 0.3, 0.1]),
        }
    )


def gaussian_far(rows: int) -> pa.Table:
    return pa.table({"a": [6.0] * rows, "b": [-6.0] * rows, "c": [6.0] * rows, "plan": ["basic"] * rows})


def fewest_alarming(n: int, share: float, share_rows: int) -> int:
    """The fewest rows above the cutoff, of n, whose p-value is below ALARM (n + 1: none)."""
    low, high = 0, n + 1
    while low < high:  # the p-value falls as k grows
        middle = (low + high) // 2
        if upper_tail(middle, n, share, share_rows) < ALARM:
            high = middle
        else:
            low = middle + 1
    return low


def measure(name: str, detected_model: Model, draw, far, references: int, fixed: float | None) -> None:
    print(
        f"\n{name}: false alarms per hour like the reference (mean over references / worst / references above {ALARM})"
    )
    for size in SIZES:
        false_alarms = {n: [] for n in HOURS}
        detections, lowest_far = [], []
        for seed in range(references):
            detector = anomaly.fit(draw(size, 1000 + seed), detected_model)
            assert detector is not None
            share, share_rows = detector.above_cutoff / detector.scored_rows, detector.scored_rows
            if fixed is not None:
                share, share_rows = fixed, 0
            pool = detector.score(draw(POOL, 99_000 + seed)).to_numpy()
            above = float((pool > detector.cutoff).mean())
            for n in HOURS:
                k = fewest_alarming(n, share, share_rows)
                false_alarms[n].append(upper_tail(k, n, above) if k <= n else 0.0)
            far_scores = detector.score(far(30)).to_numpy()
            lowest_far.append(float(far_scores.min() - detector.cutoff))
            far_above = int((far_scores > detector.cutoff).sum())
            k = fewest_alarming(300, share, share_rows)
            detections.append(upper_tail(max(k - far_above, 0), 270, above))
        cells = ", ".join(
            f"n={n}: {np.mean(v):.1e}/{np.max(v):.1e}/{sum(x > ALARM for x in v)}"
            for n, v in false_alarms.items()
        )
        print(f"  reference {size:>6}: {cells}")
        print(
            f"  reference {size:>6}: 30 far of 300 detected with chance {np.mean(detections):.4f} "
            f"(lowest {np.min(detections):.4f}); lowest far score - cutoff {np.min(lowest_far):+.4f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--references", type=int, default=30)
    parser.add_argument("--share", type=float, default=None, help="test a fixed share, taken as exact")
    arguments = parser.parse_args()
    churn_model = model({"age": "INTEGER", "income": "FLOAT", "region": "STRING"})
    gaussian_model = model({"a": "FLOAT", "b": "FLOAT", "c": "FLOAT", "plan": "STRING"})
    measure("churn-like data", churn_model, churn, churn_far, arguments.references, arguments.share)
    measure("Gaussian data", gaussian_model, gaussian, gaussian_far, arguments.references, arguments.share)


if __name__ == "__main__":
    main()
