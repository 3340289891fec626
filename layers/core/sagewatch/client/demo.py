"""`sagewatch demo`: a monitored model goes wrong and an alert arrives, on the local stack.

The story, in simulated hours that end at the last full hour:
1. A breast-cancer classifier (a logistic regression on scikit-learn's bundled Wisconsin data, no
   download) is registered from its reference data, which is uploaded too.
2. A simulated SageMaker endpoint serves it: real Data Capture files (CSV and JSON payloads, calls
   of one to three rows, some with inferenceIds) land in the local capture bucket, an hour a file.
   One call of the second hour is a unit mix-up (every measurement ten times too large).
3. Half-way, a covariate shift: a new scanner reports `worst_texture` twice as large; the model's
   answers drift and its accuracy falls.
4. The evaluator runs: the default Input Drift rule (one for all 30 inputs, its threshold a
   false-alarm rate at the window's size) catches the drift and names the shifted input; the
   accuracy rule waits for labels.
5. Ground truth arrives late, as a Model Monitor ground-truth file; the evaluator runs again and the
   accuracy rule fires. Alerts are emailed through (local) SES.
Then it prints ingestion counts, accuracy and PSI per hour, the alerts and the email.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sagewatch import aws
from sagewatch.client import SageWatch
from sagewatch.handlers.scheduler import schedule
from sagewatch.local.endpoints import STAND_INS, create_endpoint
from sagewatch.local.runtime import LocalRuntime

PARTNER_MODEL_ID = "breast-cancer-classifier"
CHAMPION, CHALLENGER = "AllTraffic", "Challenger"
CHALLENGER_SHARE = 4  # the challenger gets one call for every CHALLENGER_SHARE the champion gets
ENDPOINT_NAME = "breast-cancer-endpoint"
SHIFTED_FEATURE = "worst_texture"
SHIFT_FACTOR = 2.0
ACCURACY_THRESHOLD = 0.85
# A unit mix-up before the shift: the production call of this hour and number reports every
# measurement GLITCH_FACTOR times too large; the anomaly detector should single it out.
GLITCH_CALL = (1, 0)
GLITCH_FACTOR = 10.0
ONCALL = "ml-oncall@example.com"


def _dataset(seed: int = 7) -> tuple[pd.DataFrame, pd.Series, Any, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer(as_frame=True)
    features = data.data.set_axis([c.replace(" ", "_") for c in data.data.columns], axis=1)
    malignant = (data.target == 0).astype(int)  # scikit-learn codes malignant as 0
    order = np.random.default_rng(seed).permutation(len(features))
    reference, production = order[:340], order[340:]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed))
    model.fit(features.iloc[reference], malignant.iloc[reference])
    return features, malignant, model, reference, production


def _challenger(seed: int = 7) -> Any:
    """The challenger: the same pipeline trained without SHIFTED_FEATURE, so the new scanner's
    doubling of it cannot mislead it (rows go to it whole; it drops the column itself)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, malignant, _, reference, _ = _dataset(seed)
    keep = [c for c in features.columns if c != SHIFTED_FEATURE]
    model = make_pipeline(
        ColumnTransformer([("kept", StandardScaler(), keep)]),
        LogisticRegression(max_iter=1000, random_state=seed),
    )
    return model.fit(features.iloc[reference], malignant.iloc[reference])


def breast_cancer_reference(seed: int = 7) -> pd.DataFrame:
    """The reference set: the training rows, the model's malignant probability, the true diagnosis."""
    features, malignant, model, reference, _ = _dataset(seed)
    frame = features.iloc[reference].reset_index(drop=True)
    frame["malignant_probability"] = model.predict_proba(features.iloc[reference])[:, 1]
    frame["diagnosis"] = malignant.iloc[reference].to_numpy()
    return frame


@dataclass
class Call:
    """One request to the endpoint: its rows, the model's answers, the truth, when and how."""

    event_id: str
    inference_id: str | None
    time: datetime
    rows: list[list[float]]
    probabilities: list[float]
    labels: list[int]
    as_json: bool

    @property
    def partner_ids(self) -> list[str]:
        """Each row's partner_inference_id: the inference id (else event id), with _<i> for several rows."""
        base = self.inference_id or self.event_id
        return [base] if len(self.rows) == 1 else [f"{base}_{i}" for i in range(len(self.rows))]


