"""Hotspots through the real API and evaluator handler on moto: a planted segment of wrong predictions
is found, stored, listed and answered in Arthur's find shape; bad requests name their field; the
schedule searches a closed, labelled day once."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest
from tests import factories
from tests.conftest import Call
from tests.factories import Clock
from tests.inputs import register

from sagewatch import container
from sagewatch.enrichments import EnrichmentsConfig, HotspotsConfig
from sagewatch.handlers.evaluator import handler as queue_handler
from sagewatch.local.http_bridge import LocalContext
from sagewatch.local.pollers import sqs_event

N = 1200
DAY = "2026-11-25"


@pytest.fixture
def planted(api: Call) -> dict:
    """A binary model wrong on 10% of a day's rows, and on 80% where region is south and age > 60."""
    return plant(api)


def plant(api: Call, body: dict | None = None, batch_id: str | None = None) -> dict:
    """The planted day's rows sent to a new model (`body`), in the batch `batch_id` if given."""
    model_id = register(api, body)
    rng = np.random.default_rng(21)
    age = rng.integers(18, 90, N)
    region = rng.choice(["north", "south"], N)
    income = rng.normal(1000, 100, N)
    truth = rng.integers(0, 2, N)
    segment = (region == "south") & (age > 60)
    wrong = rng.random(N) < np.where(segment, 0.8, 0.1)
    score = np.where(wrong, 1 - truth, truth) * 0.6 + 0.2
    sent = [
        {
            "partner_inference_id": f"r-{i}",
            "inference_timestamp": f"{DAY}T{i % 24:02d}:{i % 60:02d}:00Z",
            "inference_data": {
                "age": int(age[i]),
                "income": float(income[i]),
                "region": str(region[i]),
                "predicted_probability": float(score[i]),
            },
            "ground_truth_data": {"churned": int(truth[i])},
            **({"batch_id": batch_id} if batch_id else {}),
        }
        for i in range(N)
    ]
    assert api("POST", f"/api/v3/models/{model_id}/inferences", sent).body["counts"]["failure"] == 0
    return {"model_id": model_id, "age": age, "region": region, "segment": segment}


def _selected(conditions: list[dict], data: dict) -> np.ndarray:
    """The rows a hotspot's conditions select, evaluated here over the rows sent."""
    chosen = np.ones(N, dtype=bool)
    for condition in conditions:
        values = data[condition["attribute"]]
        if condition["op"] == "in":
            chosen &= np.isin(values, condition["value"])
        elif condition["op"] == "not in":
            chosen &= ~np.isin(values, condition["value"])
        elif condition["op"] == ">":
            chosen &= values > condition["value"]
        else:
            chosen &= values <= condition["value"]
    return chosen


def test_a_run_finds_the_planted_segment_and_is_stored(api: Call, planted: dict) -> None:
    # GIVEN a labelled day with a planted segment of wrong predictions
    base = f"/api/v3/models/{planted['model_id']}/hotspots"

    # WHEN the day is searched
    answer = api("POST", base, {"start_time": f"{DAY}T00:00:00Z", "end_time": "2026-11-26T00:00:00Z"})

    # THEN the top hotspot's rows are the planted rows (Jaccard >= 0.8)
    assert answer.status == 201, answer.body
    run = answer.body
    assert (run["labelled"], run["trigger"], run["metric"]) == (N, "api", "accuracy")
    top = run["hotspots"][0]
    chosen = _selected(top["conditions"], {"age": planted["age"], "region": planted["region"]})
    segment = planted["segment"]
    assert (chosen & segment).sum() / (chosen | segment).sum() >= 0.8
    assert top["n_samples"] == chosen.sum()
    assert top["rank"] == 1 and top["accuracy"] < top["overall"]["accuracy"] - 0.3

    # THEN the run is listed, newest first, and read back whole
    second = api("POST", base, {"date": DAY}).body
    listed = api("GET", base).body
    assert [r["id"] for r in listed["data"]] == [second["id"], run["id"]]
    assert listed["total_count"] == 2
    assert api("GET", f"{base}/{run['id']}").body == run
    missing = api("GET", f"{base}/20260101T000000000000-nothing")
    assert (missing.status, missing.body["field"]) == (404, "run_id")


def test_arthurs_find_answers_the_hotspots_below_the_threshold(api: Call, planted: dict) -> None:
    # WHEN the arthurai SDK's find_hotspots asks for the day's hotspots below 60% accuracy
    answer = api(
        "GET",
        f"/api/v3/models/{planted['model_id']}/enrichments/hotspots/find",
        query=f"metric=accuracy&threshold=0.6&date={DAY}",
    )

    # THEN it gets Arthur's shape: data, each hotspot with rules, gt_to_info, metrics, impurity
    assert answer.status == 200, answer.body
    found = answer.body["data"]
    assert found and all(h["accuracy"] < 0.6 for h in found)
    assert {"rules", "gt_to_info", "precision", "recall", "f1", "accuracy", "impurity", "n_samples"} <= set(
        found[0]
    )
    assert found[0]["rules"]["region"] == {"in": ["south"]}
    assert sum(info["count"] for info in found[0]["gt_to_info"].values()) == found[0]["n_samples"]


