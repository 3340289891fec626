"""Rules firing on moto: drift, a performance drop once labels arrive, SES read back, retries."""

from __future__ import annotations

import json
import math
import threading
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pyarrow as pa
import pytest
from moto.ses.models import ses_backends
from scipy import stats
from tests import factories
from tests.conftest import Call
from tests.factories import Clock

from sagewatch import aws as sagewatch_aws
from sagewatch import container
from sagewatch.alerting import catalog
from sagewatch.alerting.types import Metric, NotificationConfig, Rule
from sagewatch.container import evaluator, ingestor
from sagewatch.handlers.evaluator import handler as queue_handler
from sagewatch.handlers.scheduler import schedule as fan_out
from sagewatch.local.http_bridge import LocalContext
from sagewatch.local.pollers import drain
from sagewatch.records import reference_rows, rows_from_columns
from sagewatch.schema import Model, ModelSpec
from sagewatch.services.evaluation import ANOMALY_RULE_STATE, FanOutFailed
from sagewatch.services.ingestion import Source
from sagewatch.stores.notify import DEFAULT_SENDER
from sagewatch.webhooks import ALLOW_PRIVATE_ENV

NOW = datetime(2026, 11, 25, 10, 5, tzinfo=UTC)
WINDOW_START = datetime(2026, 11, 25, 9, tzinfo=UTC)


@pytest.fixture
def clock(aws: dict[str, str]) -> Clock:
    sagewatch_aws.client("ses").verify_email_identity(EmailAddress=DEFAULT_SENDER)
    moment = Clock(NOW)
    evaluator().clock = moment
    return moment


def sent_emails() -> list:
    return list(ses_backends["123456789012"]["us-east-1"].sent_messages)


def model_with(body: dict | None = None, default_rules: bool = False, **changes) -> Model:
    """A model; without the default drift and anomaly rules unless asked (tests look at the rules they
    make; an anomaly rule already made for no detector is one the user deleted)."""
    spec = factories.edited(body or factories.binary_probability(), **changes)
    model = container.model_store().create(ModelSpec.model_validate(spec))
    if not default_rules:
        container.ingestion_ledger().set_state(model.id, "DEFAULT_RULES", created="not in this test")
        container.ingestion_ledger().set_state(model.id, ANOMALY_RULE_STATE, digest="not in this test")
    return model


def write(
    model: Model,
    *,
    inferences: dict | None = None,
    reference: dict | None = None,
    truth: dict | None = None,
    now: datetime = NOW,
) -> None:
    writer = ingestor().writer(model, Source(uuid.uuid4().hex, "test"))
    if reference is not None:
        count = len(next(iter(reference.values())))
        table, _ = reference_rows({k: pa.array(v) for k, v in reference.items()}, count, model)
        writer.add(now.date(), reference=table)
    for columns, inference in ((inferences, True), (truth, False)):
        if columns is None:
            continue
        count = len(next(iter(columns.values())))
        rows = rows_from_columns(
            {k: pa.array(v) for k, v in columns.items()},
            count,
            model,
            source="test",
            now=now,
            require_inference=inference,
        )
        assert rows.failures == 0, rows.problem
        writer.add(
            now.date(), inferences=rows.inferences if inference else None, ground_truth=rows.ground_truth
        )
    writer.finish()


def in_window(count: int, rng: np.random.Generator, start: datetime = WINDOW_START) -> list[datetime]:
    return [start + timedelta(minutes=float(m)) for m in rng.uniform(0, 59, count)]


def drifted(model: Model, rng: np.random.Generator, shift: float) -> None:
    reference_only(model, rng)
    write(
        model,
        inferences={
            "inference_timestamp": in_window(400, rng),
            "age": rng.integers(18, 90, 400),
            "income": rng.normal(shift, 1, 400),
            "region": rng.choice(["north", "south"], 400),
            "predicted_probability": rng.random(400),
        },
    )


def rule_on(model: Model, metric: Metric, **fields) -> Rule:
    values = dict(
        id=uuid.uuid4().hex,
        model_id=model.id,
        name=f"rule on {metric.name}",
        metric_id=metric.id,
        bound="upper",
        threshold=0.2,
        lookback_period=60,
        created_at=NOW,
    )
    values.update(fields)
    return evaluator().rules.put(Rule(**values))


def default_metric(model: Model, name: str) -> Metric:
    return next(m for m in catalog.default_metrics(model) if m.name == name)


def email_to(model: Model, destination: str = "oncall@example.com") -> NotificationConfig:
    return evaluator().notifications.put(
        NotificationConfig(
            id=uuid.uuid4().hex, model_id=model.id, type="email", destination=destination, created_at=NOW
        )
    )


