"""Monitoring: queries and drift over a model's lake, and the metrics, alert rules, alerts and
notification configurations the evaluator works from (Arthur v3's objects).

What the API's metric and alert routes do lives here, so the Deepchecks door (which turns its
monitors into metrics and rules) and the routes share one path. Reads are paged with `pages`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, Protocol

import pyarrow as pa
from pydantic import BaseModel, Field, ValidationError

from sagewatch.alerting import catalog
from sagewatch.alerting.types import (
    Alert,
    AlertStatus,
    Metric,
    MetricSpec,
    NotificationConfig,
    NotificationSpec,
    Rule,
    RuleSpec,
)
from sagewatch.auth import Role, TokenRecord
from sagewatch.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    NothingToCompare,
    SagewatchError,
    TooLarge,
    invalid_input,
)
from sagewatch.metrics import filters
from sagewatch.metrics.drift import DriftQuery, run_drift
from sagewatch.metrics.filters import Condition
from sagewatch.metrics.query import DAILY_SOURCES, Loader, Plan, Query, run
from sagewatch.metrics.sql import (
    ATHENA_QUERY_BYTES,
    DriftBins,
    LabelDays,
    NotInSql,
    SqlQuery,
    SqlTables,
    drift_base,
    drift_bins,
    drift_sql,
    query_sql,
)
from sagewatch.paging import pages
from sagewatch.schema import Model
from sagewatch.stores.alerting import AlertStore, MetricStore, NotificationStore, RuleStore
from sagewatch.stores.athena import Execution, SqlUnavailable, failure, tag, tagged
from sagewatch.stores.ingestion import IngestionLedger
from sagewatch.stores.lake import LakeStore
from sagewatch.stores.models import ModelStore
from sagewatch.stores.window import lake_loader
from sagewatch.webhooks import check_destination

logger = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


# A query whose window holds more rows than this (the ledger's day counters) runs as SQL (Athena
# deployed, DuckDB locally) instead of in the API's Lambda (1,769 MB, 29 s). stores/window.py keeps
# a 2 M-row window of 8 inputs in its 512 MB cache and reads it once; bench/window.py measures 1 M
# rows at 1.8 s of CPU and 321 MB, 3 M rows at 5.6 s and 710 MB (columns decoded again past the
# cache): past 2 M a wider model, or ground truth joined in, nears the function's memory and time.
SQL_ROWS = 2_000_000
# How long a request waits for its SQL before answering 202 with the query's id to poll: API
# Gateway stops waiting at 29 s; the rest is for reading and decoding the result.
SQL_WAIT_SECONDS = 20.0
SQL_SOURCES = ("inference", "reference", "ground_truth")  # what metrics.sql computes (not explanation)
# At most this many result rows are read back from the SQL engine (its SQL is limited to one more, to
# tell a result past it, answered 413 as an answer past Lambda's 6 MB is): GetQueryResults reads
# 1,000 rows a call, so 50 calls, which fit in what is left of a request's 29 s after its 20 s wait.
SQL_RESULT_ROWS = 50_000
_LIMIT = re.compile(r"\sLIMIT (\d+)$")
# Model fields a query's plan does not read: editing them leaves a running query's answer as it was.
_UNPLANNED = {
    "id",
    "partner_model_id",
    "display_name",
    "description",
    "sagemaker",
    "alerts_delay_seconds",
    "alerts_delay_labels_ratio",
    "tags",
    "status",
    "archived",
    "created_at",
    "updated_at",
    "version",
}


@dataclass(frozen=True)
class Pending:
    """A query still running in the SQL engine: poll its id."""

    query_id: str
    state: str


class SqlEngine(Protocol):
    """Where windows past SQL_ROWS run: Athena (stores/athena.AthenaEngine) or, in local mode,
    DuckDB (sagewatch.local.sql)."""

    dialect: Literal["trino", "duckdb"]

    def tables(self, model: Model, check: bool = True) -> SqlTables:
        """The relations a model's SQL reads (with `check`, made ready for it first)."""
        ...

    def queryable(self, model: Model) -> bool:
        """Whether the model's lake can be read by SQL at all."""
        ...

    def start(self, sql: str, model: Model, first: date | None, last: date | None) -> str:
        """Start a query over the model's days [first, last]; its id."""
        ...

    def execution(self, query_id: str) -> Execution:
        """A query's state and text (NotFound for an id the engine does not know)."""
        ...

    def wait(self, query_id: str, seconds: float) -> Execution:
        """A query's state once finished, or after `seconds`."""
        ...

    def results(self, query_id: str) -> pa.Table:
        """A succeeded query's result."""
        ...


