"""Explanations: KernelSHAP attributions of sampled inferences, by calling the model's own SageMaker
endpoint with perturbed rows (sagewatch.metrics.shap), within a budget of explanations per hour.

- `explain_due` (the evaluator, each run): first the inferences queued by on-demand requests, then
  (with `streaming` on) inferences written to the lake since the last run (a ledger item keeps the
  cursor), sampled by `sample_share`, at most the budget's share of the time since the last run and
  never past the hour's budget; stops in time, keeping what it finished.
- `explain` (the API): an inference's stored explanation, else computed now if the budget allows,
  the caller is a writer (a reader reads stored explanations only) and the work fits a request:
  at most ON_DEMAND_ROWS endpoint rows and ON_DEMAND_SECONDS, else it is queued (`Queued`, a 202).
- `importance`: mean |attribution| per input over a window, and per hour or day for charting.

An inference is found by its id in its UTC day's files when the caller names the day, else in the
last LOOKUP_DAYS days, newest first, within LOOKUP_SECONDS: each file's partner_inference_id column is
read first (LOOKUP_READERS files at a time), the whole row only from the file holding it. Its stored
or failed explanation is looked for in that day's files only (they are stored by inference day).

An inference is recorded as failed, with the reason, under explanations/failed/model_id=<id>/
date=<inference day>/ and never tried again (GET answers 422 with the reason) when its own row is
over the request limit as CSV (checked before any call: no budget spent), or when the model fails on
its rows (SageMaker's ModelError) and then answers a control row (the background's first, which it
answered before): the failure is the row's, its budget slot stays spent, and the run goes on. When
the control fails too, the endpoint is failing, not the row: nothing is recorded, the slot is given
back, and the run stops (EndpointFailing, a 503); so does a background the model fails on (the slot
given back, a 400). An endpoint that is down or keeps throttling stops the run without recording
anything: those inferences are tried again next run.

What is explained: a regression's prediction, a binary classifier's positive-class score, each class's
score of a multiclass model, named by the model's PREDICTED_VALUE attributes. Stored in the lake at
explanations/model_id=<id>/date=<inference day>/<run>.parquet, one row per inference and output:
partner_inference_id, inference_timestamp, variant, explained_at, predicted_attribute_name,
expected_value (mean prediction on the background), prediction (f(x)), coalitions, each input's
attribution (a FLOAT column of the input's name) and its absolute value (`abs(<input>)`), so a
metric over the query source "explanation" can watch an input's mean |attribution|.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, Literal
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sagewatch.auth import Role, TokenRecord
from sagewatch.enrichments import ExplainabilityConfig
from sagewatch.errors import Forbidden, InvalidInput, NotFound, SagewatchError, Throttled, Unsupported
from sagewatch.metrics import shap
from sagewatch.schema import Model, OutputType, Stage
from sagewatch.services.enrichments import Enrichments
from sagewatch.stores.endpoints import EndpointMetrics
from sagewatch.stores.explanations import MAX_QUEUED, ExplanationBudget
from sagewatch.stores.ingestion import IngestionLedger
from sagewatch.stores.invocations import (
    FIELD,
    EndpointInvoker,
    ModelFailed,
    OutOfTime,
    RowsRefused,
    encode_rows,
)
from sagewatch.stores.lake import LakeStore
from sagewatch.stores.models import ModelStore

AREA = "explanations"
# Inferences that could not be explained, with the reason (beside AREA, out of its query source).
FAILED_AREA = f"{AREA}/failed"
PROGRESS_SK = "EXPLANATIONS"
# A run's time when the caller does not say: half the evaluator Lambda's 10 minutes (infra/monitor.py),
# the other half left to its alert rules.
RUN_SECONDS = 300.0
# A first run looks this far back for inferences (the cursor starts there).
FIRST_LOOKBACK = timedelta(days=1)
# Explanations are written to the lake this many at a time (and whatever is done when a run stops).
WRITE_EVERY = 25
# What one on-demand request may spend: endpoint rows (15 calls of 10,000 rows; a 30-input model at
# the default settings needs about 102,000) and seconds from its start, within API Gateway's 29 s.
ON_DEMAND_ROWS = 150_000
ON_DEMAND_SECONDS = 20.0
# Finding an inference by its id when its day is not named: its last LOOKUP_DAYS UTC days (today's
# first), and never past LOOKUP_SECONDS of a request (half its time: the rest is the explanation's).
# Files are read LOOKUP_READERS at a time, their partner_inference_id column first.
LOOKUP_DAYS = 7
LOOKUP_SECONDS = 10.0
LOOKUP_READERS = 16
Interval = Literal["hour", "day"]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ExplainReport:
    """What one `explain_due` run did."""

    model_id: str
    enabled: bool
    new_inferences: int = 0
    sampled: int = 0
    explained: int = 0
    failed: int = 0
    queued: int = 0
    over_budget: int = 0
    stopped_for_time: bool = False
    endpoint_calls: int = 0
    endpoint_rows: int = 0
    retries: int = 0
    seconds: float = 0.0


@dataclass
class Explainer:
    """A model's explanation set-up for one run: the endpoint, the inputs, the background."""

    model: Model
    endpoint: str
    variant: str | None
    inputs: list[str]
    background: list[np.ndarray]
    outputs: list[tuple[int, str]]  # (column of the endpoint's answer, predicted attribute)
    expected: np.ndarray  # mean prediction on the background, per output
    coalitions: shap.Coalitions