@dataclass
class Simulation:
    """The endpoint's simulated traffic: calls by hour, for `hours` hours from `start`."""

    start: datetime
    hours: int
    columns: list[str]
    calls: dict[int, list[Call]] = field(default_factory=dict)
    challenger_calls: dict[int, list[Call]] = field(default_factory=dict)

    def shifted(self, hour: int) -> bool:
        """Whether the hour is in the second half, where the scanner's shift applies."""
        return hour >= self.hours // 2

    def hour_start(self, hour: int) -> datetime:
        """When the hour starts."""
        return self.start + timedelta(hours=hour)


def simulate(hours: int, calls_per_hour: int, end: datetime, seed: int = 7) -> Simulation:
    """The endpoint's traffic for `hours` hours ending at `end` (shifted in the second half): the
    production model's calls, and the challenger's own share (other requests, an A/B split), drawn
    from their own random streams so the production calls do not depend on the challenger's."""
    features, _, model, _, _ = _dataset(seed)
    simulation = Simulation(end - timedelta(hours=hours), hours, list(features.columns))
    simulation.calls = _traffic(simulation, model, calls_per_hour, np.random.default_rng(seed + 1), seed, "")
    simulation.challenger_calls = _traffic(
        simulation,
        _challenger(seed),
        calls_per_hour // CHALLENGER_SHARE,
        np.random.default_rng(seed + 2),
        seed,
        "c",
    )
    return simulation


def _traffic(
    simulation: Simulation, model: Any, calls_per_hour: int, rng: np.random.Generator, seed: int, prefix: str
) -> dict[int, list[Call]]:
    """A variant's calls by hour: rows drawn from the reference (so traffic before the shift looks like
    the training data; one to three rows a call), shifted in the second half, answered by `model`; a
    third of the production calls carry an inferenceId."""
    features, malignant, _, reference_rows, _ = _dataset(seed)
    shift = features.columns.get_loc(SHIFTED_FEATURE)
    by_hour = {}
    for hour in range(simulation.hours):
        calls = []
        for number in range(calls_per_hour):
            picked = rng.choice(reference_rows, size=int(rng.choice([1, 1, 2, 3])))
            rows = features.iloc[picked].to_numpy(copy=True)
            if simulation.shifted(hour):
                rows[:, shift] *= SHIFT_FACTOR
            if not prefix and (hour, number) == GLITCH_CALL:
                rows *= GLITCH_FACTOR
            probabilities = model.predict_proba(pd.DataFrame(rows, columns=features.columns))[:, 1]
            moment = simulation.hour_start(hour) + timedelta(seconds=float(rng.uniform(0, 3599)))
            calls.append(
                Call(
                    event_id=f"{prefix}{hour:02d}{number:04d}-5c1e-4b2a-9f00-{rng.integers(1 << 40):012x}",
                    inference_id=f"request-{hour}-{number}" if number % 3 == 0 and not prefix else None,
                    time=moment,
                    rows=np.round(rows, 6).tolist(),
                    probabilities=np.round(probabilities, 6).tolist(),
                    labels=malignant.iloc[picked].tolist(),
                    as_json=number % 2 == 1,
                )
            )
        by_hour[hour] = sorted(calls, key=lambda c: c.time)
    return by_hour


def capture_line(call: Call) -> str:
    """The Data Capture JSONL line SageMaker writes for a call."""
    if call.as_json:
        sent = {
            "observedContentType": "application/json",
            "mode": "INPUT",
            "encoding": "JSON",
            "data": json.dumps({"instances": [{"features": row} for row in call.rows]}),
        }
        answer = {
            "observedContentType": "application/json",
            "mode": "OUTPUT",
            "encoding": "JSON",
            "data": json.dumps({"predictions": [{"score": p} for p in call.probabilities]}),
        }
    else:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(call.rows)
        sent = {
            "observedContentType": "text/csv",
            "mode": "INPUT",
            "encoding": "CSV",
            "data": buffer.getvalue(),
        }
        answer = {
            "observedContentType": "text/csv; charset=utf-8",
            "mode": "OUTPUT",
            "encoding": "BASE64",
            "data": base64.b64encode("".join(f"{p}\n" for p in call.probabilities).encode()).decode(),
        }
    metadata = {"eventId": call.event_id, "inferenceTime": call.time.isoformat().replace("+00:00", "Z")}
    if call.inference_id:
        metadata["inferenceId"] = call.inference_id
    return json.dumps(
        {
            "captureData": {"endpointInput": sent, "endpointOutput": answer},
            "eventMetadata": metadata,
            "eventVersion": "0",
        }
    )


