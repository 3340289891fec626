"""`make demo` runs `sagewatch demo`: it must end by itself and show the registered model's review."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_demo_registers_the_breast_cancer_model_and_prints_its_review(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEWATCH_"))}
    done = subprocess.run(
        [sys.executable, "-m", "sagewatch.cli", "demo", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = next(line for line in lines if line.split()[:3] == ["name", "stage", "value_type"])
    assert header.split() == [
        "name",
        "stage",
        "value_type",
        "categorical",
        "is_unique",
        "categories",
        "range",
        "monitor_for_bias",
    ]
    rows = {line.split()[0]: line.split() for line in lines[lines.index(header) + 1 :] if line.strip()}
    assert rows["mean_radius"][1:3] == ["PIPELINE_INPUT", "FLOAT"]
    assert rows["malignant_probability"][1:3] == ["PREDICTED_VALUE", "FLOAT"]
    assert rows["diagnosis"][1:3] == ["GROUND_TRUTH", "INTEGER"]
    assert sum(1 for row in rows.values() if row[1:2] == ["PIPELINE_INPUT"]) == 30
    assert any(line.startswith("registered 'Breast cancer classifier'") for line in lines)
    assert not (tmp_path / "local.json").exists()
