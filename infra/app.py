"""The CDK app (`cdk deploy --all`). Stacks are built from sagewatch.resources, the one declaration."""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "layers" / "core"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from infra.storage import StorageStack  # noqa: E402


def build_app(app: cdk.App | None = None) -> cdk.App:
    app = app or cdk.App()
    StorageStack(
        app, "sagewatch-storage", description="sagewatch: tables, lake, capture bucket, ingest queues"
    )
    return app


if __name__ == "__main__":
    build_app().synth()
