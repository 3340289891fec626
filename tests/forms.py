"""multipart/form-data bodies as browsers and SDKs send them, for uploads through the API."""

from __future__ import annotations

import uuid


def multipart(fields: dict[str, tuple[str, bytes] | str]) -> tuple[bytes, str]:
    """The form's body and Content-Type: (filename, bytes) values as files, str values as fields."""
    boundary = uuid.uuid4().hex
    chunks = []
    for name, value in fields.items():
        if isinstance(value, tuple):
            filename, data = value
            head = f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            head += "Content-Type: application/octet-stream\r\n\r\n"
        else:
            head, data = f'Content-Disposition: form-data; name="{name}"\r\n\r\n', value.encode()
        chunks.append(f"--{boundary}\r\n".encode() + head.encode() + data + b"\r\n")
    return b"".join(chunks) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"