def test_drift_raises_one_alert_and_one_email(clock: Clock) -> None:
    # GIVEN a model with a reference, an hour of drifted income, a critical PSI rule and an email
    model = model_with()
    drifted(model, np.random.default_rng(0), shift=2.0)
    rule = rule_on(model, default_metric(model, "PSI income"), severity="critical")
    email_to(model)

    # WHEN the model is evaluated after the hour closed
    report = evaluator().evaluate_model(model.id)

    # THEN one new critical alert covers that hour and one email describes it
    assert report.errors == []
    [alert] = [a for a in evaluator().alerts.list(model.id) if a.alert_rule_id == rule.id]
    assert (alert.window_start, alert.window_end, alert.status) == (
        WINDOW_START,
        WINDOW_START + timedelta(hours=1),
        "new",
    )
    assert alert.metric_value > 1.0 and alert.severity == "critical"
    emails = [e for e in sent_emails() if rule.name in e.subject]
    assert len(emails) == 1
    assert emails[0].destinations["ToAddresses"] == ["oncall@example.com"]
    assert emails[0].subject == f"[sagewatch] CRITICAL: churn - {rule.name}"
    assert f"{alert.metric_value:.6g}" in emails[0].body and "above the threshold 0.2" in emails[0].body
    assert "2026-11-25 09:00 to 2026-11-25 10:00 UTC" in emails[0].body

    # WHEN the next run looks at the same window
    clock.moment = NOW + timedelta(minutes=5)  # the next run: nothing new for this window
    evaluator().evaluate_model(model.id)

    # THEN there is still one alert and one email
    assert len([a for a in evaluator().alerts.list(model.id) if a.alert_rule_id == rule.id]) == 1
    assert len([e for e in sent_emails() if rule.name in e.subject]) == 1


def test_two_overlapping_evaluations_raise_one_alert_and_no_error(clock: Clock) -> None:
    # GIVEN a drifted model, its PSI rule, and a copy of the rule read before any run saved
    model = model_with()
    drifted(model, np.random.default_rng(0), shift=2.0)
    rule = rule_on(model, default_metric(model, "PSI income"))
    stale = evaluator().rules.get(model.id, rule.id)  # what a second run read before the first saved

    # WHEN one run evaluates and saves, and a second run evaluates the stale copy
    assert evaluator().evaluate_model(model.id).errors == []
    load = evaluator().loader_for(model)
    evaluator().evaluate_rule(model, stale, default_metric(model, "PSI income"), load, NOW)

    # THEN one alert is raised and the rule was saved once
    assert len([a for a in evaluator().alerts.list(model.id) if a.alert_rule_id == rule.id]) == 1
    assert evaluator().rules.get(model.id, rule.id).version == stale.version + 1


def test_no_drift_no_alert(clock: Clock) -> None:
    model = model_with()
    drifted(model, np.random.default_rng(1), shift=0.0)
    rule = rule_on(model, default_metric(model, "PSI income"))
    evaluator().evaluate_model(model.id)
    assert [a for a in evaluator().alerts.list(model.id) if a.alert_rule_id == rule.id] == []
    assert evaluator().rules.get(model.id, rule.id).last_value < 0.2


def labelled_run(model: Model, rng: np.random.Generator, right: float, ids: list[str]) -> dict:
    """Ground truth for `ids`: a share `right` of them agrees with the prediction (>= 0.5)."""
    return {"partner_inference_id": ids, "churned": [1 if rng.random() < right else 0 for _ in ids]}


def confident_hour(model: Model, rng: np.random.Generator, count: int, prefix: str) -> list[str]:
    """An hour of `count` predictions at 0.9 (all "churned") in the window; their inference ids."""
    ids = [f"{prefix}-{i}" for i in range(count)]
    write(
        model,
        inferences={
            "partner_inference_id": ids,
            "inference_timestamp": in_window(count, rng),
            "age": rng.integers(18, 90, count),
            "income": rng.normal(0, 1, count),
            "region": rng.choice(["north", "south"], count),
            "predicted_probability": np.full(count, 0.9),
        },
    )
    return ids


def test_a_performance_drop_fires_once_labels_arrive(clock: Clock) -> None:
    # GIVEN an hour of 200 confident predictions, an accuracy rule (>= 0.8) and an email
    rng = np.random.default_rng(2)
    model = model_with()
    ids = confident_hour(model, rng, 200, "p")
    rule = rule_on(model, default_metric(model, "Accuracy Rate"), bound="lower", threshold=0.8)
    email_to(model)

    # WHEN it is evaluated before any label arrived
    evaluator().evaluate_model(model.id)  # no labels yet: the window waits

    # THEN the window waits: no alert
    assert evaluator().alerts.list(model.id) == []

    # WHEN half of the predictions are labelled, all right
    clock.moment = NOW + timedelta(minutes=15)
    write(model, truth={"partner_inference_id": ids[:100], "churned": [1] * 100}, now=clock.moment)
    evaluator().evaluate_model(model.id)  # half labelled: still waiting (the ratio asked is 1.0)

    # THEN it still waits for the rest
    assert evaluator().alerts.list(model.id) == []

    # WHEN the other half is labelled, all wrong
    clock.moment = NOW + timedelta(minutes=30)
    write(model, truth={"partner_inference_id": ids[100:], "churned": [0] * 100}, now=clock.moment)
    evaluator().evaluate_model(model.id)  # all labelled: accuracy 0.5 < 0.8

    # THEN one alert at accuracy 0.5 for that hour, and one email
    [alert] = evaluator().alerts.list(model.id)
    assert alert.metric_value == pytest.approx(0.5)
    assert alert.window_start == WINDOW_START
    assert len([e for e in sent_emails() if rule.name in e.subject]) == 1


