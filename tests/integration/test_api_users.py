"""Arthur's start-up calls (/users/me) and its unsupported features, through the real handler."""

from __future__ import annotations

import pytest
from tests.conftest import Call

from sagewatch.auth import Role
from sagewatch.container import token_store


def test_users_me_describes_the_calling_token(api: Call, tokens: dict[Role, str]) -> None:
    token_id = tokens[Role.READER].split("_")[1]
    response = api("GET", "/api/v3/users/me", token=tokens[Role.READER])
    assert response.status == 200
    assert response.body["id"] == token_id
    assert response.body["roles"] == ["reader"]
    # the arthurai SDK takes the organization from here and sends it back in a header
    assert response.body["organization_id"] in response.body["organization_ids"]

    info = api("GET", "/api/v3/users/me/auth_info", token=tokens[Role.WRITER])
    assert info.status == 200
    assert info.body["roles"] == ["writer"]
    assert len(info.body["organization_ids"]) == 1


def test_users_me_needs_a_valid_token(api: Call, tokens: dict[Role, str]) -> None:
    assert api("GET", "/api/v3/users/me", token=None).status == 401
    token_store().revoke(tokens[Role.READER].split("_")[1])
    assert api("GET", "/api/v3/users/me", token=tokens[Role.READER]).status == 401


@pytest.mark.parametrize(
    ("method", "path", "feature"),
    [
        ("POST", "/api/v3/models/m1/enrichments/bias_mitigation/mitigate", "bias mitigation"),
        ("POST", "/api/v3/models/m1/what_if", "what-if explanations"),
        ("GET", "/api/v3/models/m1/inferences/images/img-1", "image models"),
        ("GET", "/api/v3/model_groups/g1/versions/latest", "model groups"),
    ],
)
def test_arthur_features_sagewatch_lacks_are_a_400_naming_them(
    api: Call, method: str, path: str, feature: str
) -> None:
    response = api(method, path, {} if method in ("PATCH", "POST") else None)
    assert response.status == 400
    assert f"does not support {feature}" in response.body["message"]


def test_other_unknown_paths_stay_404(api: Call) -> None:
    response = api("GET", "/api/v3/models/m1/no_such_thing")
    assert response.status == 404
    assert response.body["message"] == "no route GET /api/v3/models/m1/no_such_thing"
