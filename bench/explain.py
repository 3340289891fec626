"""Explanation cost at default settings: endpoint calls and rows per explanation, and the time one
takes in sagewatch's process, for 8 and 30 inputs (50 background rows, default nsamples).

The endpoint is the local stand-in (sagewatch.local.endpoints) serving a logistic model in numpy, so
the time is sagewatch's side (perturbing, CSV encoding, reading answers, the fit) plus the stand-in's
CSV parsing and prediction; a deployed endpoint adds its network round trips and model latency.

    .venv/bin/python bench/explain.py
"""

from __future__ import annotations

import time

import numpy as np

from sagewatch.enrichments import ExplainabilityConfig
from sagewatch.local.endpoints import StandInRuntime
from sagewatch.metrics import shap
from sagewatch.schema import Model
from sagewatch.services.explanations import Explainer, Explanations
from sagewatch.stores.invocations import EndpointInvoker


def measure(inputs: int, repeats: int = 3) -> dict[str, float]:
    config = ExplainabilityConfig(enabled=True)
    rng = np.random.default_rng(inputs)
    weights = rng.normal(size=inputs)
    runtime = StandInRuntime()

    def predict(rows: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(rows @ weights)))

    runtime.register("bench", predict)
    invoker = EndpointInvoker(runtime)
    service = Explanations(None, None, None, None, invoker, None, None)  # only the endpoint is used
    background = [rng.normal(size=config.background_rows) for _ in range(inputs)]
    model = Model.model_construct(id="bench")
    explainer = Explainer(
        model=model,
        endpoint="bench",
        variant=None,
        inputs=[f"x{i}" for i in range(inputs)],
        background=background,
        outputs=[(0, "p")],
        expected=np.array([predict(np.column_stack(background)).mean()]),
        coalitions=shap.coalitions(inputs, config.nsamples, config.seed),
    )
    times = []
    for _ in range(repeats):
        row = {f"x{i}": float(v) for i, v in enumerate(rng.normal(size=inputs))}
        before = invoker.counts.calls, invoker.counts.rows
        started = time.perf_counter()
        service.attributions(explainer, row)
        times.append(time.perf_counter() - started)
    return {
        "inputs": inputs,
        "coalitions": len(explainer.coalitions.mask),
        "calls": invoker.counts.calls - before[0],
        "rows": invoker.counts.rows - before[1],
        "seconds": float(np.median(times)),
    }


def main() -> None:
    print("inputs  coalitions  calls  rows     seconds/explanation (median of 3)")
    for inputs in (8, 30):
        m = measure(inputs)
        print(f"{m['inputs']:>6}  {m['coalitions']:>10}  {m['calls']:>5}  {m['rows']:>7}  {m['seconds']:.3f}")
    print("(+ one call of 50 background rows per run, shared by its explanations)")


if __name__ == "__main__":
    main()
