"""Explanations: KernelSHAP attributions of sampled inferences, by calling the model's own SageMaker
endpoint with perturbed rows (sagewatch.metrics.shap), within a budget of explanations per hour.

- `explain_due` (the evaluator, each run): inferences written to the lake since the last run (a
  ledger item keeps the cursor), sampled by `sample_share`, at most the budget's share of the time
  since the last run and never past the hour's budget; stops in time, keeping what it finished.
- `explain` (the API): an inference's stored explanation, else computed now if the budget allows.
- `importance`: mean |attribution| per input over a window, and per hour or day for charting.

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
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sagewatch.enrichments import ExplainabilityConfig
from sagewatch.errors import InvalidInput, NotFound, Throttled, Unsupported
from sagewatch.metrics import shap
from sagewatch.schema import Model, OutputType, Stage
from sagewatch.services.enrichments import Enrichments
from sagewatch.stores.endpoints import EndpointMetrics
from sagewatch.stores.explanations import ExplanationBudget
from sagewatch.stores.ingestion import IngestionLedger
from sagewatch.stores.invocations import EndpointInvoker
from sagewatch.stores.lake import LakeStore
from sagewatch.stores.models import ModelStore

AREA = "explanations"
PROGRESS_SK = "EXPLANATIONS"
# A run's time when the caller does not say: half the evaluator Lambda's 10 minutes (infra/monitor.py),
# the other half left to its alert rules.
RUN_SECONDS = 300.0
# A first run looks this far back for inferences (the cursor starts there).
FIRST_LOOKBACK = timedelta(days=1)
# Explanations are written to the lake this many at a time (and whatever is done when a run stops).
WRITE_EVERY = 25
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
    ) -> None:
        self.models, self.lake, self.ledger, self.enrichments = models, lake, ledger, enrichments
        self.invoker, self.endpoints, self.budget, self.clock = invoker, endpoints, budget, clock

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

    def explainer(self, model: Model, config: ExplainabilityConfig, endpoint: str) -> Explainer:
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
        answers = self.invoker.predict(endpoint, config.variant, background)
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

    def attributions(self, explainer: Explainer, row: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
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
        answers = self.invoker.predict(explainer.endpoint, explainer.variant, columns)
        answers = answers[:, [c for c, _ in explainer.outputs]]
        prediction = answers[-1]
        values = shap.coalition_values(answers[:-1], len(explainer.background[0]))
        phi = shap.attributions(
            values, inner, explainer.coalitions.weights[2:], prediction, explainer.expected
        )
        return phi, prediction

    def explain_rows(
        self, explainer: Explainer, rows: list[dict[str, Any]], explained_at: datetime
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
            phi, prediction = self.attributions(explainer, row)
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
        """Explain the inferences due (see the module docstring) within `seconds`; what was done
        is stored even when the endpoint fails, which then raises."""
        started = time.monotonic()
        model = model if isinstance(model, Model) else self.models.get(model)
        now = now or self.clock()
        explainability = self.enrichments.config(model).explainability
        report = ExplainReport(model_id=model.id, enabled=explainability.enabled)
        if not report.enabled or not explainability.streaming or model.archived:
            return report  # streaming off: explanations on demand only
        config, endpoint = self.settings(model)
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
            return report
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
            report.over_budget = candidates.num_rows - len(chosen)
            candidates = candidates.take(pa.array(chosen, type=pa.int64()))
        rows = candidates.sort_by("inference_timestamp").to_pylist()
        done: list[pa.Table] = []
        counted = asdict(self.invoker.counts)
        explainer = None
        try:
            for row in rows:
                elapsed = time.monotonic() - started
                per_row = elapsed / report.explained if report.explained else 0.0
                if elapsed + 1.5 * per_row > seconds:
                    report.stopped_for_time = True
                    break
                if not self.budget.reserve(model.id, hour, config.explanations_per_hour):
                    report.over_budget += len(rows) - report.explained
                    break
                explainer = explainer or self.explainer(model, config, endpoint)
                done.append(self.explain_rows(explainer, [row], self.clock()))
                report.explained += 1
                if len(done) >= WRITE_EVERY:
                    self._store(model, done)
                    done = []
        finally:
            self._store(model, done)
            after = asdict(self.invoker.counts)
            report.endpoint_calls = after["calls"] - counted["calls"]
            report.endpoint_rows = after["rows"] - counted["rows"]
            report.retries = after["retries"] - counted["retries"]
            report.seconds = time.monotonic() - started
        if not report.stopped_for_time:  # else the next run reads these files again (explained ids skipped)
            cursor_state = {"cursor": newest.isoformat(), "cursor_keys": newest_keys}
            self.ledger.set_state(model.id, PROGRESS_SK, **cursor_state, last_run_at=now.isoformat())
        return report

    def explain(self, model_id: str, partner_inference_id: str) -> dict[str, Any]:
        """The inference's explanation in Arthur's shape: stored, else computed now within the budget."""
        model = self.models.get(model_id)
        stored = self._stored(model, partner_inference_id)
        if stored is None:
            config, endpoint = self.settings(model)
            inputs = [a.name for a in model.by_stage(Stage.PIPELINE_INPUT)]
            row = self._inference(model, partner_inference_id, inputs)
            now = self.clock()
            hour = now.replace(minute=0, second=0, microsecond=0)
            if not self.budget.reserve(model.id, hour, config.explanations_per_hour):
                raise Throttled(
                    f"model {model.id} has had its {config.explanations_per_hour} explanations this hour "
                    f"(explainability.explanations_per_hour): try after {(hour + timedelta(hours=1)).isoformat()}",
                    field="explainability.explanations_per_hour",
                )
            stored = self.explain_rows(self.explainer(model, config, endpoint), [row], now)
            self._store(model, [stored])
        return _arthur(stored, [a.name for a in model.by_stage(Stage.PIPELINE_INPUT)])

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

    def _read(self, model: Model, first: Any, last: Any, columns: list[str] | None = None) -> pa.Table | None:
        keys = [
            k
            for k in self.lake.day_keys(f"{AREA}/model_id={model.id}/", first, last)
            if k.endswith(".parquet")
        ]
        tables = [self.lake.read_table(key, columns) for key in keys]
        return pa.concat_tables(tables, promote_options="default") if tables else None

    def _stored(self, model: Model, partner_inference_id: str) -> pa.Table | None:
        table = self._read(model, None, None)
        if table is None:
            return None
        found = table.filter(pc.equal(table.column("partner_inference_id"), partner_inference_id))
        if found.num_rows == 0:
            return None
        latest = pc.max(found.column("explained_at"))
        return found.filter(pc.equal(found.column("explained_at"), latest))

    def _unexplained(self, model: Model, candidates: pa.Table) -> pa.Table:
        if candidates.num_rows == 0:
            return candidates
        times = candidates.column("inference_timestamp")
        first, last = pc.min_max(times).values()
        table = self._read(model, first.as_py().date(), last.as_py().date(), ["partner_inference_id"])
        if table is None:
            return candidates
        explained = pc.is_in(
            candidates.column("partner_inference_id"),
            value_set=table.column("partner_inference_id").combine_chunks(),
        )
        return candidates.filter(pc.invert(explained))

    def _inference(self, model: Model, partner_inference_id: str, inputs: list[str]) -> dict[str, Any]:
        """The inference's first write (every day of the lake is read: an on-demand cost)."""
        wanted = ["partner_inference_id", "inference_timestamp", "variant", *inputs]
        for key in self.lake.keys(f"inferences/model_id={model.id}/"):
            if not key.endswith(".parquet"):
                continue
            table = _with_columns(self.lake.read_table(key, wanted), wanted)
            found = table.filter(pc.equal(table.column("partner_inference_id"), partner_inference_id))
            if found.num_rows:
                return found.slice(0, 1).to_pylist()[0]
        raise NotFound(
            f"model {model.id} has no inference {partner_inference_id!r}", field="partner_inference_id"
        )

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
    for name in columns:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
    return table.select(columns)


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
