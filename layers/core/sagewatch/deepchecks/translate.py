"""Deepchecks' vocabulary as a sagewatch model: task types, column types, `_dc_*` columns, JSON schemas.

A Deepchecks model version becomes the attributes of one sagewatch model:
- features -> PIPELINE_INPUT, additional_data -> NON_INPUT_DATA, typed by COLUMN_TYPES; column
  names that are not attribute names (spaces, dots...) get one (`mean radius` -> `mean_radius`)
  and keep the original as the attribute's label; `columns` in the version maps one to the other.
- regression: `_dc_prediction` PREDICTED_VALUE FLOAT, `_dc_label` GROUND_TRUTH FLOAT.
- binary / multiclass (the version's classes are required): `_dc_proba_<i>` PREDICTED_VALUE FLOAT,
  the probability of classes[i] (one-hot from `_dc_prediction` when a sample has no
  probabilities), `_dc_prediction` NON_INPUT_DATA STRING (the class the model chose) and
  `_dc_label` GROUND_TRUTH STRING with the classes as categories (class form of
  pred_to_ground_truth_map).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sagewatch.errors import InvalidInput, Unsupported
from sagewatch.schema import RESERVED_NAMES, Attribute, Category, ModelSpec, OutputType, Stage, ValueType
from sagewatch.values import has_problem, safe_cast

SAMPLE_ID = "_dc_sample_id"
TIME = "_dc_time"
PREDICTION = "_dc_prediction"
PROBABILITIES = "_dc_prediction_probabilities"
# A model has at most 2,000 attributes; the outputs (a probability per class, prediction, label) take some.
MAX_COLUMNS = 1_900
LABEL = "_dc_label"

TASK_TYPES = {
    "binary": OutputType.BINARY,
    "multiclass": OutputType.MULTICLASS,
    "regression": OutputType.REGRESSION,
}
COLUMN_TYPES = {
    "numeric": ValueType.FLOAT,
    "integer": ValueType.INTEGER,
    "bigint": ValueType.INTEGER,
    "categorical": ValueType.STRING,
    "boolean": ValueType.BOOLEAN,
    "text": ValueType.STRING,
    "datetime": ValueType.TIMESTAMP,
}
JSON_TYPES = {
    "numeric": "number",
    "integer": "integer",
    "bigint": "integer",
    "categorical": "string",
    "boolean": "boolean",
    "text": "string",
    "datetime": "string",
}


def is_classification(task_type: str) -> bool:
    """Whether a Deepchecks task type is a classification (binary or multiclass)."""
    return task_type in ("binary", "multiclass")


def probability_attribute(index: int) -> str:
    """The attribute holding the probability of the class at `index`."""
    return f"_dc_proba_{index}"


def attribute_names(columns: list[str]) -> dict[str, str]:
    """Deepchecks column -> a unique attribute name (letters, digits, underscores; not reserved)."""
    taken = {name.lower() for name in RESERVED_NAMES} | {SAMPLE_ID, TIME, PREDICTION, LABEL}
    names: dict[str, str] = {}
    for column in columns:
        base = re.sub(r"[^A-Za-z0-9_]", "_", column) or "_"
        base = f"_{base}" if base[0].isdigit() else base
        base = f"col{base}" if base.startswith("_dc_") else base  # sagewatch's own columns start so
        candidate, suffix = base[:120], 2
        while candidate.lower() in taken:
            candidate, suffix = f"{base[:115]}_{suffix}", suffix + 1
        taken.add(candidate.lower())
        names[column] = candidate
    return names


def check_version(version: dict[str, Any], task_type: str) -> None:
    """Refuse what a sagewatch model cannot hold, naming the field."""
    for part in ("features", "additional_data"):
        for column, kind in (version.get(part) or {}).items():
            if kind not in COLUMN_TYPES:
                raise Unsupported(
                    f"{part}.{column}: column type {kind!r} is not supported "
                    f"(sagewatch takes {', '.join(COLUMN_TYPES)})",
                    field=f"{part}.{column}",
                )
            if column.startswith("_dc_"):
                raise InvalidInput(
                    f"{part}.{column}: names starting with _dc_ are Deepchecks' own", field=part
                )
    if not version.get("features"):
        raise InvalidInput("features: a version needs at least one feature", field="features")
    columns = len(version.get("features") or {}) + len(version.get("additional_data") or {})
    if columns > MAX_COLUMNS:
        raise InvalidInput(
            f"features: {columns} columns; a sagewatch model holds at most {MAX_COLUMNS} besides its outputs",
            field="features",
        )
    classes = version.get("classes")
    if is_classification(task_type):
        if not classes or len(classes) < 2:
            raise Unsupported(
                f"classes: a {task_type} version needs its classes (model_classes=[...]) in sagewatch, which "
                "keeps one probability per class",
                field="classes",
            )
        if task_type == "binary" and len(classes) != 2:
            raise InvalidInput(f"classes: a binary model has 2 classes, got {len(classes)}", field="classes")
    elif classes:
        raise InvalidInput("classes: a regression model has no classes", field="classes")
    importance = version.get("feature_importance")
    if importance is not None and set(importance) != set(version["features"]):
        raise InvalidInput(
            "feature_importance: give a value for every feature, and only features",
            field="feature_importance",
        )


def model_spec(model: dict[str, Any], version: dict[str, Any]) -> ModelSpec:
    """The sagewatch model of a Deepchecks model whose schema is this version's."""
    task_type = model["task_type"]
    columns = version["columns"]
    attributes: list[Attribute] = []
    for stage, part in ((Stage.PIPELINE_INPUT, "features"), (Stage.NON_INPUT_DATA, "additional_data")):
        for column, kind in (version.get(part) or {}).items():
            attributes.append(
                Attribute(
                    name=columns[column],
                    label=column,
                    stage=stage,
                    value_type=COLUMN_TYPES[kind],
                    categorical=bool(version.get("categories", {}).get(column)),
                    categories=version.get("categories", {}).get(column) or None,
                )
            )
    mapping: dict[str, Any]
    if is_classification(task_type):
        classes = [str(c) for c in version["classes"]]
        categories = [Category(value=c) for c in classes]
        for index, name in enumerate(classes):
            attributes.append(
                Attribute(
                    name=probability_attribute(index),
                    label=f"probability of {name}",
                    stage=Stage.PREDICTED_VALUE,
                    value_type=ValueType.FLOAT,
                    min_range=0,
                    max_range=1,
                )
            )
        attributes.append(
            Attribute(
                name=PREDICTION,
                stage=Stage.NON_INPUT_DATA,
                value_type=ValueType.STRING,
                categorical=True,
                categories=categories,
            )
        )
        attributes.append(
            Attribute(
                name=LABEL,
                stage=Stage.GROUND_TRUTH,
                value_type=ValueType.STRING,
                categorical=True,
                categories=categories,
            )
        )
        mapping = {probability_attribute(i): c for i, c in enumerate(classes)}
    else:
        attributes.append(Attribute(name=PREDICTION, stage=Stage.PREDICTED_VALUE, value_type=ValueType.FLOAT))
        attributes.append(Attribute(name=LABEL, stage=Stage.GROUND_TRUTH, value_type=ValueType.FLOAT))
        mapping = {PREDICTION: LABEL}
    return ModelSpec(
        partner_model_id=model["name"],
        display_name=model["name"],
        description=model.get("description"),
        output_type=TASK_TYPES[task_type],
        attributes=attributes,
        pred_to_ground_truth_map=mapping,
        alerts_delay_seconds=int(model.get("alerts_delay_seconds", 3 * 24 * 3600)),
        alerts_delay_labels_ratio=float(model.get("alerts_delay_labels_ratio", 1.0)),
        tags=["deepchecks"],
    )


