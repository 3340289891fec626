"""A client library's own virtualenv under build/compat/, made once from PyPI and then reused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def compat_python(name: str, requirements: list[str]) -> Path:
    """The interpreter of build/compat/<name>, with `requirements` installed (pinned by the caller)."""
    venv = ROOT / "build" / "compat" / name
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements],
            check=True,
        )
        (venv / ".complete").touch()
    return python