def test_late_labels_re_evaluate_a_window_that_was_quiet(clock: Clock) -> None:
    # GIVEN a model evaluating at 50% labelled, an hour of 300 predictions and an accuracy rule (>= 0.7)
    rng = np.random.default_rng(3)
    model = model_with(alerts_delay_labels_ratio=0.5)
    ids = confident_hour(model, rng, 300, "q")
    rule_on(model, default_metric(model, "Accuracy Rate"), bound="lower", threshold=0.7)

    # WHEN 180 of them are labelled, all right, and the model is evaluated
    write(model, truth={"partner_inference_id": ids[:180], "churned": [1] * 180})
    evaluator().evaluate_model(model.id)  # 60% labelled, all right: quiet

    # THEN the window is quiet
    assert evaluator().alerts.list(model.id) == []

    # WHEN the last 120 labels arrive two hours later, all wrong
    clock.moment = NOW + timedelta(hours=2)
    write(model, truth={"partner_inference_id": ids[180:], "churned": [0] * 120}, now=clock.moment)
    evaluator().evaluate_model(model.id)  # all labelled: 60% right < 70%, on 300 labels

    # THEN the same window is evaluated again and alerts at 60% right
    [alert] = evaluator().alerts.list(model.id)
    assert alert.metric_value == pytest.approx(0.6) and alert.window_start == WINDOW_START


def test_a_drop_on_too_few_labels_waits_and_the_alert_states_its_interval(clock: Clock) -> None:
    # GIVEN an hour of 1,000 predictions, a model that evaluates at 1% labelled, an accuracy rule (>= 0.8)
    rng = np.random.default_rng(31)
    model = model_with(alerts_delay_labels_ratio=0.01)
    ids = confident_hour(model, rng, 1000, "r")
    rule = rule_on(model, default_metric(model, "Accuracy Rate"), bound="lower", threshold=0.8)
    right = rng.random(1000) < 0.7  # the model is right 70% of the time

    # WHEN 20 labels arrive (70% right, below 0.8, but 20 labels cannot tell 0.7 from 0.8)
    write(model, truth={"partner_inference_id": ids[:20], "churned": right[:20].astype(int).tolist()})
    evaluator().evaluate_model(model.id)

    # THEN no alert: the window is recorded as uncertain, to be looked at again, and the rule says so
    assert evaluator().alerts.list(model.id) == []
    [record] = evaluator().rules.windows(model.id, rule.id)
    assert record["decision"] == "uncertain"
    stored = evaluator().rules.get(model.id, rule.id)
    assert (stored.last_decision, stored.labels_needed) == ("uncertain", 25)  # the fewest an interval needs

    # WHEN all 1,000 are labelled
    clock.moment = NOW + timedelta(minutes=30)
    write(
        model,
        truth={"partner_inference_id": ids[20:], "churned": right[20:].astype(int).tolist()},
        now=clock.moment,
    )
    evaluator().evaluate_model(model.id)

    # THEN one alert, whose interval is near the normal approximation's and excludes the threshold
    [alert] = evaluator().alerts.list(model.id)
    accuracy = right.mean()
    assert alert.metric_value == pytest.approx(accuracy)
    low, high = alert.details["interval"]
    expected_half = stats.norm.ppf(0.975) * math.sqrt(accuracy * (1 - accuracy) / 1000)
    assert (high - low) / 2 == pytest.approx(expected_half, rel=0.4)
    assert high < 0.8 and alert.details["labelled"] == 1000
    # the labels needed: where an interval of this width, shrinking as 1/sqrt(n), would reach 0.8
    needed = alert.details["labels_needed"]
    assert needed == math.ceil(1000 * ((high - low) / 2 / (0.8 - accuracy)) ** 2)
    assert needed < 1000 and f"{needed} are enough" in alert.message


def drifted_hour(model: Model, rng: np.random.Generator, start: datetime, shift: float) -> None:
    write(
        model,
        inferences={
            "inference_timestamp": in_window(400, rng, start),
            "age": rng.integers(18, 90, 400),
            "income": rng.normal(shift, 1, 400),
            "region": rng.choice(["north", "south"], 400),
            "predicted_probability": rng.random(400),
        },
    )


def test_the_wait_time_suppresses_the_next_incident(clock: Clock) -> None:
    # GIVEN drifted income in one hour and again two hours later, a rule waiting 180 minutes after an
    # alert, and a user who resolved the first alert (so the next crossing is a new incident)
    rng = np.random.default_rng(4)
    model = model_with()
    drifted(model, rng, shift=3.0)
    later = WINDOW_START + timedelta(hours=2)
    drifted_hour(model, rng, later, shift=3.0)
    rule = rule_on(model, default_metric(model, "PSI income"), subsequent_alert_wait_time=180)
    evaluator().evaluate_model(model.id)
    [first] = [a for a in evaluator().alerts.list(model.id) if a.alert_rule_id == rule.id]
    container.monitoring().update_alert(first.id, "resolved")

    # WHEN the model is evaluated after each of the next hours
    for hours in range(1, 3):
        clock.moment = NOW + timedelta(hours=hours)
        evaluator().evaluate_model(model.id)

    # THEN only the first hour alerts; the later one, a new incident within the wait, is suppressed
    alerts = [a for a in evaluator().alerts.list(model.id) if a.alert_rule_id == rule.id]
    assert [a.window_start for a in alerts] == [WINDOW_START]
    windows = {w["window"]: w["decision"] for w in evaluator().rules.windows(model.id, rule.id)}
    assert windows[later.isoformat()] == "suppressed"