def required_columns(version: dict[str, Any]) -> list[str]:
    """The columns every production sample carries (a value may be null)."""
    return [SAMPLE_ID, *version.get("features", {}), *version.get("additional_data", {}), PREDICTION]


def json_schemas(task_type: str, version: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(monitor schema, reference schema): the JSON schemas the client validates each sample against."""
    properties: dict[str, Any] = {}
    for part in ("features", "additional_data"):
        for column, kind in (version.get(part) or {}).items():
            properties[column] = {"type": [JSON_TYPES[kind], "null"]}
            if kind == "datetime":
                properties[column]["format"] = "date-time"
    columns = list(properties)
    if is_classification(task_type):
        classes = [str(c) for c in version["classes"]]
        prediction = {"type": ["string", "null"], "enum": [*classes, None]}
        label = {"type": ["string", "null"], "enum": [*classes, None]}
        outputs = {
            PREDICTION: prediction,
            PROBABILITIES: {
                "type": ["array", "null"],
                "items": {"type": "number", "minimum": 0, "maximum": 1},
                "minItems": len(classes),
                "maxItems": len(classes),
            },
        }
    else:
        outputs = {PREDICTION: {"type": ["number", "null"]}}
        label = {"type": ["number", "null"]}
    monitor = {
        "type": "object",
        "properties": {
            SAMPLE_ID: {"type": "string", "minLength": 1},
            TIME: {"type": "string", "format": "date-time"},
            **properties,
            **outputs,
            LABEL: label,
        },
        "required": required_columns(version),
        "additionalProperties": False,
    }
    reference = {
        "type": "object",
        "properties": {**properties, **outputs, LABEL: label},
        "required": [*columns, PREDICTION],
        "additionalProperties": False,
    }
    return monitor, reference


def attribute_columns(
    columns: dict[str, pa.Array], count: int, task_type: str, version: dict[str, Any]
) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Deepchecks sample columns as sagewatch record columns, and per row what is wrong (or None)."""
    names = version["columns"]
    problem = np.full(count, None, dtype=object)
    renamed: dict[str, pa.Array] = {}
    for column, values in columns.items():
        if column == SAMPLE_ID:
            renamed["partner_inference_id"] = values
            # a sample without an id could never be labelled: the monitor schema requires one
            missing = ~values.is_valid().to_numpy(zero_copy_only=False)
            problem = np.where(~has_problem(problem) & missing, f"{SAMPLE_ID}: required (not null)", problem)
        elif column == TIME:
            renamed["inference_timestamp"] = values
        elif column in names:
            renamed[names[column]] = values
        elif column in (PREDICTION, LABEL, PROBABILITIES):
            continue
        else:
            present = values.is_valid().to_numpy(zero_copy_only=False)
            problem = np.where(
                ~has_problem(problem) & present, f"{column}: not a column of the version", problem
            )
    prediction = columns.get(PREDICTION)
    label = columns.get(LABEL)
    if not is_classification(task_type):
        for name, values in ((PREDICTION, prediction), (LABEL, label)):
            if values is not None:
                renamed[name] = values
        return renamed, problem
    classes = [str(c) for c in version["classes"]]
    for name, values in ((PREDICTION, prediction), (LABEL, label)):
        if values is None:
            continue
        text = class_text(values)
        unknown = pc.and_(pc.is_valid(text), pc.invert(pc.is_in(text, value_set=pa.array(classes))))
        bad = unknown.fill_null(False).to_numpy(zero_copy_only=False)
        bad |= values.is_valid().to_numpy(zero_copy_only=False) & ~text.is_valid().to_numpy(
            zero_copy_only=False
        )
        problem = np.where(~has_problem(problem) & bad, f"{name}: not one of the classes {classes}", problem)
        renamed[name] = text
    probabilities = columns.get(PROBABILITIES)
    chosen = renamed.get(PREDICTION, pa.nulls(count, pa.string()))
    given = probabilities is not None and (
        pa.types.is_list(probabilities.type) or pa.types.is_large_list(probabilities.type)
    )
    if given:  # numbers, or text of numbers (records read value by value); lists of lists are not
        probabilities, not_numbers = safe_cast(probabilities, pa.list_(pa.float64()))
        problem = np.where(
            ~has_problem(problem) & not_numbers, f"{PROBABILITIES}: a list of numbers", problem
        )
        flat = pc.list_flatten(probabilities)
        outside = pc.or_(pc.less(flat, 0.0), pc.greater(flat, 1.0)).fill_null(False)
        rows_outside = np.zeros(count, dtype=bool)
        parents = pc.list_parent_indices(probabilities).to_numpy(zero_copy_only=False)
        rows_outside[parents[outside.to_numpy(zero_copy_only=False)]] = True
        problem = np.where(
            ~has_problem(problem) & rows_outside, f"{PROBABILITIES}: probabilities lie in [0, 1]", problem
        )
        lengths = pc.list_value_length(probabilities).to_numpy(zero_copy_only=False)
        present = probabilities.is_valid().to_numpy(zero_copy_only=False)
        wrong = present & (np.nan_to_num(lengths.astype(float), nan=len(classes)) != len(classes))
        problem = np.where(
            ~has_problem(problem) & wrong,
            f"{PROBABILITIES}: one probability per class ({len(classes)})",
            problem,
        )
    elif probabilities is not None and probabilities.null_count < len(probabilities):
        problem = np.where(~has_problem(problem), f"{PROBABILITIES}: a list of numbers", problem)
    if given:  # lists of the wrong length count as absent (the row is refused above)
        complete = pc.if_else(
            pc.equal(pc.list_value_length(probabilities), len(classes)),
            probabilities,
            pa.nulls(count, probabilities.type),
        ).fill_null([None] * len(classes))
    for index, name in enumerate(classes):
        one_hot = pc.if_else(pc.equal(chosen, name), 1.0, 0.0)
        if given:
            element = pc.list_element(complete, index).cast(pa.float64())
            renamed[probability_attribute(index)] = pc.coalesce(element, one_hot)
        else:
            renamed[probability_attribute(index)] = one_hot
    return renamed, problem


def class_text(values: pa.Array) -> pa.Array:
    """Class values as Deepchecks writes them: 1.0 -> "1", True -> "True" (lists, objects: null)."""
    if pa.types.is_nested(values.type):
        return pa.nulls(len(values), pa.string())
    if pa.types.is_floating(values.type):
        whole = pc.and_(pc.equal(values, pc.floor(values)), pc.less(pc.abs(values), 2.0**53))  # inf too
        as_int = pc.cast(pc.if_else(whole, values, None), pa.int64()).cast(pa.string())
        return pc.coalesce(as_int, values.cast(pa.string()))
    return values.cast(pa.string())


def deepchecks_problem(message: str, version: dict[str, Any]) -> str:
    """A sagewatch problem message with attribute names put back as the Deepchecks column names."""
    for column, name in version["columns"].items():
        if message.startswith(f"{name}:") or message.startswith(f"attribute {name!r}"):
            return message.replace(name, column, 1)
    return message.replace("partner_inference_id", SAMPLE_ID).replace("inference_timestamp", TIME)


def samples_from_table(table: pa.Table, task_type: str, version: dict[str, Any]) -> pa.Table:
    """Lake rows back as Deepchecks samples (its column names, probabilities as one list); reference
    rows have no sample id or time."""
    out: dict[str, pa.Array] = {}
    if "partner_inference_id" in table.column_names:
        out[SAMPLE_ID] = table.column("partner_inference_id")
    if "inference_timestamp" in table.column_names:
        out[TIME] = pc.strftime(table.column("inference_timestamp"), format="%Y-%m-%dT%H:%M:%S+00:00")
    for column, name in version["columns"].items():
        out[column] = table.column(name) if name in table.column_names else pa.nulls(table.num_rows)
    for name in (PREDICTION, LABEL):
        out[name] = table.column(name) if name in table.column_names else pa.nulls(table.num_rows)
    if is_classification(task_type):
        probability_columns = [table.column(probability_attribute(i)) for i in range(len(version["classes"]))]
        matrix = np.column_stack(
            [c.to_numpy(zero_copy_only=False).astype(float) for c in probability_columns]
        )
        flat = pa.array(matrix.reshape(-1))
        out[PROBABILITIES] = pa.FixedSizeListArray.from_arrays(flat, len(probability_columns))
    return pa.table(out)