class ExplanationFailed(InvalidInput):
    """The inference could not be explained (the model failed on its rows, or they cannot be sent);
    the reason is recorded and it is not tried again (HTTP 422)."""

    status: ClassVar[int] = 422


class EndpointFailing(SagewatchError):
    """The model failed on a row and on a control row it had answered before: the endpoint is
    failing, not the row; nothing is recorded and it is tried again later (HTTP 503)."""

    status: ClassVar[int] = 503


@dataclass(frozen=True)
class Found:
    """Rows of the ids looked for, and how far the lookup went (a NotFound says so)."""

    rows: pa.Table | None
    days: list[date]  # the days fully searched, newest first
    out_of_time: bool = False


@dataclass(frozen=True)
class Queued:
    """An on-demand explanation left to the evaluator's next run, and why (the API's 202)."""

    partner_inference_id: str
    message: str
    status: str = "queued"


@dataclass
class _Session:
    """One run's (or request's) explainer, built at the first explanation, and what is not stored yet."""

    explainer: Explainer | None = None
    done: list[pa.Table] = field(default_factory=list)


class Explanations:
    """Explanations of the models' inferences (see the module docstring)."""

    def __init__(
        self,
        models: ModelStore,
        lake: LakeStore,
        ledger: IngestionLedger,
        enrichments: Enrichments,
        invoker: EndpointInvoker,
        endpoints: EndpointMetrics,
        budget: ExplanationBudget,
        clock: Callable[[], datetime] = _now,
        on_demand_rows: int = ON_DEMAND_ROWS,
        on_demand_seconds: float = ON_DEMAND_SECONDS,
        lookup_seconds: float = LOOKUP_SECONDS,
    ) -> None:
        self.models, self.lake, self.ledger, self.enrichments = models, lake, ledger, enrichments
        self.invoker, self.endpoints, self.budget, self.clock = invoker, endpoints, budget, clock
        self.on_demand_rows, self.on_demand_seconds = on_demand_rows, on_demand_seconds
        self.lookup_seconds = lookup_seconds

    # -- configuration ------------------------------------------------------------------------------

    def settings(self, model: Model) -> tuple[ExplainabilityConfig, str]:
        """The model's explainability configuration and endpoint; InvalidInput saying what to set."""
        config = self.enrichments.config(model).explainability
        if not config.enabled:
            raise InvalidInput(
                f"explainability is not enabled for model {model.id}: set explainability.enabled = true "
                "in its enrichments (PATCH /api/v3/models/{id}/enrichments)",
                field="explainability.enabled",
            )
        endpoint = config.endpoint_name or (model.sagemaker.endpoint_name if model.sagemaker else None)
        if endpoint is None:
            raise InvalidInput(
                "explainability needs the SageMaker endpoint serving the model: set "
                "explainability.endpoint_name (or the model's sagemaker.endpoint_name)",
                field="explainability.endpoint_name",
            )
        return config, endpoint

    def explainer(
        self, model: Model, config: ExplainabilityConfig, endpoint: str, deadline: float | None = None
    ) -> Explainer:
        """Check the endpoint is tagged for sagewatch (and has the variant), sample the background
        from the reference set, and ask the endpoint for the background's predictions."""
        described = self.endpoints.check_monitored(endpoint)
        variants = [v["variant"] for v in described["variants"]]
        if config.variant is not None and config.variant not in variants:
            raise InvalidInput(
                f"endpoint {endpoint!r} has no variant {config.variant!r} (variants: {variants})",
                field="explainability.variant",
            )
        inputs = [a.name for a in model.by_stage(Stage.PIPELINE_INPUT)]
        reference = self.lake.read_area("reference", model.id, inputs)
        missing = [name for name in inputs if reference is None or name not in reference.column_names]
        if reference is None or missing:
            raise InvalidInput(
                f"explanations are relative to the reference set, and it holds no {missing or inputs} yet: "
                "upload reference data",
                field="reference_data",
            )
        complete = reference.select(inputs).drop_null()
        if complete.num_rows == 0:
            raise InvalidInput(
                "no reference row has every input: upload complete reference rows", field="reference_data"
            )
        rng = np.random.default_rng(config.seed)
        rows = np.sort(
            rng.choice(complete.num_rows, min(config.background_rows, complete.num_rows), replace=False)
        )
        background = [
            complete.column(name).take(pa.array(rows)).to_numpy(zero_copy_only=False) for name in inputs
        ]
        answers = self.invoker.predict(endpoint, config.variant, background, deadline)
        outputs = _outputs(model, answers.shape[1], endpoint)
        return Explainer(
            model=model,
            endpoint=endpoint,
            variant=config.variant,
            inputs=inputs,
            background=background,
            outputs=outputs,
            expected=answers[:, [c for c, _ in outputs]].mean(axis=0),
            coalitions=shap.coalitions(len(inputs), config.nsamples, config.seed),
        )

    # -- explaining ---------------------------------------------------------------------------------

    def attributions(
        self, explainer: Explainer, row: dict[str, Any], deadline: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """One row's attributions (outputs, inputs) and its predictions f(x) (outputs), from the
        endpoint's answers to every inner coalition's rows plus x itself."""
        x = [row[name] for name in explainer.inputs]
        inner = explainer.coalitions.inner
        columns = shap.perturbed_rows(x, explainer.background, inner)
        columns = [  # and x itself, last: f(x)
            np.concatenate(
                [c, np.array([v], dtype=c.dtype if c.dtype.kind in "biuf" and v is not None else object)]
            )
            for c, v in zip(columns, x, strict=True)
        ]
        answers = self.invoker.predict(explainer.endpoint, explainer.variant, columns, deadline)
        answers = answers[:, [c for c, _ in explainer.outputs]]
        prediction = answers[-1]
        values = shap.coalition_values(answers[:-1], len(explainer.background[0]))
        phi = shap.attributions(
            values, inner, explainer.coalitions.weights[2:], prediction, explainer.expected
        )
        return phi, prediction

    def explain_rows(
        self,
        explainer: Explainer,
        rows: list[dict[str, Any]],
        explained_at: datetime,
        deadline: float | None = None,
    ) -> pa.Table:
        """The explanation records of `rows` (each with partner_inference_id, inference_timestamp,
        variant and the inputs), one per row and output."""
        records: dict[str, list[Any]] = {
            "partner_inference_id": [],
            "inference_timestamp": [],
            "variant": [],
            "explained_at": [],
            "predicted_attribute_name": [],
            "expected_value": [],
            "prediction": [],
            "coalitions": [],
        }
        scores = []
        for row in rows:
            phi, prediction = self.attributions(explainer, row, deadline)
            for k, (_, name) in enumerate(explainer.outputs):
                records["partner_inference_id"].append(row["partner_inference_id"])
                records["inference_timestamp"].append(row["inference_timestamp"])
                records["variant"].append(row.get("variant"))
                records["explained_at"].append(explained_at)
                records["predicted_attribute_name"].append(name)
                records["expected_value"].append(float(explainer.expected[k]))
                records["prediction"].append(float(prediction[k]))
                records["coalitions"].append(len(explainer.coalitions.mask))
                scores.append(phi[k])
        return _table(records, explainer.inputs, np.array(scores).reshape(-1, len(explainer.inputs)))

    def explain_due(
        self, model: Model | str, now: datetime | None = None, seconds: float = RUN_SECONDS
    ) -> ExplainReport:
        """Explain the queued inferences, then those due (see the module docstring), within
        `seconds`; what was done is stored even when the endpoint fails, which then raises."""
        started = self.invoker.monotonic()
        model = model if isinstance(model, Model) else self.models.get(model)
        now = now or self.clock()
        explainability = self.enrichments.config(model).explainability
        report = ExplainReport(model_id=model.id, enabled=explainability.enabled)
        if not report.enabled or model.archived:
            return report
        queued = self.budget.queued(model.id)
        if not queued and not explainability.streaming:
            return report  # streaming off: explanations on demand only
        config, endpoint = self.settings(model)
        hour = now.replace(minute=0, second=0, microsecond=0)
        session = _Session()
        counted = asdict(self.invoker.counts)
        try:
            if queued:
                self._explain_queued(model, config, endpoint, queued, hour, session, report, started, seconds)
            if explainability.streaming and not report.stopped_for_time:
                self._explain_stream(model, config, endpoint, now, session, report, started, seconds)
        finally:
            self._store(model, session.done)
            after = asdict(self.invoker.counts)
            report.endpoint_calls = after["calls"] - counted["calls"]
            report.endpoint_rows = after["rows"] - counted["rows"]
            report.retries = after["retries"] - counted["retries"]
            report.seconds = self.invoker.monotonic() - started
        return report

    def _explain_queued(
        self,
        model: Model,
        config: ExplainabilityConfig,
        endpoint: str,
        queued: dict[str, date],
        hour: datetime,
        session: _Session,
        report: ExplainReport,
        started: float,
        seconds: float,
    ) -> None:
        """The inferences on-demand requests queued (each read from its day's files); those handled,
        handled meanwhile, or not in their day leave the queue."""
        inputs = [a.name for a in model.by_stage(Stage.PIPELINE_INPUT)]
        deadline = time.monotonic() + max(seconds - (self.invoker.monotonic() - started), 0.0)
        parts, searched = [], set()
        for day in sorted(set(queued.values()), reverse=True):
            ids = [pid for pid, queued_day in queued.items() if queued_day == day]
            found = self._find_inferences(model, ids, [day], inputs, deadline)
            if found.out_of_time:
                break
            searched.add(day)
            if found.rows is not None:
                parts.append(found.rows)
        candidates = pa.concat_tables(parts, promote_options="default") if parts else None
        waiting = self._unexplained(model, candidates) if candidates is not None else None
        rows = waiting.sort_by("inference_timestamp").to_pylist() if waiting is not None else []
        unhandled = {row["partner_inference_id"] for row in rows}
        gone = {pid: day for pid, day in queued.items() if day in searched and pid not in unhandled}
        handled = self._work_through(model, config, endpoint, rows, hour, session, report, started, seconds)
        report.queued = len(handled)
        self._store(model, session.done)  # before the stream reads what is explained
        session.done.clear()
        self.budget.dequeue(model.id, {**gone, **{pid: queued[pid] for pid in handled}})

    def _explain_stream(
        self,
        model: Model,
        config: ExplainabilityConfig,
        endpoint: str,
        now: datetime,
        session: _Session,
        report: ExplainReport,
        started: float,
        seconds: float,
    ) -> None:
        """The inferences written since the cursor, sampled and within the budget; the cursor moves
        past them unless the run stopped for time (an endpoint's failure raises before it moves)."""
        progress = self.ledger.state(model.id, PROGRESS_SK)
        cursor = datetime.fromisoformat(progress["cursor"]) if "cursor" in progress else now - FIRST_LOOKBACK
        seen = set(progress.get("cursor_keys", []))  # S3 times are whole seconds: the cursor second's files
        files = [
            o
            for o in self.lake.objects(f"inferences/model_id={model.id}/")
            if o["Key"].endswith(".parquet")
            and (o["LastModified"] > cursor or (o["LastModified"] == cursor and o["Key"] not in seen))
        ]
        if not files:
            self.ledger.set_state(model.id, PROGRESS_SK, last_run_at=now.isoformat())
            return
        newest = max(o["LastModified"] for o in files)
        newest_keys = [o["Key"] for o in files if o["LastModified"] == newest]
        newest_keys += sorted(seen) if newest == cursor else []
        inputs = [a.name for a in model.by_stage(Stage.PIPELINE_INPUT)]
        wanted = ["partner_inference_id", "inference_timestamp", "variant", *inputs]
        candidates = pa.concat_tables(
            [_with_columns(self.lake.read_table(o["Key"], wanted), wanted) for o in files],
            promote_options="default",
        )
        report.new_inferences = candidates.num_rows
        rng = np.random.default_rng([config.seed, int(cursor.timestamp())])
        candidates = candidates.filter(pa.array(rng.random(candidates.num_rows) < config.sample_share))
        candidates = self._unexplained(model, _first_of_each_id(candidates))
        report.sampled = candidates.num_rows
        hour = now.replace(minute=0, second=0, microsecond=0)
        allowance = self._allowance(config, progress, now)
        allowance = min(allowance, config.explanations_per_hour - self.budget.spent(model.id, hour))
        if candidates.num_rows > max(allowance, 0):
            chosen = np.sort(rng.choice(candidates.num_rows, max(allowance, 0), replace=False))
            report.over_budget += candidates.num_rows - len(chosen)
            candidates = candidates.take(pa.array(chosen, type=pa.int64()))
        rows = candidates.sort_by("inference_timestamp").to_pylist()
        self._work_through(model, config, endpoint, rows, hour, session, report, started, seconds)
        if not report.stopped_for_time:  # else the next run reads these files again (handled ids skipped)
            cursor_state = {"cursor": newest.isoformat(), "cursor_keys": newest_keys}
            self.ledger.set_state(model.id, PROGRESS_SK, **cursor_state, last_run_at=now.isoformat())

    def _work_through(
        self,
        model: Model,
        config: ExplainabilityConfig,
        endpoint: str,
        rows: list[dict[str, Any]],
        hour: datetime,
        session: _Session,
        report: ExplainReport,
        started: float,
        seconds: float,
    ) -> list[str]:
        """Explain `rows` in order, each within the hour's budget, until the time is up; a row that
        cannot be explained is recorded as failed and passed. The ids handled (explained or failed)."""
        handled: list[str] = []
        for row in rows:
            elapsed = self.invoker.monotonic() - started
            finished = report.explained + report.failed
            per_row = elapsed / finished if finished else 0.0
            if elapsed + 1.5 * per_row > seconds:
                report.stopped_for_time = True
                break
            if not self.budget.reserve(model.id, hour, config.explanations_per_hour):
                report.over_budget += len(rows) - len(handled)
                break
            outcome = self._attempt(model, config, endpoint, row, hour, session, started + seconds)
            if outcome is None:
                report.stopped_for_time = True
                break
            handled.append(row["partner_inference_id"])
            if isinstance(outcome, str):
                report.failed += 1
                continue
            session.done.append(outcome)
            report.explained += 1
            if len(session.done) >= WRITE_EVERY:
                self._store(model, session.done)
                session.done.clear()
        return handled

    def _attempt(
        self,
        model: Model,
        config: ExplainabilityConfig,
        endpoint: str,
        row: dict[str, Any],
        hour: datetime,
        session: _Session,
        deadline: float,
    ) -> pa.Table | str | None:
        """Explain one row whose budget slot is reserved: its explanation, or the reason it cannot be
        explained (recorded as failed, see the module docstring), or None when out of time. The slot
        is given back when the row is too large to send, when nothing was explained for want of a
        background, when the endpoint is failing, and when the model was given no row for it;
        failures that are not the row's propagate."""
        given = self.invoker.counts.rows
        inputs = [a.name for a in model.by_stage(Stage.PIPELINE_INPUT)]
        too_large = self._too_large(inputs, row)
        if too_large is not None:
            self.budget.release(model.id, hour)
            self._record_failure(model, row, too_large, 0)
            return too_large
        if session.explainer is None:
            try:
                session.explainer = self.explainer(model, config, endpoint, deadline)
            except Exception:
                self.budget.release(model.id, hour)  # the background's failure: nothing was explained
                raise
        try:
            return self.explain_rows(session.explainer, [row], self.clock(), deadline)
        except ModelFailed as refused:
            failed_on = self.invoker.counts.rows - given
            answers = self._answers_control(session.explainer, deadline)
            if answers is None:  # no time left to tell: tried again later, nothing recorded
                return None
            if not answers:
                self.budget.release(model.id, hour)
                raise EndpointFailing(
                    f"the model behind endpoint {endpoint!r} failed on inference "
                    f"{row['partner_inference_id']!r} and then on a row it had answered before "
                    f"({refused.message}): the endpoint is failing, not the inference; nothing is "
                    "recorded and it is tried again later",
                    field=FIELD,
                ) from None
            self._record_failure(model, row, refused.message, failed_on)
            return refused.message
        except RowsRefused as refused:
            self._release_unless_spent(model, hour, given)
            self._record_failure(model, row, refused.message, self.invoker.counts.rows - given)
            return refused.message
        except OutOfTime:
            self._release_unless_spent(model, hour, given)
            return None
        except Exception:
            self._release_unless_spent(model, hour, given)
            raise

    def _answers_control(self, explainer: Explainer, deadline: float) -> bool | None:
        """Whether the model still answers the background's first row (answered before): a failure
        on a row is the row's only then. None when out of time to ask."""
        control = [column[:1] for column in explainer.background]
        try:
            self.invoker.predict(explainer.endpoint, explainer.variant, control, deadline)
        except ModelFailed:
            return False
        except OutOfTime:
            return None
        return True

    def _too_large(self, inputs: list[str], row: dict[str, Any]) -> str | None:
        """Why the row cannot be sent (its own CSV is over the invoker's request limit), or None."""
        body, _ = encode_rows([np.array([row[name]], dtype=object) for name in inputs])
        if len(body) <= self.invoker.max_bytes:
            return None
        return (
            f"its row is {len(body):,} bytes as CSV, over the {self.invoker.max_bytes:,} bytes one "
            "request to the endpoint may carry: too large to send"
        )

    def _release_unless_spent(self, model: Model, hour: datetime, given: int) -> None:
        if self.invoker.counts.rows == given:
            self.budget.release(model.id, hour)

    def explain(
        self,
        model_id: str,
        partner_inference_id: str,
        caller: TokenRecord | None = None,
        inference_date: date | None = None,
    ) -> dict[str, Any] | Queued:
        """The inference's explanation in Arthur's shape: stored, else computed now by a writer's
        request within the budget and a request's bounds (else Queued); ExplanationFailed when it
        could not be explained. The inference is looked for on `inference_date` (UTC) when given,
        else in its last LOOKUP_DAYS days (see the module docstring). Path segments are URL-decoded,
        as the other routes do."""
        started = self.invoker.monotonic()
        model = self.models.get(unquote(model_id))
        partner_inference_id = unquote(partner_inference_id)
        inputs = [a.name for a in model.by_stage(Stage.PIPELINE_INPUT)]
        lookup_deadline = time.monotonic() + self.lookup_seconds
        row = self._inference(model, partner_inference_id, inputs, inference_date, lookup_deadline)
        day = row["inference_timestamp"].astimezone(UTC).date()
        stored = self._latest(model, AREA, partner_inference_id, day, "explained_at", lookup_deadline)
        if stored is not None:
            return _arthur(stored, inputs)
        failed = self._latest(model, FAILED_AREA, partner_inference_id, day, "failed_at", lookup_deadline)
        if failed is not None:
            failure = failed.to_pylist()[0]
            raise ExplanationFailed(
                f"inference {partner_inference_id!r} could not be explained ({failure['reason']}); "
                f"recorded at {failure['failed_at'].isoformat()}, it is not tried again",
                field="partner_inference_id",
            )
        config, endpoint = self.settings(model)
        if partner_inference_id in self.budget.queued(model.id):
            return Queued(
                partner_inference_id,
                f"inference {partner_inference_id!r} is queued: the evaluator's next run explains it",
            )
        if caller is not None and not caller.role.allows(Role.WRITER):
            raise Forbidden(
                f"inference {partner_inference_id!r} has no stored explanation, and computing one calls "
                f"endpoint {endpoint!r} (its time is on your bill): a {caller.role.value} token reads "
                "stored explanations only; a writer token may compute it"
            )
        needed = endpoint_rows(len(inputs), config)
        if needed > self.on_demand_rows:
            return self._queue(
                model,
                partner_inference_id,
                day,
                f"it takes {needed:,} endpoint rows, over the {self.on_demand_rows:,} one request may spend",
            )
        hour = self.clock().replace(minute=0, second=0, microsecond=0)
        if not self.budget.reserve(model.id, hour, config.explanations_per_hour):
            raise Throttled(
                f"model {model.id} has had its {config.explanations_per_hour} explanations this hour "
                f"(explainability.explanations_per_hour): try after {(hour + timedelta(hours=1)).isoformat()}",
                field="explainability.explanations_per_hour",
            )
        deadline = started + self.on_demand_seconds
        outcome = self._attempt(model, config, endpoint, row, hour, _Session(), deadline)
        if outcome is None:
            return self._queue(
                model,
                partner_inference_id,
                day,
                f"the endpoint could not answer within the {self.on_demand_seconds:.0f} s one request may take",
            )
        if isinstance(outcome, str):
            raise ExplanationFailed(
                f"inference {partner_inference_id!r} could not be explained ({outcome}); it is not tried again",
                field="partner_inference_id",
            )
        self._store(model, [outcome])
        return _arthur(outcome, inputs)

    def _queue(self, model: Model, partner_inference_id: str, day: date, why: str) -> Queued:
        if not self.budget.queue(model.id, partner_inference_id, day):
            raise Throttled(
                f"inference {partner_inference_id!r} cannot be explained now ({why}), and "
                f"{MAX_QUEUED} others wait for the evaluator already: ask again after its next run",
                field="partner_inference_id",
            )
        return Queued(
            partner_inference_id,
            f"inference {partner_inference_id!r} is queued: {why}; the evaluator's next run explains "
            "it (within explainability.explanations_per_hour): ask again then",
        )

    # -- reading ------------------------------------------------------------------------------------

    def importance(
        self, model_id: str, start: datetime, end: datetime, interval: Interval = "day"
    ) -> dict[str, Any]:
        """Mean |attribution| per input of the inferences explained in [start, end) (by inference
        time), per explained output, overall and per `interval`."""
        if end <= start:
            raise InvalidInput("end_time must be after start_time", field="end_time")
        model = self.models.get(model_id)
        inputs = [a.name for a in model.by_stage(Stage.PIPELINE_INPUT)]
        absolute = [shap.absolute_name(n) for n in inputs]
        table = self._read(
            model, start.date(), end.date(), ["predicted_attribute_name", "inference_timestamp", *absolute]
        )
        outputs = []
        if table is not None:
            times = table.column("inference_timestamp")
            table = table.filter(
                pc.and_(
                    pc.greater_equal(times, pa.scalar(start, times.type)),
                    pc.less(times, pa.scalar(end, times.type)),
                )
            )
            table = table.append_column(
                "time", pc.floor_temporal(table.column("inference_timestamp"), unit=interval)
            )
            aggregations = [("inference_timestamp", "count"), *[(c, "mean") for c in absolute]]
            overall = table.group_by(["predicted_attribute_name"]).aggregate(aggregations).to_pylist()
            series = (
                table.group_by(["predicted_attribute_name", "time"])
                .aggregate(aggregations)
                .sort_by("time")
                .to_pylist()
            )
            for found in sorted(overall, key=lambda r: r["predicted_attribute_name"]):
                name = found["predicted_attribute_name"]
                outputs.append(
                    {
                        "predicted_attribute_name": name,
                        "count": found["inference_timestamp_count"],
                        "importance": sorted(
                            (
                                {"attribute_name": n, "mean_absolute_attribution": found[f"{a}_mean"]}
                                for n, a in zip(inputs, absolute, strict=True)
                            ),
                            key=lambda item: -(item["mean_absolute_attribution"] or 0.0),
                        ),
                        "series": [
                            {
                                "time": point["time"].isoformat(),
                                "count": point["inference_timestamp_count"],
                                "importance": {
                                    n: point[f"{a}_mean"] for n, a in zip(inputs, absolute, strict=True)
                                },
                            }
                            for point in series
                            if point["predicted_attribute_name"] == name
                        ],
                    }
                )
        return {
            "start_time": start.isoformat(),
            "end_time": end.isoformat(),
            "interval": interval,
            "outputs": outputs,
        }

    def _read(
        self, model: Model, first: Any, last: Any, columns: list[str] | None = None, area: str = AREA
    ) -> pa.Table | None:
        keys = [
            k
            for k in self.lake.day_keys(f"{area}/model_id={model.id}/", first, last)
            if k.endswith(".parquet")
        ]
        tables = [self.lake.read_table(key, columns) for key in keys]
        return pa.concat_tables(tables, promote_options="default") if tables else None

    def _unexplained(self, model: Model, candidates: pa.Table) -> pa.Table:
        """The candidates neither explained nor failed already (the days they were made on)."""
        if candidates.num_rows == 0:
            return candidates
        times = candidates.column("inference_timestamp")
        first, last = (m.as_py().date() for m in pc.min_max(times).values())
        handled = [
            table.column("partner_inference_id").combine_chunks()
            for table in (
                self._read(model, first, last, ["partner_inference_id"]),
                self._read(model, first, last, ["partner_inference_id"], FAILED_AREA),
            )
            if table is not None
        ]
        if not handled:
            return candidates
        seen = pc.is_in(candidates.column("partner_inference_id"), value_set=pa.concat_arrays(handled))
        return candidates.filter(pc.invert(seen))

    def _inference(
        self, model: Model, partner_inference_id: str, inputs: list[str], day: date | None, deadline: float
    ) -> dict[str, Any]:
        """The inference's first write, looked for on `day` or its last LOOKUP_DAYS days; NotFound
        saying how far the lookup went and how to name the day."""
        today = self.clock().date()
        days = [day] if day else [today - timedelta(days=back) for back in range(LOOKUP_DAYS)]
        found = self._find_inferences(model, [partner_inference_id], days, inputs, deadline)
        if found.rows is not None and found.rows.num_rows:
            return found.rows.slice(0, 1).to_pylist()[0]
        if day is not None:
            where = f"on {day.isoformat()} (UTC)"
            hint = "the day of its inference_timestamp in UTC"
        else:
            where = f"in its last {LOOKUP_DAYS} days ({days[-1].isoformat()} to {today.isoformat()}, UTC)"
            hint = "an older inference is found by naming its day"
        if found.out_of_time:
            searched = f"back to {found.days[-1].isoformat()}" if found.days else "not one whole day"
            where += f": the {self.lookup_seconds:.0f} s a lookup may take searched {searched}"
        raise NotFound(
            f"model {model.id} has no inference {partner_inference_id!r} {where}; "
            f"ask with ?inference_date=YYYY-MM-DD ({hint})",
            field="partner_inference_id",
        )

    def _find_inferences(
        self, model: Model, ids: list[str], days: list[date], inputs: list[str], deadline: float
    ) -> Found:
        """The first write of each of `ids` in the inference files of `days` (in that order)."""
        wanted = ["partner_inference_id", "inference_timestamp", "variant", *inputs]
        found = self._find(model, "inferences", ids, days, wanted, deadline)
        if found.rows is None:
            return found
        return Found(_first_of_each_id(found.rows), found.days, found.out_of_time)

    def _latest(
        self, model: Model, area: str, partner_inference_id: str, day: date, by: str, deadline: float
    ) -> pa.Table | None:
        """The inference's latest rows (by `by`) of the explanation `area` on its day, or None."""
        found = self._find(model, area, [partner_inference_id], [day], None, deadline).rows
        if found is None or found.num_rows == 0:
            return None
        return found.filter(pc.equal(found.column(by), pc.max(found.column(by))))

    def _find(
        self,
        model: Model,
        area: str,
        ids: list[str],
        days: list[date],
        columns: list[str] | None,
        deadline: float,
    ) -> Found:
        """Rows of `ids` in `area`'s files of `days`, day by day until all are found: each file's
        partner_inference_id column, then the `columns` of the files holding one (key order), read
        LOOKUP_READERS at a time; stops when `deadline` (time.monotonic) passes."""
        missing, parts, searched = set(ids), [], []
        for day in days:
            if not missing:
                break
            keys = [
                k
                for k in self.lake.keys(f"{area}/model_id={model.id}/date={day.isoformat()}/")
                if k.endswith(".parquet")
            ]
            looked_for = pa.array(sorted(missing), pa.string())
            id_columns = self._read_files(keys, ["partner_inference_id"], deadline)
            if id_columns is None:
                return Found(_concat(parts), searched, out_of_time=True)
            holding = [
                k
                for k, table in zip(keys, id_columns, strict=True)
                if table.num_rows and pc.any(pc.is_in(table.column(0), looked_for)).as_py()
            ]
            tables = self._read_files(holding, columns, deadline)
            if tables is None:
                return Found(_concat(parts), searched, out_of_time=True)
            for table in tables:
                table = table if columns is None else _with_columns(table, columns)
                table = table.filter(pc.is_in(table.column("partner_inference_id"), looked_for))
                parts.append(table)
                missing -= set(table.column("partner_inference_id").to_pylist())
            searched.append(day)
        return Found(_concat(parts), searched)

    def _read_files(
        self, keys: list[str], columns: list[str] | None, deadline: float
    ) -> list[pa.Table] | None:
        """The lake files `keys` (their `columns`), LOOKUP_READERS at a time; None when `deadline`
        (time.monotonic) passes first (reads not begun are dropped)."""
        if not keys:
            return []
        pool = ThreadPoolExecutor(min(LOOKUP_READERS, len(keys)))
        try:
            futures = [pool.submit(self.lake.read_table, key, columns) for key in keys]
            done, pending = wait(futures, max(deadline - time.monotonic(), 0.0), FIRST_EXCEPTION)
            for future in done:
                if future.exception() is not None:
                    raise future.exception()
            if pending:
                return None
            return [future.result() for future in futures]
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _record_failure(self, model: Model, row: dict[str, Any], reason: str, endpoint_rows: int) -> None:
        """Store that the row could not be explained, and why, so that it is not tried again."""
        failure = pa.table(
            {
                "partner_inference_id": pa.array([row["partner_inference_id"]], pa.string()),
                "inference_timestamp": pa.array([row["inference_timestamp"]], pa.timestamp("us", tz="UTC")),
                "variant": pa.array([row.get("variant")], pa.string()),
                "failed_at": pa.array([self.clock()], pa.timestamp("us", tz="UTC")),
                "reason": pa.array([reason], pa.string()),
                "endpoint_rows": pa.array([endpoint_rows], pa.int64()),
            }
        )
        name = f"{self.clock():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}"
        self.lake.write_rows(FAILED_AREA, model.id, failure, "inference_timestamp", name)

    def _allowance(self, config: ExplainabilityConfig, progress: dict[str, Any], now: datetime) -> int:
        """The budget's share of the time since the last run (the whole hour's on a first run)."""
        if "last_run_at" not in progress:
            return config.explanations_per_hour
        since = (now - datetime.fromisoformat(progress["last_run_at"])).total_seconds()
        return max(1, math.ceil(config.explanations_per_hour * min(max(since, 0.0), 3600.0) / 3600.0))

    def _store(self, model: Model, parts: list[pa.Table]) -> None:
        if parts:
            table = pa.concat_tables(parts, promote_options="default")
            name = f"{self.clock():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}"
            self.lake.write_rows(AREA, model.id, table, "inference_timestamp", name)


def endpoint_rows(inputs: int, config: ExplainabilityConfig) -> int:
    """Rows one explanation asks the endpoint for, at most: the background's, each inner coalition's
    over the background, and the row itself."""
    coalitions = shap.coalitions(inputs, config.nsamples, config.seed)
    return config.background_rows * (len(coalitions.mask) - 1) + 1


def _outputs(model: Model, width: int, endpoint: str) -> list[tuple[int, str]]:
    """Which of the endpoint's numbers per row are explained, named by the predicted attributes."""
    predicted = [a.name for a in model.by_stage(Stage.PREDICTED_VALUE)]
    if model.output_type is OutputType.BINARY:
        positive = model.positive_predicted_attribute or predicted[-1]
        if width == 1:
            return [(0, positive)]
        if width == len(predicted):
            return [(predicted.index(positive), positive)]
    elif width == len(predicted):
        return list(enumerate(predicted))
    raise InvalidInput(
        f"endpoint {endpoint!r} answers {width} numbers per row; model {model.id} predicts {predicted} "
        "(a binary model's endpoint may answer the positive class's score alone)",
        field="explainability.endpoint_name",
    )


def _with_columns(table: pa.Table, columns: list[str]) -> pa.Table:
    """The table's `columns`, those it lacks (files written before an attribute existed) as nulls of
    the null type, which concatenation promotes to the other files' type."""
    for name in columns:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows))
    return table.select(columns)