class MetricPage(BaseModel):
    """A page of a model's metrics."""

    metrics: list[Metric]
    page: int
    page_size: int
    total_pages: int
    total_count: int


class RuleView(Rule):
    """A rule with what it has done: alerts by status, the last value and trigger."""

    alert_counts: dict[str, int] = Field(default_factory=dict)


class RulePage(BaseModel):
    """A page of a model's alert rules."""

    data: list[RuleView]
    page: int
    page_size: int
    total_pages: int
    total_count: int


class AlertView(Alert):
    """An alert with its rule (the rule as the alert recorded it, if deleted since)."""

    alert_rule: dict[str, Any]


class AlertPage(BaseModel):
    """A page of alerts, newest first."""

    data: list[AlertView]
    page: int
    page_size: int
    total_pages: int
    total_count: int


class NotificationPage(BaseModel):
    """A page of notification configurations."""

    data: list[NotificationConfig]
    page: int
    page_size: int
    total_pages: int
    total_count: int


_ENDPOINT = re.compile(
    r"^(?:https?://[^/]+)?(?:/api/v[34])?/models/(?P<model>[^/]+)/inferences/query(?P<drift>/data_drift)?/?$"
)


class Monitoring:
    """Queries, metrics, rules, alerts and notification configurations of every model."""

    def __init__(
        self,
        models: ModelStore,
        lake: LakeStore,
        metrics: MetricStore,
        rules: RuleStore,
        alerts: AlertStore,
        notifications: NotificationStore,
        measure: Callable[..., catalog.Measurement] = catalog.measure,
        ledger: IngestionLedger | None = None,
        sql: SqlEngine | None = None,
    ) -> None:
        self.models, self.lake, self.ledger = models, lake, ledger
        self.sql = sql  # where windows past SQL_ROWS run (None: every window runs here)
        self.sql_rows, self.sql_wait = SQL_ROWS, SQL_WAIT_SECONDS
        self.metrics, self.rules, self.alerts, self.notifications = metrics, rules, alerts, notifications
        self.measure = measure  # catalog.measure, or one that also reads endpoint metrics

    # -- queries ------------------------------------------------------------------------------------

    def loader(self, model: Model) -> Loader:
        """The model's lake as the engines' loader."""
        return lake_loader(self.lake, model)

    def query(self, model_id: str, body: Query) -> list[dict[str, Any]] | Pending:
        """Arthur's query: functions, filters, group_by, time series. A window past `sql_rows` runs
        in the SQL engine; one that has not finished within SQL_WAIT_SECONDS is Pending."""
        model = self.models.get(model_id)
        plan = Plan(body, model)  # checked before anything is read or started
        first, last = filters.date_range(body.filter) if body.from_ in DAILY_SOURCES else (None, None)
        if self.sql is None or not self._past_limit(model, plan, first, last):
            return run(body, model, self.loader(model))
        engine = self.sql
        label_days = self._label_days(model) if body.from_ == "ground_truth" else None
        if label_days is not None and label_days.empty:  # no label file: the engine's empty answer
            return run(body, model, self.loader(model))
        bounded = self._bounded(model, body, first, last)
        first, last = filters.date_range(bounded.filter) if body.from_ in DAILY_SOURCES else (None, None)
        try:
            planned = query_sql(bounded, model, engine.tables(model), engine.dialect, label_days)
        except (NotInSql, SqlUnavailable) as error:  # here, as before there was SQL
            _fallback("query", error, model)
            return run(body, model, self.loader(model))
        what = {
            "kind": "query",
            "model_id": model.id,
            "body": bounded.model_dump(mode="json", by_alias=True),
            "schema": schema_digest(model),
            "rows": SQL_RESULT_ROWS,
            **({"label_days": label_days.to_json()} if label_days is not None else {}),
        }
        query_id = self._start(planned, what, model, first, last)
        if query_id is None:
            return run(body, model, self.loader(model))
        return self._answer(engine.wait(query_id, self.sql_wait), planned, SQL_RESULT_ROWS)

    def _start(
        self, planned: SqlQuery, what: dict[str, Any], model: Model, first: date | None, last: date | None
    ) -> str | None:
        """Start the planned SQL, its result limited to what["rows"] + 1 and tagged with `what`; its
        id, or None (logged) when the text is past Athena's limit or the engine refuses it: the
        caller runs the request in the Lambda, as one SQL cannot express."""
        assert self.sql is not None
        text = tag(limited(planned.sql, what["rows"] + 1), what)
        size = len(text.encode())
        kind = "data_drift" if what["kind"] == "drift" else "query"
        if size > ATHENA_QUERY_BYTES:
            logger.info(
                "%s run in the Lambda: its SQL is %d bytes with its tag, past Athena's %d",
                kind,
                size,
                ATHENA_QUERY_BYTES,
                extra={"model_id": model.id},
            )
            return None
        try:
            return self.sql.start(text, model, first, last)
        except SqlUnavailable as error:
            _fallback(kind, error, model)
            return None

    def _label_days(self, model: Model) -> LabelDays:
        """The days each label area of the model has files on (one LIST per 1,000 days of each): a
        ground_truth query's SQL reads those days only, every label file among them."""
        return LabelDays.of(self.lake.days("labels", model.id), self.lake.days("ground_truth", model.id))

    def _bounded(self, model: Model, body: Query, first: date | None, last: date | None) -> Query:
        """An inference query open at either end, bounded by the days the model's inferences span
        (the ledger's earliest and latest): the same rows, but the SQL names its days, so Athena
        lists those partitions and not every projected day from 1970 to 2199. (As in any window with
        a first day, labels left in ground_truth/ more than LABELS_EARLY_DAYS before it, sent a month
        before any inference, are not looked for.)"""
        if body.from_ not in DAILY_SOURCES:
            return body
        added = self._bounded_filter(model, body.filter, first, last)
        return body.model_copy(update={"filter": added}) if added else body

    def _bounded_filter(
        self, model: Model, conditions: list[Condition], first: date | None, last: date | None
    ) -> list[Condition]:
        """`conditions` with the bounds _bounded adds, or [] when none is added."""
        if self.ledger is None or (first and last):
            return []
        total = self.ledger.counts(model.id)["total"]
        earliest, latest = (
            total.get("earliest_inferences_timestamp"),
            total.get("latest_inferences_timestamp"),
        )
        added = []
        if first is None and earliest:
            start = datetime.fromisoformat(earliest).astimezone(UTC).date()
            added.append(
                Condition(property="inference_timestamp", comparator="gte", value=f"{start}T00:00:00Z")
            )
        if last is None and latest:
            end = datetime.fromisoformat(latest).astimezone(UTC).date() + timedelta(days=1)
            added.append(Condition(property="inference_timestamp", comparator="lt", value=f"{end}T00:00:00Z"))
        return [*conditions, *added] if added else []

    def window_rows(self, model: Model, source: str, first: date | None, last: date | None) -> int:
        """How many rows a query's window holds, from the ingestion ledger's counters (no lake read)."""
        if self.ledger is None:
            return 0
        if source == "inference":
            return self.ledger.rows(model.id, first, last)
        if source in ("reference", "ground_truth"):  # rows ever ingested (each copy of a relabel counted)
            return int(self.ledger.counts(model.id)["total"].get(f"{source}_ingested", 0))
        return 0

    def _past_limit(self, model: Model, plan: Plan, first: date | None, last: date | None) -> bool:
        source = plan.query.from_
        if self.sql is None or source not in SQL_SOURCES or not self.sql.queryable(model):
            return False
        return self.window_rows(model, source, first, last) > self.sql_rows

    def query_result(self, model_id: str, query_id: str) -> list[dict[str, Any]] | Pending:
        """A query left running (Pending): its rows once done, Pending while it runs, its failure
        as the error Athena's reason says (stores/athena.failure); Conflict (run it again) when the
        model's schema is not the one its tag names (the answer would mix them), or its tag is not
        one this version reads (an earlier version's, or one sagewatch did not write: anyone who may
        start queries in the workgroup writes their text); NotFound when it has no tag of the model's.
        A drift answers over its base as it was when it started: its bins and base counts are in its
        tag (DriftBins), so a base that changed since (new rows in an open window, a reference
        replaced) is not read."""
        model = self.models.get(model_id)
        if self.sql is None:
            raise NotFound(
                f"no query {query_id!r}: queries run as SQL only in a deployed stack", field="query_id"
            )
        engine = self.sql
        found = engine.execution(query_id)
        what = _tag(found.sql)
        if what is None or what.get("model_id") != model.id or what.get("kind") not in ("query", "drift"):
            raise NotFound(f"no query {query_id!r} of model {model_id!r}", field="query_id")
        if not found.done:
            return Pending(found.query_id, found.state)
        rerun = f"run the query again for an answer over the model as it is now (query {query_id})"
        if what.get("schema") != schema_digest(model):
            raise Conflict(f"the model's schema changed since its query started: {rerun}", field="query_id")
        if what["kind"] == "drift" and "bins" not in what:  # a version that kept no bins: base unknown
            raise Conflict(f"the query was started by an earlier version: {rerun}", field="query_id")
        tables = engine.tables(model, check=False)
        try:  # the tag's request as this version plans it (a tag it did not write: a 409, not a 500)
            rows = min(int(what.get("rows", SQL_RESULT_ROWS)), SQL_RESULT_ROWS)  # never past ours
            if what["kind"] == "drift":
                request = DriftQuery.model_validate(what["body"])
                planned = drift_sql(request, model, tables, engine.dialect, DriftBins.from_json(what["bins"]))
            else:
                label_days = LabelDays.from_json(what["label_days"]) if "label_days" in what else None
                planned = query_sql(
                    Query.model_validate(what["body"]), model, tables, engine.dialect, label_days
                )
        except (KeyError, TypeError, ValueError, SagewatchError) as error:  # ValidationError is a ValueError
            raise Conflict(
                f"the query's tag is not one this version reads ({error}): {rerun}", field="query_id"
            ) from None
        return self._answer(found, planned, rows)

    def _answer(self, found: Execution, planned: SqlQuery, rows: int) -> list[dict[str, Any]] | Pending:
        """The rows of a finished query (its failure as an error; TooLarge past `rows` result rows)."""
        if not found.done:
            return Pending(found.query_id, found.state)
        if found.state != "SUCCEEDED":
            raise failure(found)
        result = self.sql.results(found.query_id) if self.sql else pa.table({})
        if result.num_rows > rows:
            raise TooLarge(
                f"the answer is larger than a Lambda can return: the query's result has more than "
                f"{rows:,} rows (groups; in data_drift, windows times bins of each property): ask for "
                "less (a limit, fewer groups or properties, a coarser rollup or a narrower window)",
                field="body",
            )
        return planned.rows(result)

    def drift(self, model_id: str, body: DriftQuery) -> list[dict[str, Any]] | Pending:
        """Arthur's data_drift: drift per property between a base and target windows. A target
        window past `sql_rows` is counted per bin in the SQL engine (the base, a reference or a
        window, is read here to fit the bins: metrics.sql.drift_base); Pending as query()."""
        model = self.models.get(model_id)
        target = body.target
        first, last = filters.date_range(target.filter) if target.source == "inference" else (None, None)
        if (
            self.sql is None
            or body.metric == "Thresholds"  # from the base alone
            or not self.sql.queryable(model)
            or self.window_rows(model, target.source, first, last) <= self.sql_rows
        ):
            return run_drift(body, model, self.loader(model))
        engine = self.sql
        bounded = (
            self._bounded_filter(model, target.filter, first, last) if target.source == "inference" else []
        )
        body = body.model_copy(
            update={"target": target.model_copy(update={"filter": bounded or target.filter})}
        )
        try:
            bins = drift_bins(body, model, drift_base(body, model, self.loader(model)))
            planned = drift_sql(body, model, engine.tables(model), engine.dialect, bins)
        except (NotInSql, SqlUnavailable) as error:  # as query()
            _fallback("data_drift", error, model)
            return run_drift(body, model, self.loader(model))
        first, last = filters.date_range(body.target.filter) if target.source == "inference" else (None, None)
        what = {
            "kind": "drift",
            "model_id": model.id,
            "body": body.model_dump(mode="json"),
            "schema": schema_digest(model),
            "bins": bins.to_json(),
            "rows": SQL_RESULT_ROWS,
        }
        query_id = self._start(planned, what, model, first, last)
        if query_id is None:
            return run_drift(body, model, self.loader(model))
        return self._answer(engine.wait(query_id, self.sql_wait), planned, SQL_RESULT_ROWS)

    # -- metrics ------------------------------------------------------------------------------------

    def create_metric(self, model_id: str, spec: MetricSpec) -> Metric:
        """A custom metric, checked by running it once (nothing to compare with yet is fine)."""
        return self.metrics.put(self._checked_metric(model_id, spec))

    def _checked_metric(self, model_id: str, spec: MetricSpec) -> Metric:
        model = self.models.get_active(model_id)
        endpoint, drift = _metric_endpoint(spec, model)
        metric = Metric(
            **spec.model_dump(exclude={"endpoint", "type"}),
            id=str(uuid.uuid4()),
            model_id=model.id,
            endpoint=endpoint,
            type=catalog.metric_type_of(spec, model, drift),
            created_at=_now(),
        )
        if spec.query.get("group_by") or spec.query.get("rollup"):
            raise InvalidInput("a metric returns one value: no group_by or rollup", field="query")
        if spec.endpoint_metric is not None and spec.variant_difference is not None:
            raise InvalidInput(
                "a metric is an endpoint metric or a variant difference, not both", field="endpoint_metric"
            )
        if spec.variant_difference is not None and self.ledger is not None:
            seen = self.ledger.counts(model.id)["by_variant"]
            for side in ("champion", "challenger"):
                name = getattr(spec.variant_difference, side)
                if name not in seen:
                    raise InvalidInput(
                        f"no variant {name!r} has sent data yet (variants: {sorted(seen)})",
                        field=f"variant_difference.{side}",
                    )
        if spec.endpoint_metric is not None and model.sagemaker is None:
            raise InvalidInput(
                "an endpoint metric needs the model's SageMaker endpoint: set sagemaker.endpoint_name",
                field="endpoint_metric",
            )
        try:
            self.measure(metric, model, self.loader(model))
        except ValidationError as error:
            raise invalid_input(error.errors(), prefix="query") from None
        except NothingToCompare:  # no reference yet: the metric is measured once there is one
            pass
        except SagewatchError as error:
            if spec.endpoint_metric is not None or spec.variant_difference is not None:
                raise  # these name their own field (or refuse: an untagged endpoint is a 403)
            raise InvalidInput(f"the metric's query fails: {error.message}", field="query") from None
        return metric

    def metrics_page(
        self,
        model_id: str,
        page: int,
        page_size: int,
        default: bool | None = None,
        metric_type: str | None = None,
        metric_name: str | None = None,
        attribute_name: str | None = None,
    ) -> MetricPage:
        """Default and custom metrics, filtered and paged."""
        model = self.models.get(model_id)
        found = [*catalog.default_metrics(model), *self.metrics.list(model.id)]
        if default is not None:
            found = [m for m in found if m.is_default == default]
        if metric_type:
            found = [m for m in found if m.type == metric_type]
        if metric_name:
            found = [m for m in found if metric_name.lower() in m.name.lower()]
        if attribute_name:
            found = [m for m in found if m.attribute == attribute_name]
        chosen, paging = pages(found, page, page_size)
        return MetricPage(metrics=chosen, **paging)

    def get_metric(self, model_id: str, metric_id: str) -> Metric:
        """A default or custom metric of the model."""
        model = self.models.get(model_id)
        return catalog.find_metric(model, metric_id, self.metrics.list(model.id))

    def replace_metric(self, model_id: str, metric_id: str, spec: MetricSpec) -> Metric:
        """A custom metric redefined in place (same id); default metrics cannot change."""
        model = self.models.get_active(model_id)
        current = catalog.find_metric(model, metric_id, self.metrics.list(model.id))
        if current.is_default:
            raise InvalidInput("default metrics cannot be changed; create a custom metric", field="metric_id")
        checked = self._checked_metric(model.id, spec)
        return self.metrics.put(
            checked.model_copy(update={"id": current.id, "created_at": current.created_at})
        )

    def delete_metric(self, model_id: str, metric_id: str) -> None:
        """Delete a custom metric no rule uses."""
        model = self.models.get(model_id)
        if any(r.metric_id == metric_id for r in self.rules.list(model.id)):
            raise InvalidInput("alert rules use this metric: delete them first", field="metric_id")
        self.metrics.delete(model.id, metric_id)

    # -- alert rules --------------------------------------------------------------------------------

    def add_rule(self, model_id: str, spec: RuleSpec) -> Rule:
        """A new rule on one of the model's metrics (default or custom)."""
        model = self.models.get_active(model_id)
        metric = catalog.find_metric(model, spec.metric_id, self.metrics.list(model.id))
        catalog.check_rule_inputs(metric, model, spec.metric_parameters, spec.filters)
        catalog.check_window_mode(metric, spec.window_mode, spec.lookback_period)
        catalog.check_threshold(metric, spec.bound, spec.threshold)
        bound = "above" if spec.bound == "upper" else "below"
        rule = Rule(
            **spec.model_dump(exclude={"name"}),
            id=str(uuid.uuid4()),
            model_id=model.id,
            name=spec.name or f"{metric.name} {bound} {spec.threshold:g}",
            metric_name=metric.name,
            created_at=_now(),
        )
        return self.rules.put(rule)

    def create_rule(self, model_id: str, spec: RuleSpec) -> RuleView:
        """add_rule, seen with its (no) alerts."""
        return _view(self.add_rule(model_id, spec), [])

    def rules_page(self, model_id: str, page: int, page_size: int) -> RulePage:
        """The model's rules, paged, with their alert counts."""
        model = self.models.get(model_id)
        alerts = self.alerts.list(model.id)
        chosen, paging = pages(self.rules.list(model.id), page, page_size)
        return RulePage(data=[_view(r, alerts) for r in chosen], **paging)

    def get_rule(self, model_id: str, rule_id: str) -> RuleView:
        """A rule with its alert counts."""
        return _view(self.rules.get(model_id, rule_id), self.alerts.list(model_id))

    def update_rule(self, model_id: str, rule_id: str, changes: dict[str, Any]) -> RuleView:
        """A rule changed (checked as when created), its version raised."""
        current = self.rules.get(model_id, rule_id)
        try:
            rule = Rule.model_validate({**current.model_dump(), **changes, "version": current.version + 1})
        except ValidationError as error:  # e.g. a null threshold: a rule cannot lose a required field
            raise invalid_input(error.errors()) from None
        model = self.models.get(model_id)
        metric = catalog.find_metric(model, rule.metric_id, self.metrics.list(model.id))
        catalog.check_rule_inputs(metric, model, rule.metric_parameters, rule.filters)
        catalog.check_window_mode(metric, rule.window_mode, rule.lookback_period)
        catalog.check_threshold(metric, rule.bound, rule.threshold)
        return _view(self.rules.put(rule, expected_version=current.version), self.alerts.list(model_id))

    def delete_rule(self, model_id: str, rule_id: str) -> None:
        """Delete a rule (its alerts stay)."""
        self.rules.delete(model_id, rule_id)

    # -- alerts -------------------------------------------------------------------------------------

    def alerts_page(
        self,
        page: int,
        page_size: int,
        model_id: str | None = None,
        status: AlertStatus | None = None,
        alert_rule_id: str | None = None,
        batch_id: str | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
    ) -> AlertPage:
        """Alerts, newest first, filtered and paged."""
        found = self.alerts.list(model_id)
        if status:
            found = [a for a in found if a.status == status]
        if alert_rule_id:
            found = [a for a in found if a.alert_rule_id == alert_rule_id]
        if batch_id:
            found = [a for a in found if a.batch_id == batch_id]
        if start_time:
            found = [a for a in found if a.timestamp >= _aware(start_time)]
        if end_time:
            found = [a for a in found if a.timestamp < _aware(end_time)]
        chosen, paging = pages(found, page, page_size)
        return AlertPage(data=[self._alert_view(a) for a in chosen], **paging)

    def get_alert(self, alert_id: str) -> AlertView:
        """An alert with its rule (as it was, if deleted since)."""
        return self._alert_view(self.alerts.get(alert_id))

    def update_alert(self, alert_id: str, status: AlertStatus) -> AlertView:
        """Acknowledge or resolve an alert."""
        changed = self.alerts.update(
            alert_id, lambda alert: alert.model_copy(update={"status": status, "updated_at": _now()})
        )
        if changed is None:
            raise NotFound(f"no alert {alert_id!r}", field="alert_id")
        return self._alert_view(changed)

    def _alert_view(self, alert: Alert) -> AlertView:
        try:
            rule = self.rules.get(alert.model_id, alert.alert_rule_id).model_dump(mode="json")
        except SagewatchError:  # the rule was deleted since
            rule = {
                "id": alert.alert_rule_id,
                "name": alert.rule_name,
                "metric_id": alert.metric_id,
                "bound": alert.bound,
                "threshold": alert.threshold,
                "severity": alert.severity,
            }
        return AlertView(**alert.model_dump(), alert_rule=rule)

    # -- notification configurations -----------------------------------------------------------------

    def create_notification(self, spec: NotificationSpec, caller: TokenRecord | None) -> NotificationConfig:
        """Send a model's alerts to an email address or a webhook; the caller owns the configuration."""
        self.models.get_active(spec.model_id)
        _check_destination(spec)
        config = NotificationConfig(
            **spec.model_dump(),
            id=str(uuid.uuid4()),
            created_at=_now(),
            created_by=caller.token_id if caller is not None else None,
        )
        return self.notifications.put(config)

    def notifications_page(self, model_id: str | None, page: int, page_size: int) -> NotificationPage:
        """Notification configurations (of one model, or all), paged."""
        chosen, paging = pages(self.notifications.list(model_id), page, page_size)
        return NotificationPage(data=chosen, **paging)

    def get_notification(self, config_id: str) -> NotificationConfig:
        """One notification configuration."""
        return self.notifications.get(config_id)

    def update_notification(
        self, config_id: str, changes: dict[str, Any], caller: TokenRecord | None
    ) -> NotificationConfig:
        """Change a configuration the caller may change (its own, or any for an admin)."""
        config = self.notifications.get(config_id)
        _may_change(config, caller)
        changed = config.model_copy(update=changes)
        _check_destination(changed)
        return self.notifications.put(changed)

    def delete_notification(self, config_id: str, caller: TokenRecord | None) -> None:
        """Delete a configuration the caller may change."""
        _may_change(self.notifications.get(config_id), caller)
        self.notifications.delete(config_id)


