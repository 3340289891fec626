"""`sagewatch local` as a user runs it: a subprocess, local.json, HTTP, the token CLI, Ctrl-C."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests import factories
from tests.inputs import capture_call, records
from tests.local_stack import SERVED_ENDPOINT, cli, http, run_cli, upload_reference

pytestmark = pytest.mark.e2e


def create_token(stack: dict[str, Any], role: str) -> tuple[str, str]:
    output = cli(stack, "token", "create", "--role", role, "--description", f"e2e {role}")
    token = next(line.split(": ", 1)[1] for line in output.splitlines() if line.startswith("token: "))
    return output.split()[0], token


def test_local_json_names_every_resource(stack: dict[str, Any]) -> None:
    from sagewatch.resources import DECLARATION

    assert set(stack["tables"]) == {t.name for t in DECLARATION.tables}
    assert set(stack["buckets"]) == {b.name for b in DECLARATION.buckets}
    assert set(stack["queues"]) == set(stack["queue_urls"]) == {q.name for q in DECLARATION.queues}
    assert stack["api_url"].startswith("http://127.0.0.1:")
    assert stack["aws_endpoint_url"].startswith("http://127.0.0.1:")
    assert oct(Path(stack["state_dir"], "local.json").stat().st_mode & 0o777) == "0o600"


def test_the_emulated_aws_holds_the_declared_resources(stack: dict[str, Any]) -> None:
    import boto3

    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    dynamodb = session.client("dynamodb", endpoint_url=stack["aws_endpoint_url"], region_name=stack["region"])
    s3 = session.client("s3", endpoint_url=stack["aws_endpoint_url"], region_name=stack["region"])
    assert set(stack["tables"].values()) <= set(dynamodb.list_tables()["TableNames"])
    assert set(stack["buckets"].values()) <= {b["Name"] for b in s3.list_buckets()["Buckets"]}


def test_roles_over_http_with_tokens_from_the_cli(stack: dict[str, Any]) -> None:
    # GIVEN the admin token, and a reader and a writer token made with the CLI
    admin = stack["token"]
    _, reader = create_token(stack, "reader")
    writer_id, writer = create_token(stack, "writer")

    # WHEN each creates a model
    status, created = http(stack, "POST", "/api/v3/models", writer, factories.binary_probability("e2e-churn"))

    # THEN the writer may, the reader may not, and no token is a 401
    assert status == 201, created
    assert http(stack, "POST", "/api/v3/models", reader, factories.regression("e2e-denied"))[0] == 403
    assert http(stack, "POST", "/api/v3/models", None, factories.regression("e2e-anonymous"))[0] == 401

    # WHEN it is read, and its partner id used again THEN reader and admin find it, and the reuse is a 409
    status, found = http(stack, "GET", "/api/v3/models/e2e-churn?id_type=partner_model_id", reader)
    assert (status, found["id"]) == (200, created["id"])
    status, listing = http(stack, "GET", "/api/v3/models?page_size=50", admin)
    assert status == 200 and created["id"] in [m["id"] for m in listing["data"]]
    assert http(stack, "POST", "/api/v3/models", admin, factories.binary_probability("e2e-churn"))[0] == 409

    # WHEN tokens are listed THEN the secret is not shown
    listed = cli(stack, "token", "list")
    assert writer_id in listed and writer not in listed

    # WHEN the writer's token is rotated THEN the old secret is refused and the new one works
    rotated = cli(stack, "token", "rotate", writer_id)
    new_writer = next(line.split(": ", 1)[1] for line in rotated.splitlines() if line.startswith("token: "))
    assert http(stack, "GET", "/api/v3/models", writer)[0] == 401
    assert http(stack, "GET", "/api/v3/models", new_writer)[0] == 200

    # WHEN it is revoked THEN it is refused with no hint that it existed
    cli(stack, "token", "revoke", writer_id)
    status, refused = http(stack, "GET", "/api/v3/models", new_writer)
    assert (status, refused["message"]) == (401, "unknown token")  # no hint that it existed


def test_models_cli_reads_through_the_api(stack: dict[str, Any]) -> None:
    status, created = http(
        stack, "POST", "/api/v3/models", stack["token"], factories.regression("e2e-cli-price")
    )
    assert status == 201
    assert "e2e-cli-price" in cli(stack, "models", "list")
    shown = json.loads(cli(stack, "models", "show", "e2e-cli-price", "--json"))
    assert shown["id"] == created["id"]


def test_capture_files_dropped_in_the_bucket_are_ingested_and_counted(stack: dict[str, Any]) -> None:
    import boto3

    # GIVEN a model on a SageMaker endpoint
    body = factories.binary_probability("e2e-capture")
    body["sagemaker"] = {"endpoint_name": "e2e-churn-endpoint"}
    status, model = http(stack, "POST", "/api/v3/models", stack["token"], body)
    assert status == 201, model

    # WHEN three capture files, one corrupted, are dropped in the capture bucket
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    s3 = session.client("s3", endpoint_url=stack["aws_endpoint_url"], region_name=stack["region"])
    events = Path(__file__).resolve().parents[2] / "events" / "capture"
    for name in ("csv_single.jsonl", "json_instances.jsonl", "corrupted.jsonl"):
        s3.put_object(
            Bucket=stack["buckets"]["capture"],
            Key=f"datacapture/e2e-churn-endpoint/AllTraffic/2026/11/25/10/{name}",
            Body=(events / name).read_bytes(),
        )

    # THEN once they are ingested, the status counts their good and bad rows
    deadline = time.monotonic() + 30
    counts: dict[str, Any] = {}
    while time.monotonic() < deadline:
        _, answer = http(stack, "GET", f"/api/v3/models/{model['id']}/inferences/status", stack["token"])
        counts = answer["inferences"]
        if counts["files"] == 3:
            break
        time.sleep(0.5)
    assert counts == {
        "ingested": 9,
        "rejected": 6,
        "files": 3,
        "latest_timestamp": "2026-11-25T16:00:06+00:00",
    }


def test_a_batch_sent_by_file_closed_then_labelled_by_a_parquet_drop(stack: dict[str, Any]) -> None:
    import io
    import uuid

    import pyarrow as pa
    import pyarrow.parquet as pq

    # GIVEN a batch model
    body = factories.edited(factories.binary_probability("e2e-batchy"), is_batch=True)
    status, model = http(stack, "POST", "/api/v3/models", stack["token"], body)
    assert status == 201, model

    def parquet(table: pa.Table) -> bytes:
        sink = io.BytesIO()
        pq.write_table(table, sink)
        return sink.getvalue()

    # WHEN a batch of four rows is uploaded as a Parquet file
    batch = pa.table(
        {
            "partner_inference_id": [f"row-{i}" for i in range(4)],
            "age": [20, 30, 40, 50],
            "income": [1.0, 2.0, 3.0, 4.0],
            "region": ["north", "south", "north", "south"],
            "predicted_probability": [0.1, 0.6, 0.3, 0.9],
        }
    )
    boundary = uuid.uuid4().hex
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="batch_id"\r\n\r\nnightly-1\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="inference_data"; filename="b.parquet"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + parquet(batch)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"{stack['api_url']}/api/v3/models/{model['id']}/inferences/file",
        data=form,
        method="POST",
        headers={
            "Authorization": f"Bearer {stack['token']}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        # THEN all four are accepted
        assert response.status == 207
        assert json.loads(response.read())["counts"] == {"success": 4, "failure": 0, "total": 4}

    # WHEN the batch is closed, declaring four rows THEN it is complete
    status, closed = http(
        stack,
        "PATCH",
        f"/api/v3/models/{model['id']}/batches/nightly-1",
        stack["token"],
        {"status": "uploaded", "total_record_count": 4},
    )
    assert (status, closed["status"], closed["ingested"], closed["complete"]) == (200, "uploaded", 4, True)

    # WHEN three of the rows are labelled
    # ground truth for three of the four, as a Parquet file PUT to a presigned upload URL
    status, upload = http(
        stack,
        "POST",
        f"/api/v3/models/{model['id']}/inferences/upload_url",
        stack["token"],
        {"kind": "ground_truth"},
    )
    assert status == 200, upload
    truth = pa.table({"partner_inference_id": ["row-0", "row-1", "row-3"], "churned": [0, 1, 1]})
    # (urllib would label the body a form, which moto's server then waits to read as one)
    put = urllib.request.Request(
        upload["url"], data=parquet(truth), method="PUT", headers={"Content-Type": "application/octet-stream"}
    )
    with urllib.request.urlopen(put, timeout=30) as response:
        assert response.status == 200

    # THEN once ingested, three of the four are labelled and nothing is a duplicate
    deadline = time.monotonic() + 30
    answer: dict[str, Any] = {}
    while time.monotonic() < deadline:
        _, answer = http(stack, "GET", f"/api/v3/models/{model['id']}/inferences/status", stack["token"])
        if answer["ground_truth"]["ingested"] == 3:
            break
        time.sleep(0.5)
    assert (answer["total"], answer["with_ground_truth"], answer["labelled_ratio"]) == (4, 3, 0.75)
    assert (answer["inferences"]["ingested"], answer["ground_truth"]["ingested"], answer["duplicates"]) == (
        4,
        3,
        0,
    )


def test_a_daily_series_by_region_and_psi_from_reference_over_http(stack: dict[str, Any]) -> None:

    # GIVEN a model with two days of inferences, one region a day, and a reference set
    status, model = http(
        stack, "POST", "/api/v3/models", stack["token"], factories.binary_probability("e2e-query")
    )
    assert status == 201, model
    status, sent = http(
        stack,
        "POST",
        f"/api/v3/models/{model['id']}/inferences",
        stack["token"],
        records(200, seed=7, shift=200),
    )
    assert (status, sent["counts"]["failure"]) == (207, 0)
    reference = [{**r["inference_data"], **r["ground_truth_data"]} for r in records(300, seed=8)]
    assert upload_reference(stack, model["id"], reference) == 207

    # WHEN a daily count by region is queried
    status, series = http(
        stack,
        "POST",
        f"/api/v3/models/{model['id']}/inferences/query",
        stack["token"],
        {
            "select": [
                {"function": "roundTimestamp", "alias": "day", "parameters": {"time_interval": "day"}},
                {"property": "region"},
                {"function": "count"},
                {"function": "accuracyRate"},
            ],
            "group_by": [{"alias": "day"}, {"property": "region"}],
        },
    )

    # THEN each day holds its region's rows
    assert status == 200, series
    assert [(r["day"][:10], r["region"], r["count"]) for r in series["query_result"]] == [
        ("2026-11-25", "north", 100),
        ("2026-11-26", "south", 100),
    ]

    # WHEN one region is compared with the reference by PSI
    status, drift = http(
        stack,
        "POST",
        f"/api/v3/models/{model['id']}/inferences/query/data_drift",
        stack["token"],
        {
            "properties": ["income", "age"],
            "metric": "PSI",
            "base": {"source": "reference"},
            "target": {
                "source": "inference",
                "filter": [{"property": "region", "comparator": "eq", "value": "south"}],
            },
        },
    )

    # THEN income drifted and age did not
    assert status == 200, drift
    [row] = drift["query_result"]
    assert row["income"] > 1.0 and row["age"] < 0.5


def test_drift_in_capture_files_raises_an_alert_and_an_email(stack: dict[str, Any]) -> None:
    from datetime import UTC, datetime, timedelta

    import numpy as np

    # GIVEN a model on an endpoint with a reference, a day-long critical PSI rule and an email
    body = factories.binary_probability("e2e-alerts")
    body["sagemaker"] = {"endpoint_name": "e2e-alerts-endpoint"}
    status, model = http(stack, "POST", "/api/v3/models", stack["token"], body)
    assert status == 201, model
    reference = [{**r["inference_data"], **r["ground_truth_data"]} for r in records(500, seed=11)]
    upload_reference(stack, model["id"], reference)
    _, metrics = http(
        stack, "GET", f"/api/v4/models/{model['id']}/metrics?metric_name=PSI%20income", stack["token"]
    )
    # a day-long window: yesterday (UTC) is complete whenever the test runs
    status, rule = http(
        stack,
        "POST",
        f"/api/v3/models/{model['id']}/alert_rules",
        stack["token"],
        {
            "metric_id": metrics["metrics"][0]["id"],
            "bound": "upper",
            "threshold": 0.3,
            "severity": "critical",
            "lookback_period": 1440,
            "name": "income drifted",
        },
    )
    assert status == 200, rule
    status, _ = http(
        stack,
        "POST",
        "/api/v3/alert_notification_configurations",
        stack["token"],
        {"model_id": model["id"], "type": "email", "destination": "oncall@example.com"},
    )
    assert status == 201

    # the endpoint's traffic yesterday, with income moved by +3 standard deviations
    yesterday = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=1)
    rng = np.random.default_rng(12)
    lines = []
    for i in range(300):
        data_in = f"{rng.integers(18, 90)},{rng.normal(1300, 100):.2f},{['north', 'south'][i % 2]}"
        lines.append(
            json.dumps(
                {
                    "captureData": {
                        "endpointInput": {
                            "observedContentType": "text/csv",
                            "mode": "INPUT",
                            "data": data_in,
                            "encoding": "CSV",
                        },
                        "endpointOutput": {
                            "observedContentType": "text/csv",
                            "mode": "OUTPUT",
                            "data": f"{rng.random():.3f}",
                            "encoding": "CSV",
                        },
                    },
                    "eventMetadata": {
                        "eventId": f"alert-{i}",
                        "inferenceTime": (yesterday + timedelta(seconds=i)).isoformat(),
                    },
                    "eventVersion": "0",
                }
            )
        )

    # WHEN that traffic is dropped as a capture file, ingested, and the model evaluated
    import boto3

    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    s3 = session.client("s3", endpoint_url=stack["aws_endpoint_url"], region_name=stack["region"])
    s3.put_object(
        Bucket=stack["buckets"]["capture"],
        Key=f"datacapture/e2e-alerts-endpoint/AllTraffic/{yesterday:%Y/%m/%d/%H}/drifted.jsonl",
        Body=("\n".join(lines) + "\n").encode(),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _, status_now = http(stack, "GET", f"/api/v3/models/{model['id']}/inferences/status", stack["token"])
        if status_now["inferences"]["ingested"] == 300:
            break
        time.sleep(0.5)
    assert status_now["inferences"]["ingested"] == 300

    evaluated = cli(stack, "evaluate", "--now", "--model", "e2e-alerts")
    assert evaluated.startswith("e2e-alerts: ")

    # THEN one critical alert covers yesterday
    deadline = time.monotonic() + 30
    alerts: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not alerts:  # the timer (every 3 s) may have raised it first
        _, listed = http(
            stack, "GET", f"/api/v3/alerts?model_id={model['id']}&alert_rule_id={rule['id']}", stack["token"]
        )
        alerts = listed["data"]
        time.sleep(0.5)
    [alert] = alerts
    assert alert["severity"] == "critical" and alert["metric_value"] > 0.3
    assert alert["window_start"].startswith(f"{yesterday:%Y-%m-%d}T00:00:00")

    # THEN one email to on-call names the rule and the alert
    deadline = time.monotonic() + 30
    emails: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not emails:
        data = json.loads(urllib.request.urlopen(f"{stack['aws_endpoint_url']}/moto-api/data.json").read())
        emails = [m for m in data["ses"]["Message"] if "income drifted" in m["subject"]]
        time.sleep(0.5)
    [email] = emails
    assert email["destinations"]["ToAddresses"] == ["oncall@example.com"]
    assert email["subject"] == "[sagewatch] CRITICAL: e2e-alerts - income drifted"
    assert alert["id"] in email["body"]


def test_cli_status_and_alerts_for_people_and_scripts(stack: dict[str, Any]) -> None:
    # GIVEN the model e2e-alerts and its alert, from the test above
    # WHEN its status is asked for THEN it is printed as a table and as JSON
    table = cli(stack, "status", "e2e-alerts")
    assert table.splitlines()[0].split() == ["kind", "ingested", "rejected", "files", "latest_timestamp"]
    assert table.splitlines()[1].split()[:3] == ["inferences", "300", "0"]
    status = json.loads(cli(stack, "status", "e2e-alerts", "--json"))
    assert status["inferences"]["ingested"] == 300

    # WHEN its new alerts are listed THEN as JSON and as a table
    [alert] = json.loads(cli(stack, "alerts", "list", "--model", "e2e-alerts", "--status", "new", "--json"))
    assert alert["rule_name"] == "income drifted"
    listed = cli(stack, "alerts", "list", "--model", "e2e-alerts")
    assert listed.splitlines()[0].split()[:3] == ["id", "severity", "status"] and alert["id"] in listed

    # WHEN the alert is acknowledged THEN it is no longer new
    cli(stack, "alerts", "set", alert["id"], "acknowledged")
    assert (
        json.loads(cli(stack, "alerts", "list", "--model", "e2e-alerts", "--status", "new", "--json")) == []
    )
    assert "acknowledged" in cli(stack, "alerts", "show", alert["id"])

    # WHEN a model is unknown or an option misused THEN the CLI exits 1 or 2
    missing = run_cli(stack, "status", "no-such-model")
    assert missing.returncode == 1 and "no model with partner_model_id 'no-such-model'" in missing.stderr
    misused = run_cli(stack, "alerts", "list", "--status", "maybe")
    assert misused.returncode == 2


def test_variants_and_compare_on_the_command_line(stack: dict[str, Any]) -> None:
    """A shadow test's two variants, listed and given roles, and compared, through `sagewatch`."""
    # GIVEN a model on an endpoint whose two variants answered 60 requests, right 40 and 58 times, and labels
    import boto3

    body = factories.binary_probability("e2e-shadow")
    body["sagemaker"] = {"endpoint_name": "e2e-shadow-endpoint"}
    _, model = http(stack, "POST", "/api/v3/models", stack["token"], body)
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    s3 = session.client("s3", endpoint_url=stack["aws_endpoint_url"], region_name=stack["region"])
    truth = [i % 2 for i in range(60)]
    for variant, right in (("AllTraffic", 40), ("ShadowVariant", 58)):  # right on the first `right` requests
        lines = [
            capture_call(
                f"q{i}",
                "40,1000.5,north",
                "0.9" if (truth[i] == 1) == (i < right) else "0.1",
                f"{variant}{i}",
            )
            for i in range(60)
        ]
        s3.put_object(
            Bucket=stack["buckets"]["capture"],
            Key=f"datacapture/e2e-shadow-endpoint/{variant}/2026/11/25/10/c.jsonl",
            Body=("\n".join(lines) + "\n").encode(),
        )
    labels = [
        {"partner_inference_id": f"q{i}", "ground_truth_data": {"churned": truth[i]}} for i in range(60)
    ]
    http(stack, "PATCH", f"/api/v3/models/{model['id']}/inferences", stack["token"], labels)

    # WHEN the capture files are ingested
    deadline = time.monotonic() + 30
    while "ShadowVariant" not in cli(stack, "variants", "e2e-shadow"):
        assert time.monotonic() < deadline, "the capture files were not ingested"
        time.sleep(0.5)

    # WHEN production is made the champion THEN the listing shows it with its share
    listing = cli(stack, "variants", "e2e-shadow", "--role", "AllTraffic", "champion")
    assert "AllTraffic" in listing and "champion" in listing and "50.0%" in listing

    # WHEN the shadow is compared with it THEN it is paired and better, with exact accuracies in JSON
    compared = cli(stack, "compare", "e2e-shadow", "--challenger", "ShadowVariant")
    assert "paired on 60 requests" in compared
    assert "verdict: challenger better" in compared  # 58 of 60 right against 40 of 60, McNemar p < 0.001
    as_json = json.loads(cli(stack, "compare", "e2e-shadow", "--challenger", "ShadowVariant", "--json"))
    accuracy = next(m for m in as_json["metrics"] if m["metric"] == "accuracy")
    assert (accuracy["champion"], accuracy["challenger"]) == (40 / 60, 58 / 60)


