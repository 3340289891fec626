"""The DataFrames the arthurai flow sends: written as Parquet for the SDK's venv, kept for the checks."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

COLORS = ["red", "green", "blue"]


def _binary_features(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "x1": rng.normal(loc=shift, size=n),
            "x2": rng.uniform(size=n),
            "color": rng.choice(COLORS, size=n, p=[0.5, 0.3, 0.2]),
        }
    )
    probability = 1 / (1 + np.exp(-(1.5 * frame["x1"] + frame["x2"] - 0.5)))
    frame["pred_1"] = probability
    frame["pred_0"] = 1 - probability
    return frame


def _labels(rng: np.random.Generator, probability: pd.Series) -> np.ndarray:
    return (rng.uniform(size=len(probability)) < probability).astype(int)


def _timestamps(rng: np.random.Generator, n: int, now: datetime) -> pd.Series:
    """Within the last three hours and at least ten minutes old (inside every alert lookback)."""
    seconds = rng.integers(10 * 60, 3 * 3600, size=n)
    return pd.Series([now - timedelta(seconds=int(s)) for s in seconds], dtype="datetime64[us, UTC]")


@dataclass
class CompatData:
    directory: Path
    frames: dict[str, pd.DataFrame]
    config: dict[str, str]


def write_data(directory: Path, seed: int = 7, now: datetime | None = None) -> CompatData:
    """Every frame of the flow, with ids unique to this run; the labels held back for the checks."""
    rng = np.random.default_rng(seed)
    now = now or datetime.now(UTC)
    run = uuid.uuid4().hex[:8]
    frames: dict[str, pd.DataFrame] = {}

    reference = _binary_features(rng, 1000)
    reference["label"] = _labels(rng, reference["pred_1"])
    frames["binary_reference"] = reference

    stream = _binary_features(rng, 300, shift=1.0)  # drifted: x1 moved by one standard deviation
    stream["partner_inference_id"] = [f"{run}-s-{i}" for i in range(len(stream))]
    stream["inference_timestamp"] = _timestamps(rng, len(stream), now)
    frames["binary_stream"] = stream
    no_ids = _binary_features(rng, 40, shift=1.0)
    no_ids["inference_timestamp"] = _timestamps(rng, len(no_ids), now)
    frames["binary_stream_no_ids"] = no_ids
    # ground truth for the first 200 streamed inferences only: labels arrive late and partly
    labelled = stream.iloc[:200]
    frames["binary_ground_truth"] = pd.DataFrame(
        {
            "partner_inference_id": labelled["partner_inference_id"],
            "label": _labels(rng, labelled["pred_1"]),
            "ground_truth_timestamp": pd.Series([now] * len(labelled), dtype="datetime64[us, UTC]"),
        }
    )

    bulk = _binary_features(rng, 500)
    bulk["partner_inference_id"] = [f"{run}-b-{i}" for i in range(len(bulk))]
    bulk["inference_timestamp"] = _timestamps(rng, len(bulk), now)
    frames["binary_bulk"] = bulk
    frames["binary_bulk_ground_truth"] = pd.DataFrame(
        {
            "partner_inference_id": bulk["partner_inference_id"],
            "label": _labels(rng, bulk["pred_1"]),
            "ground_truth_timestamp": pd.Series([now] * len(bulk), dtype="datetime64[us, UTC]"),
        }
    )

    regression_reference = pd.DataFrame(
        {"size": rng.uniform(20, 200, size=400), "rooms": rng.integers(1, 6, 400)}
    )
    regression_reference["predicted"] = 1000 + 25 * regression_reference["size"]
    regression_reference["actual"] = regression_reference["predicted"] + rng.normal(scale=300, size=400)
    frames["regression_reference"] = regression_reference
    regression = pd.DataFrame({"size": rng.uniform(20, 200, size=150), "rooms": rng.integers(1, 6, 150)})
    regression["predicted"] = 1000 + 25 * regression["size"]
    regression["partner_inference_id"] = [f"{run}-r-{i}" for i in range(len(regression))]
    regression["inference_timestamp"] = _timestamps(rng, len(regression), now)
    frames["regression_stream"] = regression
    frames["regression_ground_truth"] = pd.DataFrame(
        {
            "partner_inference_id": regression["partner_inference_id"],
            "actual": regression["predicted"] + rng.normal(scale=300, size=len(regression)),
            "ground_truth_timestamp": pd.Series([now] * len(regression), dtype="datetime64[us, UTC]"),
        }
    )

    directory.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.to_parquet(directory / f"{name}.parquet", index=False)
    config = {
        "binary_partner_id": f"compat-binary-{run}",
        "regression_partner_id": f"compat-regression-{run}",
        "explained_id": str(stream["partner_inference_id"].iloc[0]),
    }
    (directory / "config.json").write_text(json.dumps(config))
    return CompatData(directory=directory, frames=frames, config=config)
