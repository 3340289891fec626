"""/api/v3/models through the real api handler and Powertools resolver, on moto."""

from __future__ import annotations

import pytest
from tests import factories
from tests.conftest import Call

from sagewatch import container
from sagewatch.auth import Role


@pytest.mark.parametrize("form", sorted(factories.ALL_FORMS))
def test_every_map_form_registers_and_reads_back(api: Call, form: str) -> None:
    body = factories.ALL_FORMS[form]()
    created = api("POST", "/api/v3/models", body)
    assert created.status == 201, created.body
    assert created.body["status"] == "Ready"
    fetched = api("GET", f"/api/v3/models/{created.body['id']}")
    assert fetched.status == 200
    assert fetched.body == created.body
    assert fetched.body["pred_to_ground_truth_map"] == body["pred_to_ground_truth_map"]


def test_get_by_partner_model_id(api: Call) -> None:
    created = api("POST", "/api/v3/models", factories.regression("house prices/v2")).body
    found = api("GET", "/api/v3/models/house%20prices%2Fv2", query="id_type=partner_model_id")
    assert found.status == 200, found.body
    assert found.body["id"] == created["id"]


def test_a_second_partner_model_id_is_a_409(api: Call) -> None:
    assert api("POST", "/api/v3/models", factories.regression("dup")).status == 201
    again = api("POST", "/api/v3/models", factories.binary_probability("dup"))
    assert again.status == 409
    assert again.body == {
        "message": "partner_model_id 'dup' is already used by another model",
        "field": "partner_model_id",
    }


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda b: b["attributes"][0].update(stage="INPUT"), "attributes[0].stage", "Input should be"),
        (
            lambda b: b["attributes"][1].update(value_type="DECIMAL"),
            "attributes[1].value_type",
            "Input should be",
        ),
        (lambda b: b["attributes"].append(dict(b["attributes"][0])), "attributes[0].name", "duplicate"),
        (lambda b: b["attributes"][2].update(position=1), "attributes[1].position", "positions must be"),
        (lambda b: b.update(output_type="RANKING"), "output_type", "Input should be"),
        (lambda b: b.pop("partner_model_id"), "partner_model_id", "Field required"),
        (lambda b: b.update(classifier_threshold=1.5), "classifier_threshold", "less than 1"),
        (
            lambda b: b.update(pred_to_ground_truth_map={"ghost": "ground_truth_value"}),
            "pred_to_ground_truth_map",
            "not an attribute",
        ),
    ],
)
def test_invalid_models_are_400s_naming_the_field(api: Call, change, field: str, words: str) -> None:
    body = factories.regression()
    change(body)
    answer = api("POST", "/api/v3/models", body)
    assert answer.status == 400
    assert answer.body["field"] == field
    assert words in answer.body["message"]
    assert field in answer.body["message"] or answer.body["field"] == field


def test_a_body_that_is_not_json_is_a_400(api: Call) -> None:
    answer = api("POST", "/api/v3/models", b"{not json")
    assert answer.status == 400


def test_image_models_are_refused_with_a_clear_400(api: Call) -> None:
    answer = api("POST", "/api/v3/models", factories.edited(factories.regression(), input_type="IMAGE"))
    assert answer.status == 400
    assert "not supported" in answer.body["message"]


def test_listing_is_paged(api: Call) -> None:
    ids = [api("POST", "/api/v3/models", factories.regression(f"m{i}")).body["id"] for i in range(5)]
    first = api("GET", "/api/v3/models", query="page=1&page_size=2").body
    last = api("GET", "/api/v3/models", query="page=3&page_size=2").body
    assert (first["page"], first["page_size"], first["total_pages"], first["total_count"]) == (1, 2, 3, 5)
    assert [m["id"] for m in first["data"]] == ids[:2]
    assert [m["id"] for m in last["data"]] == ids[4:]
    assert api("GET", "/api/v3/models", query="page=0").status == 400


def test_put_replaces_and_delete_archives(api: Call) -> None:
    model = api("POST", "/api/v3/models", factories.regression("price")).body
    changed = factories.edited(
        factories.regression("price"), display_name="Price model", classifier_threshold=0.7
    )
    replaced = api("PUT", f"/api/v3/models/{model['id']}", changed)
    assert replaced.status == 200
    assert (replaced.body["display_name"], replaced.body["version"]) == ("Price model", 2)

    assert api("DELETE", f"/api/v3/models/{model['id']}").status == 204
    archived = api("GET", f"/api/v3/models/{model['id']}").body
    assert (archived["archived"], archived["status"]) == (True, "Archived")
    again = api("PUT", f"/api/v3/models/{model['id']}", changed)
    assert again.status == 409
    assert "archived" in again.body["message"]
    assert api("GET", "/api/v3/models").body["total_count"] == 0
    assert api("GET", "/api/v3/models", query="include_archived=true").body["total_count"] == 1


def test_unknown_models_are_404s(api: Call) -> None:
    missing = api("GET", "/api/v3/models/does-not-exist")
    assert missing.status == 404
    assert "does-not-exist" in missing.body["message"]
    assert api("DELETE", "/api/v3/models/does-not-exist").status == 404
    assert api("GET", "/api/v3/models/nope", query="id_type=partner_model_id").status == 404


def test_tokens_are_required_and_roles_enforced(api: Call, tokens: dict[Role, str]) -> None:
    body = factories.regression()
    missing = api("POST", "/api/v3/models", body, token=None)
    assert missing.status == 401
    assert "Authorization" in missing.body["message"]
    assert api("GET", "/api/v3/models", token="sw_000000000000_" + "A" * 43).status == 401

    denied = api("POST", "/api/v3/models", body, token=tokens[Role.READER])
    assert denied.status == 403
    assert api("GET", "/api/v3/models", token=tokens[Role.READER]).status == 200
    assert api("POST", "/api/v3/models", body, token=tokens[Role.ADMIN]).status == 201

    # a reader learns nothing about bodies it may not send
    assert api("POST", "/api/v3/models", {"junk": 1}, token=tokens[Role.READER]).status == 403


def test_a_revoked_token_is_refused(api: Call, tokens: dict[Role, str]) -> None:
    writer = tokens[Role.WRITER]
    token_id = writer.split("_")[1]
    container.token_store().revoke(token_id)
    refused = api("GET", "/api/v3/models", token=writer)
    assert refused.status == 401
    # said as for a token that never existed: the answer reveals neither the token nor when it was revoked
    unknown = api("GET", "/api/v3/models", token=f"sw_{token_id}_{'0' * 43}")
    assert refused.body == unknown.body == {"message": "unknown token"}


def test_unknown_routes_are_404s_for_authenticated_callers(api: Call) -> None:
    assert api("GET", "/api/v3/nothing-here").status == 404


def test_a_second_model_on_the_same_endpoint_is_a_409(api: Call) -> None:
    first = factories.edited(factories.regression("first"), sagemaker={"endpoint_name": "prices"})
    second = factories.edited(factories.regression("second"), sagemaker={"endpoint_name": "prices"})
    assert api("POST", "/api/v3/models", first).status == 201
    refused = api("POST", "/api/v3/models", second)
    assert refused.status == 409
    assert refused.body["field"] == "sagemaker"
    assert "endpoint 'prices' (all variants) is already monitored" in refused.body["message"]