def test_a_shift_over_consecutive_windows_is_one_alert_for_the_incident(clock: Clock) -> None:
    # GIVEN income drifted for three hours in a row, then a quiet hour, then drifted again
    rng = np.random.default_rng(41)
    model = model_with()
    drifted(model, rng, shift=3.0)
    for hour, shift in ((1, 3.0), (2, 3.0), (3, 0.0), (4, 3.0)):
        drifted_hour(model, rng, WINDOW_START + timedelta(hours=hour), shift)
    rule = rule_on(model, default_metric(model, "PSI income"))

    # WHEN the model is evaluated after each hour
    for hour in range(5):
        clock.moment = NOW + timedelta(hours=hour)
        evaluator().evaluate_model(model.id)

    # THEN one alert: a quiet hour does not end the incident (a day of them would), and the alert
    # keeps the window its value was measured in
    alerts = [a for a in evaluator().alerts.list(model.id) if a.alert_rule_id == rule.id]
    hour = timedelta(hours=1)
    assert [(a.window_start, a.window_end, a.incident_end, a.windows) for a in alerts] == [
        (WINDOW_START, WINDOW_START + hour, WINDOW_START + 5 * hour, 4),
    ]
    decisions = [
        w["decision"] for w in sorted(evaluator().rules.windows(model.id, rule.id), key=lambda w: w["window"])
    ]
    assert decisions == ["fire", "continued", "continued", "quiet", "continued"]

    # WHEN a day passes without a crossing, and income drifts again
    drifted_hour(model, rng, WINDOW_START + timedelta(hours=29), 3.0)
    clock.moment = NOW + timedelta(hours=29)
    evaluator().evaluate_model(model.id)

    # THEN that is a new incident: a second alert
    assert len([a for a in evaluator().alerts.list(model.id) if a.alert_rule_id == rule.id]) == 2


