"""A shadow test from real-format Data Capture files of two variants: both variants' rows kept,
listed with their traffic, given roles, and compared pair by pair against scikit-learn and scipy."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score
from tests import factories
from tests.conftest import Call
from tests.inputs import capture_call
from tests.lake import notifications

from sagewatch import aws as sagewatch_aws
from sagewatch.auth import Role
from sagewatch.container import evaluator
from sagewatch.handlers.ingest import handler
from sagewatch.local.http_bridge import LocalContext

HOUR = "2026/11/25/10"
N = 300


@pytest.fixture
def shadow_test(api: Call, aws: dict[str, str]) -> dict:
    """The same N requests answered by the production variant and by its shadow, labels later."""
    body = factories.binary_probability()
    body["sagemaker"] = {"endpoint_name": "churn-endpoint"}
    model_id = api("POST", "/api/v3/models", body).body["id"]
    rng = np.random.default_rng(11)
    truth = rng.integers(0, 2, N)
    production = np.clip(0.5 + (truth - 0.5) * rng.normal(0.2, 0.35, N), 0, 1)
    shadow = np.clip(0.5 + (truth - 0.5) * rng.normal(0.6, 0.35, N), 0, 1)
    rows = [(int(rng.integers(18, 90)), float(rng.normal(1000, 50)), "north") for _ in range(N)]
    s3 = sagewatch_aws.client("s3")
    for variant, scores in (("AllTraffic", production), ("ShadowVariant", shadow)):
        lines = [
            capture_call(f"req-{i}", ",".join(map(str, rows[i])), f"{scores[i]:.4f}", f"{variant}-{i}")
            for i in range(N)
        ]
        s3.put_object(
            Bucket=aws["capture"],
            Key=f"datacapture/churn-endpoint/{variant}/{HOUR}/capture.jsonl",
            Body=("\n".join(lines) + "\n").encode(),
        )
    assert handler(notifications(aws), LocalContext()) == {"batchItemFailures": []}
    labels = [
        {"partner_inference_id": f"req-{i}", "ground_truth_data": {"churned": int(truth[i])}}
        for i in range(N)
    ]
    assert api("PATCH", f"/api/v3/models/{model_id}/inferences", labels).status == 207
    return {
        "model_id": model_id,
        "truth": truth,
        "production": production,
        "shadow": shadow,
        "bucket": aws["capture"],
        "aws": aws,
    }


def test_both_variants_of_a_shadow_test_are_listed_with_their_traffic(api: Call, shadow_test: dict) -> None:
    variants = api("GET", f"/api/v3/models/{shadow_test['model_id']}/variants").body["data"]
    assert [(v["variant"], v["inferences"], v["share"]) for v in variants] == [
        ("AllTraffic", N, 0.5),
        ("ShadowVariant", N, 0.5),
    ]
    assert all(v["first_inference"].startswith("2026-11-25T10:15") for v in variants)
    status = api("GET", f"/api/v3/models/{shadow_test['model_id']}/inferences/status").body
    assert (status["total"], status["duplicates"]) == (2 * N, 0)  # the same request id, two variants


def test_a_role_is_set_and_one_champion_remains(api: Call, shadow_test: dict) -> None:
    base = f"/api/v3/models/{shadow_test['model_id']}/variants"
    assert api("PUT", f"{base}/AllTraffic", {"role": "champion"}).body["role"] == "champion"
    assert api("PUT", f"{base}/ShadowVariant", {"role": "champion"}).body["role"] == "champion"
    roles = {v["variant"]: v["role"] for v in api("GET", base).body["data"]}
    assert roles == {"AllTraffic": "challenger", "ShadowVariant": "champion"}
    assert api("PUT", f"{base}/Nope", {"role": "shadow"}).status == 404
    assert api("PUT", f"{base}/AllTraffic", {"role": "king"}).status == 400


def test_the_shadow_is_compared_pair_by_pair(api: Call, shadow_test: dict) -> None:
    # GIVEN the shadow test, with the production variant as the champion
    model_id = shadow_test["model_id"]
    api("PUT", f"/api/v3/models/{model_id}/variants/AllTraffic", {"role": "champion"})

    # WHEN the shadow is compared with it
    answer = api("POST", f"/api/v3/models/{model_id}/variants/compare", {"challenger": "ShadowVariant"})

    # THEN every request is paired
    assert answer.status == 200, answer.body
    comparison = answer.body
    assert (comparison["champion"], comparison["paired"], comparison["pairs"]) == ("AllTraffic", True, N)

    # THEN each accuracy is scikit-learn's, the p-value is McNemar's from scipy, and the shadow wins
    truth = shadow_test["truth"]
    right_a = (shadow_test["production"] >= 0.5) == truth
    right_b = (shadow_test["shadow"] >= 0.5) == truth
    accuracy = next(m for m in comparison["metrics"] if m["metric"] == "accuracy")
    assert accuracy["champion"] == pytest.approx(
        accuracy_score(truth, shadow_test["production"] >= 0.5), abs=1e-4
    )
    assert accuracy["challenger"] == pytest.approx(
        accuracy_score(truth, shadow_test["shadow"] >= 0.5), abs=1e-4
    )
    only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    expected = stats.binomtest(min(only_a, only_b), only_a + only_b, 0.5).pvalue
    assert accuracy["p_value"] == pytest.approx(expected, rel=1e-6)
    assert comparison["verdict"] == "challenger better"


def test_a_comparison_names_what_is_wrong(api: Call, shadow_test: dict) -> None:
    base = f"/api/v3/models/{shadow_test['model_id']}/variants/compare"
    no_champion = api("POST", base, {"challenger": "ShadowVariant"})
    assert (no_champion.status, no_champion.body["field"]) == (400, "champion")
    unknown = api("POST", base, {"challenger": "Nope", "champion": "AllTraffic"})
    assert (unknown.status, unknown.body["field"]) == (404, "challenger")
    same = api("POST", base, {"challenger": "AllTraffic", "champion": "AllTraffic"})
    assert (same.status, same.body["field"]) == (400, "challenger")


def test_a_reader_may_compare_but_not_set_roles(api: Call, shadow_test: dict, tokens) -> None:
    base = f"/api/v3/models/{shadow_test['model_id']}/variants"
    reader = tokens[Role.READER]
    body = {"challenger": "ShadowVariant", "champion": "AllTraffic"}
    assert api("POST", f"{base}/compare", body, token=reader).status == 200
    assert api("PUT", f"{base}/AllTraffic", {"role": "champion"}, token=reader).status == 403


def test_a_rule_watches_the_challenger_minus_the_champion(api: Call, shadow_test: dict) -> None:
    """A metric over two variants is the difference of their values; a rule on it alerts."""
    # GIVEN a metric of the shadow's accuracy minus production's, and a rule above 0.1 on it
    model_id = shadow_test["model_id"]
    spec = {
        "name": "accuracy gain of the shadow",
        "query": {"select": [{"function": "accuracyRate"}]},
        "variant_difference": {"champion": "AllTraffic", "challenger": "ShadowVariant"},
    }
    metric = api("POST", f"/api/v3/models/{model_id}/metrics", spec)
    assert metric.status == 201, metric.body
    rule = {"metric_id": metric.body["id"], "bound": "upper", "threshold": 0.1, "lookback_period": 60}
    assert api("POST", f"/api/v3/models/{model_id}/alert_rules", rule).status == 200

    # WHEN the model is evaluated after the hour of traffic closed
    evaluator().clock = lambda: datetime(
        2026, 11, 25, 11, 5, tzinfo=UTC
    )  # the hour of the traffic has closed
    report = evaluator().evaluate_model(model_id)
    assert report.errors == []

    # THEN it alerts with the difference of the two accuracies
    [alert] = [a for a in evaluator().alerts.list(model_id) if a.metric_id == metric.body["id"]]
    truth = shadow_test["truth"]
    gain = accuracy_score(truth, shadow_test["shadow"] >= 0.5) - accuracy_score(
        truth, shadow_test["production"] >= 0.5
    )
    assert alert.metric_value == pytest.approx(gain, abs=1e-4)


def test_a_variant_difference_names_two_variants(api: Call, shadow_test: dict) -> None:
    spec = {
        "name": "nothing",
        "query": {"select": [{"function": "accuracyRate"}]},
        "variant_difference": {"champion": "AllTraffic", "challenger": "AllTraffic"},
    }
    answer = api("POST", f"/api/v3/models/{shadow_test['model_id']}/metrics", spec)
    assert answer.status == 400 and "another variant" in answer.body["message"]


def test_any_query_splits_by_variant(api: Call, shadow_test: dict) -> None:
    body = {
        "select": [{"function": "accuracyRate"}, {"property": "variant"}],
        "group_by": [{"property": "variant"}],
    }
    rows = api("POST", f"/api/v3/models/{shadow_test['model_id']}/inferences/query", body).body[
        "query_result"
    ]
    truth = shadow_test["truth"]
    assert {r["variant"]: r["accuracyRate"] for r in rows} == pytest.approx(
        {
            "AllTraffic": accuracy_score(truth, shadow_test["production"] >= 0.5),
            "ShadowVariant": accuracy_score(truth, shadow_test["shadow"] >= 0.5),
        }
    )


def test_drift_compares_one_variant_with_another(api: Call, shadow_test: dict) -> None:
    """The challenger's predictions against the champion's, on the same window: their PSI."""
    # WHEN the shadow's predictions are compared with production's by PSI
    variant = lambda name: [{"property": "variant", "comparator": "eq", "value": name}]  # noqa: E731
    body = {
        "properties": ["predicted_probability"],
        "metric": "PSI",
        "base": {"source": "inference", "filter": variant("AllTraffic")},
        "target": {"source": "inference", "filter": variant("ShadowVariant")},
    }
    [row] = api("POST", f"/api/v3/models/{shadow_test['model_id']}/inferences/query/data_drift", body).body[
        "query_result"
    ]

    # THEN their scores drifted
    assert row["predicted_probability"] > 0.1  # the shadow is far more confident: its scores moved

    # WHEN production is compared with itself
    same = {**body, "target": {"source": "inference", "filter": variant("AllTraffic")}}
    [row] = api("POST", f"/api/v3/models/{shadow_test['model_id']}/inferences/query/data_drift", same).body[
        "query_result"
    ]

    # THEN there is no drift
    assert row["predicted_probability"] == pytest.approx(0.0, abs=1e-9)


def test_a_rule_filtered_to_one_variant_measures_that_variant(api: Call, shadow_test: dict) -> None:
    # GIVEN the default accuracy metric and a rule on it filtered to production
    model_id = shadow_test["model_id"]
    metrics = api("GET", f"/api/v3/models/{model_id}/metrics?page_size=500").body["metrics"]
    accuracy = next(m for m in metrics if m["name"] == "Accuracy Rate")
    rule = {
        "metric_id": accuracy["id"],
        "bound": "lower",
        "threshold": 0.99,
        "lookback_period": 60,
        "filters": [{"property": "variant", "comparator": "eq", "value": "AllTraffic"}],
    }
    created = api("POST", f"/api/v3/models/{model_id}/alert_rules", rule).body

    # WHEN the model is evaluated after the hour of traffic closed
    evaluator().clock = lambda: datetime(2026, 11, 25, 11, 5, tzinfo=UTC)
    evaluator().evaluate_model(model_id)

    # THEN the alert's value is production's accuracy alone
    [alert] = [a for a in evaluator().alerts.list(model_id) if a.alert_rule_id == created["id"]]
    truth = shadow_test["truth"]
    assert alert.metric_value == pytest.approx(
        accuracy_score(truth, shadow_test["production"] >= 0.5), abs=1e-4
    )


# -- what the probe of variants found ----------------------------------------------------------------


def test_a_window_one_variant_has_no_rows_in_says_not_enough_data(api: Call, shadow_test: dict) -> None:
    """It was a 500: the bootstrap was asked to resample nothing."""
    # GIVEN a third variant with one row on the next day, where production has none
    model_id = shadow_test["model_id"]
    capture = capture_call("solo-1", "40,1000.5,north", "0.9", "Solo-1", "2026-11-26T10:15:00Z")
    sagewatch_aws.client("s3").put_object(
        Bucket=shadow_test["bucket"],
        Key="datacapture/churn-endpoint/Solo/2026/11/26/10/s.jsonl",
        Body=capture.encode(),
    )
    handler(notifications(shadow_test["aws"]), LocalContext())

    # WHEN production and it are compared over that day
    window = {
        "champion": "AllTraffic",
        "challenger": "Solo",
        "start_time": "2026-11-26T00:00:00Z",
        "end_time": "2026-11-27T00:00:00Z",
    }
    answer = api("POST", f"/api/v3/models/{model_id}/variants/compare", window)

    # THEN the answer says there is not enough labelled data
    assert answer.status == 200, answer.body
    assert answer.body["verdict"] == "not enough labelled data"
    assert answer.body["metrics"][0]["champion"] is None


def test_a_reversed_or_empty_window_is_a_400_and_a_wide_one_no_500(api: Call, shadow_test: dict) -> None:
    base = f"/api/v3/models/{shadow_test['model_id']}/variants/compare"
    pair = {"champion": "AllTraffic", "challenger": "ShadowVariant"}
    for start, end in (
        ("2026-11-25T12:00:00Z", "2026-11-25T11:00:00Z"),
        ("2026-11-25T12:00:00Z", "2026-11-25T12:00:00Z"),
    ):
        answer = api("POST", base, {**pair, "start_time": start, "end_time": end})
        assert (answer.status, answer.body["field"]) == (400, "end_time")
    wide = api(
        "POST", base, {**pair, "start_time": "0001-01-01T00:00:00Z", "end_time": "9999-12-31T00:00:00Z"}
    )
    assert wide.status == 200 and wide.body["pairs"] == N


def test_a_variant_named_with_spaces_or_accents_gets_its_role(
    api: Call, shadow_test: dict, aws: dict
) -> None:
    capture = capture_call("odd-1", "40,1000.5,north", "0.9", "odd-e1")
    for variant in ("blue green", "vé"):
        sagewatch_aws.client("s3").put_object(
            Bucket=aws["capture"],
            Key=f"datacapture/churn-endpoint/{variant}/{HOUR}/o.jsonl",
            Body=capture.encode(),
        )
    handler(notifications(aws), LocalContext())
    base = f"/api/v3/models/{shadow_test['model_id']}/variants"
    assert api("PUT", f"{base}/blue%20green", {"role": "shadow"}).body["role"] == "shadow"
    assert api("PUT", f"{base}/v%C3%A9", {"role": "challenger"}).body["role"] == "challenger"


def test_deepchecks_versions_are_variants(api: Call) -> None:
    # GIVEN a Deepchecks model with two versions, each sent five samples
    model = api("POST", "/api/v1/models", {"name": "dc", "task_type": "binary"}).body
    versions = {}
    for name in ("v 1", "v2"):
        body = {"name": name, "features": {"x": "numeric"}, "classes": ["a", "b"]}
        versions[name] = api("POST", f"/api/v1/models/{model['id']}/version", body).body["id"]
    for name, version_id in versions.items():
        samples = [
            {
                "_dc_sample_id": f"{name}-{i}",
                "_dc_time": "2026-11-24T10:00:00Z",
                "x": float(i),
                "_dc_prediction": "a",
            }
            for i in range(5)
        ]
        assert api("POST", f"/api/v1/model-versions/{version_id}/data", samples).status == 200

    # WHEN the model's variants are listed
    listed = api("GET", f"/api/v3/models/{model['id']}/variants").body["data"]

    # THEN each version is a variant with its samples
    assert [(v["variant"], v["inferences"]) for v in listed] == [("v 1", 5), ("v2", 5)]


def test_a_variant_difference_names_variants_that_exist_and_its_rules_filter_on_others(
    api: Call, shadow_test: dict
) -> None:
    model_id = shadow_test["model_id"]

    # WHEN a variant difference names a variant that does not exist
    spec = {
        "name": "gain",
        "query": {"select": [{"function": "accuracyRate"}]},
        "variant_difference": {"champion": "AllTraffic", "challenger": "Shadwo"},
    }
    typo = api("POST", f"/api/v3/models/{model_id}/metrics", spec)

    # THEN the metric is refused, naming the challenger
    assert (typo.status, typo.body["field"]) == (400, "variant_difference.challenger")

    # GIVEN a valid variant difference metric, and a rule on it filtered to one variant
    spec["variant_difference"]["challenger"] = "ShadowVariant"
    metric = api("POST", f"/api/v3/models/{model_id}/metrics", spec).body
    rule = {
        "metric_id": metric["id"],
        "bound": "upper",
        "threshold": 0.1,
        "filters": [{"property": "variant", "comparator": "eq", "value": "AllTraffic"}],
    }

    # WHEN that rule is created
    refused = api("POST", f"/api/v3/models/{model_id}/alert_rules", rule)

    # THEN the rule is refused, naming its filters
    assert (refused.status, refused.body["field"]) == (400, "filters")
