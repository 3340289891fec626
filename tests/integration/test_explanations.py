"""Explainability end to end: a scikit-learn model behind the local stand-in endpoint (the deployed
code path up to the boto3 call), a tagged endpoint in moto's SageMaker, the real API and lake.
Explanations add up to the model's own predictions, importance is charted and watched by a rule,
throttling is retried, and the hourly budget holds. An inference the model fails on is recorded and
passed by; ids are URL-decoded; only a writer computes one on demand; work too large or too slow for
a request is queued for the evaluator's next run. An inference is looked for in its last week unless
its day is named; a model failing on every call is the endpoint's fault (nothing recorded), a
background it fails on and a row too large to send spend no budget."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression
from tests import factories
from tests.conftest import Call

from sagewatch import aws as sagewatch_aws
from sagewatch import container
from sagewatch.auth import Role
from sagewatch.enrichments import EnrichmentsConfig, ExplainabilityConfig
from sagewatch.local.endpoints import StandInRuntime, create_endpoint

ENDPOINT = "churn-endpoint"
# Five minutes into the current hour: runs "10 minutes later" stay in the budget's hour, which is also
# the hour an on-demand request (on the real clock) is counted in.
NOW = datetime.now(UTC).replace(minute=5, second=0, microsecond=0)


@pytest.fixture(autouse=True)
def now_in_this_hour() -> None:
    """NOW in the hour a test runs, not the hour the module was collected in: the budget's hour comes
    from the code's real clock too, and a run collected at 12:58 may reach these tests after 13:00."""
    global NOW
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
    create_endpoint(ENDPOINT, {"AllTraffic": 1})
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


def record(pid: str, **inputs: object) -> dict:
    """One inference twenty minutes ago (age 40, income 50, north unless given)."""
    data = {"age": 40, "income": 50.0, "region": "north", "predicted_probability": 0.5, **inputs}
    return {
        "partner_inference_id": pid,
        "inference_timestamp": (NOW - timedelta(minutes=20)).isoformat(),
        "inference_data": data,
    }


def this_hour() -> datetime:
    return NOW.replace(minute=0, second=0, microsecond=0)


def test_an_inference_the_model_fails_on_is_recorded_and_passed_by(
    api: Call, upload, stand_in: StandInRuntime
) -> None:
    # GIVEN an inference the model cannot take (a null income: scikit-learn raises, SageMaker answers
    # ModelError) between two it can
    model_id = register(api, upload)
    sent = [record("ok-1"), record("poison", income=None), record("ok-2")]
    assert api("POST", f"/api/v3/models/{model_id}/inferences", sent).status in (200, 207)

    # WHEN the evaluator's run explains what is due
    report = container.explanations().explain_due(model_id, NOW)

    # THEN the other two are explained, the poison one recorded as failed, and the run completes
    assert (report.explained, report.failed) == (2, 1)
    # THEN its budget slot stays spent (the endpoint's model ran on its rows): three in all
    assert container.explanations().budget.spent(model_id, this_hour()) == 3
    # THEN the next runs never try it again, and explain what comes after it
    calls = stand_in.endpoints[ENDPOINT].calls
    assert container.explanations().explain_due(model_id, NOW + timedelta(minutes=5)).failed == 0
    assert stand_in.endpoints[ENDPOINT].calls == calls
    assert api("POST", f"/api/v3/models/{model_id}/inferences", [record("ok-3")]).status in (200, 207)
    assert container.explanations().explain_due(model_id, NOW + timedelta(minutes=10)).explained == 1
    # THEN asking for its explanation is a 422 with the model's own message, no endpoint call
    calls = stand_in.endpoints[ENDPOINT].calls
    failed = api("GET", f"/api/v3/models/{model_id}/inferences/poison/explanation")
    assert (failed.status, failed.body["field"]) == (422, "partner_inference_id"), failed.body
    assert "ModelError" not in failed.body["message"] and "Input X contains NaN" in failed.body["message"]
    assert stand_in.endpoints[ENDPOINT].calls == calls
    # THEN importance counts the explained ones only
    window = f"start_time={(NOW - timedelta(days=1)).isoformat()}&end_time={(NOW + timedelta(hours=1)).isoformat()}"
    importance = api(
        "GET", f"/api/v3/models/{model_id}/explanations/importance", query=window.replace("+", "%2B")
    )
    assert importance.body["outputs"][0]["count"] == 3


