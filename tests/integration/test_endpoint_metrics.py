"""The IT side end to end through moto's CloudWatch and SageMaker: an endpoint of two variants, its
calls, errors and latency as CloudWatch holds them, read back by the API and watched by a rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tests import factories
from tests.conftest import Call

from sagewatch import aws as sagewatch_aws
from sagewatch.container import evaluator
from sagewatch.local.endpoints import create_endpoint

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
# per variant, per minute of the last 30: calls, 5xx errors, model latency in microseconds
TRAFFIC = {"AllTraffic": (100, 0, 20_000), "Challenger": (20, 2, 35_000)}


@pytest.fixture
def endpoint(api: Call, aws: dict[str, str]) -> str:
    create_endpoint("churn-endpoint", {"AllTraffic": 2, "Challenger": 1})
    cloudwatch = sagewatch_aws.client("cloudwatch")
    for variant, (calls, errors, latency) in TRAFFIC.items():
        dimensions = [
            {"Name": "EndpointName", "Value": "churn-endpoint"},
            {"Name": "VariantName", "Value": variant},
        ]
        for minute in range(1, 31):
            moment = NOW - timedelta(minutes=minute)
            cloudwatch.put_metric_data(
                Namespace="AWS/SageMaker",
                MetricData=[
                    {"MetricName": name, "Dimensions": dimensions, "Timestamp": moment, "Value": value}
                    for name, value in (
                        ("Invocations", calls),
                        ("Invocation5XXErrors", errors),
                        ("Invocation4XXErrors", 0),
                        ("ModelLatency", latency),
                        ("OverheadLatency", 1_000),
                    )
                ],
            )
    body = factories.binary_probability()
    body["sagemaker"] = {"endpoint_name": "churn-endpoint"}
    return api("POST", "/api/v3/models", body).body["id"]


def test_the_endpoints_state_and_last_hour_per_variant(api: Call, endpoint: str) -> None:
    health = api("GET", f"/api/v3/models/{endpoint}/endpoint")
    assert health.status == 200, health.body
    assert health.body["status"] == "InService"
    variants = {v["variant"]: v for v in health.body["variants"]}
    assert (variants["AllTraffic"]["instances"], variants["Challenger"]["instances"]) == (2, 1)
    assert variants["AllTraffic"]["invocations"] == 30 * 100
    assert variants["Challenger"]["error_5xx_rate"] == pytest.approx(2 / 20)
    assert variants["AllTraffic"]["error_5xx_rate"] == 0
    assert variants["Challenger"]["model_latency_ms"] == pytest.approx(35.0)


def test_series_by_period_hold_what_cloudwatch_holds(api: Call, endpoint: str) -> None:
    start = (NOW - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    answer = api("GET", f"/api/v3/models/{endpoint}/endpoint/metrics", query=f"period=600&start_time={start}")
    assert answer.status == 200, answer.body
    challenger = answer.body["variants"]["Challenger"]
    assert sum(p["invocations"] for p in challenger) == 30 * 20
    assert all(p["error_5xx_rate"] == pytest.approx(0.1) for p in challenger if p["invocations"])
    assert {round(p["model_latency_ms"], 6) for p in challenger} == {35.0}


def test_a_rule_alerts_on_a_variants_5xx_rate(api: Call, endpoint: str) -> None:
    # GIVEN a metric of the challenger variant's 5xx rate and a rule above 1% on it
    spec = {
        "name": "challenger 5xx rate",
        "query": {},
        "endpoint_metric": {"name": "error_5xx_rate", "variant": "Challenger"},
    }
    metric = api("POST", f"/api/v3/models/{endpoint}/metrics", spec)
    assert metric.status == 201, metric.body
    rule = {"metric_id": metric.body["id"], "bound": "upper", "threshold": 0.01, "lookback_period": 15}
    created = api("POST", f"/api/v3/models/{endpoint}/alert_rules", rule)
    assert created.status == 200, created.body

    # WHEN the model is evaluated
    evaluator().clock = lambda: NOW
    assert evaluator().evaluate_model(endpoint).errors == []

    # THEN it alerts at the challenger's 10%
    alerts = [a for a in evaluator().alerts.list(endpoint) if a.alert_rule_id == created.body["id"]]
    assert alerts and all(a.metric_value == pytest.approx(0.1) for a in alerts)


def test_without_an_endpoint_the_answer_says_what_to_set(api: Call, aws: dict[str, str]) -> None:
    # GIVEN a model with no SageMaker endpoint
    plain = api("POST", "/api/v3/models", factories.binary_probability("no-endpoint")).body["id"]

    # WHEN its endpoint is asked for
    answer = api("GET", f"/api/v3/models/{plain}/endpoint")

    # THEN it is refused, naming the setting to fill in
    assert (answer.status, answer.body["field"]) == (400, "sagemaker.endpoint_name")

    # WHEN an endpoint metric is made for it
    spec = {"name": "calls", "query": {}, "endpoint_metric": {"name": "invocations"}}
    refused = api("POST", f"/api/v3/models/{plain}/metrics", spec)

    # THEN it is refused, naming the endpoint metric
    assert (refused.status, refused.body["field"]) == (400, "endpoint_metric")

    # GIVEN a model naming an endpoint SageMaker does not have
    body = factories.binary_probability("gone")
    body["sagemaker"] = {"endpoint_name": "no-such-endpoint"}
    gone = api("POST", "/api/v3/models", body).body["id"]

    # WHEN its endpoint is asked for THEN it is a 404
    assert api("GET", f"/api/v3/models/{gone}/endpoint").status == 404


def test_an_endpoint_not_tagged_for_sagewatch_is_not_read(api: Call, endpoint: str) -> None:
    """GetMetricData cannot be scoped by IAM: sagewatch reads only endpoints tagged for it."""
    # GIVEN a model on an endpoint not tagged for sagewatch
    sagemaker = sagewatch_aws.client("sagemaker")
    sagemaker.create_endpoint(EndpointName="secret-endpoint", EndpointConfigName="churn-endpoint-config")
    body = factories.binary_probability("secret")
    body["sagemaker"] = {"endpoint_name": "secret-endpoint"}
    model_id = api("POST", "/api/v3/models", body).body["id"]

    # WHEN its health or metrics are read THEN they are refused, naming the tag
    for path in ("endpoint", "endpoint/metrics"):
        answer = api("GET", f"/api/v3/models/{model_id}/{path}")
        assert answer.status == 403 and "sagewatch:monitored" in answer.body["message"], path

    # WHEN an endpoint metric is made on it THEN it is refused too
    spec = {
        "name": "steal",
        "query": {},
        "endpoint_metric": {"name": "error_5xx_rate", "variant": "AllTraffic"},
    }
    assert api("POST", f"/api/v3/models/{model_id}/metrics", spec).status == 403


def test_an_endpoint_metric_names_a_variant_of_the_endpoint(api: Call, endpoint: str) -> None:
    spec = {"name": "nope", "query": {}, "endpoint_metric": {"name": "invocations", "variant": "Nope"}}
    answer = api("POST", f"/api/v3/models/{endpoint}/metrics", spec)
    assert (answer.status, answer.body["field"]) == (400, "endpoint_metric.variant")
    both = {
        **spec,
        "endpoint_metric": {"name": "invocations"},
        "variant_difference": {"champion": "A", "challenger": "B"},
    }
    answer = api("POST", f"/api/v3/models/{endpoint}/metrics", both)
    assert (answer.status, answer.body["field"]) == (400, "endpoint_metric")
