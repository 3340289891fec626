"""An evaluator run over many windows reads the lake once and measures each window as measuring it
alone does (issue 18: a 5-minute rule waiting for labels looks at hundreds of windows a run)."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from tests import factories
from tests.factories import Clock

from sagewatch import aws as sagewatch_aws
from sagewatch import container
from sagewatch.alerting import catalog
from sagewatch.alerting.types import Rule
from sagewatch.container import evaluator, ingestor
from sagewatch.records import rows_from_columns
from sagewatch.schema import Model, ModelSpec
from sagewatch.services.evaluation import ANOMALY_RULE_STATE
from sagewatch.services.ingestion import Source
from sagewatch.stores.window import lake_loader

NOW = datetime(2026, 11, 25, 10, 2, tzinfo=UTC)
DELAY = timedelta(hours=2)  # the model waits this long for labels: a 5-minute rule looks at 26 windows
FIRST = datetime(2026, 11, 25, 7, 50, tzinfo=UTC)
WRONG_UNTIL = datetime(2026, 11, 25, 8, 30, tzinfo=UTC)  # predictions before are right 40% of the time


@pytest.fixture
def clock(aws: dict[str, str]) -> Clock:
    moment = Clock(NOW)
    evaluator().clock = moment
    return moment


def model_waiting_for_labels() -> Model:
    spec = factories.edited(factories.binary_probability(), alerts_delay_seconds=int(DELAY.total_seconds()))
    model = container.model_store().create(ModelSpec.model_validate(spec))
    ledger = container.ingestion_ledger()  # no default rules: this test looks at its own rule
    ledger.set_state(model.id, "DEFAULT_RULES", created="not in this test")
    ledger.set_state(model.id, ANOMALY_RULE_STATE, digest="not in this test")
    return model


def write(model: Model, columns: dict, inference: bool, name: str | None = None) -> None:
    """Rows ingested as one source; its lake files are named after `name` (else a random digest)."""
    writer = ingestor().writer(model, Source(name or uuid.uuid4().hex, "test"))
    count = len(next(iter(columns.values())))
    rows = rows_from_columns(
        {k: pa.array(v) for k, v in columns.items()},
        count,
        model,
        source="test",
        now=NOW,
        require_inference=inference,
    )
    assert rows.failures == 0, rows.problem
    writer.add(
        NOW.date(), **({"inferences": rows.inferences} if inference else {"ground_truth": rows.ground_truth})
    )
    writer.finish()


def lake_data(model: Model, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Four inference files: the first (in the lake's order) of the last half hour only, three
    spread over every window (rows on window bounds, one window empty); then labels for all but a
    few: wrong 60% of the time before WRONG_UNTIL, 10% after."""
    times, ids, probability = [], [], []
    for part in range(4):
        minutes = rng.uniform(100, 132, 100) if part == 0 else rng.uniform(0, 132, 400)
        minutes = minutes[(minutes < 70) | (minutes >= 75)]  # 09:00-09:05 holds no inference
        minutes = np.concatenate([minutes, [10.0, 15.0, 40.0] if part else []])  # on windows' starts
        stamps = [FIRST + timedelta(minutes=float(m)) for m in minutes]
        names = [f"f{part}-{i}" for i in range(len(stamps))]
        p = rng.random(len(stamps))
        write(
            model,
            {
                "partner_inference_id": names,
                "inference_timestamp": stamps,
                "age": rng.integers(18, 90, len(stamps)),
                "income": rng.normal(0, 1, len(stamps)),
                "region": rng.choice(["north", "south"], len(stamps)),
                "predicted_probability": p,
            },
            inference=True,
            name=f"{part}-inferences",  # the lake lists them in this order
        )
        times += stamps
        ids += names
        probability += list(p)
    when = np.array([t.replace(tzinfo=None) for t in times], dtype="datetime64[us]")
    predicted = np.array(probability) >= 0.5
    wrong = rng.random(len(ids)) < np.where(when < np.datetime64(WRONG_UNTIL.replace(tzinfo=None)), 0.6, 0.1)
    label = np.where(wrong, ~predicted, predicted).astype(int)
    labelled = rng.random(len(ids)) > 0.02  # a few windows wait for their last labels
    write(
        model,
        {"partner_inference_id": list(np.array(ids)[labelled]), "churned": list(label[labelled])},
        inference=False,
    )
    return {"time": when, "predicted": predicted, "label": label, "labelled": labelled}


