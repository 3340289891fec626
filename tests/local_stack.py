"""The local stack as a user starts it (`sagewatch local` in a subprocess), shared by the tests of a
module: the `stack` fixture (exposed by tests/e2e and tests/compat conftest.py), and helpers to call
its API and CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.forms import multipart

SAGEWATCH = [sys.executable, "-m", "sagewatch.client.cli"]


SERVED_ENDPOINT = "churn-endpoint"  # tests/endpoint_model.py's predict, served by the local stack


def clean_env() -> dict[str, str]:
    """The caller's environment without AWS settings, as on a laptop with no AWS configured."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEWATCH_"))}


def start_local(state_dir: Path, *options: str) -> Iterator[dict[str, Any]]:
    """`sagewatch local` on free ports with its state in `state_dir` and `options`, as a generator
    for a fixture: its process, state_dir and local.json once it is up; killed after."""
    # A file, not a pipe: an unread pipe fills up with the stack's logs and blocks it.
    log = (state_dir / "stack.log").open("w")
    command = [*SAGEWATCH, "local", "--port", "0", "--aws-port", "0", "--state-dir", str(state_dir), *options]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True, env=clean_env())
    state = state_dir / "local.json"
    deadline = time.monotonic() + 60
    while not state.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"sagewatch local did not start:\n{(state_dir / 'stack.log').read_text()}")
        time.sleep(0.1)
    info = json.loads(state.read_text())
    yield {"process": process, "state_dir": state_dir, **info}
    if process.poll() is None:
        process.kill()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    yield from start_local(
        tmp_path_factory.mktemp("state"),
        "--evaluate-every",
        "3",
        "--serve-endpoint",
        f"{SERVED_ENDPOINT}=tests.endpoint_model:predict",
    )


def http(
    stack: dict[str, Any],
    method: str,
    path: str,
    token: str | None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    request = urllib.request.Request(
        stack["api_url"] + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={
            "Content-Type": "application/json",
            **({"Authorization": f"Bearer {token}"} if token else {}),
            **(headers or {}),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def run_cli(stack: dict[str, Any], *args: str) -> subprocess.CompletedProcess:
    """The CLI as a user runs it against the stack (exit code and output as they are)."""
    return subprocess.run(
        [*SAGEWATCH, *args, "--state-dir", str(stack["state_dir"])],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )


def cli(stack: dict[str, Any], *args: str) -> str:
    done = run_cli(stack, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def upload_reference(stack: dict[str, Any], model_id: str, rows: list[dict[str, Any]]) -> int:
    """POST reference rows as a JSON file in the form field reference_data; the HTTP status."""
    body, content_type = multipart({"reference_data": ("r.json", json.dumps(rows).encode())})
    request = urllib.request.Request(
        f"{stack['api_url']}/api/v3/models/{model_id}/reference_data",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {stack['token']}", "Content-Type": content_type},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status
