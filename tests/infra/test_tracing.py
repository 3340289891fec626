"""tracing: X-Ray on every function by default; `-c tracing=false` turns it off (and its grants)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk.assertions import Template
from tests.infra.synthesis import STACKS, synthesize


def _functions(template: Template) -> list[dict]:
    """sagewatch's functions (not CDK's own custom-resource handlers)."""
    return [
        function
        for function in template.find_resources("AWS::Lambda::Function").values()
        if "POWERTOOLS_SERVICE_NAME" in function["Properties"].get("Environment", {}).get("Variables", {})
    ]


def _xray_actions(template: Template) -> list[str]:
    policies = template.find_resources("AWS::IAM::Policy")
    text = json.dumps(policies)
    return [action for action in ("xray:PutTraceSegments", "xray:PutTelemetryRecords") if action in text]


def test_every_function_is_traced_by_default(templates: dict[str, Template]) -> None:
    for short in STACKS:
        for function in _functions(templates[short]):
            properties = function["Properties"]
            assert properties["TracingConfig"] == {"Mode": "Active"}
            assert "POWERTOOLS_TRACE_DISABLED" not in properties["Environment"]["Variables"]
    assert _xray_actions(templates["ingest"])


@pytest.fixture(scope="module")
def untraced(tmp_path_factory: pytest.TempPathFactory):
    return synthesize(tmp_path_factory.mktemp("cdk.out"), tracing="false")


def test_tracing_false_leaves_every_function_untraced_without_xray_grants(untraced) -> None:
    functions = 0
    for short in STACKS:
        template = untraced.template(short)
        for function in _functions(template):
            properties = function["Properties"]
            assert properties.get("TracingConfig", {"Mode": "PassThrough"}) != {"Mode": "Active"}
            assert properties["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"] == "true"
            functions += 1
        assert _xray_actions(template) == [], short
    assert functions >= 4


@pytest.mark.parametrize("value", ["no", "0", "off", "yes"])
def test_a_tracing_value_that_is_not_true_or_false_stops_the_synthesis(tmp_path: Path, value: str) -> None:
    with pytest.raises(ValueError, match=f"tracing must be true or false: got '{value}'"):
        synthesize(tmp_path, tracing=value)