def test_an_inference_asked_for_that_the_model_fails_on_is_a_422_with_the_reason(
    api: Call, upload, stand_in: StandInRuntime
) -> None:
    # GIVEN an inference the model cannot take, not explained yet
    model_id = register(api, upload)
    assert api("POST", f"/api/v3/models/{model_id}/inferences", [record("poison", income=None)]).status in (
        200,
        207,
    )
    path = f"/api/v3/models/{model_id}/inferences/poison/explanation"

    # WHEN it is asked for, THEN a 422 with the model's message (not a 500), and it is recorded
    first = api("GET", path)
    assert (first.status, first.body["field"]) == (422, "partner_inference_id"), first.body
    assert "Input X contains NaN" in first.body["message"]
    calls = stand_in.endpoints[ENDPOINT].calls
    assert api("GET", path).status == 422
    assert stand_in.endpoints[ENDPOINT].calls == calls
    # THEN the evaluator's run passes it by
    assert container.explanations().explain_due(model_id, NOW).explained == 0
    assert stand_in.endpoints[ENDPOINT].calls == calls


def test_values_with_commas_quotes_and_line_breaks_are_explained(
    api: Call, upload, stand_in: StandInRuntime, churn_model: LogisticRegression
) -> None:
    # GIVEN inputs that CSV must quote
    model_id = register(api, upload)
    sent = [
        record("comma", region="no,rth"),
        record("quote", region='so"uth'),
        record("break", region="north\nwest"),
    ]
    assert api("POST", f"/api/v3/models/{model_id}/inferences", sent).status in (200, 207)

    # WHEN the run explains them
    report = container.explanations().explain_due(model_id, NOW)

    # THEN all are explained, adding up to scikit-learn's prediction of the row as it was sent
    assert (report.explained, report.failed) == (3, 0)
    for sent_record in sent:
        answer = api(
            "GET", f"/api/v3/models/{model_id}/inferences/{sent_record['partner_inference_id']}/explanation"
        )
        scores = answer.body["explanation"][0]["importance_scores"]
        total = (
            sum(s["explanation_value"] for s in scores) + answer.body["expected_value"][0]["expected_value"]
        )
        assert total == pytest.approx(own_prediction(churn_model, sent_record), abs=1e-6)


def test_a_throttling_endpoint_gives_back_the_budget_and_records_nothing(
    api: Call, upload, stand_in: StandInRuntime
) -> None:
    # GIVEN an endpoint refusing every call
    model_id = register(api, upload)
    send(api, model_id, 2, seed=16)
    stand_in.throttle(ENDPOINT, 100)
    container.explanations().invoker.sleep = lambda seconds: None

    # WHEN the run fails, THEN nothing is counted in the budget, nothing recorded as failed
    with pytest.raises(Exception, match="still refused"):
        container.explanations().explain_due(model_id, NOW)
    assert container.explanations().budget.spent(model_id, this_hour()) == 0
    assert container.lake_store().read_area("explanations/failed", model_id) is None
    # THEN both are explained once the endpoint answers
    stand_in.endpoints[ENDPOINT].refusals.clear()
    assert container.explanations().explain_due(model_id, NOW + timedelta(minutes=5)).explained == 2


