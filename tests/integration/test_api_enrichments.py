"""The enrichments' settings through the real API handler on moto: Arthur's shapes (as the arthurai
SDK reads and writes them), what sagewatch cannot honour refused with what to send instead."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tests import factories
from tests.conftest import Call
from tests.forms import multipart

from sagewatch import aws as sagewatch_aws
from sagewatch.auth import Role
from sagewatch.local.endpoints import create_endpoint

ENRICHMENTS = "/api/v3/models/{}/enrichments"


def _model(api: Call, endpoint: str | None = None) -> str:
    body = factories.binary_probability()
    if endpoint:
        body["sagemaker"] = {"endpoint_name": endpoint}
    return api("POST", "/api/v3/models", body).body["id"]


def _patch_form(api: Call, model_id: str, fields: dict) -> object:
    body, content_type = multipart(fields)
    return api("PATCH", ENRICHMENTS.format(model_id), body, content_type=content_type)


def test_a_new_model_has_anomaly_detection_on_and_waiting_for_reference_data(api: Call) -> None:
    # GIVEN a model just registered, without reference data
    model_id = _model(api)
    # WHEN its enrichments are read
    got = api("GET", ENRICHMENTS.format(model_id))
    # THEN anomaly detection is on but pending, the others off, each with Arthur's status field
    assert got.status == 200
    assert got.body["anomaly_detection"] == {"enabled": True, "status": "Pending", "config": {}}
    assert got.body["hotspots"]["status"] == "Disabled"
    assert got.body["explainability"]["enabled"] is False
    assert got.body["bias_mitigation"]["status"] == "Disabled"
    one = api("GET", ENRICHMENTS.format(model_id) + "/hotspots")
    assert one.status == 200 and one.body["enabled"] is False


def test_the_sdk_form_turns_hotspots_on_and_anomaly_detection_off(api: Call) -> None:
    # GIVEN a model
    model_id = _model(api)
    # WHEN the arthurai SDK's multipart form (a config field holding JSON) changes two enrichments
    changed = _patch_form(
        api,
        model_id,
        {"config": json.dumps({"hotspots": {"enabled": True}, "anomaly_detection": {"enabled": False}})},
    )
    # THEN it is accepted (202) and the change stays
    assert changed.status == 202, changed.body
    after = api("GET", ENRICHMENTS.format(model_id)).body
    assert after["hotspots"] == {"enabled": True, "status": "Ready", "config": {}}
    assert after["anomaly_detection"]["status"] == "Disabled"


def test_explainability_uses_the_models_endpoint_and_translates_arthurs_settings(api: Call) -> None:
    # GIVEN a model served by a SageMaker endpoint its owner tagged for sagewatch
    create_endpoint("churn-endpoint", {"AllTraffic": 1})
    model_id = _model(api, endpoint="churn-endpoint")
    # WHEN explainability is enabled with Arthur's settings (server sizing included)
    config = {
        "explanation_algo": "shap",
        "explanation_nsamples": 500,
        "inference_consumer_score_percent": "0.25",
        "streaming_explainability_enabled": False,
        "python_version": "3.8",
        "model_server_cpu": "2",
        "model_server_num_cpus": "2",
        "inference_consumer_thread_pool_size": 5,
    }
    changed = api(
        "PATCH", ENRICHMENTS.format(model_id) + "/explainability", {"enabled": True, "config": config}
    )
    # THEN the settings are sagewatch's, under both names, and the server sizing is ignored
    assert changed.status == 202, changed.body
    got = api("GET", ENRICHMENTS.format(model_id) + "/explainability").body
    assert got["enabled"] is True and got["status"] == "Ready"
    assert got["config"]["endpoint_name"] == "churn-endpoint"
    assert got["config"]["nsamples"] == got["config"]["explanation_nsamples"] == 500
    assert got["config"]["sample_share"] == 0.25
    assert got["config"]["streaming"] is False
    assert "model_server_cpu" not in got["config"]


def test_what_cannot_be_honoured_is_a_400_that_says_what_to_send(api: Call) -> None:
    model_id = _model(api)
    path = ENRICHMENTS.format(model_id)
    # an uploaded model package (the SDK's enable_explainability): send an endpoint instead
    package = _patch_form(
        api,
        model_id,
        {
            "config": json.dumps({"explainability": {"enabled": True, "config": {"python_version": "3.8"}}}),
            "user_project.zip": ("user_project.zip", b"PK\x03\x04"),
        },
    )
    assert package.status == 400
    assert "SageMaker endpoint" in package.body["message"] and "endpoint_name" in package.body["message"]
    # explainability with no endpoint known
    no_endpoint = api("PATCH", path, {"explainability": {"enabled": True}})
    assert no_endpoint.status == 400
    assert no_endpoint.body["field"] == "explainability.config.endpoint_name"
    # LIME
    lime = api(
        "PATCH",
        path,
        {"explainability": {"enabled": True, "config": {"endpoint_name": "e", "explanation_algo": "lime"}}},
    )
    assert lime.status == 400 and lime.body["field"] == "explainability.config.explanation_algo"
    # a setting that does not exist, a value out of range, an unknown enrichment, bias mitigation
    typo = api("PATCH", path, {"explainability": {"config": {"endpoint_nam": "e"}}})
    assert typo.status == 400 and typo.body["field"] == "explainability.config.endpoint_nam"
    budget = api("PATCH", path, {"explainability": {"config": {"explanations_per_hour": 0}}})
    assert budget.status == 400 and budget.body["field"] == "explainability.config.explanations_per_hour"
    unknown = api("PATCH", path, {"drift_detection": {"enabled": True}})
    assert unknown.status == 400 and unknown.body["field"] == "drift_detection"
    bias = api("PATCH", path, {"bias_mitigation": {"enabled": True}})
    assert bias.status == 400 and "bias mitigation" in bias.body["message"]
    not_json = _patch_form(api, model_id, {"config": "{not json"})
    assert not_json.status == 400 and not_json.body["field"] == "config"
    # wrong types are named, not read as something else
    enabled_text = api("PATCH", path, {"bias_mitigation": {"enabled": "false"}})
    assert (enabled_text.status, enabled_text.body["field"]) == (400, "bias_mitigation.enabled")
    config_false = api("PATCH", path, {"hotspots": {"enabled": True, "config": False}})
    assert (config_false.status, config_false.body["field"]) == (400, "hotspots.config")
    seed = api("PATCH", path, {"explainability": {"config": {"seed": 10**30}}})
    assert (seed.status, seed.body["field"]) == (400, "explainability.config.seed")
    for setting, value in (
        ("explanations_per_hour", True),
        ("explanations_per_hour", "60"),
        ("streaming", "yes"),
    ):
        loose = api("PATCH", path, {"explainability": {"config": {setting: value}}})
        assert (loose.status, loose.body["field"]) == (400, f"explainability.config.{setting}"), (
            setting,
            value,
        )
    # errors name the setting as sent: Arthur's name, or both names of one setting
    arthur = api("PATCH", path, {"explainability": {"config": {"explanation_nsamples": -1}}})
    assert (arthur.status, arthur.body["field"]) == (400, "explainability.config.explanation_nsamples")
    share = api("PATCH", path, {"explainability": {"config": {"inference_consumer_score_percent": "half"}}})
    assert (share.status, share.body["field"]) == (
        400,
        "explainability.config.inference_consumer_score_percent",
    )
    twice = api("PATCH", path, {"explainability": {"config": {"nsamples": 100, "explanation_nsamples": 200}}})
    assert (twice.status, twice.body["field"]) == (400, "explainability.config.explanation_nsamples")
    # nothing refused changed anything
    assert api("GET", path).body["explainability"]["enabled"] is False
    assert api("GET", path + "/sentiment").status == 404


def test_a_reader_may_read_the_enrichments_but_not_change_them(api: Call, tokens: dict) -> None:
    model_id = _model(api)
    path = ENRICHMENTS.format(model_id)
    assert api("GET", path, token=tokens[Role.READER]).status == 200
    assert api("PATCH", path, {"hotspots": {"enabled": True}}, token=tokens[Role.READER]).status == 403


def test_anomaly_detection_is_ready_once_its_detector_is_fitted_and_follows_the_reference(
    api: Call, upload
) -> None:
    # GIVEN a model whose reference set is being uploaded (20 rows, not closed yet)
    model_id = _model(api)
    rng = np.random.default_rng(3)

    def reference(rows: int) -> bytes:
        sink = io.BytesIO()
        frame = {
            "age": rng.integers(18, 90, rows),
            "income": rng.normal(1000, 50, rows),
            "region": rng.choice(["north", "south"], rows),
            "predicted_probability": rng.uniform(0, 1, rows),
            "churned": rng.integers(0, 2, rows),
        }
        pq.write_table(pa.table(frame), sink)
        return sink.getvalue()

    path = f"/api/v3/models/{model_id}/reference_data"

    def status() -> str:
        return api("GET", ENRICHMENTS.format(model_id)).body["anomaly_detection"]["status"]

    assert upload(path, {"reference_data": ("r.parquet", reference(10))}).status == 207
    assert status() == "Pending"  # too few rows to fit on
    assert upload(path, {"reference_data": ("r.parquet", reference(290))}).status == 207
    assert status() == "Training"  # enough rows; fitted when the set closes (or at the next ingest)
    # WHEN the set is closed, THEN the detector is fitted
    assert api("PATCH", path, {"status": "uploaded"}).status == 200
    assert status() == "Ready"
    # WHEN the reference is deleted, THEN anomaly detection waits for a new one
    assert api("DELETE", path).status in (200, 204)
    assert status() == "Pending"


def test_an_endpoint_sagewatch_could_not_call_is_refused_when_explainability_is_set(api: Call) -> None:
    # GIVEN a tagged endpoint with one variant, and an endpoint its owner did not tag
    create_endpoint("churn-endpoint", {"AllTraffic": 1})
    sagewatch_aws.client("sagemaker").create_endpoint(
        EndpointName="private-endpoint", EndpointConfigName="churn-endpoint-config"
    )
    model_id = _model(api)
    path = ENRICHMENTS.format(model_id) + "/explainability"

    def enable(**config: object) -> object:
        return api("PATCH", path, {"enabled": True, "config": config})

    # WHEN explainability names each, THEN what could never be called is refused now, by name
    missing = enable(endpoint_name="no-such-endpoint")
    assert (missing.status, missing.body["field"]) == (404, "explainability.config.endpoint_name")
    untagged = enable(endpoint_name="private-endpoint")
    assert (untagged.status, untagged.body["field"]) == (403, "explainability.config.endpoint_name")
    assert "sagewatch:monitored" in untagged.body["message"]
    variant = enable(endpoint_name="churn-endpoint", variant="Nope")
    assert (variant.status, variant.body["field"]) == (400, "explainability.config.variant")
    assert api("GET", path).body["enabled"] is False
    # a config sent as a JSON string (as the SDK's form holds it) is read as the config
    as_text = api("PATCH", path, {"enabled": True, "config": json.dumps({"endpoint_name": "churn-endpoint"})})
    assert as_text.status == 202, as_text.body
    assert api("GET", path).body["config"]["endpoint_name"] == "churn-endpoint"
