"""Metrics, alert rules and notification configurations through the API."""

from __future__ import annotations

from tests.conftest import Call
from tests.inputs import register

from sagewatch.auth import Role
from sagewatch.container import token_store


def test_default_metrics_exist_for_every_model_and_filter(api: Call) -> None:
    model_id = register(api)
    listed = api("GET", f"/api/v4/models/{model_id}/metrics", query="expand=type&page_size=100").body
    names = {m["name"]: m for m in listed["metrics"]}
    assert {
        "Inference Count",
        "Average predicted_probability",
        "Accuracy Rate",
        "Null Rate age",
        "PSI income",
    } <= set(names)
    assert all(m["is_default"] for m in listed["metrics"])
    assert names["PSI income"]["type"] == "model_data_drift_metric"
    assert names["PSI income"]["endpoint"].endswith("/inferences/query/data_drift")
    drift = api("GET", f"/api/v3/models/{model_id}/metrics", query="type=model_data_drift_metric").body
    # PSI per input, and Input Drift for the model as a whole (no attribute)
    assert {m["attribute"] for m in drift["metrics"]} == {"age", "income", "region", None}
    assert names["Input Drift"]["attribute"] is None
    by_attribute = api(
        "GET", f"/api/v4/models/{model_id}/metrics", query="attribute_name=age&default=true"
    ).body
    assert sorted(m["name"] for m in by_attribute["metrics"]) == ["Null Rate age", "PSI age"]
    paged = api("GET", f"/api/v4/models/{model_id}/metrics", query="page=2&page_size=3").body
    assert (paged["page"], len(paged["metrics"]), paged["total_count"]) == (2, 3, listed["total_count"])


def test_custom_metrics_are_checked_by_running_them(api: Call) -> None:
    model_id = register(api)
    created = api(
        "POST",
        f"/api/v4/models/{model_id}/metrics",
        {
            "name": "North share",
            "query": {
                "select": [
                    {
                        "function": "rate",
                        "parameters": {"property": "region", "comparator": "eq", "value": "north"},
                    }
                ]
            },
            "endpoint": f"/api/v3/models/{model_id}/inferences/query",
        },
    )
    assert created.status == 201, created.body
    assert (created.body["type"], created.body["is_default"]) == ("model_output_metric", False)
    fetched = api("GET", f"/api/v4/models/{model_id}/metrics/{created.body['id']}")
    assert fetched.body["name"] == "North share"

    two = api(
        "POST",
        f"/api/v4/models/{model_id}/metrics",
        {
            "name": "two values",
            "query": {
                "select": [{"function": "count"}, {"function": "avg", "parameters": {"property": "age"}}]
            },
        },
    )
    assert (two.status, two.body["field"]) == (400, "query")
    assert "one number" in two.body["message"]
    unknown = api(
        "POST",
        f"/api/v4/models/{model_id}/metrics",
        {"name": "bad", "query": {"select": [{"function": "median"}]}},
    )
    assert unknown.status == 400 and "unknown function 'median'" in unknown.body["message"]
    grouped = api(
        "POST",
        f"/api/v3/models/{model_id}/metrics",
        {
            "name": "grouped",
            "query": {
                "select": [{"property": "region"}, {"function": "count"}],
                "group_by": [{"property": "region"}],
            },
        },
    )
    assert (grouped.status, grouped.body["message"]) == (
        400,
        "a metric returns one value: no group_by or rollup",
    )

    assert api("DELETE", f"/api/v4/models/{model_id}/metrics/{created.body['id']}").status == 204
    assert api("GET", f"/api/v4/models/{model_id}/metrics/{created.body['id']}").status == 404


def test_alert_rules_crud_with_generated_names_and_defaults(api: Call) -> None:
    model_id = register(api)
    metrics = api("GET", f"/api/v4/models/{model_id}/metrics", query="metric_name=PSI income").body["metrics"]
    created = api(
        "POST",
        f"/api/v3/models/{model_id}/alert_rules",
        {"metric_id": metrics[0]["id"], "bound": "upper", "threshold": 0.25},
    )
    assert created.status == 200, created.body
    rule = created.body
    assert rule["name"] == "PSI income above 0.25"
    assert (
        rule["severity"],
        rule["lookback_period"],
        rule["subsequent_alert_wait_time"],
        rule["enabled"],
    ) == ("warning", 5, 0, True)
    patched = api(
        "PATCH",
        f"/api/v3/models/{model_id}/alert_rules/{rule['id']}",
        {"threshold": 0.4, "enabled": False, "severity": "critical"},
    )
    assert (patched.body["threshold"], patched.body["enabled"], patched.body["severity"]) == (
        0.4,
        False,
        "critical",
    )
    listed = api("GET", f"/api/v3/models/{model_id}/alert_rules", query="page=1&page_size=10").body
    assert [r["id"] for r in listed["data"]] == [rule["id"]]
    assert listed["data"][0]["alert_counts"] == {"new": 0, "acknowledged": 0, "resolved": 0}
    in_use = api("DELETE", f"/api/v4/models/{model_id}/metrics/{metrics[0]['id']}")
    assert in_use.status == 400
    assert api("DELETE", f"/api/v3/models/{model_id}/alert_rules/{rule['id']}").status == 204
    assert api("GET", f"/api/v3/models/{model_id}/alert_rules/{rule['id']}").status == 404


