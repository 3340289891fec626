"""Evaluation: for one model, measure every enabled rule's metric in its due windows, raise alerts,
and send the notifications still pending (`Evaluator`). The schedule fans out one message per model
(`fan_out`), so one slow model never delays the rest; a failing rule is logged and reported, the
others still run. A run's windows share its reads of the lake (sagewatch.alerting.reads): a rule
looking at hundreds of windows of the same days reads those days once.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sagewatch.alerting import catalog, windows
from sagewatch.alerting.reads import RunReads
from sagewatch.alerting.types import Alert, Metric, Rule
from sagewatch.errors import ConcurrentUpdate, NotFound, SagewatchError
from sagewatch.metrics import anomaly
from sagewatch.metrics.query import Loader
from sagewatch.schema import Model
from sagewatch.stores.alerting import AlertStore, MetricStore, NotificationStore, RuleStore
from sagewatch.stores.ingestion import IngestionLedger
from sagewatch.stores.models import ModelStore
from sagewatch.stores.notify import NotificationFailed, Notifier
from sagewatch.stores.partials import PartialReads
from sagewatch.stores.queues import EvaluateQueue
from sagewatch.stores.window import LakeLoader

ALERTS = uuid.UUID("0f9d7e52-3a43-4f65-8f0b-92c1a1b5e9d4")
DEFAULT_DRIFT_LOOKBACK_MINUTES = 60
# The default drift rule's threshold on the family-wise p: an hourly window of a healthy model reads
# below it with probability at most 0.0001, at most 0.017 false alerts a model-week in expectation;
# the margin is for a reference that sits off its population by chance (docs/alerting.md).
DRIFT_FALSE_ALARM_RATE = 0.0001
# The default anomaly rule's threshold on its metric's p-value (rateTest: as many of an hour's
# inferences above the detector's cutoff, when each is with the share its reference had above it,
# that share's uncertainty included): the drift rule's false-alarm rate, so an hour like the
# reference alarms with probability at most 0.0001 whatever its size (docs/enrichments.md).
ANOMALY_FALSE_ALARM_RATE = DRIFT_FALSE_ALARM_RATE
ANOMALY_RULE_STATE = "DEFAULT_ANOMALY_RULE"  # the detector (digest) the default anomaly rule follows
# The default anomaly rule's form; a rule made in an earlier form (an upper bound of 0.1 on the rate
# above the cutoff) is moved to this one once.
ANOMALY_RULE_FORM = "rateTest"


@dataclass
class Report:
    """What one model's evaluation did: rules run, alerts raised, errors, notifications."""

    model_id: str
    rules: int = 0
    alerts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sent: int = 0
    pending: int = 0


