"""What the /api/v1 routes do: Deepchecks objects kept in DeepchecksStore, data and rules in sagewatch's.

A Deepchecks model and its sagewatch model share one id. The sagewatch model is registered when the
Deepchecks model gets its first version (that is when it has a schema) with the model's name as
partner_model_id; later versions must have the same columns (sagewatch keeps one schema per model)
and their samples carry the version's name in the lake's `variant` column. `sync` turns monitors and
alert rules into sagewatch metrics and rules as soon as what they need (a version, reference
categories) exists, so the client's order of calls (defaults before the first version) works.
Request bodies arrive validated by the /api/v1 routes' pydantic models (sagewatch.api.deepchecks);
what is checked here is what spans objects (names taken, one schema per model, classes).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sagewatch import jsonl
from sagewatch.alerting.types import MetricSpec, RuleSpec
from sagewatch.deepchecks import checks, translate
from sagewatch.deepchecks.translate import LABEL, SAMPLE_ID
from sagewatch.errors import Conflict, InvalidInput, NotFound
from sagewatch.metrics.filters import Condition, apply, date_range
from sagewatch.metrics.query import column_types
from sagewatch.records import columns_from_records, reference_rows, rows_from_columns
from sagewatch.schema import Category, Model, ModelSpec, ValueType, check_spec
from sagewatch.services.ingestion import Ingestor, Source
from sagewatch.services.monitoring import Monitoring
from sagewatch.stores.deepchecks import DeepchecksStore, new_id
from sagewatch.stores.ingestion import IngestionLedger
from sagewatch.stores.models import ModelStore
from sagewatch.values import TIME_RANGE_TEXT, array_of, coerce, has_problem, in_time_range
from sagewatch.webhooks import check_destination

MODEL, VERSION, CHECK, MONITOR, ALERT_RULE, NOTE, WEBHOOK, DASHBOARD_MONITOR = (
    "MODEL",
    "VERSION",
    "CHECK",
    "MONITOR",
    "ALERTRULE",
    "NOTE",
    "WEBHOOK",
    "DASHMON",
)
DASHBOARD = ("DASHBOARD", "1")
OPERATORS = {
    "greater_than_equals": "gte",
    "greater_than": "gt",
    "less_than_equals": "lte",
    "less_than": "lt",
    "equals": "eq",
    "not_equals": "ne",
    "in": "in",
}


def _now() -> str:
    return datetime.now(UTC).isoformat()


# -- models --------------------------------------------------------------------------------------


# -- versions ------------------------------------------------------------------------------------


def version_view(version: dict[str, Any]) -> dict[str, Any]:
    """A version as the client sees it: without sagewatch's column names and learnt categories."""
    return {k: v for k, v in version.items() if k not in ("columns", "categories")}


# -- data ----------------------------------------------------------------------------------------


def _check_time(value: Any, field: str) -> None:
    """InvalidInput naming `field` unless `value` is an ISO 8601 time (or epoch seconds) sagewatch stores."""
    moment, invalid = coerce(pa.array([value]), ValueType.TIMESTAMP)
    if invalid[0] or not moment.is_valid().to_numpy(zero_copy_only=False)[0] or not in_time_range(moment)[0]:
        raise InvalidInput(
            f"{field}: {value!r} is not an ISO 8601 time (or epoch seconds) within {TIME_RANGE_TEXT}",
            field=field,
        )


def _refuse(problem: np.ndarray, version: dict[str, Any], what: str) -> None:
    failed = np.flatnonzero(has_problem(problem))
    if len(failed):
        first = int(failed[0])
        message = translate.deepchecks_problem(str(problem[first]), version)
        raise InvalidInput(
            f"{what}[{first}] {message} ({len(failed)} of {len(problem)} refused; nothing of this request was stored)",
            field=message.split(":", 1)[0] if ":" in message else what,
        )


