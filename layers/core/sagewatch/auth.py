"""API tokens and roles.

A token reads `sw_<token_id>_<secret>`: the id addresses the stored record (so tokens can be listed,
rotated and revoked by id), the secret carries 256 bits of randomness. Only the SHA-256 of the whole
token is stored; a plain hash suffices because the token is random, not a password.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from sagewatch.errors import Forbidden, Unauthorized

TOKEN_PATTERN = re.compile(r"^sw_(?P<token_id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})$")


class Role(StrEnum):
    """A token's role, ranked reader < writer < admin: each may do what the ones below it may."""

    READER = "reader"
    WRITER = "writer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """The role's place in the order reader < writer < admin."""
        return {"reader": 0, "writer": 1, "admin": 2}[self.value]

    def allows(self, required: Role) -> bool:
        """Whether this role may do what `required` may (it ranks at least as high)."""
        return self.rank >= required.rank


@dataclass(frozen=True)
class TokenRecord:
    """An API token as stored: its id, role and history, never the token itself."""

    token_id: str
    role: Role
    description: str
    created_at: str
    rotated_at: str | None = None
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        """Whether the token still works (it was not revoked)."""
        return self.revoked_at is None


def new_token() -> tuple[str, str]:
    """A fresh (token_id, token)."""
    token_id = secrets.token_hex(6)
    return token_id, f"sw_{token_id}_{secrets.token_urlsafe(32)}"


def new_secret_for(token_id: str) -> str:
    """A new token with the same id (rotation)."""
    return f"sw_{token_id}_{secrets.token_urlsafe(32)}"


def token_hash(token: str) -> str:
    """The SHA-256 of the whole token, in hex: what is stored in its place."""
    return hashlib.sha256(token.encode()).hexdigest()


def hashes_match(token: str, stored_hash: str) -> bool:
    """Whether the token has this stored hash (compared in constant time)."""
    return hmac.compare_digest(token_hash(token), stored_hash)


def token_from_header(authorization: str | None) -> tuple[str, str]:
    """(token_id, token) from an Authorization header: `<token>`, `Bearer <token>` or `Basic <token>`."""
    if not authorization or not authorization.strip():
        raise Unauthorized("missing Authorization header: send `Authorization: Bearer <token>`")
    value = authorization.strip()
    for scheme in ("bearer ", "basic "):  # deepchecks-client sends `Basic <token>`
        if value.lower().startswith(scheme):
            value = value[len(scheme) :].strip()
    match = TOKEN_PATTERN.match(value)
    if match is None:
        raise Unauthorized("the Authorization header does not hold a sagewatch token (sw_...)")
    return match["token_id"], value


# POSTs that only read: queries a reader may run.
_READ_ONLY_POST = re.compile(
    r"^(/api/v3/models/[^/]+/inferences/query(/data_drift)?|/api/v3/models/[^/]+/variants/compare"
    r"|/api/v1/model-versions/[^/]+/get-(ref|prod)-data)/?$"
)


def required_role(method: str, path: str) -> Role:
    """The least role a request needs: reads (and queries) need reader, every other write writer."""
    method = method.upper()
    if method in ("GET", "HEAD", "OPTIONS"):
        return Role.READER
    if method == "POST" and _READ_ONLY_POST.match(path):
        return Role.READER
    return Role.WRITER


def authorize(role: Role, method: str, path: str) -> None:
    """Forbidden when the role ranks below what the request needs (see required_role)."""
    needed = required_role(method, path)
    if not role.allows(needed):
        raise Forbidden(
            f"a {role.value} token cannot {method.upper()} {path}: it needs a {needed.value} token"
        )
