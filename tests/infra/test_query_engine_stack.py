"""What the query API's SQL path needs in a real account: an Athena engine v3 workgroup enforcing an
encrypted results location, the names in the api function's environment, and the api role's grants
(exactly the Glue, Athena and S3 actions sagewatch.stores.catalog and stores.athena call)."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template

from sagewatch.stores.athena import WORKGROUP_ENV
from sagewatch.stores.catalog import DATABASE_ENV


def _api_statements(template: Template) -> list[dict[str, Any]]:
    policies = template.find_resources("AWS::IAM::Policy")
    return [
        statement
        for policy in policies.values()
        if any("apirole" in r["Ref"].lower() for r in policy["Properties"].get("Roles", []))
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else actions


def test_the_workgroup_runs_engine_3_and_enforces_encrypted_results_in_its_bucket(
    templates: dict[str, Template],
) -> None:
    storage = templates["storage"]
    [workgroup] = storage.find_resources("AWS::Athena::WorkGroup").values()
    configuration = workgroup["Properties"]["WorkGroupConfiguration"]
    assert configuration["EnforceWorkGroupConfiguration"] is True
    assert configuration["EngineVersion"] == {"SelectedEngineVersion": "Athena engine version 3"}
    results = configuration["ResultConfiguration"]
    assert results["EncryptionConfiguration"] == {"EncryptionOption": "SSE_S3"}
    # the location is the results bucket, which is SSE-S3 like the lake
    [bucket_ref] = [
        part["Ref"] for part in results["OutputLocation"]["Fn::Join"][1] if isinstance(part, dict)
    ]
    bucket = storage.find_resources("AWS::S3::Bucket")[bucket_ref]["Properties"]
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


def test_the_api_function_is_named_the_database_and_workgroup_and_granted_no_more_than_it_calls(
    templates: dict[str, Template],
) -> None:
    api = templates["api"]
    [function] = [
        f["Properties"]
        for f in api.find_resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME")
        == "sagewatch-api"
    ]
    variables = function["Environment"]["Variables"]
    assert variables[DATABASE_ENV] == "sagewatch" and variables[WORKGROUP_ENV] == "sagewatch"
    statements = _api_statements(api)
    granted = {action for s in statements for action in _actions(s)}
    assert {a for a in granted if a.startswith("glue:")} == {
        "glue:GetDatabase",
        "glue:GetTable",
        "glue:CreateTable",
        "glue:UpdateTable",
        "glue:DeleteTable",
    }
    assert {a for a in granted if a.startswith("athena:")} == {
        "athena:StartQueryExecution",
        "athena:GetQueryExecution",
        "athena:GetQueryResults",
        "athena:StopQueryExecution",
    }
    assert not any("*" in action for action in granted)
    [glue] = [s for s in statements if "glue:CreateTable" in _actions(s)]
    tables = [str(r) for r in glue["Resource"] if ":table/" in str(r)]
    assert len(tables) == 4 and all(":table/sagewatch/" in t and "__*" in t for t in tables)
    [athena] = [s for s in statements if "athena:StartQueryExecution" in _actions(s)]
    assert "workgroup/sagewatch" in str(athena["Resource"])