class Evaluator:
    """Evaluates one model at a time; its stores, loader, notifier and clock are given to it."""

    def __init__(
        self,
        models: ModelStore,
        metrics: MetricStore,
        rules: RuleStore,
        alerts: AlertStore,
        notifications: NotificationStore,
        ledger: IngestionLedger,
        loader_for: Callable[[Model], Loader],
        notifier: Notifier,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        measure: Callable[..., catalog.Measurement] = catalog.measure,
    ) -> None:
        self.models, self.metrics, self.rules, self.alerts = models, metrics, rules, alerts
        self.notifications, self.ledger, self.loader_for = notifications, ledger, loader_for
        self.notifier, self.clock = notifier, clock
        self.measure = measure  # catalog.measure, or one that also reads endpoint metrics
        # Rules whose metrics partials can answer are measured from them (stores/partials.py) when
        # the loader is the lake's; off, every window is measured from the raw rows.
        self.partials = True

    def evaluate_model(self, model_id: str) -> Report:
        """Run the model's enabled rules (adding default rules once possible); send pending notifications.

        An archived model is skipped; a rule that fails is reported and the others still run."""
        model = self.models.get(model_id)
        report = Report(model.id)
        if model.archived:
            return report
        now = self.clock()
        base = self.loader_for(model)
        load = RunReads(base)  # the run's windows share its reads of the lake
        partials = PartialReads(base.lake, model) if self.partials and isinstance(base, LakeLoader) else None
        try:
            self.ensure_default_rules(model, load, now)
        except SagewatchError as error:
            report.errors.append(f"default rules: {error.message}")
        custom = self.metrics.list(model.id)
        for rule in self.rules.list(model.id):
            if not rule.enabled:
                continue
            report.rules += 1
            try:
                metric = catalog.find_metric(model, rule.metric_id, custom)
                report.alerts += self.evaluate_rule(model, rule, metric, load, now, partials)
            except SagewatchError as error:  # a rule that cannot run is reported; the others go on
                report.errors.append(f"rule {rule.name} ({rule.id}): {error.message}")
        self.send_pending(model, report, now)
        return report

    # -- one rule ----------------------------------------------------------------------------

    def evaluate_rule(
        self,
        model: Model,
        rule: Rule,
        metric: Metric,
        load: Loader,
        now: datetime,
        partials: PartialReads | None = None,
    ) -> list[str]:
        """Alerts raised for the rule's due windows (ids); a crossing next to the rule's latest
        incident extends that incident's alert instead. With `partials`, the windows its metric's
        partials can answer are measured from them, all at once."""
        needs_truth = catalog.needs_ground_truth(metric)
        records = {r["window"]: r for r in self.rules.windows(model.id, rule.id)}
        candidates = self._candidates(model, rule, needs_truth, records, now)
        found = self._from_partials(model, rule, metric, candidates, load, partials)
        raised: list[str] = []
        state = _RuleState(
            rule.last_value,
            rule.last_triggered_at,
            rule.incident_alert_id,
            rule.incident_end,
            rule.last_decision,
            rule.labels_needed,
        )
        for key, window, ended in candidates:
            measured = found.get(key) or self.measure(
                metric,
                model,
                _window_reads(load, metric, window),
                window,
                rule.metric_parameters,
                rule.filters,
            )
            decision = windows.decide(
                value=measured.value,
                rows=measured.rows,
                labelled=measured.labelled,
                previous=records.get(key),
                bound=rule.bound,
                threshold=rule.threshold,
                needs_truth=needs_truth,
                is_eligible=windows.eligible(
                    ended,
                    now,
                    measured.rows,
                    measured.labelled,
                    model.alerts_delay_seconds,
                    model.alerts_delay_labels_ratio,
                ),
                now=now,
                last_triggered=state.last_triggered,
                wait_minutes=rule.subsequent_alert_wait_time,
            )
            # An empty window is not settled: its data may still be on its way (a late file).
            if decision in ("wait", "unchanged", "fired_before", "empty"):
                continue
            spread = None
            if decision in ("fire", "suppressed") and needs_truth and _has_interval(metric):
                spread = catalog.interval(  # its parts are seeded by each file's place: kept
                    metric,
                    model,
                    _window_reads(load, metric, window, keep_places=True),
                    window,
                    measured,
                    rule.metric_parameters,
                    rule.filters,
                )
                if spread is None or not spread.excludes(rule.threshold, rule.bound):
                    decision = "uncertain"  # looked at again when more of the window is labelled
            if (
                decision in ("fire", "suppressed")
                and windows.continues_incident(window.start, state.incident_end, rule.lookback_period)
                and self._extend(state.incident_alert_id, rule, metric, window, measured, now)
            ):
                decision = "continued"  # its alert, still open, now spans this window too
            fired = decision in ("fire", "continued")
            if decision == "fire":
                alert = self._alert(model, rule, metric, window, key, measured, spread, now)
                if self.alerts.create(alert):
                    raised.append(alert.id)
                state.last_triggered, state.incident_alert_id = now, alert.id
                state.incident_end = None
            if fired and window.end is not None:
                state.incident_end = max(filter(None, [state.incident_end, window.end]))
            state.last_decision = decision
            state.labels_needed = (
                _labels_needed(spread, measured, rule)
                if spread is not None
                else catalog.MIN_LABELLED
                if decision == "uncertain"  # too few labels for an interval: at least this many
                else None
            )
            if measured.value is not None:
                state.last_value = measured.value
            self.rules.save_window(
                model.id,
                rule.id,
                {
                    "window": key,
                    "end": ended.isoformat() if ended else None,
                    "value": measured.value,
                    "rows": measured.rows,
                    "labelled": measured.labelled,
                    "fired": fired,
                    "decision": decision,
                    "evaluated_at": now.isoformat(),
                    **({"labels_needed": state.labels_needed} if state.labels_needed is not None else {}),
                },
            )
        self._forget_old_windows(model, rule, records, now, needs_truth)
        updated = rule.model_copy(
            update={
                "last_value": state.last_value,
                "last_evaluated_at": now,
                "last_triggered_at": state.last_triggered,
                "incident_alert_id": state.incident_alert_id,
                "last_decision": state.last_decision,
                "labels_needed": state.labels_needed,
                "incident_end": state.incident_end,
                "version": rule.version + 1,
            }
        )
        # another run (the schedule and `sagewatch evaluate` may overlap) or an edit may have saved the
        # rule first; the windows and alerts are idempotent, so its state stands and this is no error
        with contextlib.suppress(ConcurrentUpdate):
            self.rules.put(updated, expected_version=rule.version)
        return raised

    def _from_partials(
        self,
        model: Model,
        rule: Rule,
        metric: Metric,
        candidates: list[tuple[str, catalog.Window, datetime]],
        load: Loader,
        partials: PartialReads | None,
    ) -> dict[str, catalog.Measurement]:
        """The measurements of the windows partials answer (one pass over their days' partials), by
        window key; the others are measured from the raw rows."""
        timed = [(key, window) for key, window, _ in candidates if window.start and window.end]
        if partials is None or not timed:
            return {}
        spec = catalog.partial_spec(metric, model, load, rule.metric_parameters, rule.filters)
        if spec is None:
            return {}
        spans = [(window.start, window.end) for _, window in timed]
        results = partials.measure(spec, spans)  # type: ignore[arg-type]
        return {
            key: catalog.measurement(result)
            for (key, _), result in zip(timed, results, strict=True)
            if result is not None
        }

    def _candidates(
        self, model: Model, rule: Rule, needs_truth: bool, records: dict, now: datetime
    ) -> list[tuple[str, catalog.Window, datetime]]:
        """(key, window, end) of every window the rule looks at in this run, oldest first."""
        if model.is_batch:
            return self._closed_batches(model, now, needs_truth, records)
        evaluated = [datetime.fromisoformat(r["end"]) for r in records.values() if r.get("end")]
        since = max(evaluated) if evaluated else None
        if rule.window_mode == "sliding":
            due = windows.sliding_windows(now, rule.lookback_period, since)
        else:
            # Labels arrive late, so such rules look back over the delay; others look at the window
            # before the newest again, for files that landed after it was evaluated.
            lookback = rule.lookback_period * 60
            look_back = model.alerts_delay_seconds + lookback if needs_truth else lookback
            due = windows.windows_to_check(now, rule.lookback_period, since, look_back)
        return [(w.key, catalog.Window(w.start, w.end), w.end) for w in due]

    def _extend(
        self,
        alert_id: str | None,
        rule: Rule,
        metric: Metric,
        window: catalog.Window,
        measured: catalog.Measurement,
        now: datetime,
    ) -> bool:
        """One more window of an incident: its alert's incident end, window count, latest value and,
        for a drift alert, the inputs named (window_start and window_end stay those of metric_value's
        window). False when the alert is gone or resolved: the crossing is a new incident."""

        def extended(alert: Alert) -> Alert | None:
            if alert.status == "resolved":
                return None
            ends = [e for e in (alert.incident_end, alert.window_end, window.end) if e is not None]
            update: dict[str, Any] = {
                "incident_end": max(ends),
                "windows": alert.windows + 1,
                "latest_value": measured.value,
                "updated_at": now,
            }
            if _is_drift_alert(metric, rule) and measured.details is not None:
                named = dict((alert.details or {}).get("drifted", {}))
                for name, p in _drifted(measured.details, rule.threshold).items():
                    named[name] = min(p, named.get(name, p))
                named = dict(sorted(named.items(), key=lambda item: item[1]))
                update["details"] = {**(alert.details or {}), "drifted": named}
                later = alert.windows
                update["message"] = _drift_message(
                    named,
                    None,
                    measured.value or 0.0,
                    rule,
                    f"{_where(alert)} and {later} window{'s' if later > 1 else ''} after it",
                    inputs=len(measured.details),
                )
            return alert.model_copy(update=update)

        return alert_id is not None and self.alerts.update(alert_id, extended) is not None

    def _closed_batches(self, model: Model, now: datetime, needs_truth: bool, records: dict) -> list[tuple]:
        """Batches closed (status uploaded) and not yet settled: new ones, and for rules waiting for
        labels, those closed within the delay."""
        found = []
        for batch_id, state in self.ledger.batches(model.id).items():
            if state.get("status") != "uploaded":
                continue
            closed = datetime.fromisoformat(state["uploaded_at"])
            settled = records.get(batch_id, {}).get("fired") or (
                batch_id in records
                and (not needs_truth or now - closed > timedelta(seconds=model.alerts_delay_seconds))
            )
            if not settled:
                found.append((batch_id, catalog.Window(batch_id=batch_id), closed))
        return found

    def _forget_old_windows(
        self, model: Model, rule: Rule, records: dict, now: datetime, needs_truth: bool
    ) -> None:
        keep = timedelta(seconds=model.alerts_delay_seconds if needs_truth else 0) + timedelta(
            minutes=rule.lookback_period * (windows.MAX_CATCH_UP + 1)
        )
        ends = sorted((r["end"], key) for key, r in records.items() if r.get("end"))
        for end, key in ends[:-1]:  # the newest stays: it marks how far the rule has evaluated
            if model.is_batch:
                break
            if now - datetime.fromisoformat(end) > keep:
                self.rules.forget_window(model.id, rule.id, key)

    def _alert(
        self,
        model: Model,
        rule: Rule,
        metric: Metric,
        window: catalog.Window,
        key: str,
        measured: catalog.Measurement,
        spread: catalog.Interval | None,
        now: datetime,
    ) -> Alert:
        value = measured.value or 0.0
        where = (
            f"batch {window.batch_id}"
            if window.batch_id
            else f"{window.start:%Y-%m-%d %H:%M}-{window.end:%H:%M} UTC"
        )
        direction = "above" if rule.bound == "upper" else "below"
        message = f"{metric.name} is {value:.4g}, {direction} the threshold {rule.threshold:.4g}, in {where}"
        details: dict[str, Any] | None = None
        if _is_drift_alert(metric, rule) and measured.details is not None:
            drifted = _drifted(measured.details, rule.threshold)
            details = {"drifted": drifted}
            message = _drift_message(drifted, measured.details, value, rule, where)
        if spread is not None:
            needed = _labels_needed(spread, measured, rule)
            details = {
                "interval": [spread.low, spread.high],
                "level": catalog.LEVEL,
                "labelled": spread.labelled,
                "labels_needed": needed,
            }
            message += (
                f"; {catalog.LEVEL:.0%} interval {spread.low:.4g} to {spread.high:.4g} from "
                f"{spread.labelled} labelled inferences ({needed} are enough to tell it from the threshold)"
            )
        return Alert(
            id=str(uuid.uuid5(ALERTS, f"{rule.id}/{key}")),
            model_id=model.id,
            alert_rule_id=rule.id,
            rule_name=rule.name,
            metric_id=metric.id,
            window_start=window.start,
            window_end=window.end,
            batch_id=window.batch_id,
            metric_value=value,
            latest_value=value,
            threshold=rule.threshold,
            bound=rule.bound,
            severity=rule.severity,
            message=message,
            details=details,
            timestamp=now,
            updated_at=now,
            notifications={c.id: "pending" for c in self.notifications.list(model.id) if c.enabled},
        )

    # -- notifications -----------------------------------------------------------------------

    def send_pending(self, model: Model, report: Report, now: datetime) -> None:
        """Send every notification still pending (new alerts, and failures of earlier runs)."""
        configs = {c.id: c for c in self.notifications.list(model.id)}
        for alert in self.alerts.list(model.id):
            waiting = [
                cid for cid, state in alert.notifications.items() if state != "sent" and cid in configs
            ]
            for config_id in waiting:
                if not configs[config_id].enabled or not self.alerts.claim_notification(
                    alert, config_id, now
                ):
                    continue
                try:
                    self.notifier.send(configs[config_id], alert, model)
                    state = "sent"
                    report.sent += 1
                except NotificationFailed as error:
                    state = f"failed: {error}"
                    report.pending += 1

                def noted(current: Alert, config_id: str = config_id, state: str = state) -> Alert:
                    notifications = {**current.notifications, config_id: state}
                    return current.model_copy(update={"notifications": notifications, "updated_at": now})

                # only this notification's state changes (an extension or a user's PATCH meanwhile
                # stands); the claim is dropped with it
                self.alerts.update(alert.id, noted, release=config_id)

    # -- default rules -----------------------------------------------------------------------

    def ensure_default_rules(self, model: Model, load: Loader, now: datetime) -> None:
        """One model-level drift rule (Input Drift below DRIFT_FALSE_ALARM_RATE, hourly), once
        reference and inference data exist; created once, then edited or disabled like any rule.
        And the anomaly rule once the model has a detector (`_ensure_anomaly_rule`)."""
        self._ensure_anomaly_rule(model, now)
        if self.ledger.state(model.id, "DEFAULT_RULES"):
            return
        totals = self.ledger.counts(model.id)["total"]
        if not totals.get("reference_ingested") or not totals.get("inferences_ingested"):
            return
        drift = [m for m in catalog.default_metrics(model) if m.name == catalog.INPUT_DRIFT]
        for metric in drift:
            self.rules.put(_default_rule(model, metric, "Input drift", DRIFT_FALSE_ALARM_RATE, now))
        self.ledger.set_state(model.id, "DEFAULT_RULES", created="yes")

    def _ensure_anomaly_rule(self, model: Model, now: datetime) -> None:
        """The rule "Anomalous inferences": the p-value of an hour's inferences above the detector's
        cutoff (its reference's out-of-bag 99th percentile score) below ANOMALY_FALSE_ALARM_RATE.
        Created once the model's detector exists (its own ledger state, so models that had their
        default rules before get it too); when the detector is refitted (a new reference) the rule's
        parameters follow it and the rest of the rule, as the user left it, stays; a rule made in an
        earlier form gets this form's bound and threshold once; a deleted rule stays deleted."""
        detector = self.ledger.state(model.id, anomaly.LEDGER_STATE)
        if detector.get("cutoff") is None:
            return
        calibrated = self.ledger.state(model.id, ANOMALY_RULE_STATE)
        current = calibrated.get("form") == ANOMALY_RULE_FORM
        if calibrated.get("digest") == detector["digest"] and current:
            return
        metric = next(
            (m for m in catalog.default_metrics(model) if m.name == catalog.ANOMALOUS_INFERENCES), None
        )
        if metric is None:
            return
        parameters = anomaly_rule_parameters(detector)
        if not calibrated:
            self.rules.put(
                _default_rule(
                    model, metric, "Anomalous inferences", ANOMALY_FALSE_ALARM_RATE, now, parameters
                )
            )
        else:
            with contextlib.suppress(NotFound, ConcurrentUpdate):
                rule = self.rules.get(model.id, _default_rule_id(model, metric))
                update: dict[str, Any] = {
                    "metric_parameters": {**(rule.metric_parameters or {}), **parameters},
                    "version": rule.version + 1,
                }
                if not current:  # a threshold on the old rate means nothing on a p-value
                    update |= {"bound": "lower", "threshold": ANOMALY_FALSE_ALARM_RATE}
                self.rules.put(rule.model_copy(update=update), expected_version=rule.version)
        self.ledger.set_state(
            model.id,
            ANOMALY_RULE_STATE,
            digest=detector["digest"],
            cutoff=parameters["cutoff"],
            form=ANOMALY_RULE_FORM,
        )