def test_a_served_endpoint_explains_an_inference_over_http(stack: dict[str, Any]) -> None:

    from tests.endpoint_model import predict

    # GIVEN a model served by the endpoint the stack serves (--serve-endpoint), with reference data
    body = {**factories.binary_probability("e2e-explained"), "sagemaker": {"endpoint_name": SERVED_ENDPOINT}}
    status, model = http(stack, "POST", "/api/v3/models", stack["token"], body)
    assert status == 201, model
    sent = records(20, seed=21)
    assert http(stack, "POST", f"/api/v3/models/{model['id']}/inferences", stack["token"], sent)[0] == 207
    reference = [{**r["inference_data"], **r["ground_truth_data"]} for r in records(200, seed=22)]
    assert upload_reference(stack, model["id"], reference) == 207

    # WHEN explainability is turned on (the endpoint exists, tagged) and an explanation is asked for
    status, changed = http(
        stack,
        "PATCH",
        f"/api/v3/models/{model['id']}/enrichments/explainability",
        stack["token"],
        {"enabled": True, "config": {"streaming": False, "background_rows": 20}},
    )
    assert status == 202, changed
    first = sent[0]
    status, explained = http(
        stack,
        "GET",
        f"/api/v3/models/{model['id']}/inferences/{first['partner_inference_id']}/explanation"
        f"?inference_date={first['inference_timestamp'][:10]}",
        stack["token"],
    )

    # THEN the attributions add up to what the served function predicts for the row
    assert status == 200, explained
    scores = explained["explanation"][0]["importance_scores"]
    data = first["inference_data"]
    own = predict(np.array([[data["age"], data["income"], data["region"]]], dtype=object))[0]
    total = sum(s["explanation_value"] for s in scores) + explained["expected_value"][0]["expected_value"]
    assert total == pytest.approx(own, abs=1e-6)


def test_ctrl_c_stops_cleanly_and_removes_local_json(stack: dict[str, Any]) -> None:
    process = stack["process"]
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)
    output = Path(stack["state_dir"], "stack.log").read_text()
    assert process.returncode == 0, output
    assert "sagewatch local stopped" in output
    assert not Path(stack["state_dir"], "local.json").exists()
