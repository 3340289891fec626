"""The synthesized storage stack holds exactly the declared resources, secured as DESIGN.md asks."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template
from infra.storage import StorageStack

from sagewatch.resources import DECLARATION


@pytest.fixture(scope="module")
def template() -> Template:
    app = cdk.App()
    return Template.from_stack(StorageStack(app, "test-storage"))


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


def test_buckets_are_versioned_encrypted_private_and_tls_only(template: Template) -> None:
    assert len(template.find_resources("AWS::S3::Bucket")) == len(DECLARATION.buckets)
    template.all_resources_properties(
        "AWS::S3::Bucket",
        {
            "VersioningConfiguration": {"Status": "Enabled"},
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
    assert len(policies) == len(DECLARATION.buckets)
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


def test_queues_redrive_to_their_dead_letter_queue(template: Template) -> None:
    queues = template.find_resources("AWS::SQS::Queue")
    assert len(queues) == len(DECLARATION.queues)
    for queue in DECLARATION.queues:
        if queue.dead_letter:
            template.has_resource_properties(
                "AWS::SQS::Queue",
                {
                    "VisibilityTimeout": queue.visibility_timeout_seconds,
                    "RedrivePolicy": {
                        "deadLetterTargetArn": Match.any_value(),
                        "maxReceiveCount": queue.max_receives,
                    },
                    "SqsManagedSseEnabled": True,
                },
            )


def test_s3_notifications_match_the_declaration(template: Template) -> None:
    configurations = [
        c
        for resource in template.find_resources("Custom::S3BucketNotifications").values()
        for c in resource["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    ]
    assert len(configurations) == len(DECLARATION.notifications)
    filters = sorted(
        tuple(
            sorted(
                (rule["Name"], rule["Value"])
                for rule in c.get("Filter", {}).get("Key", {}).get("FilterRules", [])
            )
        )
        for c in configurations
    )
    expected = sorted(
        tuple(sorted((part, value) for part, value in (("prefix", n.prefix), ("suffix", n.suffix)) if value))
        for n in DECLARATION.notifications
    )
    assert filters == expected
    assert all(c["Events"] == ["s3:ObjectCreated:*"] for c in configurations)
