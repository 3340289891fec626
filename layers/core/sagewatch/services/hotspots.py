"""Hotspots of a model: searched on demand over a window, a batch, a day or the reference set, and on
the evaluator's schedule over each closed, labelled day (or batch) when the model's enrichment is on.

The search itself is sagewatch.metrics.hotspots (its docstring states the method and the stopping
rules); each run's result is stored (HotspotStore) and listed newest first.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from datetime import date as Day
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from sagewatch.alerting import windows
from sagewatch.errors import InvalidInput
from sagewatch.metrics.hotspots import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    StoppingRules,
    outcomes,
    search,
)
from sagewatch.metrics.query import Loader
from sagewatch.paging import pages
from sagewatch.schema import GROUND_TRUTH_STAGES, FiniteFloat, Model, OutputType, Stage
from sagewatch.services.enrichments import Enrichments
from sagewatch.stores.hotspots import HotspotStore
from sagewatch.stores.ingestion import IngestionLedger
from sagewatch.stores.models import ModelStore

# Below this many labelled rows a window is not searched: each side of a split needs 25 rows of
# the growing half, and the testing half must be able to show a difference.
MIN_LABELLED = 100
SCHEDULE_SK = "HOTSPOTS"
BATCH_SK = "HOTSPOTS#BATCH#"
# The schedule catches up at most this many days a run (and looks this far back the first time).
MAX_DAYS_PER_RUN = 7


class Condition(BaseModel):
    """One condition of a hotspot's rule: a range bound (with where nulls go), a set, or null."""

    attribute: str
    op: str = Field(description='"<=", ">", "in", "not in", "is null" or "is not null"')
    value: Any = None
    nulls: bool | None = Field(default=None, description="for a range: whether null values are inside")


class Hotspot(BaseModel):
    """A region where the model does markedly worse than overall, with its values (Arthur's fields:
    rules, gt_to_info, accuracy, precision, recall, f1, impurity, n_samples)."""

    rank: int = Field(description="1 is the hotspot with the most excess errors")
    rules: dict[str, dict[str, Any]] = Field(
        description="per attribute: gt / lte bounds and null (whether nulls are inside), or in / not in"
    )
    conditions: list[Condition]
    n_samples: int = Field(description="labelled rows in the hotspot")
    support: float = Field(description="its share of the window's labelled rows")
    error: float = Field(description="error rate (classification) or mean absolute error (regression)")
    accuracy: float | None = None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    mae: float | None = None
    rmse: float | None = None
    impurity: float | None = Field(default=None, description="Gini of the error (classification)")
    gt_to_info: dict[str, dict[str, Any]] | None = None
    overall: dict[str, Any] = Field(description="the same values over the whole window")
    excess_errors: float = Field(description="n_samples x (error - overall error): the ranking score")
    p_value: float = Field(description="one-sided, on the testing rows, Bonferroni-corrected")


class HotspotWindow(BaseModel):
    """What was searched: a time window, a batch, or the reference set."""

    start_time: datetime | None = None
    end_time: datetime | None = None
    batch_id: str | None = None
    reference: bool = False


class HotspotRun(BaseModel):
    """One search: its window, the overall values, the stopping rules, the hotspots ranked."""

    id: str
    model_id: str
    created_at: datetime
    trigger: str = Field(description="api, arthur (enrichments/hotspots/find) or schedule")
    window: HotspotWindow
    metric: str
    threshold: float | None = None
    rows: int = Field(description="inferences in the window")
    labelled: int = Field(description="of them, with ground truth: the rows searched")
    overall: dict[str, Any]
    stopping_rules: dict[str, Any]
    nodes: int = Field(description="nodes of the tree grown")
    hotspots: list[Hotspot]


class HotspotRunPage(BaseModel):
    """A page of a model's hotspot runs, newest first."""

    data: list[HotspotRun]
    page: int
    page_size: int
    total_pages: int
    total_count: int


