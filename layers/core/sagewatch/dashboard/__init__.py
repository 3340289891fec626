"""The dashboard: a page of static files (HTML, JavaScript, CSS) served by the api function at `/`.

The page calls only the public REST API, with the token the user types in (kept for the browser
session, never put in a URL). Nothing here reads data: the files are served as they are, before
authentication, so the sign-in page can load.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

PREFIX = "/dashboard/"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Only the page's own files and the API: no inline script, no third-party origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class Asset:
    """A file of the dashboard and its media type."""

    body: bytes
    content_type: str


def is_dashboard_path(method: str, path: str) -> bool:
    """Whether a request asks for the dashboard's page or one of its files."""
    return method in ("GET", "HEAD") and (path in ("", "/") or path.startswith(PREFIX))


def asset(path: str) -> Asset | None:
    """The file `/` or `/dashboard/<name>` names, or None (a name with a folder or an unknown type)."""
    name = "index.html" if path in ("", "/") else path[len(PREFIX) :]
    suffix = name[name.rfind(".") :] if "." in name else ""
    if "/" in name or "\\" in name or name.startswith(".") or suffix not in TYPES:
        return None
    file = resources.files(__package__).joinpath("static", name)
    if not file.is_file():
        return None
    return Asset(file.read_bytes(), TYPES[suffix])