def test_a_failed_send_is_retried_and_sent_exactly_once(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a drifted model whose rule emails, and SES failing on its first call
    model = model_with()
    drifted(model, np.random.default_rng(5), shift=2.0)
    rule = rule_on(model, default_metric(model, "PSI income"))
    email_to(model)
    real = evaluator().notifier.ses.send_email
    calls = []

    def flaky(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise ConnectionError("SES is unreachable")
        return real(**kwargs)

    monkeypatch.setattr(evaluator().notifier, "_ses", type("S", (), {"send_email": staticmethod(flaky)})())

    # WHEN the model is evaluated
    first = evaluator().evaluate_model(model.id)

    # THEN the alert's email is marked failed and left pending
    [alert] = [a for a in evaluator().alerts.list(model.id) if a.alert_rule_id == rule.id]
    [state] = alert.notifications.values()
    assert state.startswith("failed: SES")
    assert first.pending >= 1

    # WHEN the next runs come
    clock.moment = NOW + timedelta(minutes=5)
    evaluator().evaluate_model(model.id)
    evaluator().evaluate_model(model.id)

    # THEN the email is sent, exactly once
    [alert] = [a for a in evaluator().alerts.list(model.id) if a.alert_rule_id == rule.id]
    assert list(alert.notifications.values()) == ["sent"]
    assert len([e for e in sent_emails() if rule.name in e.subject]) == 1


def test_webhooks_get_slack_compatible_json(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a webhook receiver on loopback and a drifted model whose rule notifies it
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "allow")  # the receiving server is on loopback
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        model = model_with()
        drifted(model, np.random.default_rng(6), shift=2.0)
        rule = rule_on(model, default_metric(model, "PSI income"))
        evaluator().notifications.put(
            NotificationConfig(
                id="hook",
                model_id=model.id,
                type="webhook",
                destination=f"http://127.0.0.1:{server.server_port}/hook",
                created_at=NOW,
            )
        )

        # WHEN the model is evaluated
        evaluator().evaluate_model(model.id)
    finally:
        server.shutdown()

    # THEN the receiver got one Slack-style message naming the model and the metric
    mine = [r for r in received if r["alert"]["alert_rule_id"] == rule.id]
    assert len(mine) == 1
    assert mine[0]["text"].startswith("[sagewatch] WARNING: churn") and "PSI income is" in mine[0]["text"]


def test_a_failing_rule_is_reported_and_the_others_still_run(clock: Clock) -> None:
    # GIVEN a drifted model with a rule on a metric over a missing column, and a good PSI rule
    model = model_with()
    drifted(model, np.random.default_rng(7), shift=2.0)
    broken = evaluator().metrics.put(
        Metric(
            id="broken",
            model_id=model.id,
            name="broken",
            query={"select": [{"function": "avg", "parameters": {"property": "gone"}}]},
            endpoint=catalog.query_path(model),
            type="model_output_metric",
        )
    )
    rule_on(model, broken, name="broken rule")
    good = rule_on(model, default_metric(model, "PSI income"))

    # WHEN the model is evaluated
    report = evaluator().evaluate_model(model.id)

    # THEN the broken rule is reported by name and the good one still alerts
    assert len(report.errors) == 1 and "broken rule" in report.errors[0] and "'gone'" in report.errors[0]
    assert any(a.alert_rule_id == good.id for a in evaluator().alerts.list(model.id))


def test_batch_models_evaluate_closed_batches_once(clock: Clock) -> None:
    # GIVEN a batch model: a reference, a quiet and a drifted closed batch, a drifted open one, a PSI rule
    rng = np.random.default_rng(8)
    model = model_with(is_batch=True)
    write(
        model,
        reference={
            "age": rng.integers(18, 90, 2000),
            "income": rng.normal(0, 1, 2000),
            "region": rng.choice(["north", "south"], 2000),
            "predicted_probability": rng.random(2000),
            "churned": rng.integers(0, 2, 2000),
        },
    )
    for batch, shift in (("b-quiet", 0.0), ("b-drift", 2.5), ("b-open", 2.5)):
        write(
            model,
            inferences={
                "batch_id": [batch] * 300,
                "inference_timestamp": in_window(300, rng),
                "age": rng.integers(18, 90, 300),
                "income": rng.normal(shift, 1, 300),
                "region": rng.choice(["north", "south"], 300),
                "predicted_probability": rng.random(300),
            },
        )
    for batch in ("b-quiet", "b-drift"):
        container.ingestion_ledger().set_state(
            model.id, f"BATCH#{batch}", status="uploaded", uploaded_at=NOW.isoformat()
        )
    rule = rule_on(model, default_metric(model, "PSI income"))

    # WHEN the model is evaluated twice
    evaluator().evaluate_model(model.id)
    evaluator().evaluate_model(model.id)

    # THEN only the closed drifted batch alerts, once
    alerts = [a for a in evaluator().alerts.list(model.id) if a.alert_rule_id == rule.id]
    assert [a.batch_id for a in alerts] == ["b-drift"]


def test_the_default_rule_is_one_model_level_drift_rule_made_once_data_exists(clock: Clock) -> None:
    # GIVEN a model that gets the default rules, with no data yet
    model = model_with(default_rules=True)

    # WHEN it is evaluated
    evaluator().evaluate_model(model.id)

    # THEN no rule is made yet
    assert evaluator().rules.list(model.id) == []  # no reference, no inferences yet

    # WHEN a reference and an hour of traffic with income shifted arrive and it is evaluated
    drifted(model, np.random.default_rng(9), shift=1.0)
    evaluator().evaluate_model(model.id)

    # THEN one drift rule for all inputs, on the family-wise p-value, and one alert naming income alone
    # (beside it the anomaly rule, the reference having given the model a detector)
    rules = evaluator().rules.list(model.id)
    assert sorted(r.metric_name for r in rules) == [catalog.ANOMALOUS_INFERENCES, catalog.INPUT_DRIFT]
    [rule] = [r for r in rules if r.metric_name == catalog.INPUT_DRIFT]
    assert (rule.name, rule.metric_name, rule.bound, rule.threshold, rule.is_default) == (
        "Input drift",
        "Input Drift",
        "lower",
        0.0001,
        True,
    )
    [alert] = evaluator().alerts.list(model.id)
    assert list(alert.details["drifted"]) == ["income"]
    assert alert.message.startswith("1 of 3 inputs drifted") and "income (p=" in alert.message

    # WHEN it is evaluated again
    evaluator().evaluate_model(model.id)

    # THEN no rule is made twice
    assert len(evaluator().rules.list(model.id)) == 2


def test_the_schedule_fans_out_one_message_per_model(clock: Clock, aws: dict[str, str]) -> None:
    first, second = model_with(), model_with(factories.regression())
    for model in (first, second):
        drifted(model, np.random.default_rng(10), shift=2.0) if model is first else None
    rule = rule_on(first, default_metric(first, "PSI income"))
    assert fan_out(NOW) == 2
    assert drain(aws["evaluate_url"], queue_handler, "evaluator") == 2
    assert any(a.alert_rule_id == rule.id for a in evaluator().alerts.list(first.id))


def test_alert_api_lists_filters_and_updates(api: Call, clock: Clock) -> None:
    # GIVEN a drifted model whose PSI rule raised an alert
    model = model_with()
    drifted(model, np.random.default_rng(11), shift=2.0)
    rule = rule_on(model, default_metric(model, "PSI income"))
    evaluator().evaluate_model(model.id)

    # WHEN alerts are listed by model and rule
    listed = api("GET", "/api/v3/alerts", query=f"model_id={model.id}&alert_rule_id={rule.id}").body

    # THEN the one alert is listed, new, with its rule
    [alert] = listed["data"]
    assert alert["alert_rule"]["id"] == rule.id and alert["status"] == "new"

    # WHEN it is acknowledged
    changed = api("PATCH", f"/api/v3/alerts/{alert['id']}", {"status": "acknowledged"})

    # THEN it is acknowledged and the status filter agrees with the store
    assert changed.status == 200 and changed.body["status"] == "acknowledged"
    assert api("GET", "/api/v3/alerts", query=f"model_id={model.id}&status=new").body["total_count"] == len(
        [a for a in evaluator().alerts.list(model.id) if a.status == "new"]
    )

    # WHEN a status or an alert is unknown THEN the answer is a 400 or a 404
    assert api("PATCH", f"/api/v3/alerts/{alert['id']}", {"status": "gone"}).status == 400
    assert api("GET", "/api/v3/alerts/nope").status == 404

    # THEN the rule's listing counts the acknowledged alert and shows its last value
    rules = api("GET", f"/api/v3/models/{model.id}/alert_rules").body
    mine = next(r for r in rules["data"] if r["id"] == rule.id)
    assert mine["alert_counts"] == {"new": 0, "acknowledged": 1, "resolved": 0}
    assert mine["last_value"] > 1 and mine["last_triggered_at"] is not None


def test_lambda_queue_handler_reports_partial_failures(clock: Clock) -> None:
    model = model_with()
    event = {
        "Records": [
            {
                "messageId": "ok",
                "receiptHandle": "r",
                "body": json.dumps({"model_id": model.id}),
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn",
                "awsRegion": "us-east-1",
            },
            {
                "messageId": "bad",
                "receiptHandle": "r",
                "body": json.dumps({"model_id": "missing"}),
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn",
                "awsRegion": "us-east-1",
            },
        ]
    }
    assert queue_handler(event, LocalContext()) == {"batchItemFailures": [{"itemIdentifier": "bad"}]}


def test_a_window_evaluated_before_its_files_arrived_is_evaluated_again(clock: Clock) -> None:
    # GIVEN a model with a reference and a PSI rule, and no traffic yet
    rng = np.random.default_rng(12)
    model = model_with()
    write(
        model,
        reference={
            "age": rng.integers(18, 90, 2000),
            "income": rng.normal(0, 1, 2000),
            "region": rng.choice(["north", "south"], 2000),
            "predicted_probability": rng.random(2000),
            "churned": rng.integers(0, 2, 2000),
        },
    )
    rule = rule_on(model, default_metric(model, "PSI income"))

    # WHEN it is evaluated
    evaluator().evaluate_model(model.id)  # 09:00-10:00 has no data yet

    # THEN there is no alert
    assert evaluator().alerts.list(model.id) == []

    # WHEN drifted traffic for that closed hour arrives late and the next hour's run comes
    write(
        model,
        inferences={
            "inference_timestamp": in_window(300, rng),
            "age": rng.integers(18, 90, 300),
            "income": rng.normal(3, 1, 300),
            "region": rng.choice(["north", "south"], 300),
            "predicted_probability": rng.random(300),
        },
    )
    clock.moment = NOW + timedelta(hours=1)  # the newest window is now 10:00-11:00; 09:00 is looked at again
    evaluator().evaluate_model(model.id)

    # THEN the earlier hour is evaluated again and alerts
    assert [a.window_start for a in evaluator().alerts.list(model.id) if a.alert_rule_id == rule.id] == [
        WINDOW_START
    ]


class FlakySqs:
    """SQS answering a batch call with some entries Failed, as it does under throttling. Installed
    with botocore's own event hooks: the named entries are taken out before the call and reported
    Failed after it (a call left with no entry is answered without reaching moto)."""

    def __init__(self, failing_ids: set[str], times: int) -> None:
        self.failing_ids, self.times, self.held, self.nothing_left = failing_ids, times, [], False

    def drop(self, params: dict, **_: object) -> None:
        self.held, self.nothing_left = [], False
        if self.times > 0:
            self.held = [e["Id"] for e in params["Entries"] if e["Id"] in self.failing_ids]
            params["Entries"] = [e for e in params["Entries"] if e["Id"] not in self.failing_ids]
            self.nothing_left = not params["Entries"]

    def answer_empty(self, **_: object) -> tuple | None:
        if self.nothing_left:
            return type("Http", (), {"status_code": 200, "headers": {}})(), {"Successful": []}
        return None

    def report(self, parsed: dict, **_: object) -> None:
        if self.held:
            parsed.setdefault("Failed", []).extend(
                {"Id": i, "SenderFault": False, "Code": "ServiceUnavailable"} for i in self.held
            )
            self.times -= 1

    def install(self) -> None:
        events = sagewatch_aws.client("sqs").meta.events
        events.register("provide-client-params.sqs.SendMessageBatch", self.drop)
        events.register("before-call.sqs.SendMessageBatch", self.answer_empty)
        events.register("after-call.sqs.SendMessageBatch", self.report)


def queued_models(queue_url: str) -> list[str]:
    sqs = sagewatch_aws.client("sqs")
    found = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        found += [json.loads(m["Body"])["model_id"] for m in batch]
    return found


def test_models_sqs_refuses_at_first_are_queued_again(aws: dict[str, str]) -> None:
    models = [model_with(factories.binary_probability(f"m{i}")) for i in range(3)]
    FlakySqs({"1"}, times=2).install()
    assert fan_out(NOW) == 3
    assert sorted(queued_models(aws["evaluate_url"])) == sorted(m.id for m in models)


def test_a_model_that_cannot_be_queued_fails_the_run_naming_it(aws: dict[str, str]) -> None:
    models = [model_with(factories.binary_probability(f"m{i}")) for i in range(2)]
    FlakySqs({"0"}, times=100).install()
    with pytest.raises(FanOutFailed) as failed:
        fan_out(NOW)
    [unsent] = [m.id for m in models if m.id in str(failed.value)]
    assert queued_models(aws["evaluate_url"]) == [m.id for m in models if m.id != unsent]


def test_a_sliding_rule_judges_the_lookback_ending_at_each_run_and_alerts_once(clock: Clock) -> None:
    # GIVEN an hour of shifted income (09:00-10:00) and a sliding hourly rule on Input Drift
    rng = np.random.default_rng(51)
    model = model_with()
    drifted(model, rng, shift=1.5)
    rule = rule_on(
        model, default_metric(model, "Input Drift"), bound="lower", threshold=1e-4, window_mode="sliding"
    )

    # WHEN it is evaluated at 10:05 and at each 5-minute run until 10:30
    for minutes in range(0, 30, 5):
        clock.moment = NOW + timedelta(minutes=minutes)
        evaluator().evaluate_model(model.id)

    # THEN each run judged the hour ending at its own time, and the incident is one alert
    records = sorted(evaluator().rules.windows(model.id, rule.id), key=lambda r: r["end"])
    assert [r["end"][11:16] for r in records][-6:] == ["10:05", "10:10", "10:15", "10:20", "10:25", "10:30"]
    assert [r["decision"] for r in records][-6:] == ["fire"] + ["continued"] * 5
    [alert] = [a for a in evaluator().alerts.list(model.id) if a.alert_rule_id == rule.id]
    assert alert.windows == 6 and alert.window_start == datetime(2026, 11, 25, 9, 5, tzinfo=UTC)
    assert alert.incident_end == datetime(2026, 11, 25, 10, 30, tzinfo=UTC)
    assert list(alert.details["drifted"]) == ["income"]


def burst(
    model: Model, rng: np.random.Generator, start: datetime, minutes: float, shift: float, n: int, **moved
) -> None:
    """n inferences spread over `minutes` from `start`, income shifted by `shift` (and age by moved["age"])."""
    write(
        model,
        inferences={
            "inference_timestamp": [start + timedelta(minutes=float(m)) for m in rng.uniform(0, minutes, n)],
            "age": rng.integers(18, 90, n) + moved.get("age", 0),
            "income": rng.normal(shift, 1, n),
            "region": rng.choice(["north", "south"], n),
            "predicted_probability": rng.random(n),
        },
    )


def reference_only(model: Model, rng: np.random.Generator) -> None:
    write(
        model,
        reference={
            "age": rng.integers(18, 90, 3000),
            "income": rng.normal(0, 1, 3000),
            "region": rng.choice(["north", "south"], 3000),
            "predicted_probability": rng.random(3000),
            "churned": rng.integers(0, 2, 3000),
        },
    )


def test_a_sliding_rules_incident_outlasts_a_quiet_spell_shorter_than_a_day(clock: Clock) -> None:
    # GIVEN healthy traffic from 07:00, a burst of shifted income at 08:00-08:10 and another at 09:15-09:20
    rng = np.random.default_rng(3)
    model = model_with()
    reference_only(model, rng)
    base = datetime(2026, 11, 25, 7, tzinfo=UTC)
    burst(model, rng, base, 240, 0.0, 2400)
    burst(model, rng, base + timedelta(hours=1), 10, 4.0, 150)
    burst(model, rng, base + timedelta(hours=2, minutes=15), 5, 4.0, 150)
    rule = rule_on(
        model, default_metric(model, "Input Drift"), bound="lower", threshold=1e-4, window_mode="sliding"
    )
    email_to(model)

    # WHEN a sliding hourly rule is evaluated every 5 minutes from 08:10 to 09:30
    moment = base + timedelta(hours=1, minutes=10)
    while moment <= base + timedelta(hours=2, minutes=30):
        clock.moment = moment
        evaluator().evaluate_model(model.id)
        moment += timedelta(minutes=5)

    # THEN the lookback is quiet once the first burst has left it, and the second burst continues the
    # incident: one alert, one email
    records = sorted(evaluator().rules.windows(model.id, rule.id), key=lambda r: r["end"])
    decisions = {r["end"][11:16]: r["decision"] for r in records}
    assert decisions["09:15"] == "quiet" and decisions["09:20"] == "continued"
    alerts = [a for a in evaluator().alerts.list(model.id) if a.alert_rule_id == rule.id]
    assert len(alerts) == 1 and len([e for e in sent_emails() if rule.name in e.subject]) == 1


def two_drifted_hours(rng: np.random.Generator, rows: int) -> tuple[Model, Rule]:
    """A model with a reference, two hours of income shifted by 3 sd, and an Input Drift rule."""
    model = model_with()
    reference_only(model, rng)
    burst(model, rng, WINDOW_START, 60, 3.0, rows)
    burst(model, rng, WINDOW_START + timedelta(hours=1), 60, 3.0, rows)
    return model, rule_on(model, default_metric(model, "Input Drift"), bound="lower", threshold=1e-3)


def test_a_resolved_incident_is_over_and_continued_drift_is_a_new_alert(clock: Clock) -> None:
    # GIVEN two hours of shifted income and an alert on the first that the user resolved
    model, rule = two_drifted_hours(np.random.default_rng(4), 300)
    evaluator().evaluate_model(model.id)
    [first] = [a for a in evaluator().alerts.list(model.id) if a.alert_rule_id == rule.id]
    container.monitoring().update_alert(first.id, "resolved")

    # WHEN the next hour is evaluated
    clock.moment = NOW + timedelta(hours=1)
    evaluator().evaluate_model(model.id)

    # THEN a new alert for it; the resolved one is left as it was
    alerts = sorted(
        (a for a in evaluator().alerts.list(model.id) if a.alert_rule_id == rule.id),
        key=lambda a: a.window_start,
    )
    assert [(a.status, a.windows) for a in alerts] == [("resolved", 1), ("new", 1)]


def test_an_incident_names_inputs_that_drift_after_it_began(clock: Clock) -> None:
    # GIVEN income shifted in one hour, and income and age shifted in the next
    rng = np.random.default_rng(6)
    model = model_with()
    reference_only(model, rng)
    burst(model, rng, WINDOW_START, 60, 3.0, 400)
    burst(model, rng, WINDOW_START + timedelta(hours=1), 60, 3.0, 400, age=40)
    rule = rule_on(model, default_metric(model, "Input Drift"), bound="lower", threshold=1e-3)

    # WHEN both hours are evaluated
    evaluator().evaluate_model(model.id)
    clock.moment = NOW + timedelta(hours=1)
    evaluator().evaluate_model(model.id)

    # THEN one alert, naming both inputs, its first window's value and window kept
    [alert] = [a for a in evaluator().alerts.list(model.id) if a.alert_rule_id == rule.id]
    assert set(alert.details["drifted"]) == {"income", "age"} and alert.windows == 2
    assert alert.message.startswith("2 of 3 inputs drifted") and "age (p=" in alert.message
    assert "and 1 window after it" in alert.message
    assert (alert.window_start, alert.window_end) == (WINDOW_START, WINDOW_START + timedelta(hours=1))


def test_a_users_resolve_during_a_send_stands(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a drifted hour, two email configurations, and a user who resolves the alert while the
    # second email is being sent (through the service the API's PATCH uses)
    rng = np.random.default_rng(61)
    model = model_with()
    reference_only(model, rng)
    burst(model, rng, WINDOW_START, 60, 3.0, 400)
    rule = rule_on(model, default_metric(model, "Input Drift"), bound="lower", threshold=1e-3)
    email_to(model, "a@example.com")
    email_to(model, "b@example.com")
    real_send = evaluator().notifier.send
    calls = []

    def send(config, alert, about) -> None:
        calls.append(config.destination)
        if len(calls) == 2:
            container.monitoring().update_alert(alert.id, "resolved")
        real_send(config, alert, about)

    monkeypatch.setattr(evaluator().notifier, "send", send)

    # WHEN the model is evaluated
    evaluator().evaluate_model(model.id)

    # THEN the alert stays resolved and both notifications are recorded as sent
    [alert] = [a for a in evaluator().alerts.list(model.id) if a.alert_rule_id == rule.id]
    assert alert.status == "resolved"
    assert sorted(alert.notifications.values()) == ["sent", "sent"] and len(calls) == 2


def test_an_alert_stored_by_an_earlier_release_is_still_extended(clock: Clock) -> None:
    # GIVEN an incident's alert whose stored document lacks this release's fields
    model, rule = two_drifted_hours(np.random.default_rng(62), 400)
    evaluator().evaluate_model(model.id)
    [alert] = [a for a in evaluator().alerts.list(model.id) if a.alert_rule_id == rule.id]
    store = evaluator().alerts
    old = json.loads(alert.model_dump_json())
    for field in ("incident_end", "windows", "latest_value", "details"):
        old.pop(field)
    store.client.update_item(
        TableName=store.table_name,
        Key={"alert_id": {"S": alert.id}},
        UpdateExpression="SET #d = :doc",
        ExpressionAttributeNames={"#d": "doc"},
        ExpressionAttributeValues={":doc": {"S": json.dumps(old, separators=(",", ":"))}},
    )

    # WHEN the next hour crosses too
    clock.moment = NOW + timedelta(hours=1)
    evaluator().evaluate_model(model.id)

    # THEN that alert is extended
    [extended] = [a for a in evaluator().alerts.list(model.id) if a.alert_rule_id == rule.id]
    assert extended.windows == 2 and extended.incident_end == WINDOW_START + timedelta(hours=2)