def _fallback(kind: str, error: SagewatchError, model: Model) -> None:
    """Log a request run in the Lambda instead of SQL: a warning when Glue or Athena refused (an
    operator's matter: permissions, limits), else information (SQL does not express it)."""
    level = logging.WARNING if isinstance(error, SqlUnavailable) else logging.INFO
    logger.log(level, "%s run in the Lambda: %s", kind, error.message, extra={"model_id": model.id})


def schema_digest(model: Model) -> str:
    """A digest of what a query's plan reads of the model (its attributes, outputs, mapping): a
    poll answers only over the schema its query was planned on."""
    planned = model.model_dump_json(exclude=_UNPLANNED)
    return hashlib.sha256(planned.encode()).hexdigest()[:16]


def _tag(sql: str) -> dict[str, Any] | None:
    """A query text's tag (stores/athena.tagged), or None: no tag, or one sagewatch does not write
    (not base64, zlib or a JSON object: anyone who may start queries in the workgroup writes its text)."""
    try:
        what = tagged(sql)
    except (ValueError, zlib.error):  # binascii.Error, UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    return what if isinstance(what, dict) else None


def limited(sql: str, rows: int) -> str:
    """The SQL with at most `rows` result rows: its own LIMIT kept when smaller, else set to `rows`
    (the statement's last clause, as sqlglot writes it)."""
    found = _LIMIT.search(sql)
    if found is None:
        return f"{sql} LIMIT {rows}"
    if int(found.group(1)) <= rows:
        return sql
    return f"{sql[: found.start(1)]}{rows}"


