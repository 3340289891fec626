"""Domain exceptions. Raised deep in the package; each family carries the HTTP status it means, which
the API answers with (never the message text)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar


class SagewatchError(Exception):
    """Base of every error sagewatch reports to a user."""

    status: ClassVar[int] = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str]:
        """The API's JSON body for the error: its message and, when known, the field at fault."""
        body = {"message": self.message}
        if self.field:
            body["field"] = self.field
        return body


class InvalidInput(SagewatchError):
    """The request is malformed or breaks a rule of the domain (HTTP 400)."""

    status = 400


class InvalidSchema(InvalidInput):
    """A model's attributes or pred_to_ground_truth_map are inconsistent; `field` names the culprit."""


class Unsupported(InvalidInput):
    """The request asks for something sagewatch does not do (image models, explainability...)."""


class NothingToCompare(InvalidInput):
    """A drift measure's base or target window holds no rows (e.g. no reference data yet)."""


class NotFound(SagewatchError):
    """The addressed object does not exist (HTTP 404)."""

    status = 404


class ModelNotFound(NotFound):
    """No model has this id or partner_model_id."""

    pass


class SourceGone(NotFound):
    """An S3 object to ingest is gone, or was overwritten since its event (its newer version has an
    event of its own): retrying cannot help."""


class Conflict(SagewatchError):
    """The request conflicts with the current state (HTTP 409)."""

    status = 409


class PartnerIdTaken(Conflict):
    """Another model already has this partner_model_id."""

    pass


class EndpointTaken(Conflict):
    """Another model already receives this SageMaker endpoint's (variant's) Data Capture files."""


class ModelArchived(Conflict):
    """An archived model accepts no data and no changes."""


class ConcurrentUpdate(Conflict):
    """Someone else changed the object between our read and our write; retry."""


class TooLarge(SagewatchError):
    """The request or the object it creates is larger than sagewatch accepts (HTTP 413)."""

    status = 413


class Throttled(SagewatchError):
    """A budget or a downstream service refuses more for now; retry later (HTTP 429)."""

    status = 429


class UnsupportedMediaType(SagewatchError):
    """The body is sent in a format the route does not read (HTTP 415)."""

    status = 415


class Unauthorized(SagewatchError):
    """No token, or a token that is unknown or revoked (HTTP 401)."""

    status = 401


class Forbidden(SagewatchError):
    """The token's role does not allow this request (HTTP 403)."""

    status = 403


def field_path(location: Iterable[Any], prefix: str = "") -> str:
    """("body", "attributes", 0, "stage") -> "attributes[0].stage" (after `prefix`, when given)."""
    parts = list(location)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    path = prefix
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def invalid_input(problems: list[dict[str, Any]], prefix: str = "") -> InvalidInput:
    """Pydantic's findings (`ValidationError.errors()`) as one InvalidInput naming the first field."""
    if not problems:
        return InvalidInput("invalid request", field=prefix or None)
    first = problems[0]
    field = field_path(first.get("loc", ()), prefix)
    message = first.get("msg", "invalid")
    return InvalidInput(f"{field}: {message}" if field else message, field=field or None)
