"""A model's schema, Arthur style: attributes with stages and value types, and how predictions
link to ground truth (pred_to_ground_truth_map).

`ModelSpec` is what a user sends; `check_spec` applies every rule that spans fields (unique names,
positions, the map's form, output-type rules) and returns the normalised spec, with Arthur's link
fields filled in so the arthurai SDK reads back what it expects. Errors name the field at fault.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sagewatch.errors import InvalidSchema, Unsupported

# A number a user gives (a threshold, a range): JSON has no Infinity or NaN, and neither has a meaning here.
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


# Labels that arrive more than a year late are no longer a delay a rule should wait for.
MAX_ALERTS_DELAY_SECONDS = 366 * 86400


class Stage(StrEnum):
    """Where an attribute stands: a model input, other data, a prediction or ground truth."""

    PIPELINE_INPUT = "PIPELINE_INPUT"
    NON_INPUT_DATA = "NON_INPUT_DATA"
    PREDICTED_VALUE = "PREDICTED_VALUE"
    GROUND_TRUTH = "GROUND_TRUTH"
    # Arthur's stage for the single ground-truth column holding the class (see the "class" map form).
    GROUND_TRUTH_CLASS = "GROUND_TRUTH_CLASS"


GROUND_TRUTH_STAGES = (Stage.GROUND_TRUTH, Stage.GROUND_TRUTH_CLASS)


class ValueType(StrEnum):
    """The type of an attribute's values."""

    INTEGER = "INTEGER"
    FLOAT = "FLOAT"
    BOOLEAN = "BOOLEAN"
    STRING = "STRING"
    TIMESTAMP = "TIMESTAMP"

    @property
    def article(self) -> str:
        """'an INTEGER', 'a FLOAT': for messages."""
        return f"{'an' if self.value[0] in 'AEIOU' else 'a'} {self.value}"


NUMERIC_TYPES = (ValueType.INTEGER, ValueType.FLOAT)


class OutputType(StrEnum):
    """What a model predicts: a binary or multiclass classification, or a regression."""

    BINARY = "BINARY"
    MULTICLASS = "MULTICLASS"
    REGRESSION = "REGRESSION"


class InputType(StrEnum):
    """What a model takes; only TABULAR is supported."""

    TABULAR = "TABULAR"
    # Arthur's other input types: accepted by the parser so the answer can say "unsupported".
    IMAGE = "IMAGE"
    NLP = "NLP"
    TIME_SERIES = "TIME_SERIES"


# Columns every lake row carries besides the model's attributes; an attribute may not take these names.
RESERVED_NAMES = frozenset(
    {
        "partner_inference_id",
        "inference_timestamp",
        "batch_id",
        "source",
        "variant",
        "ground_truth_timestamp",
        "ingested_at",
        "anomaly_score",
    }
)
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

DEFAULT_ALERTS_DELAY_SECONDS = 3 * 24 * 3600
ClassValue = bool | int | str


class Category(BaseModel):
    """One category of a categorical attribute (Arthur keeps values as strings)."""

    value: str
    label: str | None = None


class Bin(BaseModel):
    """A bin (continuous_start, continuous_end]; None is an open end."""

    continuous_start: FiniteFloat | None = None
    continuous_end: FiniteFloat | None = None


class Attribute(BaseModel):
    """One attribute (column) of a model: name, stage, value type, and optional categories, bins and range."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=128)
    stage: Stage
    value_type: ValueType
    position: int | None = Field(default=None, ge=0)
    label: str | None = None
    categorical: bool = False
    categories: list[Category] | None = None
    bins: list[Bin] | None = None
    min_range: FiniteFloat | None = None
    max_range: FiniteFloat | None = None
    is_unique: bool = False
    monitor_for_bias: bool = False
    # Arthur's link fields: accepted on input (the SDK sends them), derived from the map on output.
    attribute_link: str | None = None
    gt_class_link: str | None = None
    is_positive_predicted_attribute: bool = False

    @field_validator("categories", mode="before")
    @classmethod
    def _categories_as_objects(cls, value: Any) -> Any:
        """Accept ["a", "b"] as well as Arthur's [{"value": "a"}, ...]."""
        if isinstance(value, list):
            return [item if isinstance(item, dict | Category) else {"value": str(item)} for item in value]
        return value

    @property
    def is_numeric(self) -> bool:
        """Whether the attribute holds INTEGER or FLOAT values."""
        return self.value_type in NUMERIC_TYPES


