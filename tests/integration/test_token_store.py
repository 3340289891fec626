"""TokenStore against moto: tokens work until rotated or revoked, and only hashes are stored."""

from __future__ import annotations

import json

import pytest

from sagewatch import aws as sagewatch_aws
from sagewatch import container
from sagewatch.auth import Role
from sagewatch.errors import NotFound, Unauthorized


@pytest.mark.usefixtures("aws")
def test_a_token_authenticates_with_its_role() -> None:
    store = container.token_store()
    record, token = store.create(Role.WRITER, description="ci")
    assert store.authenticate(f"Bearer {token}").role is Role.WRITER
    assert store.authenticate(token).token_id == record.token_id


def test_the_table_holds_no_token(aws: dict[str, str]) -> None:
    _, token = container.token_store().create(Role.ADMIN)
    items = sagewatch_aws.client("dynamodb").scan(TableName=aws["tokens"])["Items"]
    assert len(items) == 1
    assert token not in json.dumps(items)
    assert token.split("_")[-1] not in json.dumps(items)


@pytest.mark.usefixtures("aws")
def test_a_forged_secret_with_a_real_id_is_refused() -> None:
    store = container.token_store()
    _, token = store.create(Role.READER)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(Unauthorized):
        store.authenticate(forged)


@pytest.mark.usefixtures("aws")
def test_rotation_replaces_the_secret_at_once() -> None:
    store = container.token_store()
    record, old = store.create(Role.WRITER)
    rotated, new = store.rotate(record.token_id)
    assert rotated.token_id == record.token_id and rotated.rotated_at
    with pytest.raises(Unauthorized):
        store.authenticate(old)
    assert store.authenticate(new).role is Role.WRITER


@pytest.mark.usefixtures("aws")
def test_revoked_tokens_are_refused_and_stay_listed() -> None:
    store = container.token_store()
    record, token = store.create(Role.READER)
    store.revoke(record.token_id)
    with pytest.raises(Unauthorized) as caught:
        store.authenticate(token)
    assert caught.value.message == "unknown token"  # no hint that it existed, nor when it was revoked
    [listed] = store.list()
    assert listed.revoked_at is not None and not listed.active
    with pytest.raises(NotFound):
        store.rotate(record.token_id)
    with pytest.raises(NotFound):
        store.revoke(record.token_id)


@pytest.mark.usefixtures("aws")
def test_unknown_token_ids_are_not_found() -> None:
    with pytest.raises(NotFound):
        container.token_store().revoke("000000000000")