def _filtered(
    table: pa.Table, filters: list[dict[str, Any]], version: dict[str, Any], model: Model, source: str
) -> pa.Table:
    conditions = []
    for index, found in enumerate(filters):
        column = found.get("column")
        name = version["columns"].get(column, column)
        operator = OPERATORS.get(str(found.get("operator")))
        if operator is None:
            raise InvalidInput(
                f"filter.filters[{index}].operator: one of {sorted(OPERATORS)}", field="filter"
            )
        value = found.get("value")
        conditions.append(
            Condition(
                property=name,
                comparator=operator,
                value=value if operator != "in" or isinstance(value, list) else [value],
            )
        )
    return apply(table, conditions, column_types(model, source), "filter.filters")


# The answer is this JSON inside a JSON string, inside Lambda's response (escaped twice): as it
# travels it must stay under Lambda's 6 MB.
MAX_SAMPLES_JSON_BYTES = 5_500_000


def records_json(table: pa.Table, limit: int = MAX_SAMPLES_JSON_BYTES) -> str:
    """Rows as a JSON list of records, times as ISO 8601 UTC (what pandas' to_json(orient="records",
    date_format="iso") wrote, without pandas, which the Lambda layer does not ship).

    A sample is a sample: when the rows would not fit `limit`, fewer of them (the first) are sent.
    """
    columns = {}
    for field in table.schema:
        column = table.column(field.name)
        if pa.types.is_timestamp(field.type):
            column = pc.strftime(column, format="%Y-%m-%dT%H:%M:%SZ")
        columns[field.name] = column
    rows = pa.table(columns).to_pylist()
    text = json.dumps(rows, allow_nan=False)
    size = _travelling(text)
    while size > limit and len(rows) > 1:
        rows = rows[: max(1, int(len(rows) * limit / size * 0.95))]
        text = json.dumps(rows, allow_nan=False)
        size = _travelling(text)
    return text


def _travelling(text: str) -> int:
    """Bytes `text` takes in Lambda's response: a JSON string in the body, the body a JSON string."""
    return len(json.dumps(json.dumps(text)))


# -- checks, monitors, alert rules ---------------------------------------------------------------


def _endpoint(model: Model, drift: bool) -> str:
    path = f"/api/v3/models/{model.id}/inferences/query"
    return f"{path}/data_drift" if drift else path