class SageMakerLink(BaseModel):
    """The SageMaker endpoint whose Data Capture files belong to this model."""

    endpoint_name: str = Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    variants: list[str] | None = None


class ModelSpec(BaseModel):
    """What a user sends to create or replace a model."""

    model_config = ConfigDict(extra="ignore")

    partner_model_id: str = Field(min_length=1, max_length=255)
    display_name: str | None = Field(default=None, max_length=255)
    description: str | None = Field(default=None, max_length=4000)
    input_type: InputType = InputType.TABULAR
    output_type: OutputType
    is_batch: bool = False
    classifier_threshold: float | None = Field(default=None, gt=0, lt=1)
    attributes: list[Attribute] = Field(min_length=1, max_length=2000)
    pred_to_ground_truth_map: dict[str, ClassValue] | None = None
    positive_predicted_attribute: str | None = None
    sagemaker: SageMakerLink | None = None
    alerts_delay_seconds: int = Field(default=DEFAULT_ALERTS_DELAY_SECONDS, ge=0, le=MAX_ALERTS_DELAY_SECONDS)
    alerts_delay_labels_ratio: float = Field(default=1.0, ge=0, le=1)
    tags: list[str] = Field(default_factory=list)

    def attribute(self, name: str) -> Attribute:
        """The attribute of this name (StopIteration when there is none)."""
        return next(a for a in self.attributes if a.name == name)

    def by_stage(self, *stages: Stage) -> list[Attribute]:
        """Attributes of these stages: stage by stage as given, each in position (then declaration) order."""
        chosen = [a for a in self.attributes if a.stage in stages]
        return sorted(chosen, key=lambda a: (stages.index(a.stage), -1 if a.position is None else a.position))

    @property
    def ground_truth_form(self) -> Literal["attribute", "class"]:
        """'attribute': map values name GROUND_TRUTH attributes; 'class': values of one GT column."""
        names = {a.name for a in self.by_stage(*GROUND_TRUTH_STAGES)}
        mapping = self.pred_to_ground_truth_map or {}
        return "attribute" if mapping and all(v in names for v in mapping.values()) else "class"


ModelStatus = Literal["Ready", "Archived"]


class Model(ModelSpec):
    """A registered model: the normalised spec plus identity and lifecycle."""

    id: str
    status: ModelStatus = "Ready"
    archived: bool = False
    created_at: datetime
    updated_at: datetime
    version: int = 1


