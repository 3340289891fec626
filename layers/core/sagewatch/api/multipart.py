"""multipart/form-data bodies (file uploads), read with the standard library's email parser."""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.parser import BytesParser

from sagewatch.errors import InvalidInput


@dataclass(frozen=True)
class Part:
    """One part of a multipart/form-data body: field name, filename, content type and bytes."""

    name: str
    filename: str | None
    content_type: str
    data: bytes

    @property
    def text(self) -> str:
        """The part's bytes as UTF-8 text, stripped of surrounding whitespace."""
        return self.data.decode("utf-8").strip()


def parse_multipart(body: bytes, content_type: str | None) -> dict[str, Part]:
    """The form's parts by field name; 400 when the body is not multipart/form-data."""
    if not content_type or not content_type.lower().startswith("multipart/form-data"):
        raise InvalidInput(
            f"expected a multipart/form-data body, got Content-Type {content_type!r}", field="Content-Type"
        )
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise InvalidInput("the multipart body has no parts (is the boundary right?)", field="Content-Type")
    parts: dict[str, Part] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        parts[str(name)] = Part(str(name), part.get_filename(), part.get_content_type(), payload)
    return parts
