"""The eight model shapes of Arthur's onboarding guide, as DataFrames the SDK flow sends and the
checks recompute with scikit-learn: a reference set, a stream with partner ids, ground truth later."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

ANIMALS = ["dog", "cat", "bird"]
SHAPES = (
    "binary_one_column",
    "binary_one_hot",
    "multiclass_one_hot",
    "multiclass_class_column",
    "regression",
    "non_input",
    "by_hand",
    "reference_directory",
)


@dataclass
class Shape:
    """One shape's frames: reference (inputs, outputs, ground truth), stream, ground_truth."""

    name: str
    reference: pd.DataFrame
    stream: pd.DataFrame
    ground_truth: pd.DataFrame


def _inputs(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.integers(0, 5, n),
            "color": rng.choice(["red", "blue", "green"], n),
        }
    )


def _binary(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    frame = _inputs(rng, n)
    probability = 1 / (1 + np.exp(-(1.4 * frame["x1"] + 0.3 * frame["x2"] - 0.6)))
    label = (rng.uniform(size=n) < probability).astype(int)
    return frame, probability.to_numpy(), label


def _multiclass(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Three classes; "bird" is in the map but never predicted (its probability is always lowest)."""
    frame = _inputs(rng, n)
    dog = 1 / (1 + np.exp(-1.5 * frame["x1"].to_numpy()))
    probabilities = np.column_stack([dog * 0.9, (1 - dog) * 0.9, np.full(n, 0.1 * 0.999)])
    probabilities[:, 2] = np.minimum(probabilities[:, 2], probabilities[:, :2].min(axis=1) * 0.5 + 1e-9)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    truth = np.array(
        [
            rng.choice(3, p=[0.45, 0.45, 0.1]) if u < 0.3 else int(p[0] < p[1])
            for u, p in zip(rng.uniform(size=n), probabilities, strict=True)
        ]
    )
    return frame, probabilities, truth


def _regression(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    frame = _inputs(rng, n)
    predicted = 100 + 20 * frame["x1"].to_numpy() + 5 * frame["x2"].to_numpy()
    return frame, predicted, predicted + rng.normal(scale=8, size=n)


def _outputs(
    name: str, frame: pd.DataFrame, predicted: np.ndarray, truth: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(inputs with the shape's prediction columns, the shape's ground-truth columns)."""
    frame = frame.copy()
    if name in ("binary_one_column", "reference_directory"):
        frame["predicted_probability"] = predicted
        return frame, pd.DataFrame({"ground_truth_label": truth})
    if name in ("binary_one_hot", "by_hand"):
        frame["pred_0"], frame["pred_1"] = 1 - predicted, predicted
        return frame, pd.DataFrame({"gt_0": 1 - truth, "gt_1": truth})
    if name == "multiclass_one_hot":
        for index, animal in enumerate(ANIMALS):
            frame[f"probability_{animal}"] = predicted[:, index]
        return frame, pd.DataFrame(
            {f"{a}_ground_truth": (truth == i).astype(int) for i, a in enumerate(ANIMALS)}
        )
    if name == "multiclass_class_column":
        for index, animal in enumerate(ANIMALS):
            frame[f"probability_{animal}"] = predicted[:, index]
        return frame, pd.DataFrame({"animal": np.array(ANIMALS)[truth]})
    frame["predicted_value"] = predicted  # regression, non_input
    return frame, pd.DataFrame({"ground_truth_value": truth})


def _shape(name: str, rng: np.random.Generator, run: str, now: datetime) -> Shape:
    make = {"multiclass_one_hot": _multiclass, "multiclass_class_column": _multiclass}.get(name)
    make = make or (_regression if name in ("regression", "non_input") else _binary)
    frames = []
    for n in (600, 300):
        inputs, predicted, truth = make(rng, n)
        if name == "non_input":
            inputs["age"] = rng.integers(18, 90, n)
            inputs["sex"] = rng.choice(["f", "m"], n)
        frames.append(_outputs(name, inputs, predicted, truth))
    (reference, reference_truth), (stream, stream_truth) = frames
    reference = pd.concat([reference, reference_truth], axis=1)
    stream["partner_inference_id"] = [f"{run}-{name}-{i}" for i in range(len(stream))]
    seconds = rng.integers(10 * 60, 3 * 3600, size=len(stream))
    stream["inference_timestamp"] = pd.Series(
        [now - timedelta(seconds=int(s)) for s in seconds], dtype="datetime64[us, UTC]"
    )
    ground_truth = stream_truth.assign(partner_inference_id=stream["partner_inference_id"])
    ground_truth["ground_truth_timestamp"] = pd.Series([now] * len(stream), dtype="datetime64[us, UTC]")
    return Shape(name, reference, stream, ground_truth)


def write_shapes(directory: Path, seed: int = 16, now: datetime | None = None) -> dict[str, Shape]:
    """Every shape's frames as Parquet under directory/<shape>/, and config.json (partner ids)."""
    rng = np.random.default_rng(seed)
    now = now or datetime.now(UTC)
    run = uuid.uuid4().hex[:8]
    shapes = {name: _shape(name, rng, run, now) for name in SHAPES}
    for shape in shapes.values():
        folder = directory / shape.name
        folder.mkdir(parents=True, exist_ok=True)
        for part in ("reference", "stream", "ground_truth"):
            getattr(shape, part).to_parquet(folder / f"{part}.parquet", index=False)
    # the reference of the last shape as a directory of parts, as a set larger than memory would be
    parts = directory / "reference_directory" / "reference_parts"
    parts.mkdir(exist_ok=True)
    reference = shapes["reference_directory"].reference
    for index, start in enumerate(range(0, len(reference), 150)):
        reference.iloc[start : start + 150].to_parquet(parts / f"part-{index}.parquet", index=False)
    config = {name: f"guide-{name.replace('_', '-')}-{run}" for name in SHAPES}
    (directory / "config.json").write_text(json.dumps(config))
    return shapes