def _default_rule_id(model: Model, metric: Metric) -> str:
    """A default rule's id: stable per model and metric, so it is created once."""
    return str(uuid.uuid5(ALERTS, f"{model.id}/default/{metric.id}"))


def _default_rule(
    model: Model,
    metric: Metric,
    name: str,
    false_alarm_rate: float,
    now: datetime,
    parameters: dict[str, Any] | None = None,
) -> Rule:
    """A default rule on a p-value metric: a warning below `false_alarm_rate`, on hourly windows."""
    return Rule(
        id=_default_rule_id(model, metric),
        model_id=model.id,
        name=name,
        metric_id=metric.id,
        metric_name=metric.name,
        metric_parameters=parameters,
        bound="lower",
        threshold=false_alarm_rate,
        severity="warning",
        lookback_period=DEFAULT_DRIFT_LOOKBACK_MINUTES,
        is_default=True,
        created_at=now,
    )


def anomaly_rule_parameters(detector: dict[str, Any]) -> dict[str, Any]:
    """The default anomaly rule's metric parameters from a detector's ledger note: its cutoff, and
    the share of its reference scores above it with how many scores that share was read from (for a
    detector noted before those counts were, as anomaly.rows_above reckons them)."""
    scored = int(detector.get("scored_rows") or min(int(detector["reference_rows"]), anomaly.QUANTILE_ROWS))
    above = detector.get("above_cutoff")
    if above is None:
        above = anomaly.rows_above(scored, float(detector.get("cutoff_quantile", 0.999)))
    return {"cutoff": float(detector["cutoff"]), "share": int(above) / scored, "share_rows": scored}