# C0 and C1 control characters (a '/' is fine: the API takes the id percent-encoded, and a drop's key
# may name the model by its id instead)
_UNSAFE_ID = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def check_spec(spec: ModelSpec) -> ModelSpec:
    """Apply the rules that span fields; return the normalised spec or raise InvalidSchema naming the field."""
    if spec.input_type is not InputType.TABULAR:
        raise Unsupported(
            f"input_type {spec.input_type.value} is not supported: sagewatch monitors TABULAR models",
            field="input_type",
        )
    if _UNSAFE_ID.search(spec.partner_model_id) or not spec.partner_model_id.strip():
        raise InvalidSchema(
            "partner_model_id: no control characters, and not blank",
            field="partner_model_id",
        )
    _check_sagemaker(spec.sagemaker)
    attributes = [a.model_copy(deep=True) for a in spec.attributes]
    _check_names(attributes)
    for index, attribute in enumerate(attributes):
        _check_attribute(attribute, f"attributes[{index}]")
    _assign_positions(attributes, Stage.PIPELINE_INPUT)
    _assign_positions(attributes, Stage.PREDICTED_VALUE)
    if not any(a.stage is Stage.PIPELINE_INPUT for a in attributes):
        raise InvalidSchema("a model needs at least one PIPELINE_INPUT attribute", field="attributes")
    if not any(a.stage is Stage.PREDICTED_VALUE for a in attributes):
        raise InvalidSchema("a model needs at least one PREDICTED_VALUE attribute", field="attributes")

    spec = spec.model_copy(update={"attributes": attributes})
    mapping = _check_map(spec, spec.pred_to_ground_truth_map or _map_from_links(attributes))
    spec = spec.model_copy(update={"pred_to_ground_truth_map": mapping})
    _check_output_type(spec)
    positive = _positive_attribute(spec)
    _fill_links(spec, positive)
    return spec.model_copy(
        update={
            "display_name": spec.display_name or spec.partner_model_id,
            "classifier_threshold": spec.classifier_threshold
            if spec.classifier_threshold is not None
            else 0.5,
            "positive_predicted_attribute": positive,
        }
    )


