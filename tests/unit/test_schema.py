"""Model schema rules: every rejection names the field, every map form is accepted and linked."""

from __future__ import annotations

import copy

import pydantic
import pytest
from tests import factories
from tests.factories import attribute

from sagewatch.errors import InvalidSchema, Unsupported
from sagewatch.schema import ModelSpec, Stage, check_spec


def checked(body: dict) -> ModelSpec:
    return check_spec(ModelSpec.model_validate(body))


def rejection(body: dict) -> InvalidSchema:
    with pytest.raises(InvalidSchema) as caught:
        checked(body)
    return caught.value


# GIVEN each map form of DESIGN.md WHEN checked THEN it is accepted with Arthur's links filled in


def test_binary_single_probability_links_the_class_value() -> None:
    spec = checked(factories.binary_probability())
    prediction = spec.attribute("predicted_probability")
    assert spec.ground_truth_form == "class"
    assert spec.pred_to_ground_truth_map == {"predicted_probability": 1}
    assert prediction.gt_class_link == "1"
    assert prediction.attribute_link is None
    assert spec.positive_predicted_attribute == "predicted_probability"
    assert prediction.is_positive_predicted_attribute


def test_binary_one_hot_links_attributes_both_ways_and_positive_is_position_one() -> None:
    spec = checked(factories.binary_one_hot())
    assert spec.ground_truth_form == "attribute"
    assert spec.attribute("pred_1").attribute_link == "gt_1"
    assert spec.attribute("gt_0").attribute_link == "pred_0"
    assert spec.positive_predicted_attribute == "pred_1"


def test_multiclass_class_column_keeps_string_classes() -> None:
    spec = checked(factories.multiclass_class_column())
    assert spec.pred_to_ground_truth_map == {
        "probability_dog": "dog",
        "probability_cat": "cat",
        "probability_bird": "bird",
    }
    assert spec.attribute("probability_cat").gt_class_link == "cat"
    assert spec.positive_predicted_attribute is None


def test_regression_links_prediction_to_ground_truth() -> None:
    spec = checked(factories.regression())
    assert spec.attribute("predicted_value").attribute_link == "ground_truth_value"
    assert spec.attribute("ground_truth_value").attribute_link == "predicted_value"
    assert spec.positive_predicted_attribute is None


def test_defaults_are_filled() -> None:
    spec = checked(factories.binary_probability("churn-v1"))
    assert spec.display_name == "churn-v1"
    assert spec.classifier_threshold == 0.5
    assert spec.alerts_delay_seconds == 3 * 24 * 3600
    assert spec.alerts_delay_labels_ratio == 1.0


def test_map_is_derived_from_arthur_attribute_links_when_absent() -> None:
    body = factories.binary_one_hot()
    del body["pred_to_ground_truth_map"]
    attribute(body, "pred_0")["attribute_link"] = "gt_0"
    attribute(body, "pred_1")["attribute_link"] = "gt_1"
    assert checked(body).pred_to_ground_truth_map == {"pred_0": "gt_0", "pred_1": "gt_1"}


def test_class_form_from_gt_class_link_with_ground_truth_class_stage() -> None:
    """The arthurai SDK's binary form: one prediction with gt_class_link, a GROUND_TRUTH_CLASS column."""
    body = factories.binary_probability()
    del body["pred_to_ground_truth_map"]
    attribute(body, "predicted_probability")["gt_class_link"] = "1"
    attribute(body, "churned")["stage"] = "GROUND_TRUTH_CLASS"
    assert checked(body).pred_to_ground_truth_map == {"predicted_probability": 1}


def test_positive_class_is_the_prediction_mapped_to_one() -> None:
    body = factories.binary_probability()
    body["attributes"].insert(3, {"name": "p_no", "stage": "PREDICTED_VALUE", "value_type": "FLOAT"})
    body["pred_to_ground_truth_map"] = {"p_no": 0, "predicted_probability": 1}
    assert checked(body).positive_predicted_attribute == "predicted_probability"


def test_positions_are_assigned_in_declaration_order_when_absent() -> None:
    body = factories.regression()
    for item in body["attributes"]:
        item.pop("position", None)
    spec = checked(body)
    assert [a.position for a in spec.by_stage(Stage.PIPELINE_INPUT)] == [0, 1, 2]
    assert [a.name for a in spec.by_stage(Stage.PIPELINE_INPUT)] == ["age", "income", "region"]


# GIVEN a broken schema WHEN checked THEN the error names the field at fault


