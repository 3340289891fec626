"""Tokens and roles, without AWS."""

from __future__ import annotations

import hashlib

import pytest

from sagewatch.auth import Role, authorize, new_token, required_role, token_from_header, token_hash
from sagewatch.errors import Forbidden, Unauthorized


def test_tokens_are_random_and_carry_their_id() -> None:
    (first_id, first), (second_id, second) = new_token(), new_token()
    assert first != second and first_id != second_id
    assert token_from_header(first) == (first_id, first)


def test_the_stored_hash_is_sha256_of_the_token() -> None:
    _, token = new_token()
    assert token_hash(token) == hashlib.sha256(token.encode()).hexdigest()
    assert token not in token_hash(token)


@pytest.mark.parametrize("prefix", ["", "Bearer ", "bearer ", "  Bearer   "])
def test_header_accepts_the_token_bare_or_as_bearer(prefix: str) -> None:
    token_id, token = new_token()
    assert token_from_header(prefix + token) == (token_id, token)


@pytest.mark.parametrize("header", [None, "", "   ", "Bearer", "Basic dXNlcjpwYXNz", "sw_short_x"])
def test_missing_or_foreign_credentials_are_unauthorized(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        token_from_header(header)


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [
        ("GET", "/api/v3/models", Role.READER),
        ("HEAD", "/api/v3/models/abc", Role.READER),
        ("POST", "/api/v3/models/abc/inferences/query", Role.READER),
        ("POST", "/api/v3/models/abc/inferences/query/data_drift", Role.READER),
        ("POST", "/api/v3/models", Role.WRITER),
        ("POST", "/api/v3/models/abc/inferences", Role.WRITER),
        ("PUT", "/api/v3/models/abc", Role.WRITER),
        ("DELETE", "/api/v3/models/abc", Role.WRITER),
        ("PATCH", "/api/v3/models/abc/inferences", Role.WRITER),
    ],
)
def test_required_role(method: str, path: str, role: Role) -> None:
    assert required_role(method, path) is role


def test_reader_cannot_write_but_writer_and_admin_can() -> None:
    with pytest.raises(Forbidden) as caught:
        authorize(Role.READER, "POST", "/api/v3/models")
    assert "needs a writer token" in caught.value.message
    authorize(Role.WRITER, "POST", "/api/v3/models")
    authorize(Role.ADMIN, "DELETE", "/api/v3/models/x")
