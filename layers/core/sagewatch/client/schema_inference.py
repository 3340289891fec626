"""Infer a model schema from a reference DataFrame, and show it as a table to review before saving.

Client-side code (it needs pandas, which the Lambda functions do not import).

Rules, so a user can predict what comes out:
- value type from the dtype: bool -> BOOLEAN, integers -> INTEGER, floats -> FLOAT (whole-number
  floats, i.e. integers with missing values, -> INTEGER), datetimes -> TIMESTAMP, anything else
  (str, object, category of strings) -> STRING.
- categorical: strings and booleans always; integers with <= 20 distinct values; whole-number
  floats with <= 25 distinct values. Predictions are never categorical. Categories are the sorted
  distinct values (the 1,000 most frequent when there are more).
- range [min, max] for numeric attributes (classifier probabilities: [0, 1]).
- is_unique when every value is present and distinct.
- stages: keys of pred_to_ground_truth_map are PREDICTED_VALUE; map values naming columns are
  GROUND_TRUTH (else `ground_truth_column` holds the class); `non_input_columns` are NON_INPUT_DATA;
  the remaining columns are PIPELINE_INPUT in frame order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from sagewatch.errors import InvalidSchema
from sagewatch.schema import (
    Attribute,
    Category,
    ClassValue,
    ModelSpec,
    OutputType,
    SageMakerLink,
    Stage,
    ValueType,
    check_spec,
)

MAX_CATEGORICAL_INTEGERS = 20
MAX_CATEGORICAL_WHOLE_FLOATS = 25
MAX_CATEGORIES = 1000


def infer_value_type(series: pd.Series) -> tuple[ValueType, bool]:
    """(value type, whether the values are whole-number floats) for one column."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return infer_value_type(pd.Series(np.asarray(dtype.categories)))
    if pd.api.types.is_bool_dtype(dtype):
        return ValueType.BOOLEAN, False
    if pd.api.types.is_integer_dtype(dtype):
        return ValueType.INTEGER, False
    if pd.api.types.is_float_dtype(dtype):
        values = series.dropna().to_numpy(dtype=float)
        whole = values.size > 0 and bool(np.all(np.isfinite(values) & (values == np.round(values))))
        return (ValueType.INTEGER, True) if whole else (ValueType.FLOAT, False)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return ValueType.TIMESTAMP, False
    return ValueType.STRING, False


def infer_attribute(series: pd.Series, name: str, stage: Stage) -> Attribute:
    """One column's attribute for the given stage, following the module's rules."""
    value_type, whole_floats = infer_value_type(series)
    present = series.dropna()
    distinct = present.nunique()
    is_unique = len(series) > 1 and distinct == len(series)
    is_prediction = stage is Stage.PREDICTED_VALUE

    if value_type in (ValueType.STRING, ValueType.BOOLEAN):
        categorical = True
    elif value_type is ValueType.INTEGER and not is_prediction:
        limit = MAX_CATEGORICAL_WHOLE_FLOATS if whole_floats else MAX_CATEGORICAL_INTEGERS
        categorical = distinct <= limit
    else:
        categorical = False

    categories = None
    if categorical and not (is_unique and value_type is ValueType.STRING):
        categories = _categories(present, value_type)
    min_range = max_range = None
    if value_type in (ValueType.INTEGER, ValueType.FLOAT) and len(present):
        numbers = present.to_numpy(dtype=float)
        min_range, max_range = float(numbers.min()), float(numbers.max())
    return Attribute(
        name=name,
        stage=stage,
        value_type=value_type,
        categorical=categorical,
        categories=categories,
        min_range=min_range,
        max_range=max_range,
        is_unique=bool(is_unique),
    )


def _categories(present: pd.Series, value_type: ValueType) -> list[Category]:
    counts = present.value_counts()
    if len(counts) > MAX_CATEGORIES:
        counts = counts.iloc[:MAX_CATEGORIES]
    values = list(counts.index)
    if value_type is ValueType.INTEGER:
        labels = [str(int(v)) for v in sorted(float(v) for v in values)]
    elif value_type is ValueType.BOOLEAN:
        labels = [str(bool(v)) for v in sorted(bool(v) for v in values)]
    else:
        labels = sorted(str(v) for v in values)
    return [Category(value=label) for label in labels]


