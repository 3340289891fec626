"""The storage stack holds exactly the declared tables, and a lake secured as DESIGN.md asks."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

from sagewatch.resources import DECLARATION


@pytest.fixture(scope="module")
def template(templates: dict[str, Template]) -> Template:
    return templates["storage"]


def key_schema(table) -> list[dict[str, str]]:
    keys = [{"AttributeName": table.partition_key.name, "KeyType": "HASH"}]
    if table.sort_key:
        keys.append({"AttributeName": table.sort_key.name, "KeyType": "RANGE"})
    return keys


def test_every_declared_table_with_its_keys_indexes_and_protection(template: Template) -> None:
    tables = template.find_resources("AWS::DynamoDB::Table")
    assert len(tables) == len(DECLARATION.tables)
    for table in DECLARATION.tables:
        expected = {
            "KeySchema": key_schema(table),
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True},
        }
        if table.indexes:
            expected["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": index.name,
                    "KeySchema": key_schema(index),
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index in table.indexes
            ]
        if table.ttl_attribute:
            expected["TimeToLiveSpecification"] = {"AttributeName": table.ttl_attribute, "Enabled": True}
        template.has_resource_properties("AWS::DynamoDB::Table", expected)


@pytest.mark.parametrize("stack", ["storage", "ingest"])
def test_buckets_are_encrypted_private_tls_only_and_logged(
    templates: dict[str, Template], stack: str
) -> None:
    template = templates[stack]
    buckets = template.find_resources("AWS::S3::Bucket")
    assert buckets
    template.all_resources_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": Match.object_like({"ServerSideEncryptionConfiguration": Match.any_value()}),
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
        },
    )
    policies = template.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == len(buckets)
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )

    logged = [b for b in buckets.values() if "LoggingConfiguration" in b["Properties"]]
    # every bucket but the access-log bucket itself sends its server access logs there
    assert len(logged) == len(buckets) - (stack == "storage")
    versioned = [b for b in buckets.values() if b["Properties"].get("VersioningConfiguration")]
    assert len(versioned) == len(logged)


def test_lake_data_is_retained_and_expires_only_rejected_rows_drops_partials_and_old_versions(
    template: Template,
) -> None:
    buckets = template.find_resources(
        "AWS::S3::Bucket", {"Properties": {"LoggingConfiguration": {"LogFilePrefix": "data/"}}}
    )
    (data,) = buckets.values()
    assert data["DeletionPolicy"] == "Retain"
    rules = {r["Id"]: r for r in data["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert set(rules) == {
        "rejected-rows",
        "ingested-drops",
        "partial-aggregates",
        "old-versions",
        "expired-delete-markers",
    }
    assert rules["rejected-rows"]["Prefix"] == "rejected/"
    assert rules["ingested-drops"]["Prefix"] == "drops/"
    # partial aggregates are made again from the lake when asked for: kept two weeks
    assert rules["partial-aggregates"]["Prefix"] == "partials/"
    assert rules["partial-aggregates"]["ExpirationInDays"] == 14
    # inferences/ and ground_truth/ never expire without retentionDays: no current-version expiry
    # without a prefix
    assert "ExpirationInDays" not in rules["old-versions"]
    assert rules["expired-delete-markers"] == {
        "Id": "expired-delete-markers",
        "ExpiredObjectDeleteMarker": True,
        "Status": "Enabled",
    }


def test_tables_are_retained_on_stack_deletion(template: Template) -> None:
    tables = template.find_resources("AWS::DynamoDB::Table")
    assert {t["DeletionPolicy"] for t in tables.values()} == {"Retain"}


def test_athena_reads_the_lake_by_partition_projection(template: Template) -> None:
    glue_tables = template.find_resources("AWS::Glue::Table")
    names = {t["Properties"]["TableInput"]["Name"] for t in glue_tables.values()}
    assert names == {"inferences", "labels", "ground_truth"}
    for table in glue_tables.values():
        parameters = table["Properties"]["TableInput"]["Parameters"]
        assert parameters["projection.enabled"] == "true"
        keys = [k["Name"] for k in table["Properties"]["TableInput"]["PartitionKeys"]]
        assert keys == ["model_id", "date"]
        # the lake's layout (sagewatch.stores.lake): <area>/model_id=<id>/date=<yyyy-mm-dd>/
        assert "model_id=${model_id}/date=${date}/" in str(parameters["storage.location.template"])
    template.has_resource_properties(
        "AWS::Athena::WorkGroup",
        {
            "WorkGroupConfiguration": Match.object_like({"EnforceWorkGroupConfiguration": True}),
        },
    )