def ground_truth_line(call: Call) -> str:
    """The Model Monitor ground-truth line for a call: one label a line, keyed like the capture."""
    return json.dumps(
        {
            "groundTruthData": {"data": "\n".join(str(v) for v in call.labels), "encoding": "CSV"},
            "eventMetadata": {"eventId": call.inference_id or call.event_id},
            "eventVersion": "0",
        }
    )


@dataclass
class DemoResult:
    """What the demo showed: the model, the table by hour, the alerts, the emails, the ingestion status."""

    model: dict[str, Any]
    per_hour: pd.DataFrame
    alerts: list[dict[str, Any]]
    emails: list[dict[str, Any]]
    status: dict[str, Any]


class _Steps:
    def __init__(self, say: Callable[[str], None], total: int) -> None:
        self.say, self.total, self.done = say, total, 0

    def __call__(self, text: str) -> None:
        self.done += 1
        self.say(f"[{self.done}/{self.total}] {text}")


def run_demo(
    state_dir: str | Path = ".sagewatch",
    keep_running: bool = False,
    api_port: int = 0,
    aws_port: int = 0,
    hours: int = 8,
    calls_per_hour: int = 100,
    say: Callable[[str], None] = print,
) -> DemoResult:
    """Run the whole story on a fresh local stack; returns what it printed, as data."""
    step = _Steps(say, 11)
    _quiet_function_logs()
    step("starting the local stack (moto server, tables, buckets, queues, API)")
    runtime = LocalRuntime(
        state_dir=state_dir, api_port=api_port, aws_port=aws_port, evaluate_every_seconds=None
    )
    stack = runtime.start()
    try:
        client = SageWatch(stack.api_url, stack.token)
        step("registering the classifier from its reference data (scikit-learn's breast-cancer set)")
        reference = breast_cancer_reference()
        draft = client.build_model(
            reference,
            {"malignant_probability": 1},
            partner_model_id=PARTNER_MODEL_ID,
            ground_truth_column="diagnosis",
            display_name="Breast cancer classifier",
            sagemaker={"endpoint_name": ENDPOINT_NAME},
        )
        model = draft.save(set_reference_data=True)
        say(f"      {len(model['attributes'])} attributes; reference set of {len(reference)} rows uploaded")

        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        simulation = simulate(hours, calls_per_hour, end)
        step(
            f"the endpoint serves {hours} hours of traffic; from hour {hours // 2 + 1} a new scanner doubles "
            f"{SHIFTED_FEATURE}"
        )
        s3 = _s3(stack)
        create_endpoint(ENDPOINT_NAME, {CHAMPION: 2, CHALLENGER: 1})  # as SageMaker would have it
        _serve_the_model(client, model["id"])
        for hour in range(hours):
            moment = simulation.hour_start(hour)
            for variant, calls in (
                (CHAMPION, simulation.calls[hour]),
                (CHALLENGER, simulation.challenger_calls[hour]),
            ):
                key = f"datacapture/{ENDPOINT_NAME}/{variant}/{moment:%Y/%m/%d/%H}/capture-{hour:02d}.jsonl"
                body = "\n".join(capture_line(c) for c in calls) + "\n"
                s3.put_object(Bucket=stack.buckets["capture"], Key=key, Body=body.encode())
                _publish_metrics(stack, variant, moment, len(calls))
            mark = "  shifted" if simulation.shifted(hour) else ""
            say(
                f"      {moment:%H:00}  {len(simulation.calls[hour])} calls to {CHAMPION}, "
                f"{len(simulation.challenger_calls[hour])} to {CHALLENGER}{mark}"
            )
        every_call = [
            c for calls in (*simulation.calls.values(), *simulation.challenger_calls.values()) for c in calls
        ]
        total = sum(len(c.rows) for c in every_call)
        status = _wait_for(lambda: client.status(model["id"]), lambda s: s["inferences"]["ingested"] >= total)
        say(
            f"      ingested {status['inferences']['ingested']} inferences from {status['inferences']['files']} "
            f"files, {status['inferences']['rejected']} rejected"
        )

        step(
            f"alert rules: accuracy below {ACCURACY_THRESHOLD} (hourly); Input Drift comes by default; "
            f"alerts emailed to {ONCALL}"
        )
        accuracy = next(m for m in client.list_metrics(model["id"], metric_name="Accuracy Rate"))
        client.create_alert_rule(
            model["id"],
            accuracy["id"],
            "lower",
            ACCURACY_THRESHOLD,
            name="accuracy dropped",
            severity="critical",
            lookback_period=60,
            subsequent_alert_wait_time=24 * 60,
            filters=[{"property": "variant", "comparator": "eq", "value": CHAMPION}],  # the production model
        )
        client.add_notification(model["id"], ONCALL)

        step(
            "the evaluator runs (as the 5-minute schedule would): drift is caught, accuracy waits for labels"
        )
        _evaluate(stack)
        say(f"      {len(client.list_alerts(model_id=model['id']))} alerts so far")

        step("ground truth arrives late, as a SageMaker Model Monitor ground-truth file")
        labels = "\n".join(ground_truth_line(c) for c in every_call) + "\n"
        s3.put_object(
            Bucket=stack.buckets["capture"],
            Key=f"ground-truth/{ENDPOINT_NAME}/{end:%Y/%m/%d/%H}/labels.jsonl",
            Body=labels.encode(),
        )
        status = _wait_for(
            lambda: client.status(model["id"]), lambda s: s["ground_truth"]["ingested"] >= total
        )
        say(f"      {status['with_ground_truth']} of {status['total']} inferences labelled")

        step("the evaluator runs again: the labelled hours are judged")
        _evaluate(stack)

        step("enrichments: the most anomalous inference, and the hotspot behind the accuracy drop")
        _enrichments(client, model["id"], simulation, say)

        step(f"the monitoring of {CHAMPION}, hour by hour")
        per_hour = _per_hour(client, model["id"], simulation)
        say(per_hour.to_string(index=False))

        step(
            f"champion and challenger: is {CHALLENGER} (trained without {SHIFTED_FEATURE}) better since the shift?"
        )
        _champion_and_challenger(client, model["id"], simulation, say)

        step("alerts raised, and the email SES received")
        alerts = client.list_alerts(model_id=model["id"])
        for alert in sorted(alerts, key=_prominence):
            start = alert["window_start"][11:16] if alert["window_start"] else alert["batch_id"]
            say(
                f"  {alert['severity'].upper():<8} {start}  {alert['rule_name']:<52} "
                f"{alert['metric_value']:9.3g} (threshold {alert['threshold']:.3g})"
            )
        for alert in alerts:
            if alert.get("details") and alert["details"].get("drifted"):
                say(f"  {alert['message']}")
        emails = (
            _wait_for(lambda: _emails(stack), lambda found: len(found) >= len(alerts), tries=20)
            if alerts
            else []
        )
        accuracy_email = next(
            (e for e in emails if "accuracy dropped" in e["subject"]), emails[0] if emails else None
        )
        if accuracy_email:
            say(f"\n  To: {', '.join(accuracy_email['destinations']['ToAddresses'])}")
            say(f"  Subject: {accuracy_email['subject']}\n")
            say("\n".join(f"  {line}" for line in accuracy_email["body"].splitlines()))
        say(
            f"\n{len(alerts)} alerts, {len(emails)} emails. See them in the dashboard: {stack.api_url}/ "
            f"(sign in with the token in {Path(state_dir) / 'local.json'})"
            if keep_running
            else f"\n{len(alerts)} alerts, {len(emails)} emails. To see them in the dashboard, run "
            "`sagewatch demo --keep-running`."
        )
        result = DemoResult(model, per_hour, alerts, emails, client.status(model["id"]))
        if keep_running:
            say(
                f"dashboard: {stack.api_url}/\nAPI:   {stack.api_url}\ntoken: {stack.token}\n"
                "the stack keeps running; Ctrl-C stops it"
            )
            with contextlib.suppress(KeyboardInterrupt):
                runtime.wait()
        return result
    finally:
        runtime.stop()