def _view(rule: Rule, alerts: list[Alert]) -> RuleView:
    counts = {status: 0 for status in ("new", "acknowledged", "resolved")}
    for alert in alerts:
        if alert.alert_rule_id == rule.id:
            counts[alert.status] += 1
    return RuleView(**rule.model_dump(), alert_counts=counts)


def _metric_endpoint(spec: MetricSpec, model: Model) -> tuple[str, bool]:
    """The metric's endpoint as this model's query or data_drift path (by id or partner_model_id)."""
    if not spec.endpoint:
        return catalog.query_path(model), False
    found = _ENDPOINT.match(spec.endpoint)
    if found is None or found["model"] not in (model.id, model.partner_model_id):
        raise InvalidInput(
            f"endpoint is this model's query or data_drift path: {catalog.query_path(model)}[/data_drift]",
            field="endpoint",
        )
    drift = found["drift"] is not None
    return (catalog.drift_path(model) if drift else catalog.query_path(model)), drift


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _may_change(config: NotificationConfig, caller: TokenRecord | None) -> None:
    """A writer changes the configurations it made; an admin any."""
    if caller is not None and caller.role is not Role.ADMIN and config.created_by != caller.token_id:
        raise Forbidden("a writer changes only the notification configurations it created; ask an admin")


def _check_destination(spec: NotificationSpec | NotificationConfig) -> None:
    if spec.type == "email" and ("@" not in spec.destination or " " in spec.destination):
        raise InvalidInput(f"{spec.destination!r} is not an email address", field="destination")
    if spec.type == "webhook":
        check_destination(spec.destination, "destination")
