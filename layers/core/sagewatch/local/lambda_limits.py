"""What a Lambda refuses that a laptop allows, applied wherever sagewatch runs its handlers off AWS.

The local runtime and the test suite call the real handlers in a Python that has everything a
developer installed (pandas, scipy, scikit-learn), no payload limit and no clock. A Lambda has only
the deps layer (layers/deps/requirements.txt) and the runtime's boto3, refuses invocation payloads
over 6 MB each way, and API Gateway stops waiting after 29 s. `LambdaImports` makes the missing
packages missing; `api_limits` answers what API Gateway would answer when a limit is crossed.
"""

from __future__ import annotations

import importlib.abc
import importlib.metadata
import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Lambda's synchronous invocation payload limit, for the event and for the response (bytes).
LAMBDA_PAYLOAD_BYTES = 6_291_556
# API Gateway's integration timeout (the api function's own timeout too).
API_TIMEOUT_SECONDS = 29.0
REQUIREMENTS = Path(__file__).resolve().parents[3] / "deps" / "requirements.txt"
# The Lambda Python runtime brings these; the local emulator needs its own, so they stay: moto
# stands in for AWS, and DuckDB for Athena (sagewatch.local.sql), called from inside the handler.
RUNTIME_PROVIDED = ("boto3",)
EMULATOR = ("moto", "duckdb")
# Never in the layer, whatever is installed: what a data scientist's venv has and a Lambda has not.
ALWAYS_MISSING = frozenset({"pandas", "scipy", "sklearn", "matplotlib"})
# The test runner's own modules stay: they are around the handler, never called from it.
HARNESS = frozenset({"pytest", "py", "pluggy", "iniconfig", "hypothesis", "setuptools", "pkg_resources"})


def _requirement_names(lines: list[str]) -> list[str]:
    return [
        re.split(r"[<>=!~\[ ;]", line.strip())[0]
        for line in lines
        if line.strip() and not line.strip().startswith("#")
    ]


def _closure(names: list[str]) -> set[str]:
    """Distributions installed to satisfy `names`, their requirements included (extras' too)."""
    seen: set[str] = set()
    pending = list(names)
    while pending:
        name = pending.pop().lower().replace("_", "-")
        if name in seen:
            continue
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        seen.add(name)
        pending += _requirement_names([r for r in requires if "extra ==" not in r or "tracer" in r])
    return seen


def missing_in_lambda() -> frozenset[str]:
    """Top-level modules installed here that a sagewatch Lambda would not find."""
    layer = _requirement_names(REQUIREMENTS.read_text().splitlines()) if REQUIREMENTS.exists() else []
    allowed = _closure([*layer, *RUNTIME_PROVIDED, *EMULATOR])
    installed: set[str] = set()
    for distribution in importlib.metadata.distributions():
        name = (distribution.metadata["Name"] or "").lower().replace("_", "-")
        if name in allowed or name == "sagewatch":
            continue
        top_level = (distribution.read_text("top_level.txt") or "").split()
        installed |= {module for module in top_level if module and not module.startswith("_")}
    return frozenset((installed | ALWAYS_MISSING) - set(sys.stdlib_module_names) - HARNESS)


class LambdaImports(importlib.abc.MetaPathFinder):
    """An import finder refusing, while active, the modules a Lambda would not have.

    Modules already imported are hidden for the duration too (a `sys.modules` hit would skip the
    finder), so `Table.to_pandas()` inside a handler fails here as it fails in Lambda.
    """

    def __init__(self, missing: frozenset[str] | None = None) -> None:
        self.missing = missing if missing is not None else missing_in_lambda()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        """Refuse a missing module as Lambda would; None leaves every other module to the next finders."""
        if fullname.split(".")[0] in self.missing:
            raise ModuleNotFoundError(
                f"No module named {fullname!r} in the Lambda runtime (not in layers/deps/requirements.txt)",
                name=fullname,
            )
        return None

    def install(self) -> dict[str, Any]:
        """Block (and hide) the missing modules from now on; returns what was hidden."""
        hidden = {name: module for name, module in sys.modules.items() if name.split(".")[0] in self.missing}
        for name in hidden:
            del sys.modules[name]
        sys.meta_path.insert(0, self)
        return hidden

    def uninstall(self, hidden: dict[str, Any]) -> None:
        """Stop refusing, and put back the modules install() hid."""
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        sys.modules.update(hidden)

    @contextmanager
    def active(self) -> Iterator[None]:
        """Installed for the duration (one thread at a time: it changes the whole interpreter)."""
        hidden = self.install()
        try:
            yield
        finally:
            self.uninstall(hidden)


def _json_response(status: int, message: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"message": message}),
        "isBase64Encoded": False,
    }


def api_limits(
    handler: Callable[[dict[str, Any], Any], dict[str, Any]],
    imports: LambdaImports | None = None,
    report: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The api handler behind API Gateway and Lambda's limits, answering as they would:
    413 for an event over 6 MB (the handler never runs), 500 for a response over 6 MB, 503 when
    the handler outlives API Gateway's 29 s (`report` says which, as CloudWatch would)."""

    def limited(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if len(json.dumps(event).encode("utf-8", "surrogatepass")) > LAMBDA_PAYLOAD_BYTES:
            report("lambda: request payload over 6 MB refused (413)")
            return _json_response(413, "Request Entity Too Large")
        started = time.monotonic()
        if imports is None:
            result = handler(event, context)
        else:
            with imports.active():
                result = handler(event, context)
        elapsed = time.monotonic() - started
        if elapsed > API_TIMEOUT_SECONDS:
            report(f"lambda: the api handler took {elapsed:.1f} s; API Gateway answers 503 after 29 s")
            return _json_response(503, "Service Unavailable")
        if len(json.dumps(result).encode("utf-8", "surrogatepass")) > LAMBDA_PAYLOAD_BYTES:
            report("lambda: response payload over 6 MB (Lambda refuses it; API Gateway answers 500)")
            return _json_response(500, "Internal Server Error")
        return result

    return limited
