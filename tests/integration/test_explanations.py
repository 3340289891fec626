"""Explainability end to end: a scikit-learn model behind the local stand-in endpoint (the deployed
code path up to the boto3 call), a tagged endpoint in moto's SageMaker, the real API and lake.
Explanations add up to the model's own predictions, importance is charted and watched by a rule,
throttling is retried, and the hourly budget holds."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression
from tests import factories
from tests.conftest import Call
from tests.inputs import tagged_endpoint

from sagewatch import aws as sagewatch_aws
from sagewatch import container
from sagewatch.enrichments import EnrichmentsConfig, ExplainabilityConfig
from sagewatch.local.endpoints import StandInRuntime

ENDPOINT = "churn-endpoint"
# Five minutes into the current hour: runs "10 minutes later" stay in the budget's hour, which is also
# the hour an on-demand request (on the real clock) is counted in.
NOW = datetime.now(UTC).replace(minute=5, second=0, microsecond=0)


def features(rows: np.ndarray) -> np.ndarray:
    """What the model computes from a CSV row (age, income, region): region as north or not."""
    return np.column_stack([rows[:, 0].astype(float), rows[:, 1].astype(float), rows[:, 2] == "north"])


def population(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "age": rng.integers(18, 90, n),
        "income": rng.normal(50, 15, n),
        "region": rng.choice(np.array(["north", "south"], dtype=object), n),
    }


@pytest.fixture
def churn_model() -> LogisticRegression:
    data = population(500, seed=1)
    rows = np.column_stack([data["age"], data["income"], data["region"]]).astype(object)
    x = features(rows)
    y = (
        0.04 * (x[:, 0] - 50)
        - 0.05 * (x[:, 1] - 50)
        + 1.2 * x[:, 2]
        + np.random.default_rng(2).normal(size=500)
    ) > 0
    return LogisticRegression().fit(x, y)


@pytest.fixture
def stand_in(aws: dict[str, str], churn_model: LogisticRegression) -> Iterator[StandInRuntime]:
    """The churn model served as ENDPOINT (tagged for sagewatch in moto's SageMaker)."""
    tagged_endpoint(ENDPOINT, {"AllTraffic": 1})
    runtime = StandInRuntime()
    runtime.register(ENDPOINT, lambda rows: churn_model.predict_proba(features(rows))[:, 1])
    container.use_endpoint_runtime(runtime)
    yield runtime
    container.use_endpoint_runtime(None)


def register(api: Call, upload, per_hour: int = 60, enabled: bool = True) -> str:
    """The churn model with a reference set of 300 rows, explainability configured."""
    body = factories.binary_probability()
    body["sagemaker"] = {"endpoint_name": ENDPOINT}
    model_id = api("POST", "/api/v3/models", body).body["id"]
    sink = io.BytesIO()
    reference = population(300, seed=5)
    pq.write_table(
        pa.table({**reference, "predicted_probability": np.full(300, 0.5), "churned": np.zeros(300, int)}),
        sink,
    )
    sent = upload(
        f"/api/v3/models/{model_id}/reference_data", {"reference_data": ("r.parquet", sink.getvalue())}
    )
    assert sent.status == 207, sent.body
    config = EnrichmentsConfig(
        explainability=ExplainabilityConfig(
            enabled=enabled, explanations_per_hour=per_hour, background_rows=20
        )
    )
    container.enrichments().save(container.model_store().get(model_id), config)
    return model_id


def send(api: Call, model_id: str, count: int, seed: int) -> list[dict]:
    data = population(count, seed)
    records = [
        {
            "partner_inference_id": f"inf-{seed}-{i}",
            "inference_timestamp": (NOW - timedelta(minutes=30) + timedelta(seconds=i)).isoformat(),
            "inference_data": {
                "age": int(data["age"][i]),
                "income": float(data["income"][i]),
                "region": str(data["region"][i]),
                "predicted_probability": 0.5,
            },
        }
        for i in range(count)
    ]
    assert api("POST", f"/api/v3/models/{model_id}/inferences", records).status in (200, 207)
    return records


def own_prediction(model: LogisticRegression, record: dict) -> float:
    data = record["inference_data"]
    return float(
        model.predict_proba(
            features(np.array([[data["age"], data["income"], data["region"]]], dtype=object))
        )[0, 1]
    )


def test_explained_inferences_add_up_to_the_models_own_predictions(
    api: Call, upload, stand_in: StandInRuntime, churn_model: LogisticRegression
) -> None:
    # GIVEN a model with explainability on and five new inferences
    model_id = register(api, upload)
    records = send(api, model_id, 5, seed=7)

    # WHEN the evaluator's run explains what is due
    report = container.explanations().explain_due(model_id, NOW)

    # THEN each inference is explained once, by one background call and 2^3 - 2 coalitions x 20 rows + x
    assert report.explained == 5
    assert report.endpoint_rows == 20 + 5 * (6 * 20 + 1)
    assert container.explanations().explain_due(model_id, NOW + timedelta(minutes=5)).explained == 0
    for record in records:
        answer = api(
            "GET", f"/api/v3/models/{model_id}/inferences/{record['partner_inference_id']}/explanation"
        )
        assert answer.status == 200, answer.body
        (explained,) = answer.body["explanation"]
        assert (explained["algorithm"], explained["predicted_attribute_name"]) == (
            "shap",
            "predicted_probability",
        )
        scores = {s["attribute_name"]: s["explanation_value"] for s in explained["importance_scores"]}
        assert set(scores) == {"age", "income", "region"}
        (expected,) = answer.body["expected_value"]
        # local accuracy, against scikit-learn's own prediction of the row
        assert sum(scores.values()) + expected["expected_value"] == pytest.approx(
            own_prediction(churn_model, record), abs=1e-6
        )


def test_an_inference_is_explained_on_demand_and_stored(
    api: Call, upload, stand_in: StandInRuntime, churn_model
) -> None:
    # GIVEN an inference the evaluator has not reached
    model_id = register(api, upload)
    (record,) = send(api, model_id, 1, seed=8)
    path = f"/api/v3/models/{model_id}/inferences/{record['partner_inference_id']}/explanation"

    # WHEN asked for its explanation, THEN it is computed now, adding up to the model's prediction
    first = api("GET", path)
    assert first.status == 200, first.body
    total = sum(s["explanation_value"] for s in first.body["explanation"][0]["importance_scores"])
    assert total + first.body["expected_value"][0]["expected_value"] == pytest.approx(
        own_prediction(churn_model, record), abs=1e-6
    )
    # THEN asking again reads the stored one (no endpoint call)
    calls = stand_in.endpoints[ENDPOINT].calls
    assert api("GET", path).body == first.body
    assert stand_in.endpoints[ENDPOINT].calls == calls
    # WHEN LIME is asked for, THEN a 400 says sagewatch computes SHAP only
    lime = api("GET", path, query="algorithm=lime")
    assert (lime.status, lime.body["field"]) == (400, "algorithm") and "shap" in lime.body["message"]
    # WHEN the inference does not exist, THEN a 404 naming it
    assert api("GET", f"/api/v3/models/{model_id}/inferences/nope/explanation").status == 404


def test_importance_over_a_window_is_charted_and_watched_by_a_metric(
    api: Call, upload, stand_in: StandInRuntime
) -> None:
    # GIVEN eight explained inferences
    model_id = register(api, upload)
    records = send(api, model_id, 8, seed=9)
    container.explanations().explain_due(model_id, NOW)
    each = [
        api("GET", f"/api/v3/models/{model_id}/inferences/{r['partner_inference_id']}/explanation").body
        for r in records
    ]
    mean_income = np.mean(
        [
            abs(
                next(
                    s["explanation_value"]
                    for s in e["explanation"][0]["importance_scores"]
                    if s["attribute_name"] == "income"
                )
            )
            for e in each
        ]
    )

    # WHEN the importance over the last day is asked for, per hour
    window = f"start_time={(NOW - timedelta(days=1)).isoformat()}&end_time={(NOW + timedelta(hours=1)).isoformat()}&interval=hour"
    answer = api(
        "GET", f"/api/v3/models/{model_id}/explanations/importance", query=window.replace("+", "%2B")
    )

    # THEN the mean |attribution| per input over the eight, most important first, and its series
    assert answer.status == 200, answer.body
    (output,) = answer.body["outputs"]
    assert output["count"] == 8
    importance = {i["attribute_name"]: i["mean_absolute_attribution"] for i in output["importance"]}
    assert importance["income"] == pytest.approx(mean_income)
    values = [i["mean_absolute_attribution"] for i in output["importance"]]
    assert values == sorted(values, reverse=True)
    assert sum(point["count"] for point in output["series"]) == 8

    # WHEN a metric selects the mean |attribution| of income from the explanations
    query = {
        "select": [{"function": "avg", "parameters": {"property": "abs(income)"}}],
        "from": "explanation",
    }
    metric = api("POST", f"/api/v4/models/{model_id}/metrics", {"name": "income importance", "query": query})
    assert metric.status == 201, metric.body
    rule = api(
        "POST",
        f"/api/v3/models/{model_id}/alert_rules",
        {"metric_id": metric.body["id"], "bound": "upper", "threshold": mean_income / 2},
    )
    assert rule.status == 200, rule.body
    # THEN the query the metric measures gives the same number
    measured = api("POST", f"/api/v3/models/{model_id}/inferences/query", query)
    assert measured.body["query_result"][0]["avg"] == pytest.approx(mean_income)


def test_a_throttling_endpoint_is_retried_with_growing_waits(
    api: Call, upload, stand_in: StandInRuntime
) -> None:
    # GIVEN an endpoint that throttles its next three calls
    model_id = register(api, upload)
    send(api, model_id, 2, seed=10)
    stand_in.throttle(ENDPOINT, 3)
    waits: list[float] = []
    container.explanations().invoker.sleep = waits.append

    # WHEN the due inferences are explained
    report = container.explanations().explain_due(model_id, NOW)

    # THEN the calls were retried after waits that grow, and everything was explained
    assert (report.explained, report.retries) == (2, 3)
    assert len(waits) == 3 and waits[0] < 0.5 <= waits[1] and waits[1] < 1.0 <= waits[2]


def test_an_endpoint_that_never_stops_throttling_fails_the_run_not_the_evaluation(
    api: Call, upload, stand_in: StandInRuntime
) -> None:
    # GIVEN an endpoint refusing every call
    from sagewatch.handlers.evaluator import explain_due

    model_id = register(api, upload)
    send(api, model_id, 2, seed=11)
    stand_in.throttle(ENDPOINT, 100)
    container.explanations().invoker.sleep = lambda seconds: None
    # WHEN the run fails, THEN the service says 429 naming the endpoint; the handler only logs it
    with pytest.raises(Exception, match="still refused after 6 attempts") as failure:
        container.explanations().explain_due(model_id, NOW)
    assert failure.value.status == 429
    explain_due(model_id)  # no exception
    # THEN once the endpoint answers, the next run explains what was due
    stand_in.endpoints[ENDPOINT].refusals.clear()
    assert container.explanations().explain_due(model_id, NOW + timedelta(minutes=5)).explained == 2


def test_no_more_than_the_hourly_budget_is_explained(api: Call, upload, stand_in: StandInRuntime) -> None:
    # GIVEN a budget of 4 explanations an hour and 10 new inferences
    model_id = register(api, upload, per_hour=4)
    records = send(api, model_id, 10, seed=12)

    # WHEN runs follow each other within the hour
    first = container.explanations().explain_due(model_id, NOW)
    send(api, model_id, 3, seed=13)
    second = container.explanations().explain_due(model_id, NOW + timedelta(minutes=10))

    # THEN four are explained in all, the others are counted as over the budget
    assert (first.explained, first.over_budget) == (4, 6)
    assert second.explained == 0
    stored = container.lake_store().read_area("explanations", model_id, ["partner_inference_id"])
    assert stored.num_rows == 4
    # THEN an on-demand explanation is refused with a 429 naming the budget
    unexplained = next(
        r["partner_inference_id"]
        for r in records
        if r["partner_inference_id"] not in stored.column(0).to_pylist()
    )
    refused = api("GET", f"/api/v3/models/{model_id}/inferences/{unexplained}/explanation")
    assert (refused.status, refused.body["field"]) == (429, "explainability.explanations_per_hour")
    # THEN the next hour has a budget again, for inferences that come then (those over it were passed by)
    send(api, model_id, 2, seed=15)
    assert container.explanations().explain_due(model_id, NOW + timedelta(hours=1)).explained == 2


def test_explainability_off_or_without_an_endpoint_says_what_to_set(api: Call, upload, stand_in) -> None:
    model_id = register(api, upload, enabled=False)
    (record,) = send(api, model_id, 1, seed=14)
    off = api("GET", f"/api/v3/models/{model_id}/inferences/{record['partner_inference_id']}/explanation")
    assert (off.status, off.body["field"]) == (400, "explainability.enabled")
    assert container.explanations().explain_due(model_id, NOW).explained == 0
    # GIVEN an endpoint not tagged for sagewatch, THEN a 403 saying to tag it
    sagewatch_aws.client("sagemaker").create_endpoint(
        EndpointName="untagged", EndpointConfigName=f"{ENDPOINT}-config"
    )
    config = EnrichmentsConfig(explainability=ExplainabilityConfig(enabled=True, endpoint_name="untagged"))
    container.enrichments().save(container.model_store().get(model_id), config)
    untagged = api(
        "GET", f"/api/v3/models/{model_id}/inferences/{record['partner_inference_id']}/explanation"
    )
    assert (untagged.status, untagged.body["field"]) == (403, "sagemaker.endpoint_name")
    assert "sagewatch:monitored" in untagged.body["message"]


def test_with_streaming_off_only_what_is_asked_for_is_explained(
    api: Call, upload, stand_in: StandInRuntime, churn_model
) -> None:
    # GIVEN explainability on, but not streaming (Arthur's streaming_explainability_enabled: false)
    model_id = register(api, upload)
    changed = api(
        "PATCH",
        f"/api/v3/models/{model_id}/enrichments/explainability",
        {"config": {"streaming_explainability_enabled": False}},
    )
    assert changed.status == 202, changed.body
    records = send(api, model_id, 3, seed=9)
    # WHEN the evaluator's run comes, THEN it explains nothing and calls no endpoint
    assert container.explanations().explain_due(model_id, NOW).explained == 0
    assert stand_in.endpoints[ENDPOINT].calls == 0
    # WHEN one inference's explanation is asked for, THEN it is computed then
    path = f"/api/v3/models/{model_id}/inferences/{records[0]['partner_inference_id']}/explanation"
    assert api("GET", path).status == 200
    assert stand_in.endpoints[ENDPOINT].calls > 0
