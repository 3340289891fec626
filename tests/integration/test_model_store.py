"""ModelStore against moto: persistence, uniqueness of partner_model_id (also under races), archive."""

from __future__ import annotations

import threading

import pytest
from tests import factories

from sagewatch import container
from sagewatch.errors import EndpointTaken, ModelArchived, ModelNotFound, PartnerIdTaken
from sagewatch.schema import ModelSpec


def spec(body: dict) -> ModelSpec:
    return ModelSpec.model_validate(body)


@pytest.mark.usefixtures("aws")
def test_a_created_model_reads_back_by_id_and_partner_id() -> None:
    store = container.model_store()
    created = store.create(spec(factories.multiclass_class_column()))
    assert store.get(created.id) == created
    assert store.get_by_partner_id("pets") == created
    assert created.attribute("probability_dog").gt_class_link == "dog"


@pytest.mark.usefixtures("aws")
def test_a_second_model_with_the_same_partner_id_is_refused() -> None:
    store = container.model_store()
    store.create(spec(factories.regression("price")))
    with pytest.raises(PartnerIdTaken) as caught:
        store.create(spec(factories.binary_probability("price")))
    assert caught.value.field == "partner_model_id"
    assert len(store.list()) == 1


@pytest.mark.usefixtures("aws")
def test_concurrent_creates_of_one_partner_id_register_exactly_one_model() -> None:
    store = container.model_store()
    contenders = 8
    start = threading.Barrier(contenders)
    outcomes: list[str] = []

    def create() -> None:
        start.wait()
        try:
            store.create(spec(factories.regression("raced")))
            outcomes.append("created")
        except PartnerIdTaken:
            outcomes.append("taken")

    threads = [threading.Thread(target=create) for _ in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created"] + ["taken"] * (contenders - 1)
    assert [m.partner_model_id for m in store.list()] == ["raced"]


@pytest.mark.usefixtures("aws")
def test_list_is_oldest_first_and_hides_archived_models() -> None:
    store = container.model_store()
    first = store.create(spec(factories.regression("a")))
    second = store.create(spec(factories.regression("b")))
    store.archive(first.id)
    assert [m.id for m in store.list()] == [second.id]
    assert [m.id for m in store.list(include_archived=True)] == [first.id, second.id]


@pytest.mark.usefixtures("aws")
def test_archiving_keeps_the_model_readable_refuses_changes_and_frees_the_partner_id() -> None:
    store = container.model_store()
    old = store.create(spec(factories.regression("reused")))
    archived = store.archive(old.id)
    assert (archived.archived, archived.status) == (True, "Archived")
    assert store.get(old.id).archived
    with pytest.raises(ModelArchived):
        store.get_active(old.id)
    with pytest.raises(ModelArchived):
        store.replace(old.id, spec(factories.regression("reused")))
    with pytest.raises(ModelNotFound):
        store.get_by_partner_id("reused")
    new = store.create(spec(factories.regression("reused")))
    assert store.get_by_partner_id("reused").id == new.id


@pytest.mark.usefixtures("aws")
def test_replace_moves_the_partner_id_and_keeps_identity() -> None:
    store = container.model_store()
    model = store.create(spec(factories.regression("v1")))
    replaced = store.replace(
        model.id, spec(factories.edited(factories.regression("v2"), display_name="Price v2"))
    )
    assert (replaced.id, replaced.created_at, replaced.version) == (model.id, model.created_at, 2)
    assert store.get_by_partner_id("v2").display_name == "Price v2"
    with pytest.raises(ModelNotFound):
        store.get_by_partner_id("v1")


@pytest.mark.usefixtures("aws")
def test_replace_onto_a_taken_partner_id_changes_nothing() -> None:
    store = container.model_store()
    store.create(spec(factories.regression("taken")))
    mine = store.create(spec(factories.regression("mine")))
    with pytest.raises(PartnerIdTaken):
        store.replace(mine.id, spec(factories.regression("taken")))
    assert store.get(mine.id) == mine
    assert store.get_by_partner_id("mine").id == mine.id


@pytest.mark.usefixtures("aws")
def test_unknown_ids_are_not_found() -> None:
    with pytest.raises(ModelNotFound):
        container.model_store().get("no-such-id")
    with pytest.raises(ModelNotFound):
        container.model_store().get_by_partner_id("no-such-partner-id")


def with_endpoint(body: dict, endpoint: str, variants: list[str] | None = None) -> ModelSpec:
    return spec({**body, "sagemaker": {"endpoint_name": endpoint, "variants": variants}})


@pytest.mark.usefixtures("aws")
def test_endpoint_routing_prefers_the_variants_own_model() -> None:
    store = container.model_store()
    everything = store.create(with_endpoint(factories.regression("all"), "prices"))
    blue = store.create(with_endpoint(factories.regression("blue"), "prices", ["Blue"]))
    assert store.find_by_endpoint("prices", "Blue").id == blue.id
    assert store.find_by_endpoint("prices", "Green").id == everything.id
    assert store.find_by_endpoint("elsewhere", "Blue") is None


@pytest.mark.usefixtures("aws")
def test_an_endpoint_variant_belongs_to_one_model() -> None:
    store = container.model_store()
    store.create(with_endpoint(factories.regression("first"), "prices", ["Blue", "Green"]))
    with pytest.raises(EndpointTaken) as caught:
        store.create(with_endpoint(factories.regression("second"), "prices", ["Green"]))
    assert "variant 'Green'" in caught.value.message
    with pytest.raises(ModelNotFound):
        store.get_by_partner_id("second")  # nothing of the refused model was written


@pytest.mark.usefixtures("aws")
def test_replace_and_archive_move_and_free_the_endpoint() -> None:
    store = container.model_store()
    model = store.create(with_endpoint(factories.regression("mover"), "old-endpoint"))
    store.replace(model.id, with_endpoint(factories.regression("mover"), "new-endpoint"))
    assert store.find_by_endpoint("old-endpoint") is None
    assert store.find_by_endpoint("new-endpoint").id == model.id
    store.archive(model.id)
    assert store.find_by_endpoint("new-endpoint") is None
    successor = store.create(with_endpoint(factories.regression("successor"), "new-endpoint"))
    assert store.find_by_endpoint("new-endpoint").id == successor.id