def test_bad_requests_name_their_field(api: Call, planted: dict) -> None:
    model_id = planted["model_id"]
    find = f"/api/v3/models/{model_id}/enrichments/hotspots/find"
    both = api("GET", find, query=f"metric=accuracy&threshold=0.5&batch_id=b1&date={DAY}")
    assert (both.status, both.body["field"]) == (400, "date")
    metric = api("GET", find, query=f"metric=auc&threshold=0.5&date={DAY}")
    assert (metric.status, metric.body["field"]) == (400, "metric")
    threshold = api("GET", find, query=f"metric=f1&threshold=2&date={DAY}")
    assert (threshold.status, threshold.body["field"]) == (400, "threshold")
    base = f"/api/v3/models/{model_id}/hotspots"
    empty = api("POST", base, {"date": "2026-11-27"})
    assert (empty.status, empty.body["field"]) == (400, "date")
    assert "0 with ground truth" in empty.body["message"]
    backwards = api("POST", base, {"start_time": f"{DAY}T10:00:00Z", "end_time": f"{DAY}T09:00:00Z"})
    assert (backwards.status, backwards.body["field"]) == (400, "end_time")
    extra = api("POST", base, {"date": DAY, "batch_id": "b1"})
    assert (extra.status, extra.body["field"]) == (400, "date")
    blank = api("GET", find, query=f"metric=f1&threshold=0.5&batch_id=&date={DAY}")
    assert (blank.status, blank.body["field"]) == (400, "batch_id")


def test_a_window_without_labels_is_refused_by_name(api: Call) -> None:
    # GIVEN a model with inferences and no ground truth
    model_id = register(api)
    sent = [
        {
            "partner_inference_id": f"u-{i}",
            "inference_timestamp": f"{DAY}T10:00:00Z",
            "inference_data": {"age": 30, "income": 1.0, "region": "north", "predicted_probability": 0.3},
        }
        for i in range(200)
    ]
    api("POST", f"/api/v3/models/{model_id}/inferences", sent)

    # WHEN a window is searched, THEN a 400 names the window and counts the labels
    answer = api(
        "POST",
        f"/api/v3/models/{model_id}/hotspots",
        {"start_time": f"{DAY}T00:00:00Z", "end_time": "2026-11-26T00:00:00Z"},
    )
    assert (answer.status, answer.body["field"]) == (400, "start_time")
    assert "200 inferences, 0 with ground truth" in answer.body["message"]


def _evaluate(model_id: str) -> dict:
    message = {"MessageId": "m", "ReceiptHandle": "r", "Body": json.dumps({"model_id": model_id})}
    return queue_handler(sqs_event([message], "arn", "us-east-1"), LocalContext())


def test_the_schedule_searches_a_closed_labelled_day_once(api: Call, planted: dict) -> None:
    # GIVEN the model's hotspots enrichment on, two days after its labelled day
    model_id = planted["model_id"]
    model = container.model_store().get(model_id)
    container.enrichments().save(model, EnrichmentsConfig(hotspots=HotspotsConfig(enabled=True)))
    container.hotspots().clock = Clock(datetime(2026, 11, 27, 6, tzinfo=UTC))
    container.evaluator().clock = Clock(datetime(2026, 11, 27, 6, tzinfo=UTC))

    # WHEN the evaluator handles the model's message twice
    assert _evaluate(model_id) == {"batchItemFailures": []}
    assert _evaluate(model_id) == {"batchItemFailures": []}

    # THEN the closed day was searched once, by the schedule, and the planted segment is its top hotspot
    runs = api("GET", f"/api/v3/models/{model_id}/hotspots").body["data"]
    assert [(r["trigger"], r["window"]["start_time"][:10]) for r in runs] == [("schedule", DAY)]
    assert runs[0]["hotspots"][0]["rules"]["region"] == {"in": ["south"]}


def test_the_schedule_stays_off_by_default_and_a_failing_search_fails_no_evaluation(
    api: Call, planted: dict
) -> None:
    # GIVEN a model whose hotspots enrichment is off: nothing is searched
    model_id = planted["model_id"]
    container.hotspots().clock = Clock(datetime(2026, 11, 27, 6, tzinfo=UTC))
    assert _evaluate(model_id) == {"batchItemFailures": []}
    assert api("GET", f"/api/v3/models/{model_id}/hotspots").body["total_count"] == 0

    # GIVEN it on, and a lake that cannot be read
    model = container.model_store().get(model_id)
    container.enrichments().save(model, EnrichmentsConfig(hotspots=HotspotsConfig(enabled=True)))

    def unreadable(model):
        raise RuntimeError("the lake is unreachable")

    container.hotspots().loader_for = unreadable

    # WHEN evaluated, THEN the message still succeeds and the search's failure is in its report
    assert _evaluate(model_id) == {"batchItemFailures": []}
    report = container.hotspots().run_scheduled(model_id)
    assert report.errors == ["RuntimeError: the lake is unreachable"]


def test_the_schedule_searches_each_closed_batch_once(api: Call) -> None:
    # GIVEN a batch model whose labelled batch b1 holds the planted segment, closed, hotspots on
    body = {**factories.binary_probability("churn-batch"), "is_batch": True}
    model_id = plant(api, body, batch_id="b1")["model_id"]
    closed = api("PATCH", f"/api/v3/models/{model_id}/batches/b1", {"status": "uploaded"})
    assert closed.status == 200, closed.body
    model = container.model_store().get(model_id)
    container.enrichments().save(model, EnrichmentsConfig(hotspots=HotspotsConfig(enabled=True)))

    # WHEN the evaluator handles the model's message twice
    assert _evaluate(model_id) == {"batchItemFailures": []}
    assert _evaluate(model_id) == {"batchItemFailures": []}

    # THEN the batch was searched once, by the schedule, and the planted segment is its top hotspot
    runs = api("GET", f"/api/v3/models/{model_id}/hotspots").body["data"]
    assert [(r["trigger"], r["window"]["batch_id"]) for r in runs] == [("schedule", "b1")]
    assert runs[0]["hotspots"][0]["rules"]["region"] == {"in": ["south"]}