def accuracy_rule(model: Model) -> tuple[Rule, catalog.Metric]:
    metric = next(m for m in catalog.default_metrics(model) if m.name == "Accuracy Rate")
    rule = Rule(
        id=uuid.uuid4().hex,
        model_id=model.id,
        name="accuracy",
        metric_id=metric.id,
        bound="lower",
        threshold=0.8,
        lookback_period=5,
        created_at=NOW,
    )
    return evaluator().rules.put(rule), metric


def recorded_measurements() -> list[tuple[catalog.Window, catalog.Measurement]]:
    """What the evaluator measures from now on, window by window (its `measure` wrapped)."""
    found: list[tuple[catalog.Window, catalog.Measurement]] = []
    inner = evaluator().measure

    def measure(metric, model, load, window, values=None, filters=None):
        measured = inner(metric, model, load, window, values, filters)
        found.append((window, measured))
        return measured

    evaluator().measure = measure
    return found


def test_a_run_measures_each_window_as_measuring_it_alone_does(clock: Clock) -> None:
    # GIVEN two hours of inferences in four files, mostly labelled, and a 5-minute accuracy rule
    model = model_waiting_for_labels()
    data = lake_data(model, np.random.default_rng(7))
    _, metric = accuracy_rule(model)
    measured = recorded_measurements()

    # WHEN the evaluator runs
    report = evaluator().evaluate_model(model.id)

    # THEN it measured every window waiting for labels (26), each as a measurement of that window
    # alone over the lake gives, and as numpy counts it
    assert report.errors == []
    assert len(measured) == 26
    alone = lake_loader(container.lake_store(), model)
    for window, found in measured:
        assert found == catalog.measure(metric, model, alone, window)
        start, end = (np.datetime64(t.replace(tzinfo=None)) for t in (window.start, window.end))
        rows = (data["time"] >= start) & (data["time"] < end)
        labelled = rows & data["labelled"]
        assert (found.rows, found.labelled) == (rows.sum(), labelled.sum())
        right = (data["predicted"] == data["label"])[labelled]
        assert found.value == (pytest.approx(right.mean()) if len(right) else None)
    assert any(found.rows == 0 for _, found in measured)  # 09:00-09:05
    assert any(0 < found.labelled < found.rows for _, found in measured)  # waiting for labels

    # AND the early windows' drop raised one alert, whose interval is the one read over the lake alone
    [alert] = evaluator().alerts.list(model.id)
    fired = next(w for w, _ in measured if w.start == alert.window_start)
    value = next(m for w, m in measured if w == fired)
    spread = catalog.interval(metric, model, alone, fired, value)
    assert spread is not None
    assert alert.details["interval"] == [spread.low, spread.high]
    assert alert.windows > 1  # the next crossing windows continued its incident


def test_a_run_reads_each_lake_file_once(clock: Clock) -> None:
    # GIVEN a 5-minute accuracy rule over a day's files, looking at 26 windows
    model = model_waiting_for_labels()
    lake_data(model, np.random.default_rng(8))
    accuracy_rule(model)
    gets: Counter[str] = Counter()

    def count(params: dict, **_: object) -> None:
        gets[params["Key"]] += 1

    s3 = sagewatch_aws.client("s3")
    s3.meta.events.register("before-parameter-build.s3.GetObject", count)
    try:
        # WHEN the evaluator runs
        evaluator().evaluate_model(model.id)
    finally:
        s3.meta.events.unregister("before-parameter-build.s3.GetObject", count)

    # THEN it read each of the model's inference and label files, each once
    lake = container.lake_store()
    files = [
        key
        for area in ("inferences", "labels", "ground_truth")
        for key in lake.keys(f"{area}/model_id={model.id}/")
        if key.endswith(".parquet")
    ]
    assert len([f for f in files if f.startswith("inferences/")]) == 4
    assert set(gets) == set(files)
    assert set(gets.values()) == {1}
