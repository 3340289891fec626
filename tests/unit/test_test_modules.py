"""Tests share helpers through helper modules (tests/factories.py, inputs.py, lake.py, ...), never by
importing another test module or a conftest: a test module holds tests only."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_test_imports_from_a_test_module_or_a_conftest() -> None:
    borrowed = []
    for path in TESTS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tests."):
                last = node.module.rsplit(".", 1)[-1]
                # the api fixture's type, Call, is the one name tests.conftest lends
                if last.startswith("test_") or (last == "conftest" and node.names[0].name != "Call"):
                    borrowed.append(f"{path.relative_to(TESTS)}: {node.module}")
    assert borrowed == []