@pytest.mark.parametrize("partner_inference_id", ["a b", "a/b", "ü-é", "a?b"])
def test_an_inference_id_is_url_decoded(
    api: Call, upload, stand_in: StandInRuntime, partner_inference_id: str
) -> None:
    # GIVEN an inference whose id needs encoding in a path
    model_id = register(api, upload)
    assert api("POST", f"/api/v3/models/{model_id}/inferences", [record(partner_inference_id)]).status in (
        200,
        207,
    )
    # WHEN its explanation is asked for by the encoded id, THEN it is the inference's
    encoded = quote(partner_inference_id, safe="")
    answer = api("GET", f"/api/v3/models/{model_id}/inferences/{encoded}/explanation")
    assert answer.status == 200, answer.body
    assert answer.body["partner_inference_id"] == partner_inference_id


def test_a_reader_reads_stored_explanations_but_only_a_writer_computes_one(
    api: Call, upload, stand_in: StandInRuntime, tokens
) -> None:
    # GIVEN an explained inference and one not explained yet
    model_id = register(api, upload)
    sent = [record("explained"), record("not-yet")]
    assert api("POST", f"/api/v3/models/{model_id}/inferences", sent).status in (200, 207)
    assert container.explanations().explain_due(model_id, NOW).explained == 2
    assert api("POST", f"/api/v3/models/{model_id}/inferences", [record("later")]).status in (200, 207)
    reader = tokens[Role.READER]
    calls = stand_in.endpoints[ENDPOINT].calls

    # WHEN a reader asks for the stored one, and the importance, THEN it reads them
    stored = api("GET", f"/api/v3/models/{model_id}/inferences/explained/explanation", token=reader)
    assert stored.status == 200, stored.body
    assert api("GET", f"/api/v3/models/{model_id}/explanations/importance", token=reader).status == 200
    # WHEN a reader asks for one that would call the endpoint, THEN a 403 saying a writer may
    refused = api("GET", f"/api/v3/models/{model_id}/inferences/later/explanation", token=reader)
    assert refused.status == 403, refused.body
    assert "reader" in refused.body["message"] and "writer" in refused.body["message"]
    assert stand_in.endpoints[ENDPOINT].calls == calls
    assert container.explanations().budget.spent(model_id, this_hour()) == 2
    # WHEN a writer asks, THEN it is computed
    assert api("GET", f"/api/v3/models/{model_id}/inferences/later/explanation").status == 200


def test_an_explanation_too_large_for_a_request_is_queued_for_the_next_run(
    api: Call, upload, stand_in: StandInRuntime
) -> None:
    # GIVEN explanations only on demand, and one request allowed fewer endpoint rows than one takes
    # (20 background rows x 7 coalitions + 1)
    model_id = register(api, upload)
    api(
        "PATCH",
        f"/api/v3/models/{model_id}/enrichments/explainability",
        {"config": {"streaming_explainability_enabled": False}},
    )
    assert api("POST", f"/api/v3/models/{model_id}/inferences", [record("big")]).status in (200, 207)
    container.explanations().on_demand_rows = 140
    path = f"/api/v3/models/{model_id}/inferences/big/explanation"

    # WHEN it is asked for, THEN a 202 saying it is queued for the next run, no endpoint call, no budget
    queued = api("GET", path)
    assert queued.status == 202, queued.body
    assert queued.body["status"] == "queued" and "141 endpoint rows" in queued.body["message"]
    assert stand_in.endpoints[ENDPOINT].calls == 0
    assert container.explanations().budget.spent(model_id, this_hour()) == 0
    assert api("GET", path).status == 202  # asked again: still queued, still no call

    # WHEN the evaluator runs (streaming off), THEN it explains the queued one, and GET reads it
    report = container.explanations().explain_due(model_id, NOW)
    assert (report.explained, report.queued) == (1, 1)
    answer = api("GET", path)
    assert answer.status == 200 and answer.body["partner_inference_id"] == "big"
    assert container.explanations().budget.queued(model_id) == {}


