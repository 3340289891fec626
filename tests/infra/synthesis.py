"""Synthesize the whole CDK app into a directory, as `cdk synth` would (context from cdk.json)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

import aws_cdk as cdk
from aws_cdk import cx_api
from aws_cdk.assertions import Template
from infra.app import build_app, cdk_json_context

STACKS = ("storage", "ingest", "api", "monitor")


@dataclass
class Synthesized:
    app: cdk.App
    assembly: cx_api.CloudAssembly
    outdir: Path

    def stack(self, short: str) -> cdk.Stack:
        return self.app.node.find_child(f"sagewatch-{short}")

    def template(self, short: str) -> Template:
        return Template.from_json(self.assembly.get_stack_by_name(f"sagewatch-{short}").template)

    def template_file(self, short: str) -> Path:
        return Path(self.assembly.get_stack_by_name(f"sagewatch-{short}").template_full_path)


def synthesize(outdir: Path, **context: str) -> Synthesized:
    # the CLI also turns on path metadata (aws:cdk:path on every resource), which tests use to find resources
    context = {**cdk_json_context(), "aws:cdk:enable-path-metadata": True, **context}
    app = build_app(cdk.App(outdir=str(outdir), context=context))
    return Synthesized(app=app, assembly=app.synth(), outdir=outdir)