def test_duplicate_attribute_names() -> None:
    body = factories.regression()
    body["attributes"].append({"name": "income", "stage": "NON_INPUT_DATA", "value_type": "FLOAT"})
    error = rejection(body)
    assert error.field == "attributes[1].name"
    assert "duplicate attribute name 'income'" in error.message


def test_names_differing_only_by_case_clash_for_athena() -> None:
    body = factories.regression()
    body["attributes"].append({"name": "Income", "stage": "NON_INPUT_DATA", "value_type": "FLOAT"})
    assert "Athena" in rejection(body).message


@pytest.mark.parametrize("name", ["mean radius", "1st", "a-b", ""])
def test_attribute_names_must_be_column_safe(name: str) -> None:
    body = factories.regression()
    body["attributes"][0]["name"] = name
    if name == "":
        with pytest.raises(pydantic.ValidationError):
            checked(body)
    else:
        assert rejection(body).field == "attributes[0].name"


def test_reserved_lake_column_names_are_refused() -> None:
    body = factories.regression()
    body["attributes"][0]["name"] = "partner_inference_id"
    assert "reserved" in rejection(body).message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stage", "PREDICT_FUNCTION_INPUT"),
        ("stage", "INPUT"),
        ("value_type", "IMAGE"),
        ("value_type", "DOUBLE"),
    ],
)
def test_unknown_stage_or_value_type_is_a_validation_error_on_that_field(field: str, value: str) -> None:
    body = factories.regression()
    body["attributes"][1][field] = value
    with pytest.raises(pydantic.ValidationError) as caught:
        ModelSpec.model_validate(body)
    assert caught.value.errors()[0]["loc"] == ("attributes", 1, field)


def test_prediction_without_ground_truth() -> None:
    body = factories.binary_one_hot()
    body["attributes"].append({"name": "pred_extra", "stage": "PREDICTED_VALUE", "value_type": "FLOAT"})
    error = rejection(body)
    assert error.field == f"attributes[{len(body['attributes']) - 1}]"
    assert "'pred_extra' has no ground truth" in error.message


def test_map_key_that_is_not_an_attribute() -> None:
    body = factories.regression()
    body["pred_to_ground_truth_map"] = {
        "predicted_value": "ground_truth_value",
        "ghost": "ground_truth_value",
    }
    error = rejection(body)
    assert error.field == "pred_to_ground_truth_map"
    assert "'ghost', which is not an attribute" in error.message


def test_map_value_naming_a_missing_attribute_in_attribute_form() -> None:
    body = factories.binary_one_hot()
    body["pred_to_ground_truth_map"] = {"pred_0": "gt_0", "pred_1": "gt_missing"}
    error = rejection(body)
    assert error.field == "pred_to_ground_truth_map"
    assert "{'pred_1': 'gt_missing'} name no GROUND_TRUTH attribute" in error.message


def test_map_key_that_is_an_input() -> None:
    body = factories.regression()
    body["pred_to_ground_truth_map"] = {"predicted_value": "ground_truth_value", "age": "ground_truth_value"}
    assert "'age', a PIPELINE_INPUT attribute" in rejection(body).message


def test_map_value_naming_an_input_attribute() -> None:
    body = factories.regression()
    body["pred_to_ground_truth_map"] = {"predicted_value": "income"}
    assert "'income', a PIPELINE_INPUT attribute" in rejection(body).message


def test_class_not_among_ground_truth_categories() -> None:
    body = factories.multiclass_class_column()
    body["pred_to_ground_truth_map"]["probability_bird"] = "fish"
    error = rejection(body)
    assert "'fish'" in error.message
    assert "categories" in error.message


def test_class_value_of_the_wrong_type() -> None:
    body = factories.binary_probability()
    body["pred_to_ground_truth_map"] = {"predicted_probability": "yes"}
    assert "not an INTEGER class" in rejection(body).message


def test_class_form_needs_exactly_one_ground_truth_column() -> None:
    body = factories.binary_probability()
    body["attributes"].append({"name": "other_truth", "stage": "GROUND_TRUTH", "value_type": "INTEGER"})
    assert "exactly one GROUND_TRUTH" in rejection(body).message


def test_unlinked_ground_truth_attribute() -> None:
    body = factories.regression()
    body["attributes"].append({"name": "spare_truth", "stage": "GROUND_TRUTH", "value_type": "FLOAT"})
    assert "'spare_truth' is linked to no prediction" in rejection(body).message