def _concat(parts: list[pa.Table]) -> pa.Table | None:
    return pa.concat_tables(parts, promote_options="default") if parts else None


def _first_of_each_id(table: pa.Table) -> pa.Table:
    ids = table.column("partner_inference_id").to_numpy(zero_copy_only=False)
    _, first = np.unique(ids.astype(str), return_index=True)
    return table.take(pa.array(np.sort(first), type=pa.int64()))


def _table(records: dict[str, list[Any]], inputs: list[str], scores: np.ndarray) -> pa.Table:
    table = pa.table(
        {
            "partner_inference_id": pa.array(records["partner_inference_id"], pa.string()),
            "inference_timestamp": pa.array(records["inference_timestamp"], pa.timestamp("us", tz="UTC")),
            "variant": pa.array(records["variant"], pa.string()),
            "explained_at": pa.array(records["explained_at"], pa.timestamp("us", tz="UTC")),
            "predicted_attribute_name": pa.array(records["predicted_attribute_name"], pa.string()),
            "expected_value": pa.array(records["expected_value"], pa.float64()),
            "prediction": pa.array(records["prediction"], pa.float64()),
            "coalitions": pa.array(records["coalitions"], pa.int64()),
        }
    )
    for j, name in enumerate(inputs):
        table = table.append_column(name, pa.array(scores[:, j], pa.float64()))
    for j, name in enumerate(inputs):
        table = table.append_column(shap.absolute_name(name), pa.array(np.abs(scores[:, j]), pa.float64()))
    return table


def _arthur(table: pa.Table, inputs: list[str]) -> dict[str, Any]:
    """Arthur's explanation answer (arthurai's explain_inference reads it)."""
    rows = table.to_pylist()
    return {
        "partner_inference_id": rows[0]["partner_inference_id"],
        "explained_at": rows[0]["explained_at"].isoformat(),
        "explanation": [
            {
                "algorithm": "shap",
                "predicted_attribute_name": row["predicted_attribute_name"],
                "importance_scores": [
                    {"attribute_name": name, "explanation_value": row[name], "tokens": None}
                    for name in inputs
                ],
            }
            for row in rows
        ],
        "expected_value": [
            {
                "predicted_attribute_name": row["predicted_attribute_name"],
                "expected_value": row["expected_value"],
            }
            for row in rows
        ],
    }


def check_algorithm(algorithm: str) -> None:
    """sagewatch computes SHAP attributions only."""
    if algorithm.lower() != "shap":
        raise Unsupported(
            f"sagewatch computes shap explanations only (KernelSHAP), not {algorithm!r}: ask for algorithm=shap",
            field="algorithm",
        )