def _check_sagemaker(link: SageMakerLink | None) -> None:
    if link is None or link.variants is None:
        return
    if not link.variants:
        raise InvalidSchema(
            "sagemaker.variants is empty: omit it to monitor every variant", field="sagemaker.variants"
        )
    for index, variant in enumerate(link.variants):
        if not re.match(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$", variant):
            raise InvalidSchema(
                f"{variant!r} is not a SageMaker variant name", field=f"sagemaker.variants[{index}]"
            )
        if link.variants.index(variant) != index:
            raise InvalidSchema(f"variant {variant!r} is listed twice", field=f"sagemaker.variants[{index}]")


def _check_names(attributes: list[Attribute]) -> None:
    for index, attribute in enumerate(attributes):
        where = f"attributes[{index}].name"
        if not ATTRIBUTE_NAME.match(attribute.name):
            raise InvalidSchema(
                f"attribute name {attribute.name!r} must be letters, digits and underscores, "
                "not starting with a digit (so it is a valid Parquet, Glue and Athena column)",
                field=where,
            )
        if attribute.name.lower() in RESERVED_NAMES:
            raise InvalidSchema(
                f"attribute name {attribute.name!r} is reserved for a lake column", field=where
            )
    counts = Counter(a.name.lower() for a in attributes)
    for index, attribute in enumerate(attributes):
        if counts[attribute.name.lower()] > 1:
            clash = [a.name for a in attributes if a.name.lower() == attribute.name.lower()]
            how = "twice" if len(set(clash)) == 1 else f"as {clash} (Athena column names ignore case)"
            raise InvalidSchema(
                f"duplicate attribute name {attribute.name!r}: it appears {how}",
                field=f"attributes[{index}].name",
            )


def _check_attribute(attribute: Attribute, where: str) -> None:
    if attribute.categorical and not attribute.is_unique and not attribute.categories:
        raise InvalidSchema(
            f"attribute {attribute.name!r} is categorical, so it needs categories (or is_unique)",
            field=f"{where}.categories",
        )
    if attribute.categories and not attribute.categorical:
        raise InvalidSchema(
            f"attribute {attribute.name!r} has categories but categorical is false",
            field=f"{where}.categorical",
        )
    for position, category in enumerate(attribute.categories or []):
        if parse_class_value(category.value, attribute.value_type) is None:
            raise InvalidSchema(
                f"category {category.value!r} of {attribute.name!r} is not {attribute.value_type.article}",
                field=f"{where}.categories[{position}]",
            )
    has_range = attribute.min_range is not None or attribute.max_range is not None
    if has_range and not attribute.is_numeric:
        raise InvalidSchema(
            f"attribute {attribute.name!r} is {attribute.value_type.value}; only INTEGER and FLOAT have a range",
            field=f"{where}.min_range",
        )
    low, high = attribute.min_range, attribute.max_range
    if low is not None and high is not None and low > high:
        raise InvalidSchema(
            f"attribute {attribute.name!r} has min_range {low} > max_range {high}", field=f"{where}.min_range"
        )


def _assign_positions(attributes: list[Attribute], stage: Stage) -> None:
    """Positions of a stage become 0..n-1 (CSV payload order), keeping the order given: Arthur's SDK
    numbers a binary model's one probability column 1 (its class), which is position 0 of what the
    endpoint returns. None given: declaration order. Given, they must be distinct, none missing."""
    indexed = [(index, a) for index, a in enumerate(attributes) if a.stage is stage]
    given = [a.position for _, a in indexed]
    if all(p is None for p in given):
        for position, (_, attribute) in enumerate(indexed):
            attribute.position = position
        return
    if any(p is None for p in given) or len(set(given)) != len(given):
        index = next(
            (i for i, a in indexed if a.position is None or given.count(a.position) > 1),
            indexed[0][0],
        )
        raise InvalidSchema(
            f"{stage.value} positions must be given for every attribute of the stage, each once; got {given}",
            field=f"attributes[{index}].position",
        )
    for position, (_, attribute) in enumerate(sorted(indexed, key=lambda pair: pair[1].position or 0)):
        attribute.position = position


def _map_from_links(attributes: list[Attribute]) -> dict[str, ClassValue]:
    """Arthur's per-attribute links (attribute_link / gt_class_link) as a pred_to_ground_truth_map."""
    mapping: dict[str, ClassValue] = {}
    for attribute in attributes:
        if attribute.stage is Stage.PREDICTED_VALUE:
            link = attribute.attribute_link or attribute.gt_class_link
            if link is not None:
                mapping[attribute.name] = link
    return mapping


def _check_map(spec: ModelSpec, mapping: dict[str, ClassValue]) -> dict[str, ClassValue]:
    field = "pred_to_ground_truth_map"
    by_name = {a.name: a for a in spec.attributes}
    for key in mapping:
        if key not in by_name:
            raise InvalidSchema(f"{field} names {key!r}, which is not an attribute of the model", field=field)
        if by_name[key].stage is not Stage.PREDICTED_VALUE:
            raise InvalidSchema(
                f"{field} names {key!r}, a {by_name[key].stage.value} attribute; its keys are PREDICTED_VALUE "
                "attributes",
                field=field,
            )
    for index, attribute in enumerate(spec.attributes):
        if attribute.stage is Stage.PREDICTED_VALUE and attribute.name not in mapping:
            raise InvalidSchema(
                f"PREDICTED_VALUE {attribute.name!r} has no ground truth: add it to {field}",
                field=f"attributes[{index}]",
            )

    ground_truths = spec.by_stage(*GROUND_TRUTH_STAGES)
    gt_names = {a.name for a in ground_truths}
    linked = {k: v for k, v in mapping.items() if isinstance(v, str) and v in gt_names}
    class_form_fits = (
        len(ground_truths) == 1
        and spec.output_type is not OutputType.REGRESSION
        and ground_truths[0].value_type in (ValueType.INTEGER, ValueType.STRING, ValueType.BOOLEAN)
    )
    if not linked and not class_form_fits:
        # Neither form fits; say so for a value naming another attribute (a likely mix-up). With one
        # ground-truth column, such a value is a class that happens to share an attribute's name.
        for key, value in mapping.items():
            target = by_name.get(value) if isinstance(value, str) else None
            if target is not None and target.stage not in GROUND_TRUTH_STAGES:
                raise InvalidSchema(
                    f"{field}[{key!r}] names {value!r}, a {target.stage.value} attribute; expected a "
                    "GROUND_TRUTH attribute or a class value of the ground truth column",
                    field=field,
                )

    if linked and len(linked) != len(mapping):
        rest = {k: v for k, v in mapping.items() if k not in linked}
        raise InvalidSchema(
            f"{field} mixes forms: {sorted(linked)} link to GROUND_TRUTH attributes but {rest} name no "
            "GROUND_TRUTH attribute (name one for every prediction, or give class values of one ground truth "
            "column)",
            field=field,
        )
    if linked:
        targets = Counter(linked.values())
        for target, count in targets.items():
            if count > 1:
                raise InvalidSchema(
                    f"{field} links {count} predictions to ground truth {target!r}", field=field
                )
        for attribute in ground_truths:
            if attribute.name not in targets:
                raise InvalidSchema(
                    f"GROUND_TRUTH {attribute.name!r} is linked to no prediction in {field}", field=field
                )
        return dict(mapping)

    # Class form: the values are classes held by the one ground-truth column.
    if not ground_truths:
        raise InvalidSchema(
            f"{field} gives classes {list(mapping.values())} but the model has no GROUND_TRUTH attribute "
            "(add the column holding the true class, or name one GROUND_TRUTH attribute per prediction)",
            field=field,
        )
    if len(ground_truths) > 1:
        raise InvalidSchema(
            f"{field} gives class values, so the model needs exactly one GROUND_TRUTH attribute holding the "
            f"class; it has {sorted(gt_names)}. Name a GROUND_TRUTH attribute for each prediction instead",
            field=field,
        )
    truth = ground_truths[0]
    if truth.value_type not in (ValueType.INTEGER, ValueType.STRING, ValueType.BOOLEAN):
        raise InvalidSchema(
            f"ground truth {truth.name!r} holds the class, so it must be INTEGER, STRING or BOOLEAN, "
            f"not {truth.value_type.value}",
            field=field,
        )
    typed: dict[str, ClassValue] = {}
    for key, value in mapping.items():
        parsed = parse_class_value(value, truth.value_type)
        if parsed is None:
            raise InvalidSchema(
                f"{field}[{key!r}] is {value!r}, not {truth.value_type.article} class of ground truth "
                f"{truth.name!r} and not a GROUND_TRUTH attribute",
                field=field,
            )
        typed[key] = parsed
    values = Counter(typed.values())
    for value, count in values.items():
        if count > 1:
            raise InvalidSchema(f"{field} maps {count} predictions to the same class {value!r}", field=field)
    if truth.categories:
        known = {parse_class_value(c.value, truth.value_type) for c in truth.categories}
        for key, value in typed.items():
            if value not in known:
                raise InvalidSchema(
                    f"{field}[{key!r}] is class {value!r}, which is not among the categories of ground truth "
                    f"{truth.name!r}",
                    field=field,
                )
    return typed


def parse_class_value(value: Any, value_type: ValueType) -> ClassValue | float | None:
    """`value` read as `value_type` (JSON and Arthur send numbers as strings), or None if it is not one."""
    if value_type is ValueType.STRING:
        return str(value)
    if value_type is ValueType.BOOLEAN:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        return {"true": True, "1": True, "false": False, "0": False}.get(text)
    if value_type is ValueType.INTEGER:
        if isinstance(value, bool):
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        return int(number) if number.is_integer() else None
    if value_type is ValueType.FLOAT:
        if isinstance(value, bool):
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    return str(value)  # TIMESTAMP categories are kept as given


def _check_output_type(spec: ModelSpec) -> None:
    predictions = spec.by_stage(Stage.PREDICTED_VALUE)
    for prediction in predictions:
        if not prediction.is_numeric:
            index = spec.attributes.index(prediction)
            kind = (
                "regression predictions"
                if spec.output_type is OutputType.REGRESSION
                else "class probabilities"
            )
            raise InvalidSchema(
                f"PREDICTED_VALUE {prediction.name!r} is {prediction.value_type.value}; {kind} must be INTEGER "
                "or FLOAT",
                field=f"attributes[{index}].value_type",
            )
    form = spec.ground_truth_form
    if spec.output_type is OutputType.REGRESSION:
        if form != "attribute":
            raise InvalidSchema(
                "a REGRESSION model maps each prediction to a GROUND_TRUTH attribute, "
                'e.g. {"predicted_value": "ground_truth_value"}',
                field="pred_to_ground_truth_map",
            )
        for prediction in predictions:
            truth = spec.attribute(str(spec.pred_to_ground_truth_map[prediction.name]))  # type: ignore[index]
            if not truth.is_numeric:
                raise InvalidSchema(
                    f"ground truth {truth.name!r} of a REGRESSION model is {truth.value_type.value}; "
                    "it must be INTEGER or FLOAT",
                    field=f"attributes[{spec.attributes.index(truth)}].value_type",
                )
    elif spec.output_type is OutputType.BINARY:
        allowed = (1, 2) if form == "class" else (2,)
        if len(predictions) not in allowed:
            raise InvalidSchema(
                f"a BINARY model has {' or '.join(map(str, allowed))} PREDICTED_VALUE attributes in the "
                f"{form} form of pred_to_ground_truth_map; it has {len(predictions)}",
                field="pred_to_ground_truth_map",
            )
    elif len(predictions) < 2 and form != "class":
        raise InvalidSchema(
            "a MULTICLASS model has one PREDICTED_VALUE (probability) per class, at least 2",
            field="pred_to_ground_truth_map",
        )
    # A MULTICLASS model with one probability mapped to a class of its ground truth column is how
    # Arthur's SDK registers a binary classifier ({"predicted_probability": 1}): the binary metrics
    # apply to it as to a BINARY model.


_POSITIVE_CLASSES = (True, 1, "1", "true", "True", "yes", "positive")


def _positive_attribute(spec: ModelSpec) -> str | None:
    """The prediction of the positive class, for two-class models: explicit, else the one mapped to
    class 1 / True, else the only one, else the one at position 1."""
    predictions = spec.by_stage(Stage.PREDICTED_VALUE)
    names = [p.name for p in predictions]
    flagged = [p.name for p in predictions if p.is_positive_predicted_attribute]
    explicit = spec.positive_predicted_attribute or (flagged[0] if len(flagged) == 1 else None)
    if len(flagged) > 1:
        raise InvalidSchema(
            f"is_positive_predicted_attribute is set on {flagged}; at most one", field="attributes"
        )
    if explicit is not None:
        if explicit not in names:
            raise InvalidSchema(
                f"positive_predicted_attribute {explicit!r} is not a PREDICTED_VALUE attribute",
                field="positive_predicted_attribute",
            )
        return explicit
    if spec.output_type is OutputType.REGRESSION or len(predictions) > 2:
        return None
    if len(predictions) == 1:
        return names[0]
    mapping = spec.pred_to_ground_truth_map or {}
    if spec.ground_truth_form == "class":
        positive = [name for name in names if mapping[name] in _POSITIVE_CLASSES]
        if len(positive) == 1:
            return positive[0]
    return names[1]


def _fill_links(spec: ModelSpec, positive: str | None) -> None:
    """Write the map back onto Arthur's per-attribute link fields (the SDK reads them)."""
    mapping = spec.pred_to_ground_truth_map or {}
    form = spec.ground_truth_form
    reverse = {str(v): k for k, v in mapping.items()} if form == "attribute" else {}
    for attribute in spec.attributes:
        attribute.attribute_link = None
        attribute.gt_class_link = None
        if attribute.stage is Stage.PREDICTED_VALUE:
            if form == "attribute":
                attribute.attribute_link = str(mapping[attribute.name])
            else:
                attribute.gt_class_link = str(mapping[attribute.name])
            attribute.is_positive_predicted_attribute = attribute.name == positive
        elif attribute.stage in GROUND_TRUTH_STAGES and form == "attribute":
            attribute.attribute_link = reverse.get(attribute.name)
