"""`make demo` runs `sagewatch demo`: it must end by itself, raise the alerts and show the email.

Run here with a short timeline. The accuracy it prints per hour is checked against scikit-learn on
the same simulated traffic (the simulation is seeded; the hours' values do not depend on the clock).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score

from sagewatch.client.demo import ACCURACY_THRESHOLD, GLITCH_CALL, ONCALL, simulate

pytestmark = pytest.mark.e2e
HOURS, CALLS = 4, 120  # enough labels an hour for the accuracy drop to be told from the threshold


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEWATCH_"))}
    state = tmp_path_factory.mktemp("demo")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sagewatch.client.cli",
            "demo",
            "--state-dir",
            str(state),
            "--hours",
            str(HOURS),
            "--calls-per-hour",
            str(CALLS),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert not (state / "local.json").exists()
    return done.stdout.splitlines()


def test_the_steps_are_shown_as_they_happen(output: list[str]) -> None:
    steps = [line for line in output if line.startswith("[")]
    assert [s.split("]")[0] for s in steps] == [f"[{i}/11" for i in range(1, 12)]


def test_the_planted_unit_mix_up_is_the_most_anomalous_inference_and_is_explained(
    output: list[str],
) -> None:
    line = next(line for line in output if "most anomalous inference:" in line)
    hour, number = GLITCH_CALL
    assert f"most anomalous inference: request-{hour}-{number} " in line
    explained = output[output.index(line) + 1]
    assert "its explanation (SHAP, from the endpoint):" in explained
    assert len(re.findall(r"\w+ [+-]\d+\.\d\d", explained)) == 3


def test_the_hotspot_since_the_shift_is_where_the_model_does_worse(output: list[str]) -> None:
    line = next(line for line in output if "hotspot since the shift:" in line)
    found = re.search(
        r"shift: (.+): (\d+) of (\d+) labelled inferences, accuracy ([\d.]+) against ([\d.]+)", line
    )
    assert found, line
    conditions, rows, labelled, accuracy, overall = found.groups()
    # recomputed from the simulated traffic since the shift (both variants), with scikit-learn
    simulation = simulate(HOURS, CALLS, datetime.now(UTC).replace(minute=0, second=0, microsecond=0))
    calls = [
        call
        for hour in range(HOURS // 2, HOURS)
        for call in (*simulation.calls[hour], *simulation.challenger_calls[hour])
    ]
    frame = pd.DataFrame([row for call in calls for row in call.rows], columns=simulation.columns)
    truth = np.array([label for call in calls for label in call.labels])
    predicted = np.array([p >= 0.5 for call in calls for p in call.probabilities]).astype(int)
    assert int(labelled) == len(frame)
    assert accuracy_score(truth, predicted) == pytest.approx(float(overall), abs=0.005)
    inside = np.ones(len(frame), dtype=bool)
    for condition in conditions.split(" and "):
        attribute, op, value = condition.split(" ")
        column = frame[attribute].to_numpy()
        inside &= column > float(value) if op == ">" else column <= float(value)
    # the printed cut points are rounded to 4 digits: a row or two may sit on a boundary
    assert abs(int(inside.sum()) - int(rows)) <= 2
    assert accuracy_score(truth[inside], predicted[inside]) == pytest.approx(float(accuracy), abs=0.01)
    assert float(accuracy) < float(overall) - 0.05


def test_printed_accuracy_per_hour_matches_scikit_learn(output: list[str]) -> None:
    header = next(
        i for i, line in enumerate(output) if line.split()[:3] == ["hour", "inferences", "labelled"]
    )
    rows = [line.split() for line in output[header + 1 : header + 1 + HOURS]]
    simulation = simulate(HOURS, CALLS, datetime.now(UTC).replace(minute=0, second=0, microsecond=0))
    for hour, row in enumerate(rows):
        calls = simulation.calls[hour]
        truth = [label for call in calls for label in call.labels]
        predicted = [int(p >= 0.5) for call in calls for p in call.probabilities]
        assert int(row[1]) == len(truth)
        assert float(row[3]) == pytest.approx(accuracy_score(truth, predicted), abs=5e-4)
        assert (row[-1] == "yes") is simulation.shifted(hour)


def test_the_accuracy_alert_and_its_email(output: list[str]) -> None:
    text = "\n".join(output)
    assert "CRITICAL" in text and "accuracy dropped" in text
    # one drift alert for the model, naming the one shifted input and no other
    drift = [line for line in output if line.strip().startswith("WARNING") and "Input drift" in line]
    assert len(drift) == 1
    [named] = [line for line in output if "inputs drifted in" in line]
    assert named.strip().startswith("1 of 30 inputs drifted") and "worst_texture (p=" in named
    assert f"To: {ONCALL}" in text
    assert "Subject: [sagewatch] CRITICAL: Breast cancer classifier - accuracy dropped" in text
    assert f"below the threshold {ACCURACY_THRESHOLD}" in text
    summary = output[-1]
    alerts, emails = int(summary.split()[0]), int(summary.split()[2])
    assert alerts == 2 and emails == alerts  # one accuracy incident, one drift incident


def test_the_challenger_is_compared_and_promoted(output: list[str]) -> None:
    """Since the shift, the challenger (blind to the shifted feature) is right more often: the printed
    accuracies are scikit-learn's on the simulated calls of each variant, and it is promoted."""
    simulation = simulate(HOURS, CALLS, datetime.now(UTC).replace(minute=0, second=0, microsecond=0))
    shifted = [hour for hour in range(HOURS) if simulation.shifted(hour)]

    def accuracy(calls: dict) -> float:
        truth = [label for hour in shifted for call in calls[hour] for label in call.labels]
        predicted = [int(p >= 0.5) for hour in shifted for call in calls[hour] for p in call.probabilities]
        return accuracy_score(truth, predicted)

    line = next(line.split() for line in output if line.strip().startswith("accuracy "))
    assert float(line[1]) == pytest.approx(accuracy(simulation.calls), abs=5e-4)
    assert float(line[3]) == pytest.approx(accuracy(simulation.challenger_calls), abs=5e-4)
    text = "\n".join(output)
    assert "verdict: challenger better" in text
    assert "Challenger promoted to champion" in text
    assert "endpoint breast-cancer-endpoint: InService" in text