def _prominence(alert: dict[str, Any]) -> tuple[bool, float]:
    """Critical first, then by how far past its threshold."""
    return alert["severity"] != "critical", -alert["metric_value"] / max(abs(alert["threshold"]), 1e-9)


def _serve_the_model(client: SageWatch, model_id: str, seed: int = 7) -> None:
    """Put the classifier behind the local stand-in of its SageMaker endpoint, and turn explanations
    on demand on (the endpoint answers the perturbed rows KernelSHAP sends)."""
    features, _, model, _, _ = _dataset(seed)
    STAND_INS.register(
        ENDPOINT_NAME,
        lambda rows: model.predict_proba(pd.DataFrame(rows, columns=features.columns))[:, 1],
        variants=(CHAMPION, CHALLENGER),
    )
    client.update_enrichments(model_id, {"explainability": {"enabled": True, "config": {"streaming": False}}})


def _enrichments(
    client: SageWatch, model_id: str, simulation: Simulation, say: Callable[[str], None]
) -> None:
    """Print the inference the anomaly detector scored highest with its explanation, and the top
    hotspot since the shift."""
    top = client.query(
        model_id,
        {
            "select": [{"property": "partner_inference_id"}, {"property": "anomaly_score"}],
            "order_by": [{"property": "anomaly_score", "direction": "desc"}],
            "limit": 1,
        },
    ).iloc[0]
    say(
        f"      most anomalous inference: {top['partner_inference_id']} (anomaly_score {top['anomaly_score']:.2f})"
    )
    explained = client.explain(model_id, top["partner_inference_id"])
    scores = explained["explanation"][0]["importance_scores"]
    strongest = sorted(scores, key=lambda s: -abs(s["explanation_value"]))[:3]
    say(
        "      its explanation (SHAP, from the endpoint): "
        + ", ".join(f"{s['attribute_name']} {s['explanation_value']:+.2f}" for s in strongest)
    )
    shift = simulation.hour_start(simulation.hours // 2)
    run = client.find_hotspots(model_id, shift, simulation.hour_start(simulation.hours))
    if not run["hotspots"]:
        say(f"      no hotspot since the shift ({run['labelled']} labelled inferences)")
        return
    top = run["hotspots"][0]
    where = " and ".join(_condition(c) for c in top["conditions"])
    say(
        f"      hotspot since the shift: {where}: {top['n_samples']} of {run['labelled']} labelled inferences, "
        f"accuracy {top['accuracy']:.2f} against {run['overall']['accuracy']:.2f} overall"
    )


def _condition(condition: dict[str, Any]) -> str:
    value = condition["value"]
    shown = f"{value:.4g}" if isinstance(value, float) else value
    return f"{condition['attribute']} {condition['op']} {shown}"


def _quiet_function_logs() -> None:
    """The functions log every file and evaluation as JSON; the demo tells the story itself."""
    import logging
    import os

    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"  # for loggers not created yet
    for name in ("sagewatch-ingest", "sagewatch-evaluator", "sagewatch-api"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _s3(stack: Any) -> Any:
    import boto3

    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing").client(
        "s3", endpoint_url=stack.aws_endpoint_url, region_name=stack.region
    )


def _evaluate(stack: Any) -> None:
    """What the schedule does: fan out, then let the evaluate queue's poller run every model."""
    schedule()
    sqs = aws.client("sqs")

    def waiting() -> int:
        attributes = sqs.get_queue_attributes(
            QueueUrl=stack.queue_urls["evaluate"],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    _wait_for(waiting, lambda count: count == 0, tries=120)


def _wait_for(
    read: Callable[[], Any], done: Callable[[Any], bool], tries: int = 120, pause: float = 0.5
) -> Any:
    value = read()
    for _ in range(tries):
        if done(value):
            return value
        time.sleep(pause)
        value = read()
    return value


def _emails(stack: Any) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{stack.aws_endpoint_url}/moto-api/data.json", timeout=10) as response:
        return json.loads(response.read())["ses"]["Message"]


def _champion_and_challenger(
    client: SageWatch, model_id: str, simulation: Simulation, say: Callable[[str], None]
) -> None:
    """Roles, the comparison over the shifted hours, the promotion, and the endpoint's IT side."""
    client.set_variant_role(model_id, CHAMPION, "champion")
    client.set_variant_role(model_id, CHALLENGER, "challenger")
    for v in client.variants(model_id):
        say(
            f"      {v['variant']:<12} {v['role']:<11} {v['inferences']:>5} inferences ({v['share']:.0%} of the traffic)"
        )
    since = simulation.hour_start(simulation.hours // 2)
    answer = client.compare_variants(model_id, CHALLENGER, CHAMPION, start_time=since)
    say(
        f"      since {since:%H:00}: {answer['champion_labelled']} labelled for {CHAMPION}, "
        f"{answer['challenger_labelled']} for {CHALLENGER} (different requests: an A/B split)"
    )
    for m in answer["metrics"]:
        low, high = m["interval"]
        say(
            f"      {m['metric']:<10} {m['champion']:.3f} -> {m['challenger']:.3f}  difference {m['difference']:+.3f} "
            f"(95% interval {low:+.3f} to {high:+.3f})"
            + (f", {m['test']} p = {m['p_value']:.2g}" if m["p_value"] is not None else "")
        )
    say(f"      verdict: {answer['verdict']} ({answer['reason']})")
    if answer["verdict"] == "challenger better":
        client.set_variant_role(model_id, CHALLENGER, "champion")
        say(f"      {CHALLENGER} promoted to champion ({CHAMPION} is now its challenger)")
    health = client.endpoint_health(model_id)
    say(f"      endpoint {health['endpoint']}: {health['status']}")
    for v in health["variants"]:
        say(
            f"        {v['variant']:<12} {v['instances']} instance(s), {v['invocations'] or 0:.0f} calls in the last hour, "
            f"{(v['error_5xx_rate'] or 0):.1%} 5xx, model latency {v['model_latency_ms'] or 0:.1f} ms"
        )


def _publish_metrics(stack: Any, variant: str, hour: datetime, calls: int) -> None:
    """What SageMaker publishes to CloudWatch for a variant's hour, every 5 minutes: calls, no
    errors, latencies (so "the last hour" always holds some of it, whenever the demo runs)."""
    dimensions = [{"Name": "EndpointName", "Value": ENDPOINT_NAME}, {"Name": "VariantName", "Value": variant}]
    latency = 12_000 if variant == CHAMPION else 17_500  # microseconds: the challenger's model is slower
    cloudwatch = aws.client("cloudwatch")
    for step in range(12):
        share = calls // 12 + (1 if step < calls % 12 else 0)
        cloudwatch.put_metric_data(
            Namespace="AWS/SageMaker",
            MetricData=[
                {
                    "MetricName": name,
                    "Dimensions": dimensions,
                    "Timestamp": hour + timedelta(minutes=5 * step + 2),
                    "Value": value,
                }
                for name, value in (
                    ("Invocations", share),
                    ("Invocation4XXErrors", 0),
                    ("Invocation5XXErrors", 0),
                    ("ModelLatency", latency),
                    ("OverheadLatency", 1_100),
                )
            ],
        )


def _per_hour(client: SageWatch, model_id: str, simulation: Simulation) -> pd.DataFrame:
    champion_only = [{"property": "variant", "comparator": "eq", "value": CHAMPION}]
    series = client.query(
        model_id,
        {
            "select": [
                {"function": "roundTimestamp", "alias": "hour", "parameters": {"time_interval": "hour"}},
                {"function": "count", "alias": "inferences"},
                {"function": "accuracyRate", "alias": "accuracy"},
            ],
            "group_by": [{"alias": "hour"}],
            "filter": champion_only,
        },
    )
    drift = client.data_drift(
        model_id,
        {
            "properties": [SHIFTED_FEATURE],
            "metric": "PSI",
            "rollup": "hour",
            "base": {"source": "reference"},
            "target": {"source": "inference", "filter": champion_only},
        },
    )
    table = series.merge(
        drift.rename(columns={"rollup": "hour", SHIFTED_FEATURE: f"PSI {SHIFTED_FEATURE}"}),
        on="hour",
        how="left",
    )
    table["hour"] = pd.to_datetime(table["hour"]).dt.strftime("%H:00")
    table["shifted"] = ["yes" if simulation.shifted(i) else "" for i in range(len(table))]
    return (
        table[["hour", "inferences", "labelled_count", "accuracy", f"PSI {SHIFTED_FEATURE}", "shifted"]]
        .rename(columns={"labelled_count": "labelled"})
        .round(3)
    )