def test_an_endpoint_too_slow_for_a_request_leaves_the_explanation_to_the_next_run(
    api: Call, upload, stand_in: StandInRuntime, churn_model: LogisticRegression
) -> None:
    # GIVEN an endpoint whose every call takes 8 s (on the invoker's clock), and an explanation needing
    # four calls (50 rows each): more than a request's 20 s
    model_id = register(api, upload)
    assert api("POST", f"/api/v3/models/{model_id}/inferences", [record("slow")]).status in (200, 207)
    now = [0.0]

    def slow(rows: np.ndarray) -> np.ndarray:
        now[0] += 8.0
        return churn_model.predict_proba(features(rows))[:, 1]

    stand_in.register(ENDPOINT, slow)
    explainer = container.explanations()
    explainer.invoker.monotonic = lambda: now[0]
    explainer.invoker.max_rows = 50

    # WHEN it is asked for, THEN the calls stop before the time is up and it is queued (a 202)
    queued = api("GET", f"/api/v3/models/{model_id}/inferences/slow/explanation")
    assert queued.status == 202, queued.body
    assert "20 s" in queued.body["message"]
    assert stand_in.endpoints[ENDPOINT].calls == 2  # the background, then one of three
    # THEN its slot stays spent (the endpoint's model ran on its rows) and the next run explains it
    assert explainer.budget.spent(model_id, this_hour()) == 1
    explainer.invoker.max_rows = 10_000
    assert explainer.explain_due(model_id, NOW).queued == 1
    assert api("GET", f"/api/v3/models/{model_id}/inferences/slow/explanation").status == 200