class HotspotRequest(BaseModel):
    """Search a window [start_time, end_time), a batch, or a day (UTC); metric and threshold keep
    only hotspots whose metric is below the threshold (above, for regression errors)."""

    model_config = ConfigDict(extra="forbid")

    start_time: datetime | None = None
    end_time: datetime | None = None
    batch_id: str | None = Field(default=None, min_length=1)
    date: Day | None = None
    metric: str | None = Field(
        default=None, description="accuracy (default), precision, recall, f1; regression: mae, rmse"
    )
    threshold: FiniteFloat | None = None


@dataclass
class ScheduleReport:
    """What the schedule did for a model: runs stored, windows waiting, errors."""

    model_id: str
    runs: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A plain dict, to log."""
        return asdict(self)


class Hotspots:
    """Hotspot searches of every model: on demand, listed, and on the schedule."""

    def __init__(
        self,
        models: ModelStore,
        store: HotspotStore,
        ledger: IngestionLedger,
        enrichments: Enrichments,
        loader_for: Callable[[Model], Loader],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rules: StoppingRules | None = None,
    ) -> None:
        self.models, self.store, self.ledger, self.enrichments = models, store, ledger, enrichments
        self.loader_for, self.clock = loader_for, clock
        self.rules = rules or StoppingRules()

    # -- on demand ----------------------------------------------------------------------------------

    def run(self, model_id: str, request: HotspotRequest, trigger: str = "api") -> HotspotRun:
        """Search one window, batch or day; the run is stored and returned."""
        model = self.models.get(model_id)
        metric = check_metric(model, request.metric, request.threshold)
        window, field_name = _window(request)
        table = self._rows(model, window)
        return self._search(model, table, window, field_name, metric, request.threshold, trigger)

    def find(
        self,
        model_id: str,
        metric: str | None,
        threshold: float | None,
        batch_id: str | None,
        day: str | None,
        ref_set_id: str | None,
    ) -> dict[str, list[dict[str, Any]]]:
        """Arthur's enrichments/hotspots/find: exactly one of batch_id, date or ref_set_id; the
        answer is {"data": [hotspot, ...]} (the run is stored as any other)."""
        given = [
            name
            for name, value in (("batch_id", batch_id), ("date", day), ("ref_set_id", ref_set_id))
            if value is not None
        ]
        for name, value in (("batch_id", batch_id), ("date", day), ("ref_set_id", ref_set_id)):
            if value is not None and not value.strip():
                raise InvalidInput(f"{name} is empty", field=name)
        if len(given) != 1:
            raise InvalidInput(
                "give exactly one of batch_id, date or ref_set_id"
                + (f" (not {' and '.join(given)})" if given else ""),
                field=given[1] if len(given) > 1 else "date",
            )
        model = self.models.get(model_id)
        metric = check_metric(model, metric or _default_metric(model), threshold)
        if ref_set_id is not None:
            window, field_name = HotspotWindow(reference=True), "ref_set_id"
        else:
            request = HotspotRequest(batch_id=batch_id, date=_day(day) if day is not None else None)
            window, field_name = _window(request)
        table = self._rows(model, window)
        run = self._search(model, table, window, field_name, metric, threshold, "arthur")
        return {"data": [hotspot.model_dump(mode="json") for hotspot in run.hotspots]}

    def runs_page(self, model_id: str, page: int, page_size: int) -> HotspotRunPage:
        """The model's runs, newest first, paged."""
        model = self.models.get(model_id)
        chosen, paging = pages(self.store.run_ids(model.id), page, page_size)
        return HotspotRunPage(data=[self.get(model.id, run_id) for run_id in chosen], **paging)

    def get(self, model_id: str, run_id: str) -> HotspotRun:
        """One run; 404 naming run_id when the model has no such run."""
        model = self.models.get(model_id)
        return HotspotRun.model_validate(self.store.get(model.id, run_id))

    # -- the schedule -------------------------------------------------------------------------------

    def run_scheduled(self, model_id: str) -> ScheduleReport:
        """Search each closed, labelled day (UTC) not searched yet, or each closed batch of a batch
        model, when the model's hotspots enrichment is on. A day is due once it ended and either its
        labels had the model's alerts_delay_seconds or alerts_delay_labels_ratio of its rows are
        labelled (as alert rules wait). Never raises: failures are in the report, so the alert
        evaluation beside it is never failed by a search."""
        report = ScheduleReport(model_id)
        try:
            model = self.models.get(model_id)
            if model.archived or not self.enrichments.config(model).hotspots.enabled:
                return report
            if model.is_batch:
                self._scheduled_batches(model, report)
            else:
                self._scheduled_days(model, report)
        except Exception as error:  # a search, whatever fails in it, must never fail the alert evaluation
            report.errors.append(f"{type(error).__name__}: {error}")
        return report

    def _scheduled_days(self, model: Model, report: ScheduleReport) -> None:
        now = self.clock()
        last = self.ledger.state(model.id, SCHEDULE_SK).get("last_day")
        first = date.fromisoformat(last) + timedelta(days=1) if last else self._first_day(model, now)
        if first is None:
            return
        for offset in range(MAX_DAYS_PER_RUN):
            day = first + timedelta(days=offset)
            start = datetime.combine(day, time(), UTC)
            end = start + timedelta(days=1)
            if end > now:
                return
            window = HotspotWindow(start_time=start, end_time=end)
            if self._search_when_labelled(model, window, "date", end, now, report, str(day)) == "waiting":
                return
            self.ledger.set_state(model.id, SCHEDULE_SK, last_day=day.isoformat())

    def _first_day(self, model: Model, now: datetime) -> date | None:
        """The first day the schedule looks at: the model's first inference's, at most a week back."""
        earliest = self.ledger.counts(model.id)["total"].get("earliest_inferences_timestamp")
        if not earliest:
            return None
        return max(datetime.fromisoformat(earliest).date(), (now - timedelta(days=MAX_DAYS_PER_RUN)).date())

    def _scheduled_batches(self, model: Model, report: ScheduleReport) -> None:
        now = self.clock()
        for batch_id, state in sorted(self.ledger.batches(model.id).items()):
            if state.get("status") != "uploaded" or self.ledger.state(model.id, BATCH_SK + batch_id):
                continue
            window = HotspotWindow(batch_id=batch_id)
            closed = datetime.fromisoformat(state["uploaded_at"])
            run = self._search_when_labelled(
                model, window, "batch_id", closed, now, report, f"batch {batch_id}"
            )
            if run != "waiting":
                self.ledger.set_state(model.id, BATCH_SK + batch_id, run_id=run.id if run else "")

    def _search_when_labelled(
        self,
        model: Model,
        window: HotspotWindow,
        field: str,
        closed: datetime,
        now: datetime,
        report: ScheduleReport,
        name: str,
    ) -> HotspotRun | Literal["waiting"] | None:
        """Search a closed window once its labels have had time (as alert rules wait for them): the
        run; None when it has too few labelled rows to search; "waiting" while labels may still come."""
        table = self._rows(model, window)
        labelled = int(outcomes(model, table)[0].sum()) if table.num_rows else 0
        if not windows.eligible(
            closed, now, table.num_rows, labelled, model.alerts_delay_seconds, model.alerts_delay_labels_ratio
        ):
            report.skipped.append(f"{name}: waiting for labels ({labelled} of {table.num_rows})")
            return "waiting"
        if labelled < MIN_LABELLED:
            report.skipped.append(f"{name}: {labelled} labelled rows, fewer than {MIN_LABELLED}")
            return None
        run = self._search(model, table, window, field, _default_metric(model), None, "schedule")
        report.runs.append(run.id)
        return run

    # -- shared -------------------------------------------------------------------------------------

    def _rows(self, model: Model, window: HotspotWindow) -> pa.Table:
        """The window's inferences joined with their latest ground truth (the query engine's loader),
        or the reference set."""
        columns = [
            a.name for a in model.by_stage(Stage.PIPELINE_INPUT, Stage.PREDICTED_VALUE, *GROUND_TRUTH_STAGES)
        ]
        load = self.loader_for(model)
        if window.reference:
            tables = load("reference", columns, None, None, False)
        else:
            first = window.start_time.date() if window.start_time else None
            last = (window.end_time - timedelta(microseconds=1)).date() if window.end_time else None
            tables = load("inference", [*columns, "inference_timestamp", "batch_id"], first, last, True)
        if not tables:
            return pa.table({name: pa.nulls(0) for name in columns})
        rows = pa.concat_tables(tables, promote_options="default")
        keep = None
        if window.start_time is not None:
            times = rows.column("inference_timestamp")
            keep = pc.and_(
                pc.greater_equal(times, pa.scalar(window.start_time, times.type)),
                pc.less(times, pa.scalar(window.end_time, times.type)),
            )
        if window.batch_id is not None:
            keep = pc.equal(rows.column("batch_id"), window.batch_id)
        return rows.filter(pc.fill_null(keep, False)) if keep is not None else rows

    def _search(
        self,
        model: Model,
        table: pa.Table,
        window: HotspotWindow,
        field_name: str,
        metric: str,
        threshold: float | None,
        trigger: str,
    ) -> HotspotRun:
        labelled = int(outcomes(model, table)[0].sum()) if table.num_rows else 0
        if labelled < MIN_LABELLED:
            raise InvalidInput(
                f"the window has {table.num_rows} inferences, {labelled} with ground truth: a hotspot "
                f"search needs at least {MIN_LABELLED} labelled inferences",
                field=field_name,
            )
        found = search(model, table, self.rules, metric, threshold)
        now = self.clock()
        run = HotspotRun(
            id=f"{now:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}",
            model_id=model.id,
            created_at=now,
            trigger=trigger,
            window=window,
            metric=metric,
            threshold=threshold,
            rows=table.num_rows,
            labelled=found["labelled"],
            overall={k: v for k, v in found["overall"].items()},
            stopping_rules=asdict(self.rules),
            nodes=found["nodes"],
            hotspots=[Hotspot(**{k: v for k, v in h.items() if k != "rows"}) for h in found["hotspots"]],
        )
        self.store.put(model.id, run.id, run.model_dump(mode="json"))
        return run


