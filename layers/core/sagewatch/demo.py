"""`sagewatch demo`: a model registered on the local stack from real reference data.

The reference set is scikit-learn's bundled Wisconsin breast-cancer data (no download), scored by a
logistic regression trained on it, so predictions are a real model's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from sagewatch.client import SageWatch
from sagewatch.local.runtime import LocalRuntime

PARTNER_MODEL_ID = "breast-cancer-classifier"
ENDPOINT_NAME = "breast-cancer-endpoint"


def breast_cancer_reference(seed: int = 7) -> pd.DataFrame:
    """Features (names as attribute names), the model's malignant probability, and the true diagnosis."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer(as_frame=True)
    features = data.data.set_axis([c.replace(" ", "_") for c in data.data.columns], axis=1)
    malignant = (data.target == 0).astype(int)  # scikit-learn codes malignant as 0
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed))
    model.fit(features, malignant)
    reference = features.copy()
    reference["malignant_probability"] = model.predict_proba(features)[:, 1]
    reference["diagnosis"] = malignant
    return reference


def run_demo(
    state_dir: str | Path = ".sagewatch",
    keep_running: bool = False,
    api_port: int = 0,
    aws_port: int = 0,
    say: Callable[[str], None] = print,
) -> dict:
    """Start the local stack, register the demo model, print its review table; returns the model."""
    step = _Steps(say, total=4)
    step("starting the local stack (moto server, tables, buckets, queues, API)")
    runtime = LocalRuntime(state_dir=state_dir, api_port=api_port, aws_port=aws_port)
    stack = runtime.start()
    try:
        client = SageWatch(stack.api_url, stack.token)
        step("scoring scikit-learn's breast-cancer data with a logistic regression (the reference set)")
        reference = breast_cancer_reference()
        step("inferring the model schema from the reference data")
        draft = client.build_model(
            reference,
            {"malignant_probability": 1},
            partner_model_id=PARTNER_MODEL_ID,
            ground_truth_column="diagnosis",
            display_name="Breast cancer classifier",
            sagemaker={"endpoint_name": ENDPOINT_NAME},
        )
        with pd.option_context("display.width", 160, "display.max_rows", 100, "display.max_colwidth", 40):
            say(draft.review().to_string(index=False))
        step("registering the model")
        model = draft.save()
        say(f"registered {model['display_name']!r}: id {model['id']}, {len(model['attributes'])} attributes")
        if keep_running:
            say(f"\nAPI:   {stack.api_url}\ntoken: {stack.token}\nstate: {Path(state_dir) / 'local.json'}")
            say("the stack keeps running; Ctrl-C stops it")
            with contextlib.suppress(KeyboardInterrupt):
                runtime.wait()
        return model
    finally:
        runtime.stop()


class _Steps:
    def __init__(self, say: Callable[[str], None], total: int) -> None:
        self.say, self.total, self.done = say, total, 0

    def __call__(self, text: str) -> None:
        self.done += 1
        self.say(f"[{self.done}/{self.total}] {text}")