def test_regression_with_non_numeric_prediction() -> None:
    body = factories.regression()
    attribute(body, "predicted_value")["value_type"] = "STRING"
    error = rejection(body)
    assert error.field == "attributes[3].value_type"
    assert "regression predictions must be INTEGER or FLOAT" in error.message


def test_regression_with_class_form_map() -> None:
    body = factories.regression()
    body["pred_to_ground_truth_map"] = {"predicted_value": 3}
    assert rejection(body).field == "pred_to_ground_truth_map"


@pytest.mark.parametrize("positions", [[0, 1, 1], [0, None, 2]])
def test_input_positions_are_given_for_all_each_once(positions: list[int | None]) -> None:
    body = factories.regression()
    for item, position in zip(body["attributes"][:3], positions, strict=True):
        item["position"] = position
    error = rejection(body)
    assert error.field is not None and error.field.endswith(".position")
    assert (
        "PIPELINE_INPUT positions must be given for every attribute of the stage, each once" in error.message
    )


@pytest.mark.parametrize("positions", [[1, 2, 3], [0, 1, 5], [7, 3, 5]])
def test_positions_with_gaps_keep_their_order(positions: list[int]) -> None:
    """Arthur's SDK numbers a binary model's only probability column 1: positions are an order."""
    body = factories.regression()
    for item, position in zip(body["attributes"][:3], positions, strict=True):
        item["position"] = position
    spec = check_spec(ModelSpec.model_validate(body))
    by_position = sorted(spec.by_stage(Stage.PIPELINE_INPUT), key=lambda a: a.position)
    expected = [name for _, name in sorted(zip(positions, ["age", "income", "region"], strict=True))]
    assert [a.name for a in by_position] == expected and [a.position for a in by_position] == [0, 1, 2]


def test_binary_with_three_predictions() -> None:
    body = factories.multiclass_class_column()
    body["output_type"] = "BINARY"
    assert "a BINARY model has" in rejection(body).message


def test_categorical_without_categories() -> None:
    body = factories.regression()
    del body["attributes"][2]["categories"]
    assert rejection(body).field == "attributes[2].categories"


def test_category_that_is_not_of_the_value_type() -> None:
    body = factories.binary_probability()
    attribute(body, "churned")["categories"] = [{"value": "0"}, {"value": "one"}]
    assert rejection(body).field == "attributes[4].categories[1]"


def test_inverted_range() -> None:
    body = factories.regression()
    body["attributes"][1].update(min_range=10, max_range=1)
    assert rejection(body).field == "attributes[1].min_range"


def test_range_on_a_string_attribute() -> None:
    body = factories.regression()
    body["attributes"][2].update(min_range=0, max_range=1)
    assert "only INTEGER and FLOAT have a range" in rejection(body).message


def test_image_models_are_unsupported() -> None:
    body = copy.deepcopy(factories.regression())
    body["input_type"] = "IMAGE"
    with pytest.raises(Unsupported) as caught:
        checked(body)
    assert caught.value.field == "input_type"


def test_model_without_inputs() -> None:
    body = factories.regression()
    body["attributes"] = [a for a in body["attributes"] if a["stage"] != "PIPELINE_INPUT"]
    assert "at least one PIPELINE_INPUT" in rejection(body).message


@pytest.mark.parametrize(
    ("variants", "field"),
    [
        ([], "sagemaker.variants"),
        (["Blue", "Blue"], "sagemaker.variants[1]"),
        (["*"], "sagemaker.variants[0]"),
    ],
)
def test_sagemaker_variants_are_names_listed_once(variants: list[str], field: str) -> None:
    body = factories.regression()
    body["sagemaker"] = {"endpoint_name": "prices", "variants": variants}
    assert rejection(body).field == field


def test_arthurs_binary_with_one_probability_column_is_a_binary_classifier() -> None:
    """The onboarding guide's first example: MULTICLASS, one prediction at position 1, mapped to class 1."""
    body = factories.binary_probability()
    body["output_type"] = "MULTICLASS"
    factories.attribute(body, "predicted_probability")["position"] = 1
    spec = check_spec(ModelSpec.model_validate(body))
    assert spec.attribute("predicted_probability").position == 0
    assert spec.positive_predicted_attribute == "predicted_probability"


def test_a_class_may_share_an_inputs_name() -> None:
    body = factories.multiclass_class_column()
    factories.attribute(body, "region")["name"] = "cat"
    spec = check_spec(ModelSpec.model_validate(body))
    assert spec.ground_truth_form == "class" and spec.pred_to_ground_truth_map["probability_cat"] == "cat"