def check_metric(model: Model, metric: str | None, threshold: float | None) -> str:
    """The metric to filter hotspots by (default: accuracy, or mae for regression); 400 naming metric
    or threshold when the model has no such metric or the threshold is out of its range."""
    metric = metric or _default_metric(model)
    allowed = REGRESSION_METRICS if model.output_type is OutputType.REGRESSION else CLASSIFICATION_METRICS
    if metric not in allowed:
        raise InvalidInput(
            f"unknown metric {metric!r} for a {model.output_type.value} model; use one of {', '.join(allowed)}",
            field="metric",
        )
    if threshold is not None and not (
        0 <= threshold <= 1
        if allowed is CLASSIFICATION_METRICS
        else threshold >= 0 and np.isfinite(threshold)
    ):
        bound = "from 0 to 1" if allowed is CLASSIFICATION_METRICS else "0 or more"
        raise InvalidInput(f"threshold is a number {bound}, not {threshold}", field="threshold")
    return metric


def _default_metric(model: Model) -> str:
    return "mae" if model.output_type is OutputType.REGRESSION else "accuracy"


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"date is a day YYYY-MM-DD, not {text!r}", field="date") from None


def _window(request: HotspotRequest) -> tuple[HotspotWindow, str]:
    """The window a request names (exactly one of start_time/end_time, batch_id, date) and the field
    a too-small window is reported on."""
    timed = request.start_time is not None or request.end_time is not None
    given = [
        name
        for name, present in (("start_time", timed), ("batch_id", request.batch_id), ("date", request.date))
        if present
    ]
    if len(given) != 1:
        raise InvalidInput(
            "give exactly one of start_time and end_time, batch_id or date"
            + (f" (not {' and '.join(given)})" if given else ""),
            field=given[1] if len(given) > 1 else "start_time",
        )
    if request.batch_id is not None:
        return HotspotWindow(batch_id=request.batch_id), "batch_id"
    if request.date is not None:
        start = datetime.combine(request.date, time(), UTC)
        return HotspotWindow(start_time=start, end_time=start + timedelta(days=1)), "date"
    if request.start_time is None or request.end_time is None:
        missing = "start_time" if request.start_time is None else "end_time"
        raise InvalidInput("a window needs both start_time and end_time", field=missing)
    start, end = (_aware(t) for t in (request.start_time, request.end_time))
    if end <= start:
        raise InvalidInput("end_time must be after start_time", field="end_time")
    return HotspotWindow(start_time=start, end_time=end), "start_time"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
