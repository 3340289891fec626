"""What the Lambda functions can import is what layers/deps bundles (plus the runtime's boto3)."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from infra.layers import CLIENT_PACKAGES, build_core

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "core" / "sagewatch"
RUNTIME_PROVIDED = {"boto3", "botocore"}
DISTRIBUTION_OF = {"aws_lambda_powertools": "aws-lambda-powertools"}


def lambda_modules() -> list[Path]:
    """The modules the core layer ships (infra/layers.py leaves the client side out)."""
    return [
        path for path in PACKAGE.rglob("*.py") if path.relative_to(PACKAGE).parts[0] not in CLIENT_PACKAGES
    ]


def top_level_imports(path: Path) -> set[str]:
    """Modules imported at module level (imports inside functions are deliberate late imports)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def bundled() -> set[str]:
    lines = (ROOT / "layers" / "deps" / "requirements.txt").read_text().splitlines()
    return {
        re.split(r"[<>=\[ ]", line.strip())[0] for line in lines if line.strip() and not line.startswith("#")
    }


def test_every_third_party_import_of_lambda_code_is_bundled_or_provided() -> None:
    third_party = set()
    for path in lambda_modules():
        third_party |= {
            name
            for name in top_level_imports(path)
            if name not in sys.stdlib_module_names and name != "sagewatch"
        }
    missing = {
        name for name in third_party - RUNTIME_PROVIDED if DISTRIBUTION_OF.get(name, name) not in bundled()
    }
    assert not missing, f"imported by Lambda code but not in layers/deps/requirements.txt: {sorted(missing)}"


def test_pandas_and_scipy_stay_out_of_lambda_code() -> None:
    offenders = [
        str(p.relative_to(ROOT)) for p in lambda_modules() if {"pandas", "scipy"} & top_level_imports(p)
    ]
    assert offenders == []


def test_the_core_layer_ships_what_lambda_runs_and_nothing_of_the_client_side() -> None:
    shipped = build_core() / "python" / "sagewatch"
    modules = {str(p.relative_to(shipped)) for p in shipped.rglob("*.py")}
    assert {"handlers/api.py", "handlers/ingest.py", "services/ingestion.py", "stores/lake.py"} <= modules
    assert (shipped / "dashboard" / "static" / "index.html").is_file()  # the page the api function serves
    assert not [m for m in modules if m.split("/")[0] in CLIENT_PACKAGES]
    # and nothing shipped imports what is not shipped
    for path in shipped.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sagewatch."):
                assert node.module.split(".")[1] not in CLIENT_PACKAGES, f"{path.name} imports {node.module}"
