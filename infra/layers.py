"""The Lambda layers, built at synth time without Docker.

- deps: the third-party packages of layers/deps/requirements.txt, installed for Lambda's arm64
  Python 3.12 (`pip install --platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64
  --only-binary=:all: --python-version 3.12`), then pruned of what the functions never import
  (tests, headers, Cython sources, pyarrow's Flight, Gandiva and ORC, its S3, GCS, Azure and HDFS
  filesystems, duplicated shared-library copies; libarrow_substrait stays: every pyarrow module links it) to stay inside
  Lambda's 250 MB unzipped limit. boto3 and botocore come with the runtime.
- core: the sagewatch package, without its client side (CLIENT_PACKAGES: the SDK, the CLI, the demo
  and the local runtime run on a laptop, never in a Lambda).

A build is cached under build/layers/ by the hash of its inputs, so repeated syntheses are fast.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "layers"
REQUIREMENTS = ROOT / "layers" / "deps" / "requirements.txt"
PLATFORMS = ("manylinux_2_28_aarch64", "manylinux2014_aarch64")
RUNTIME = "3.12"
# Subpackages of sagewatch that run on a laptop or CI only: left out of the core layer.
CLIENT_PACKAGES = ("client", "local")
# The package's modules and the dashboard's static files.
SHIPPED_SUFFIXES = (".py", ".html", ".js", ".css", ".svg")

# Paths (relative to site-packages) the functions never import.
PRUNED = (
    "pyarrow/include",
    "pyarrow/src",
    "pyarrow/tests",
    "pyarrow/libarrow_flight.so*",
    "pyarrow/libarrow_python_flight.so*",
    "pyarrow/libarrow_s3.so*",
    "pyarrow/libgandiva.so*",
    "pyarrow/_flight*.so",
    "pyarrow/flight.py",
    "pyarrow/_substrait*.so",
    "pyarrow/substrait.py",
    "pyarrow/_gandiva*.so",
    "pyarrow/gandiva.py",
    "pyarrow/_orc*.so",
    "pyarrow/orc.py",
    "pyarrow/_s3fs*.so",
    "pyarrow/_gcsfs*.so",
    "pyarrow/_azurefs*.so",
    "pyarrow/_hdfs*.so",
    "pyarrow/interchange",
    "numpy/f2py",
    "numpy/_core/include",
    "numpy/_pyinstaller",
    "numpy/random/_examples",
    "boto3",
    "botocore",
    "s3transfer",
)
PRUNED_EVERYWHERE = ("tests", "__pycache__")
PRUNED_SUFFIXES = (".pyx", ".pxd", ".pxi", ".h", ".hpp", ".c", ".cpp")


def _digest(*parts: bytes) -> str:
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:20]


def prune(site: Path) -> None:
    """Remove what the functions never import from an installed site-packages."""
    for pattern in PRUNED:
        for path in site.glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    for name in PRUNED_EVERYWHERE:
        for path in list(site.rglob(name)):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
    for path in list(site.rglob("*")):
        if path.is_file() and path.suffix in PRUNED_SUFFIXES:
            path.unlink()
    _drop_duplicate_libraries(site)


def _drop_duplicate_libraries(site: Path) -> None:
    """Wheels ship libfoo.so, libfoo.so.N and libfoo.so.N.M.K as copies; keep the soname (.so.N)."""
    for library in site.rglob("*.so.*"):
        parts = library.name.split(".so.")
        version = parts[1] if len(parts) == 2 else ""
        if version.count(".") >= 1:  # libfoo.so.N.M.K: a copy of libfoo.so.N when that exists
            soname = library.with_name(f"{parts[0]}.so.{version.split('.')[0]}")
            if soname.exists() and soname.stat().st_size == library.stat().st_size:
                library.unlink()
    for library in site.rglob("*.so"):  # libfoo.so: for linking at build time, a copy of libfoo.so.N
        versioned = sorted(library.parent.glob(library.name + ".*"))
        if versioned and library.stat().st_size == versioned[0].stat().st_size:
            library.unlink()


def build_deps(platforms: tuple[str, ...] = PLATFORMS, python_version: str = RUNTIME) -> Path:
    """The deps layer's directory (python/...), built once per requirements and platform."""
    key = _digest(
        REQUIREMENTS.read_bytes(),
        " ".join(platforms).encode(),
        python_version.encode(),
        Path(__file__).read_bytes(),
    )
    target = CACHE / f"deps-{key}"
    if (target / "python").exists():
        return target
    staging = CACHE / f"deps-{key}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-compile",
        "--only-binary=:all:",
        "--python-version",
        python_version,
        "--implementation",
        "cp",
        "--target",
        str(staging / "python"),
        "--requirement",
        str(REQUIREMENTS),
    ]
    for platform in platforms:
        command += ["--platform", platform]
    subprocess.run(command, check=True)
    prune(staging / "python")
    staging.rename(target)
    return target


def build_core() -> Path:
    """The core layer's directory: the sagewatch package under python/."""
    package = ROOT / "layers" / "core" / "sagewatch"
    files = sorted(
        p
        for p in package.rglob("*")
        if p.is_file()
        and p.suffix in SHIPPED_SUFFIXES
        and "__pycache__" not in p.parts
        and p.relative_to(package).parts[0] not in CLIENT_PACKAGES
    )
    key = _digest(*(str(p.relative_to(package)).encode() + b"\0" + p.read_bytes() for p in files))
    target = CACHE / f"core-{key}"
    if not (target / "python").exists():
        shutil.rmtree(target, ignore_errors=True)
        for path in files:
            destination = target / "python" / "sagewatch" / path.relative_to(package)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)
    return target


@jsii.implements(cdk.ILocalBundling)
class _CopyBuilt:
    """Local bundling: copy a directory built (and cached) by this module into CDK's output."""

    def __init__(self, build: str) -> None:
        self.build = build

    def try_bundle(self, output_dir: str, *, image: cdk.DockerImage, **_: object) -> bool:
        source = build_deps() if self.build == "deps" else build_core()
        shutil.copytree(source, output_dir, dirs_exist_ok=True)
        return True


def layer(scope: Construct, name: str) -> lambda_.LayerVersion:
    """The `deps` or `core` layer, for arm64 Python 3.12."""
    source = REQUIREMENTS.parent if name == "deps" else ROOT / "layers" / "core"
    return lambda_.LayerVersion(
        scope,
        f"{name}-layer",
        code=lambda_.Code.from_asset(
            str(source),
            asset_hash_type=cdk.AssetHashType.OUTPUT,
            bundling=cdk.BundlingOptions(
                image=cdk.DockerImage.from_registry("unused-local-bundling"), local=_CopyBuilt(name)
            ),
        ),
        compatible_runtimes=[lambda_.Runtime.PYTHON_3_12],
        compatible_architectures=[lambda_.Architecture.ARM_64],
        description=f"sagewatch {name}",
    )