class Deepchecks:
    """The /api/v1 routes' use cases over the Deepchecks store and sagewatch's own services."""

    def __init__(
        self,
        store: DeepchecksStore,
        models: ModelStore,
        ledger: IngestionLedger,
        ingestion: Ingestor,
        monitoring: Monitoring,
    ) -> None:
        self.store, self.models, self.ledger = store, models, ledger
        self.ingestion, self.monitoring = ingestion, monitoring

    def create_model(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a model and its notes; 409 when its name is taken (here, or as a partner_model_id)."""
        name = body["name"]
        try:
            taken = self.models.get_by_partner_id(name)
        except NotFound:
            taken = None
        if taken is not None and self.store.find(MODEL, "", name) != taken.id:
            raise Conflict(f"name: a sagewatch model already has partner_model_id {name!r}", field="name")
        model = {
            "id": str(uuid.uuid4()),
            "name": name,
            "task_type": body["task_type"],
            "description": body.get("description"),
            "alerts_delay_labels_ratio": body["alerts_delay_labels_ratio"],
            "alerts_delay_seconds": body["alerts_delay_seconds"],
            "obj_store_path": body.get("obj_store_path"),
            "created_at": _now(),
        }
        self.store.put(MODEL, model, unique=("", name), conflict=f"name: a model named {name!r} exists")
        if body.get("notes"):
            self.create_notes(model["id"], body["notes"])
        return {"id": model["id"]}

    def get_model(self, identifier: str, by_name: bool = False) -> dict[str, Any]:
        """A model by id (or name) with its versions, and whether it has samples."""
        model_id = self.store.find(MODEL, "", identifier) if by_name else identifier
        if model_id is None:
            raise NotFound(f"no model named {identifier!r}", field="model")
        model = self.store.get(MODEL, model_id, "model")
        versions = self.store.children((MODEL, model_id), VERSION)
        return {
            **model,
            "versions": [version_view(v) for v in versions],
            "has_data": bool(self.ledger.counts(model_id)["total"].get("inferences_ingested"))
            if versions
            else False,
        }

    def delete_model(self, identifier: str, by_name: bool = False) -> None:
        """Delete a model with its versions and checks; its sagewatch model, if any, is archived."""
        model = self.get_model(identifier, by_name)
        for version in model["versions"]:
            self.store.delete(
                VERSION, version["id"], parent=(MODEL, model["id"]), unique=(model["id"], version["name"])
            )
        for check in self.store.children((MODEL, model["id"]), CHECK):
            self.store.delete(
                CHECK, check["id"], parent=(MODEL, model["id"]), unique=(model["id"], check["name"])
            )
        self.store.delete(MODEL, model["id"], unique=("", model["name"]))
        with contextlib.suppress(NotFound, Conflict):  # no version yet, or archived already
            self.models.archive(model["id"])

    def create_notes(self, model_id: str, notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add notes to a model; the notes created."""
        self.store.get(MODEL, model_id, "model")
        created = []
        for note in notes:
            doc = {
                "id": new_id(),
                "model_id": model_id,
                "title": str(note["title"]),
                "text": note.get("text"),
                "created_at": _now(),
            }
            created.append(self.store.put(NOTE, doc, parent=(MODEL, model_id)))
        return created

    def list_notes(self, model_id: str) -> list[dict[str, Any]]:
        """A model's notes, oldest first."""
        self.store.get(MODEL, model_id, "model")
        return self.store.children((MODEL, model_id), NOTE)

    def delete_note(self, note_id: str) -> None:
        """Delete a note."""
        note = self.store.get(NOTE, note_id, "note")
        self.store.delete(NOTE, note_id, parent=(MODEL, note["model_id"]))

    def create_version(self, model_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create a version: the first registers the sagewatch model, later ones must have its columns."""
        model = self.store.get(MODEL, model_id, "model")
        name = body["name"]
        version = {
            "id": new_id(),
            "model_id": model_id,
            "name": name,
            "features": dict(body.get("features") or {}),
            "additional_data": dict(body.get("additional_data") or {}),
            "feature_importance": body.get("feature_importance"),
            "classes": [str(c) for c in body["classes"]] if body.get("classes") else None,
            "label_map": body.get("label_map"),
            "created_at": _now(),
        }
        translate.check_version(version, model["task_type"])
        version["columns"] = translate.attribute_names([*version["features"], *version["additional_data"]])
        existing = self.store.children((MODEL, model_id), VERSION)
        spec = (
            None if existing else check_spec(translate.model_spec(model, version))
        )  # refused before storing
        if spec is not None:
            self.models.check_storable(spec)
        if existing:
            first = existing[0]
            for part in ("features", "additional_data", "classes"):
                if (first.get(part) or None) != (version.get(part) or None):
                    raise Conflict(
                        f"{part}: sagewatch keeps one schema per model and version {first['name']!r} has other "
                        f"{part}; create a new model for a new schema",
                        field=part,
                    )
            version["columns"] = first["columns"]
            version["categories"] = first.get("categories")
        self.store.put(
            VERSION,
            version,
            parent=(MODEL, model_id),
            unique=(model_id, name),
            conflict=f"name: model {model['name']!r} has a version named {name!r}",
        )
        if spec is not None:
            self.models.create(spec, model_id=model_id)
        self.sync(model_id)
        return {"id": version["id"]}

    def get_version(self, version_id: str) -> dict[str, Any]:
        """A version by id, as stored (with its column mapping and learnt categories)."""
        return self.store.get(VERSION, version_id, "model version")

    def get_version_by_name(self, model_name: str, version_name: str) -> dict[str, Any]:
        """A version by its model's name and its own."""
        model_id = self.store.find(MODEL, "", model_name)
        if model_id is None:
            raise NotFound(f"no model named {model_name!r}", field="model")
        version_id = self.store.find(VERSION, model_id, version_name)
        if version_id is None:
            raise NotFound(f"model {model_name!r} has no version {version_name!r}", field="version")
        return self.get_version(version_id)

    def update_version(self, version_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Set a version's feature importance (a value for every feature, or null); the version."""
        version = self.get_version(version_id)
        if "feature_importance" in body:
            importance = body["feature_importance"]
            if importance is not None and set(importance) != set(version["features"]):
                raise InvalidInput(
                    "feature_importance: give a value for every feature", field="feature_importance"
                )
            version["feature_importance"] = importance
        self.store.put(VERSION, version, parent=(MODEL, version["model_id"]))
        return version_view(version)

    def delete_version(self, version_id: str) -> None:
        """Delete a version and free its name; its samples stay in the lake."""
        version = self.get_version(version_id)
        self.store.delete(
            VERSION,
            version_id,
            parent=(MODEL, version["model_id"]),
            unique=(version["model_id"], version["name"]),
        )

    def schema(self, version_id: str) -> dict[str, Any]:
        """The JSON schemas the client checks samples and reference rows with, and the version's columns."""
        version = self.get_version(version_id)
        model = self.store.get(MODEL, version["model_id"], "model")
        monitor, reference = translate.json_schemas(model["task_type"], version)
        return {
            "monitor_schema": monitor,
            "reference_schema": reference,
            "classes": version.get("classes"),
            "features": version["features"],
            "additional_data": version["additional_data"],
            "feature_importance": version.get("feature_importance"),
            "label_map": version.get("label_map"),
        }

    def _context(self, version_id: str) -> tuple[dict[str, Any], dict[str, Any], Model]:
        version = self.get_version(version_id)
        model = self.store.get(MODEL, version["model_id"], "model")
        return version, model, self.models.get_active(version["model_id"])

    def log_samples(self, version_id: str, samples: list[Any], request_id: str) -> dict[str, Any]:
        """Production samples: all stored, or none (400 naming the first wrong column)."""
        source = Source.api_request("deepchecks:samples", request_id)
        version, dc_model, model = self._context(version_id)
        if not isinstance(samples, list):
            raise InvalidInput("body: a list of samples", field="body")
        now = datetime.now(UTC)
        columns, read_problems = columns_from_records(samples, nested=(), lists=(translate.PROBABILITIES,))
        missing = [c for c in translate.required_columns(version) if c not in columns]
        if samples and missing:
            raise InvalidInput(
                f"samples: column {missing[0]!r} is missing (the version's schema requires it; null is allowed)",
                field=missing[0],
            )
        renamed, problem = translate.attribute_columns(columns, len(samples), dc_model["task_type"], version)
        rows = rows_from_columns(
            renamed,
            len(samples),
            model,
            source=source.name,
            now=now,
            read_problems=read_problems,
        )
        _refuse(np.where(has_problem(problem), problem, rows.problem), version, "samples")
        inferences = rows.inferences
        variant = inferences.schema.get_field_index("variant")
        inferences = inferences.set_column(
            variant, "variant", pa.array([version["name"]] * inferences.num_rows, pa.string())
        )
        # the version is the samples' variant: counted as such, so it is listed and compared
        source = dataclasses.replace(source, variant=version["name"])
        self.ingestion.accept(model, source, inferences=inferences, ground_truth=rows.ground_truth)
        return {
            "received": len(samples),
            "stored": inferences.num_rows,
            "duplicates": "a sample id sent before keeps its first version (sagewatch's first-write-wins policy)",
        }

    def log_labels(self, model_id: str, labels: list[Any], request_id: str) -> dict[str, Any]:
        """Labels by sample id, any time before or after the samples; the latest label wins."""
        source = Source.api_request("deepchecks:labels", request_id)
        dc_model = self.store.get(MODEL, model_id, "model")
        model = self.models.get_active(model_id)
        if not isinstance(labels, list):
            raise InvalidInput("body: a list of {_dc_sample_id, _dc_label}", field="body")
        columns, read_problems = columns_from_records(labels, nested=())
        unknown = [c for c in columns if c not in (SAMPLE_ID, LABEL)]
        if unknown:
            raise InvalidInput(f"{unknown[0]}: labels carry only {SAMPLE_ID} and {LABEL}", field=unknown[0])
        if SAMPLE_ID not in columns:
            raise InvalidInput(f"{SAMPLE_ID}: every label names its sample", field=SAMPLE_ID)
        labelled = columns.get(LABEL, pa.nulls(len(labels)))
        keep = pc.is_valid(labelled)
        count = int(pc.sum(keep).as_py() or 0)
        renamed = {
            "partner_inference_id": columns[SAMPLE_ID].filter(keep),
            LABEL: (
                translate.class_text(labelled)
                if translate.is_classification(dc_model["task_type"])
                else labelled
            ).filter(keep),
        }
        problem_of_kept = read_problems[np.flatnonzero(keep.to_numpy(zero_copy_only=False))]
        version = self.store.children((MODEL, model_id), VERSION)[0]
        now = datetime.now(UTC)
        rows = rows_from_columns(
            renamed,
            count,
            model,
            source=source.name,
            now=now,
            require_inference=False,
            read_problems=problem_of_kept,
        )
        _refuse(rows.problem, version, "labels")
        self.ingestion.accept(model, source, ground_truth=rows.ground_truth, rejected_as="ground_truth")
        return {
            "received": len(labels),
            "stored": rows.ground_truth.num_rows,
            "without_label": len(labels) - count,
        }

    def upload_reference(self, version_id: str, payload: bytes, request_id: str) -> dict[str, Any]:
        """A reference batch (DataFrame.to_json(orient="split")): all stored, or none."""
        version, dc_model, model = self._context(version_id)
        self.ledger.check_reference_open(model.id)
        shape = 'batch: a JSON object {"columns": [names], "data": [[values], ...]}'
        try:
            frame = jsonl.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            raise InvalidInput(f"{shape} ({error})", field="batch") from None
        names, data = (frame.get("columns"), frame.get("data")) if isinstance(frame, dict) else (None, None)
        if (
            not isinstance(names, list)
            or not all(isinstance(n, str) for n in names)
            or not isinstance(data, list)
        ):
            raise InvalidInput(shape, field="batch")
        count = len(data)
        if any(not isinstance(row, list) or len(row) != len(names) for row in data):
            raise InvalidInput(f"batch: every row of data has {len(names)} values", field="batch")
        transposed = list(zip(*data, strict=True)) if data else [() for _ in names]
        columns = {name: array_of(list(values)) for name, values in zip(names, transposed, strict=True)}
        renamed, problem = translate.attribute_columns(columns, count, dc_model["task_type"], version)
        reference, typed_problem = reference_rows(renamed, count, model)
        combined = np.where(has_problem(problem), problem, typed_problem)
        _refuse(combined, version, "reference")
        model = self._learn_categories(version, model, reference)  # before writing: a failure stores nothing
        self.ingestion.accept(
            model, Source.api_request("deepchecks:reference", request_id), reference=reference
        )
        self.ledger.set_state(model.id, "REFERENCE", status="receiving")
        self.sync(model.id)
        return {"received": count, "stored": reference.num_rows}

    def _learn_categories(self, version: dict[str, Any], model: Model, reference: pa.Table) -> Model:
        """Categorical features take their categories from the reference (what is "new" later);
        returns the model as it now is."""
        categorical = [c for c, kind in version["features"].items() if kind == "categorical"]
        categorical += [c for c, kind in version["additional_data"].items() if kind == "categorical"]
        if not categorical:
            return model
        known = dict(version.get("categories") or {})
        for column in categorical:
            values = pc.unique(reference.column(version["columns"][column]).drop_null()).to_pylist()
            known[column] = sorted(set(known.get(column, [])) | {str(v) for v in values})
        if known == version.get("categories"):
            return model
        for each in self.store.children((MODEL, model.id), VERSION):
            self.store.put(VERSION, {**each, "categories": known}, parent=(MODEL, model.id))
        version["categories"] = known
        by_name = {version["columns"][c]: values for c, values in known.items()}
        attributes = [
            a.model_copy(
                update={"categorical": True, "categories": [Category(value=v) for v in by_name[a.name]]}
            )
            if by_name.get(a.name)
            else a
            for a in model.attributes
        ]
        spec = ModelSpec.model_validate(
            model.model_dump(include=set(ModelSpec.model_fields)) | {"attributes": attributes}
        )
        return self.models.replace(model.id, spec)

    def _load(
        self, model: Model, source: str, start: str | None, end: str | None, columns: list[str] | None = None
    ) -> pa.Table | None:
        """The model's rows of [start, end) (inference) or its reference; `columns` (default: all) only."""
        conditions = []
        if start:
            conditions.append(Condition(property="inference_timestamp", comparator="gte", value=start))
        if end:
            conditions.append(Condition(property="inference_timestamp", comparator="lt", value=end))
        for name, value in (("start_time", start), ("end_time", end)):
            if value:
                _check_time(value, name)
        names = [a.name for a in model.attributes] if columns is None else columns
        inference = source == "inference"
        first, last = date_range(conditions) if inference else (None, None)
        with_truth = inference and (columns is None or LABEL in columns)
        tables = self.monitoring.loader(model)(
            source, [*names, *(["inference_timestamp"] if inference else [])], first, last, with_truth
        )
        if not tables:
            return None
        table = pa.concat_tables(tables, promote_options="default")
        return apply(table, conditions, column_types(model, source), "time") if inference else table

    def count_samples(self, version_id: str) -> dict[str, int]:
        """How many samples the lake holds and how many reference rows were ingested."""
        _, _, model = self._context(version_id)
        table = self._load(model, "inference", None, None, columns=[])
        totals = self.ledger.counts(model.id)["total"]
        return {
            "monitor_count": 0 if table is None else table.num_rows,
            "reference_count": int(totals.get("reference_ingested", 0)),
        }

    def time_window_statistics(self, version_id: str, start: str | None, end: str | None) -> dict[str, int]:
        """Samples, and labelled samples, of [start, end)."""
        _, _, model = self._context(version_id)
        table = self._load(model, "inference", start, end, columns=[LABEL])
        if table is None:
            return {"num_samples": 0, "num_labeled_samples": 0}
        return {
            "num_samples": table.num_rows,
            "num_labeled_samples": int(pc.sum(pc.is_valid(table.column(LABEL))).as_py() or 0),
        }

    def data_frame_json(
        self,
        version_id: str,
        source: str,
        body: dict[str, Any],
        start: str | None = None,
        end: str | None = None,
    ) -> str:
        """Samples as the client reads them: a JSON string of records (at most rows_count, sampled)."""
        version, dc_model, model = self._context(version_id)
        table = self._load(model, source, start, end)
        if table is None or table.num_rows == 0:
            return "[]"
        table = _filtered(table, ((body.get("filter") or {}).get("filters") or []), version, model, source)
        rows_count = int(body.get("rows_count") or 10_000)
        if table.num_rows > rows_count:
            chosen = np.sort(np.random.default_rng(42).choice(table.num_rows, rows_count, replace=False))
            table = table.take(pa.array(chosen))
        samples = translate.samples_from_table(table, dc_model["task_type"], version)
        return records_json(samples)

    def _version_and_model(self, model_id: str) -> tuple[dict[str, Any] | None, Model | None]:
        versions = self.store.children((MODEL, model_id), VERSION)
        if not versions:
            return None, None
        return versions[0], self.models.get(model_id)

    def create_checks(self, model_id: str, found: list[Any]) -> list[dict[str, Any]]:
        """Add checks to a model (409 for a name taken); their ids and names."""
        self.store.get(MODEL, model_id, "model")
        created = []
        for check in found:
            doc = {
                "id": new_id(),
                "model_id": model_id,
                "name": str(check["name"]),
                "config": check["config"],
                "created_at": _now(),
            }
            self.store.put(
                CHECK,
                doc,
                parent=(MODEL, model_id),
                unique=(model_id, doc["name"]),
                conflict=f"name: check {doc['name']!r} exists",
            )
            created.append({"id": doc["id"], "name": doc["name"]})
        return created

    def list_checks(self, model_id: str) -> list[dict[str, Any]]:
        """A model's checks, each saying whether and how sagewatch evaluates it."""
        model = self.store.get(MODEL, model_id, "model")
        version, sagewatch_model = self._version_and_model(model_id)
        listed = []
        for check in self.store.children((MODEL, model_id), CHECK):
            planned = checks.plan(check["config"], None, model["task_type"], version, sagewatch_model)
            evaluation = (
                {"evaluated": planned.evaluated, "how": planned.reason}
                if planned.evaluated
                else {"evaluated": False, "reason": planned.reason}
            )
            listed.append({**check, "sagewatch": evaluation})
        return listed

    def delete_checks(self, model_id: str, names: list[str]) -> None:
        """Delete the model's checks of these names (other names are ignored)."""
        for check in self.store.children((MODEL, model_id), CHECK):
            if check["name"] in names:
                self.store.delete(
                    CHECK, check["id"], parent=(MODEL, model_id), unique=(model_id, check["name"])
                )

    def create_monitor(self, check_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create a monitor of a check and sync it into sagewatch metrics when possible."""
        check = self.store.get(CHECK, check_id, "check")
        frequency = str(body["frequency"]).upper()
        monitor = {
            "id": new_id(),
            "check_id": check_id,
            "model_id": check["model_id"],
            "name": body.get("name") or f"{check['name']} Monitor",
            "description": body.get("description"),
            "lookback": body.get("lookback"),
            "frequency": frequency,
            "aggregation_window": int(body.get("aggregation_window") or 1),
            "dashboard_id": body.get("dashboard_id"),
            "additional_kwargs": body.get("additional_kwargs"),
            "metric_ids": None,
            "created_at": _now(),
        }
        self.store.put(MONITOR, monitor, parent=(CHECK, check_id))
        if monitor["dashboard_id"] is not None:
            self.store.put(DASHBOARD_MONITOR, monitor, parent=DASHBOARD)
        self.sync(check["model_id"])
        return {"id": monitor["id"]}

    def get_monitor(self, monitor_id: str) -> dict[str, Any]:
        """A monitor with its check."""
        monitor = self.store.get(MONITOR, monitor_id, "monitor")
        return {**monitor, "check": self.store.get(CHECK, monitor["check_id"], "check")}

    def create_alert_rule(self, monitor_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create an alert rule on a monitor and sync it into sagewatch rules when possible."""
        monitor = self.store.get(MONITOR, monitor_id, "monitor")
        condition = body["condition"]
        threshold = float(condition["value"])
        severity = body["alert_severity"]
        rule = {
            "id": new_id(),
            "monitor_id": monitor_id,
            "model_id": monitor["model_id"],
            "alert_severity": severity,
            "condition": {"operator": condition["operator"], "value": threshold},
            "is_active": True,
            "rule_ids": None,
            "created_at": _now(),
        }
        self.store.put(ALERT_RULE, rule, parent=(MONITOR, monitor_id))
        self.sync(monitor["model_id"])
        return {"id": rule["id"]}

    def get_alert_rule(self, rule_id: str) -> dict[str, Any]:
        """An alert rule, with the ids of the sagewatch rules it became (None until synced)."""
        return self.store.get(ALERT_RULE, rule_id, "alert rule")

    def create_webhook(self, body: dict[str, Any]) -> dict[str, Any]:
        """Store an alert webhook (a URL sagewatch would be allowed to call; it is not called)."""
        check_destination(str(body.get("http_url")), "http_url")
        doc = {
            "id": new_id(),
            **{k: body.get(k) for k in ("name", "http_url", "http_method", "description", "kind")},
            "created_at": _now(),
        }
        return self.store.put(WEBHOOK, doc)

    def dashboard(self) -> dict[str, Any]:
        """The one dashboard (id 1), with the monitors added to it."""
        monitors = self.store.children(DASHBOARD, DASHBOARD_MONITOR)
        return {"id": 1, "name": "sagewatch", "monitors": [self.get_monitor(m["id"]) for m in monitors]}

    def set_schedule_time(self, model_id: str, timestamp: str) -> dict[str, Any]:
        """Record when the model's monitors start (ISO 8601 or epoch seconds); 400 for another value."""
        model = self.store.get(MODEL, model_id, "model")
        _check_time(timestamp, "timestamp")
        self.store.put(MODEL, {**model, "monitors_start_time": timestamp}, unique=("", model["name"]))
        return {"timestamp": timestamp}

    def sync(self, model_id: str) -> None:
        """Give every monitor its sagewatch metrics and every alert rule its sagewatch rules, once possible."""
        dc_model = self.store.get(MODEL, model_id, "model")
        version, model = self._version_and_model(model_id)
        if version is None or model is None:
            return
        for check in self.store.children((MODEL, model_id), CHECK):
            for monitor in self.store.children((CHECK, check["id"]), MONITOR):
                if monitor.get("metric_ids") is None:
                    planned = checks.plan(
                        check["config"],
                        monitor.get("additional_kwargs"),
                        dc_model["task_type"],
                        version,
                        model,
                    )
                    if planned.pending:
                        continue
                    metric_ids = [
                        self.monitoring.create_metric(
                            model.id,
                            MetricSpec(
                                name=f"{monitor['name']}{suffix}",
                                query=query,
                                endpoint=_endpoint(model, drift),
                            ),
                        ).id
                        for suffix, query, drift in planned.metrics
                    ]
                    monitor = {
                        **monitor,
                        "metric_ids": metric_ids,
                        "sagewatch": {"evaluated": planned.evaluated, "reason": planned.reason},
                    }
                    self.store.put(MONITOR, monitor, parent=(CHECK, check["id"]))
                    if monitor.get("dashboard_id") is not None:
                        self.store.put(DASHBOARD_MONITOR, monitor, parent=DASHBOARD)
                for rule in self.store.children((MONITOR, monitor["id"]), ALERT_RULE):
                    if rule.get("rule_ids") is not None:
                        continue
                    upper = rule["condition"]["operator"].startswith("greater")
                    rule_ids = [
                        self.monitoring.add_rule(
                            model.id,
                            RuleSpec(
                                metric_id=metric_id,
                                name=f"{monitor['name']} {'>' if upper else '<'} {rule['condition']['value']:g}",
                                bound="upper" if upper else "lower",
                                threshold=rule["condition"]["value"],
                                severity=checks.SEVERITIES[rule["alert_severity"]],
                                lookback_period=checks.lookback_minutes(monitor),
                            ),
                        ).id
                        for metric_id in monitor["metric_ids"]
                    ]
                    evaluated = bool(rule_ids)
                    reason = (monitor.get("sagewatch") or {}).get("reason", "")
                    self.store.put(
                        ALERT_RULE,
                        {
                            **rule,
                            "rule_ids": rule_ids,
                            "sagewatch": {"evaluated": evaluated, "reason": reason},
                        },
                        parent=(MONITOR, monitor["id"]),
                    )