def infer_schema(
    reference: pd.DataFrame,
    pred_to_ground_truth_map: Mapping[str, ClassValue],
    *,
    partner_model_id: str,
    output_type: OutputType | str | None = None,
    ground_truth_column: str | None = None,
    non_input_columns: Iterable[str] = (),
    positive_predicted_attribute: str | None = None,
    display_name: str | None = None,
    classifier_threshold: float | None = None,
    is_batch: bool = False,
    sagemaker: SageMakerLink | Mapping[str, Any] | None = None,
) -> ModelSpec:
    """A validated ModelSpec for the model whose reference data is `reference` (see module rules)."""
    columns = [str(c) for c in reference.columns]
    frame = reference.set_axis(columns, axis=1)
    mapping = dict(pred_to_ground_truth_map)
    non_inputs = list(non_input_columns)
    for name in [*mapping, *non_inputs, *([ground_truth_column] if ground_truth_column else [])]:
        if name not in columns:
            raise InvalidSchema(
                f"column {name!r} is not in the reference data (columns: {columns})", field=name
            )

    link_form = all(isinstance(v, str) and v in columns for v in mapping.values())
    if link_form:
        ground_truths = [str(v) for v in mapping.values()]
    elif ground_truth_column is None:
        raise InvalidSchema(
            f"pred_to_ground_truth_map gives classes {list(mapping.values())}: pass ground_truth_column, the "
            "column holding the true class",
            field="ground_truth_column",
        )
    else:
        ground_truths = [ground_truth_column]

    resolved_output = OutputType(output_type) if output_type else _guess_output_type(mapping, link_form)
    stages: dict[str, Stage] = {}
    for name in columns:
        if name in mapping:
            stages[name] = Stage.PREDICTED_VALUE
        elif name in ground_truths:
            stages[name] = Stage.GROUND_TRUTH
        elif name in non_inputs:
            stages[name] = Stage.NON_INPUT_DATA
        else:
            stages[name] = Stage.PIPELINE_INPUT

    attributes = []
    for name in columns:
        attribute = infer_attribute(frame[name], name, stages[name])
        if stages[name] is Stage.PREDICTED_VALUE and resolved_output is not OutputType.REGRESSION:
            attribute = attribute.model_copy(update={"min_range": 0.0, "max_range": 1.0})
        if stages[name] is Stage.GROUND_TRUTH and resolved_output is OutputType.REGRESSION:
            attribute = attribute.model_copy(update={"categorical": False, "categories": None})
        attributes.append(attribute)
    attributes = _typed_class_values(attributes, mapping, link_form)

    spec = ModelSpec(
        partner_model_id=partner_model_id,
        display_name=display_name,
        output_type=resolved_output,
        is_batch=is_batch,
        classifier_threshold=classifier_threshold,
        attributes=attributes,
        pred_to_ground_truth_map=mapping,
        positive_predicted_attribute=positive_predicted_attribute,
        sagemaker=SageMakerLink.model_validate(sagemaker) if isinstance(sagemaker, Mapping) else sagemaker,
    )
    return check_spec(spec)


def _guess_output_type(mapping: Mapping[str, ClassValue], link_form: bool) -> OutputType:
    """One prediction linked to one ground-truth column is a regression; otherwise 1-2 are binary."""
    if link_form and len(mapping) == 1:
        return OutputType.REGRESSION
    return OutputType.BINARY if len(mapping) <= 2 else OutputType.MULTICLASS


def _typed_class_values(
    attributes: list[Attribute], mapping: Mapping[str, ClassValue], link_form: bool
) -> list[Attribute]:
    """A class-form ground truth column is categorical and includes every class the map names."""
    if link_form:
        return attributes
    result = []
    for attribute in attributes:
        if attribute.stage is Stage.GROUND_TRUTH:
            known = [c.value for c in attribute.categories or []]
            extra = [str(v) for v in mapping.values() if str(v) not in known]
            categories = [Category(value=v) for v in [*known, *extra]]
            attribute = attribute.model_copy(update={"categorical": True, "categories": categories})
        result.append(attribute)
    return result


REVIEW_COLUMNS = [
    "name",
    "stage",
    "value_type",
    "categorical",
    "is_unique",
    "categories",
    "range",
    "monitor_for_bias",
]


def review_table(spec: ModelSpec) -> pd.DataFrame:
    """The schema as a table to check before saving: one row per attribute, by stage then position."""
    stage_order = {stage: index for index, stage in enumerate(Stage)}
    ordered = sorted(
        spec.attributes,
        key=lambda a: (stage_order[a.stage], a.position if a.position is not None else 0, a.name),
    )
    rows = [
        {
            "name": a.name,
            "stage": a.stage.value,
            "value_type": a.value_type.value,
            "categorical": a.categorical,
            "is_unique": a.is_unique,
            "categories": [c.value for c in a.categories] if a.categories else None,
            "range": [a.min_range, a.max_range]
            if a.min_range is not None or a.max_range is not None
            else None,
            "monitor_for_bias": a.monitor_for_bias,
        }
        for a in ordered
    ]
    return pd.DataFrame(rows, columns=REVIEW_COLUMNS)
