"""Who the caller is: Arthur's /users/me and /users/me/auth_info, answered from the API token.

sagewatch has tokens, not users or organizations; clients that ask (the arthurai SDK does on
start-up, to pick the organization it sends in `Arthur-Organization-ID`) get the token as the user
and one organization, ORGANIZATION_ID, which sagewatch then ignores.
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import BaseModel

from sagewatch.auth import TokenRecord

ORGANIZATION_ID = "sagewatch"

router = Router()


class CurrentUser(BaseModel):
    """GET /users/me: the caller's token presented as Arthur's user, in sagewatch's one organization."""

    id: str
    username: str
    first_name: str
    last_name: str
    email: str
    roles: list[str]
    organization_id: str
    organization_ids: list[str]
    created_at: str


class AuthInfo(BaseModel):
    """GET /users/me/auth_info: the caller's token presented as Arthur's authentication details."""

    issuer: str
    username: str
    first_name: str
    last_name: str
    email: str
    roles: list[str]
    organization_ids: list[str]
    internal_user_id: str
    external_user_id: str | None = None


def _token() -> TokenRecord:
    return router.context["token"]


@router.get("/users/me", summary="The caller: its token id and role", tags=["users"])
def current_user() -> CurrentUser:
    token = _token()
    return CurrentUser(
        id=token.token_id,
        username=f"token {token.token_id}",
        first_name=token.description,
        last_name="",
        email="",
        roles=[token.role.value],
        organization_id=ORGANIZATION_ID,
        organization_ids=[ORGANIZATION_ID],
        created_at=token.created_at,
    )


@router.get("/users/me/auth_info", summary="How the caller authenticated (an API token)", tags=["users"])
def auth_info() -> AuthInfo:
    token = _token()
    return AuthInfo(
        issuer="sagewatch",
        username=f"token {token.token_id}",
        first_name=token.description,
        last_name="",
        email="",
        roles=[token.role.value],
        organization_ids=[ORGANIZATION_ID],
        internal_user_id=token.token_id,
    )