@dataclass
class _RuleState:
    """What a rule carries from one window to the next within a run."""

    last_value: float | None
    last_triggered: datetime | None
    incident_alert_id: str | None
    incident_end: datetime | None
    last_decision: str | None
    labels_needed: int | None


def _window_reads(load: Loader, metric: Metric, window: catalog.Window, keep_places: bool = False) -> Loader:
    """The loader a window is measured through: of a run's reads (RunReads), only the window's
    inferences when every read of the metric is filtered to the window (a query metric's; a drift
    metric's base may be other inferences); the loader itself otherwise. `keep_places`: for an
    interval, every file at its place (RunReads.within)."""
    if isinstance(load, RunReads) and not metric.is_drift and window.start and window.end:
        return load.within(window.start, window.end, keep_places)
    return load


def _has_interval(metric: Metric) -> bool:
    """Whether the metric's value gets an interval: a query of the inferences (not a variant
    difference, nor an endpoint metric)."""
    return not metric.is_drift and metric.variant_difference is None and metric.endpoint_metric is None


def _labels_needed(spread: catalog.Interval, measured: catalog.Measurement, rule: Rule) -> int | None:
    return spread.labels_needed(measured.value, rule.threshold) if measured.value is not None else None


def _is_drift_alert(metric: Metric, rule: Rule) -> bool:
    """Whether a rule's alert names drifted inputs: Input Drift, alerting below a p-value."""
    return metric.name == catalog.INPUT_DRIFT and metric.is_default and rule.bound == "lower"


