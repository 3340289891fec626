"""The synthesized stacks pass cdk-nag and cfn-lint, and every function fits Lambda's size limit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk.assertions import Annotations, Match
from cfnlint.api import lint_file
from tests.infra.synthesis import STACKS, Synthesized

from infra import layers

ROOT = Path(__file__).resolve().parents[2]
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024


@pytest.mark.parametrize("short", STACKS)
def test_no_unsuppressed_cdk_nag_errors(synthesized: Synthesized, short: str) -> None:
    errors = Annotations.from_stack(synthesized.stack(short)).find_error(
        "*", Match.string_like_regexp("AwsSolutions-.*")
    )
    assert [f"{e.id}: {str(e.entry.data)[:120]}" for e in errors] == []


@pytest.mark.parametrize("short", STACKS)
def test_cfn_lint_finds_no_errors(synthesized: Synthesized, short: str) -> None:
    matches = lint_file(synthesized.template_file(short))
    errors = [f"{m.rule.id} {m.message}" for m in matches if m.rule.severity == "error"]
    assert errors == []


def _unzipped_size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file() and not p.is_symlink())


def _asset_directory(synthesized: Synthesized, code: dict) -> Path:
    key = code["S3Key"]
    return synthesized.outdir / f"asset.{key.removesuffix('.zip')}"


@pytest.mark.parametrize("short", ["ingest", "api", "monitor"])
def test_each_function_with_its_layers_fits_lambdas_unzipped_limit(
    synthesized: Synthesized, short: str
) -> None:
    template = json.loads(synthesized.template_file(short).read_text())
    resources = template["Resources"]
    functions = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function"
        and "POWERTOOLS_SERVICE_NAME" in r["Properties"].get("Environment", {}).get("Variables", {})
    ]
    assert functions
    for function in functions:
        total = _unzipped_size(_asset_directory(synthesized, function["Properties"]["Code"]))
        for reference in function["Properties"]["Layers"]:
            layer = resources[reference["Ref"]]
            directory = _asset_directory(synthesized, layer["Properties"]["Content"])
            assert (directory / "python").is_dir(), "a Python layer's packages live under python/"
            total += _unzipped_size(directory)
        assert total < LAMBDA_UNZIPPED_LIMIT, (
            f"{function['Properties']['Description']}: {total / 2**20:.0f} MB"
        )


def test_the_deps_layer_is_built_for_lambdas_arm64_python312(synthesized: Synthesized) -> None:
    (built,) = [
        p
        for p in layers.CACHE.glob("deps-*")
        if p.is_dir() and not p.name.endswith(".partial") and (p / "python" / "pyarrow").is_dir()
    ][-1:]
    extensions = [p.name for p in (built / "python" / "pyarrow").glob("lib*.so")]
    assert any("cpython-312-aarch64-linux-gnu" in name for name in extensions), extensions
    assert not (built / "python" / "boto3").exists()  # the runtime provides boto3


def test_pruned_dependencies_still_import_everything_the_functions_use(tmp_path: Path) -> None:
    """The deps layer's pruning, applied to this machine's wheels, leaves the functions importable."""
    site, runtime = tmp_path / "python", tmp_path / "runtime"
    for target, requirements in ((site, ["--requirement", str(layers.REQUIREMENTS)]), (runtime, ["boto3"])):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-compile",
                "--only-binary=:all:",
                "--target",
                str(target),
                *requirements,
            ],
            check=True,
        )
    before = _unzipped_size(site)
    layers.prune(site)
    assert _unzipped_size(site) < before
    script = """
import sys, importlib.util, pathlib
sys.path[:0] = sys.argv[2:]
for name in ("api", "ingest", "scheduler", "evaluator"):
    path = pathlib.Path(sys.argv[1]) / "functions" / name / "handler.py"
    spec = importlib.util.spec_from_file_location(f"handler_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(module.handler), name
import pyarrow.parquet, pyarrow.compute, pyarrow.dataset, pyarrow.json, pyarrow.csv, numpy
import sagewatch.metrics.query, sagewatch.handlers.evaluator, sagewatch.handlers.ingest, aws_xray_sdk.core
for name in ("pandas", "scipy", "sklearn", "moto"):
    assert name not in sys.modules, name
"""
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "sagewatch",
        "LAMBDA_TASK_ROOT": str(tmp_path),  # as in Lambda, so Tracer loads X-Ray and patches botocore
    }
    # -S: no site-packages, so only what Lambda has: the pruned layer, the core layer and boto3
    paths = [str(site), str(ROOT / "layers" / "core"), str(runtime)]
    result = subprocess.run(
        [sys.executable, "-S", "-c", script, str(ROOT), *paths],
        env=environment,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_cdk_json_runs_the_app_without_the_venv_activated(tmp_path: Path) -> None:
    """`cdk deploy` from a shell whose python3 lacks aws_cdk (the venv not activated) still synthesizes."""
    root = Path(__file__).resolve().parents[2]
    app = json.loads((root / "cdk.json").read_text())["app"]
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",  # no venv on the PATH
        "HOME": str(tmp_path),
        "CDK_OUTDIR": str(tmp_path / "out"),
        "CDK_CONTEXT_JSON": json.dumps({"nag": "false"}),
    }
    done = subprocess.run(["sh", "-c", app], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "out" / "manifest.json").exists()