def test_an_inference_is_looked_for_in_its_last_week_unless_its_day_is_named(
    api: Call, upload, stand_in: StandInRuntime, tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN one inference a day over the last ten days, each in a file of its own
    model_id = register(api, upload)
    for back in range(10):
        sent = record(f"day-{back}")
        sent["inference_timestamp"] = (NOW - timedelta(days=back, minutes=20)).isoformat()
        assert api("POST", f"/api/v3/models/{model_id}/inferences", [sent]).status in (200, 207)
    lake = container.explanations().lake
    read: list[str] = []
    reading = lake.read_table
    monkeypatch.setattr(
        lake, "read_table", lambda key, columns=None: read.append(key) or reading(key, columns)
    )
    reader = tokens[Role.READER]

    # WHEN a reader asks for an id never sent
    missing = api("GET", f"/api/v3/models/{model_id}/inferences/never-sent/explanation", token=reader)
    # THEN a 404 saying how far back it looked and how to name the day, after one read per day of 7
    assert missing.status == 404, missing.body
    assert "last 7 days" in missing.body["message"] and "inference_date=" in missing.body["message"]
    assert len(read) == 7 and all("inferences/" in key for key in read)

    # WHEN the newest one is asked for, THEN its file is found first: its ids, then its row
    read.clear()
    assert api("GET", f"/api/v3/models/{model_id}/inferences/day-0/explanation").status == 200
    assert [key.split("/")[2] for key in read[:2]] == [f"date={(NOW - timedelta(minutes=20)).date()}"] * 2
    # THEN a reader's later ask reads its file and its day's explanation files only
    read.clear()
    stored = api("GET", f"/api/v3/models/{model_id}/inferences/day-0/explanation", token=reader)
    assert stored.status == 200 and len(read) == 4  # ids and row of the inference, of the explanation

    # WHEN one ten days old is asked for, THEN a 404, until its day is named
    old_day = (NOW - timedelta(days=9, minutes=20)).date()
    assert api("GET", f"/api/v3/models/{model_id}/inferences/day-9/explanation").status == 404
    named = api(
        "GET", f"/api/v3/models/{model_id}/inferences/day-9/explanation", query=f"inference_date={old_day}"
    )
    assert named.status == 200, named.body
    assert named.body["partner_inference_id"] == "day-9"


def test_a_model_failing_on_every_call_is_the_endpoints_fault_not_the_inferences(
    api: Call, upload, stand_in: StandInRuntime, churn_model: LogisticRegression
) -> None:
    # GIVEN an endpoint that answers the background, then fails every call (its container sick)
    healthy = [True]
    answered = [0]

    def sick(rows: np.ndarray) -> np.ndarray:
        answered[0] += 1
        if answered[0] > 1 and not healthy[0]:
            raise RuntimeError("CUDA out of memory")
        return churn_model.predict_proba(features(rows))[:, 1]

    stand_in.register(ENDPOINT, sick)
    healthy[0] = False
    model_id = register(api, upload)
    sent = [record(f"i{k}") for k in range(10)]
    assert api("POST", f"/api/v3/models/{model_id}/inferences", sent).status in (200, 207)

    # WHEN the run comes, THEN it stops with a 503 saying the endpoint is failing, records nothing,
    # and spends no budget
    with pytest.raises(Exception, match="the endpoint is failing") as failure:
        container.explanations().explain_due(model_id, NOW)
    assert failure.value.status == 503
    assert container.lake_store().read_area("explanations/failed", model_id) is None
    assert container.explanations().budget.spent(model_id, this_hour()) == 0
    # THEN an on-demand ask (its background answered, then its rows failed on) is a 503, recording nothing
    answered[0] = 0
    asked = api("GET", f"/api/v3/models/{model_id}/inferences/i3/explanation")
    assert asked.status == 503, asked.body
    assert container.lake_store().read_area("explanations/failed", model_id) is None

    # WHEN the endpoint recovers, THEN the next run explains all ten
    healthy[0] = True
    assert container.explanations().explain_due(model_id, NOW + timedelta(minutes=5)).explained == 10
    assert api("GET", f"/api/v3/models/{model_id}/inferences/i3/explanation").status == 200


def test_a_background_the_model_fails_on_is_a_400_that_spends_no_budget(
    api: Call, upload, stand_in: StandInRuntime
) -> None:
    # GIVEN a model failing on every row (it expects other columns), and a budget of 2 an hour
    def wrong_columns(rows: np.ndarray) -> np.ndarray:
        raise ValueError("expects 4 columns")

    stand_in.register(ENDPOINT, wrong_columns)
    model_id = register(api, upload, per_hour=2)
    assert api("POST", f"/api/v3/models/{model_id}/inferences", [record("i0")]).status in (200, 207)

    # WHEN it is asked for more often than the budget allows
    answers = [api("GET", f"/api/v3/models/{model_id}/inferences/i0/explanation") for _ in range(4)]

    # THEN each is the 400 with the model's message (never a 429), the budget untouched
    assert [a.status for a in answers] == [400] * 4
    assert all("expects 4 columns" in a.body["message"] for a in answers)
    assert container.explanations().budget.spent(model_id, this_hour()) == 0


def test_a_row_too_large_to_send_is_failed_before_any_call(
    api: Call, upload, stand_in: StandInRuntime
) -> None:
    # GIVEN requests to the endpoint limited to 1,000 bytes, and an inference whose row is larger
    model_id = register(api, upload)
    sent = [record("huge", region="n" * 2_000), record("ok")]
    assert api("POST", f"/api/v3/models/{model_id}/inferences", sent).status in (200, 207)
    container.explanations().invoker.max_bytes = 1_000

    # WHEN it is asked for, THEN a 422 saying it is too large, with no endpoint call and no budget
    answer = api("GET", f"/api/v3/models/{model_id}/inferences/huge/explanation")
    assert (answer.status, answer.body["field"]) == (422, "partner_inference_id"), answer.body
    assert "too large to send" in answer.body["message"]
    assert stand_in.endpoints[ENDPOINT].calls == 0
    assert container.explanations().budget.spent(model_id, this_hour()) == 0
    # THEN the run passes it by and explains the other
    report = container.explanations().explain_due(model_id, NOW)
    assert (report.explained, report.failed) == (1, 0)
