"""The CDK app (`cdk deploy --all`): storage, ingest, api and monitor stacks from sagewatch.resources.

Context: captureBucket / capturePrefix (use an existing capture bucket), senderEmail (alerts' sender,
verified in SES), evaluateEveryMinutes, ingestConcurrency, apiRateLimit / apiBurstLimit, and
nag=false to skip the cdk-nag checks.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import aws_cdk as cdk

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "layers" / "core"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from cdk_nag import AwsSolutionsChecks  # noqa: E402

from infra.api import ApiStack  # noqa: E402
from infra.ingest import IngestStack  # noqa: E402
from infra.monitor import MonitorStack  # noqa: E402
from infra.nag import suppress  # noqa: E402
from infra.storage import StorageStack  # noqa: E402


def cdk_json_context() -> dict:
    """The feature flags in cdk.json, which the cdk CLI passes and a bare cdk.App() (tests) would not."""
    return json.loads((ROOT / "cdk.json").read_text())["context"]


def build_app(app: cdk.App | None = None) -> cdk.App:
    app = app or cdk.App(context=cdk_json_context())
    env = cdk.Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
    )
    storage = StorageStack(
        app,
        "sagewatch-storage",
        env=env,
        description="sagewatch: tables, the data lake, Glue and Athena over it",
    )
    ingest = IngestStack(
        app,
        "sagewatch-ingest",
        storage=storage,
        env=env,
        description="sagewatch: capture bucket, notifications, ingest function",
    )
    api = ApiStack(app, "sagewatch-api", storage=storage, env=env, description="sagewatch: the REST API")
    monitor = MonitorStack(
        app,
        "sagewatch-monitor",
        storage=storage,
        ingest=ingest,
        env=env,
        description="sagewatch: schedule, evaluator, SES, dashboard, alarms",
    )
    stacks = [storage, ingest, api, monitor]
    for stack in stacks:
        cdk.Tags.of(stack).add("application", "sagewatch")
        suppress(stack, api=stack is api)
    if app.node.try_get_context("nag") not in ("false", False):
        cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return app


if __name__ == "__main__":
    build_app().synth()