def test_sliding_windows_are_refused_for_metrics_that_wait_for_labels(api: Call) -> None:
    # GIVEN a model's accuracy and input drift metrics
    model_id = register(api)
    metrics = {
        m["name"]: m["id"]
        for m in api("GET", f"/api/v4/models/{model_id}/metrics", query="page_size=100").body["metrics"]
    }
    rules = f"/api/v3/models/{model_id}/alert_rules"

    # WHEN a sliding rule is asked on accuracy, THEN a 400 naming window_mode
    refused = api(
        "POST",
        rules,
        {"metric_id": metrics["Accuracy Rate"], "bound": "lower", "threshold": 0.8, "window_mode": "sliding"},
    )
    assert (refused.status, refused.body["field"]) == (400, "window_mode")
    assert "ground truth" in refused.body["message"]

    # WHEN a sliding rule is asked on input drift, THEN it is made
    made = api(
        "POST",
        rules,
        {"metric_id": metrics["Input Drift"], "bound": "lower", "threshold": 1e-4, "window_mode": "sliding"},
    )
    assert made.status == 200 and made.body["window_mode"] == "sliding"

    # WHEN a rule on the p-value could never fire, THEN a 400 naming threshold
    for bound, threshold in (("lower", 0), ("lower", -1), ("upper", 1.5)):
        never = api(
            "POST", rules, {"metric_id": metrics["Input Drift"], "bound": bound, "threshold": threshold}
        )
        assert (never.status, never.body["field"]) == (400, "threshold"), (bound, threshold)

    # WHEN a sliding window would look back less than the 5-minute schedule, THEN a 400 naming lookback_period
    short = api(
        "POST",
        rules,
        {
            "metric_id": metrics["Input Drift"],
            "bound": "lower",
            "threshold": 1e-4,
            "window_mode": "sliding",
            "lookback_period": 3,
        },
    )
    assert (short.status, short.body["field"]) == (400, "lookback_period")

    # WHEN an aligned accuracy rule is patched to sliding, THEN the same 400, and the rule is unchanged
    aligned = api(
        "POST", rules, {"metric_id": metrics["Accuracy Rate"], "bound": "lower", "threshold": 0.8}
    ).body
    patched = api("PATCH", f"{rules}/{aligned['id']}", {"window_mode": "sliding"})
    assert (patched.status, patched.body["field"]) == (400, "window_mode")
    assert api("GET", f"{rules}/{aligned['id']}").body["window_mode"] == "aligned"


def test_rules_refuse_unknown_metrics_and_bad_fields(api: Call) -> None:
    model_id = register(api)
    unknown = api(
        "POST",
        f"/api/v3/models/{model_id}/alert_rules",
        {"metric_id": "nope", "bound": "upper", "threshold": 1},
    )
    assert (unknown.status, unknown.body["field"]) == (404, "metric_id")
    bad = api(
        "POST",
        f"/api/v3/models/{model_id}/alert_rules",
        {"metric_id": "nope", "bound": "sideways", "threshold": 1},
    )
    assert (bad.status, bad.body["field"]) == (400, "bound")


def test_notification_configurations_belong_to_their_writer(api: Call, tokens: dict) -> None:
    model_id = register(api)
    body = {"model_id": model_id, "type": "email", "destination": "team@example.com"}
    created = api("POST", "/api/v3/alert_notification_configurations", body)
    assert created.status == 201, created.body
    config_id = created.body["id"]
    assert (
        api(
            "POST", "/api/v3/alert_notification_configurations", {**body, "destination": "not an address"}
        ).body["field"]
        == "destination"
    )
    assert (
        api(
            "POST",
            "/api/v3/alert_notification_configurations",
            {**body, "type": "webhook", "destination": "ftp://x"},
        ).status
        == 400
    )

    _, other_writer = token_store().create(Role.WRITER, "another team")
    refused = api(
        "PATCH",
        f"/api/v3/alert_notification_configurations/{config_id}",
        {"enabled": False},
        token=other_writer,
    )
    assert refused.status == 403
    mine = api("PATCH", f"/api/v3/alert_notification_configurations/{config_id}", {"enabled": False})
    assert mine.status == 200 and mine.body["enabled"] is False
    assert (
        api(
            "GET",
            "/api/v3/alert_notification_configurations",
            query=f"model_id={model_id}",
            token=tokens[Role.READER],
        ).body["total_count"]
        == 1
    )
    assert (
        api(
            "DELETE", f"/api/v3/alert_notification_configurations/{config_id}", token=tokens[Role.ADMIN]
        ).status
        == 204
    )
    assert api("GET", f"/api/v3/alert_notification_configurations/{config_id}").status == 404