def _where(alert: Alert) -> str:
    return f"{alert.window_start:%Y-%m-%d %H:%M}-{alert.window_end:%H:%M} UTC"


def _drift_message(
    drifted: dict[str, float],
    p_values: dict[str, float | None] | None,
    value: float,
    rule: Rule,
    where: str,
    inputs: int = 0,
) -> str:
    """A model-level drift alert's text: the inputs it names (of those with a p-value in its window;
    over an incident's windows, those named in any) and the family-wise p of its latest window."""
    listed = ", ".join(f"{name} (p={p:.2g})" for name, p in drifted.items())
    if p_values is None:  # over an incident's windows: of the metric's inputs
        return (
            f"{len(drifted)} of {inputs} inputs drifted in {where}: {listed} "
            f"(family-wise p={value:.2g} in the latest window, threshold {rule.threshold:.2g})"
        )
    judged = sum(1 for p in p_values.values() if p is not None)
    return (
        f"{len(drifted)} of {judged} inputs drifted in {where}: {listed} "
        f"(family-wise p={value:.2g}, threshold {rule.threshold:.2g})"
    )


def _drifted(p_values: dict[str, float | None], family_wise: float) -> dict[str, float]:
    """The inputs a model-level drift alert names: those whose Bonferroni-adjusted p is below the
    rule's threshold, smallest p first (at least the smallest one)."""
    present = {k: v for k, v in p_values.items() if v is not None}
    if not present:
        return {}
    ordered = sorted(present.items(), key=lambda item: item[1])
    chosen = [(k, v) for k, v in ordered if v * len(present) < family_wise] or ordered[:1]
    return dict(chosen)


def evaluate_all(evaluator: Evaluator, model_ids: list[str]) -> list[Report]:
    """Every model in turn (local mode and `sagewatch evaluate --now`); each model apart."""
    return [evaluator.evaluate_model(model_id) for model_id in model_ids]


def as_dict(report: Report) -> dict[str, Any]:
    """A report as a plain dict, to log or print."""
    return {
        "model_id": report.model_id,
        "rules": report.rules,
        "alerts": report.alerts,
        "errors": report.errors,
        "sent": report.sent,
        "pending": report.pending,
    }


class FanOutFailed(RuntimeError):
    """Some models' evaluate messages could not be sent."""


def fan_out(models: ModelStore, queue: EvaluateQueue, now: datetime) -> int:
    """One evaluate message per active model; returns how many were sent. Raises FanOutFailed when
    some could not be queued, so the schedule's invocation fails and EventBridge retries it
    (evaluations are idempotent per window)."""
    model_ids = [model.id for model in models.list()]
    unsent = queue.send(model_ids, now)
    if unsent:
        raise FanOutFailed(f"{len(unsent)} of {len(model_ids)} models were not queued: {', '.join(unsent)}")
    return len(model_ids)
