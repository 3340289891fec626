"""Schemathesis fuzzes every operation of docs/openapi.json against `sagewatch local` with a writer token.

Checks: no 5xx, every status code and response body as the spec documents, and the declared
Content-Type. The path ids point at a real model (with reference data and inferences), its metric
and rule, so operations are exercised past their 404s. The example count per operation is bounded
to keep CI fast; raise SAGEWATCH_FUZZ_EXAMPLES for a longer run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.local_stack import clean_env, cli

from sagewatch.client import SageWatch

pytestmark = pytest.mark.fuzz

ROOT = Path(__file__).resolve().parents[2]
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def _seed(stack: dict[str, Any]) -> dict[str, str]:
    """A model with reference data, labelled inferences, a metric and a rule: ids for the path parameters."""
    client = SageWatch(state_dir=stack["state_dir"])
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"amount": rng.normal(100, 20, 300), "channel": rng.choice(["web", "app"], 300)})
    reference["score"] = rng.uniform(size=300)
    reference["fraud"] = (reference["score"] > 0.7).astype(int)
    model = client.build_model(
        reference, {"score": 1}, partner_model_id="fuzzed", ground_truth_column="fraud"
    )
    saved = model.save(set_reference_data=True)
    data = reference.drop(columns=["fraud"]).head(100).copy()
    data["partner_inference_id"] = [f"f-{i}" for i in range(100)]
    data["inference_timestamp"] = [datetime.now(UTC) - timedelta(minutes=i) for i in range(100)]
    client.send_inferences(saved["id"], data)
    metrics = client.list_metrics(saved["id"])
    rule = client.create_alert_rule(saved["id"], metrics[0]["id"], "upper", 1000.0, name="fuzzed rule")
    return {
        "model_id": saved["id"],
        "metric_id": metrics[0]["id"],
        "rule_id": rule["id"],
        "batch_id": "fuzz-batch",
    }


def test_every_operation_survives_fuzzing_and_answers_as_documented(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    ids = _seed(stack)
    token = re.search(r"token: (\S+)", cli(stack, "token", "create", "--role", "writer"))[1]
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        "[parameters]\n" + "".join(f'"path.{name}" = {json.dumps(value)}\n' for name, value in ids.items())
    )
    examples = os.environ.get("SAGEWATCH_FUZZ_EXAMPLES", "5")
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("st")),
            "--config-file",
            str(config),
            "run",
            str(ROOT / "docs" / "openapi.json"),
            "--url",
            stack["api_url"],
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            examples,
            "--workers",
            "1",
            "--seed",
            "20261125",
            "--no-color",
            "--report",
            "junit",
            "--report-junit-path",
            str(tmp_path / "junit.xml"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=clean_env(),
        cwd=tmp_path,
    )
    summary = done.stdout[-6000:]
    assert done.returncode == 0, summary
    assert "Selected: " in done.stdout and "passed" in done.stdout, summary
    print(summary[-1500:])  # the counts, with pytest -s
