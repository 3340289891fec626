"""`sagewatch local` (moto) and `cdk deploy` create the same tables, queues and notifications.

Both read sagewatch.resources; this compares what each actually builds: the local runtime's
resources as moto describes them, and the synthesized CloudFormation.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from aws_cdk.assertions import Template
from tests.infra.synthesis import Synthesized


def _declared_name(resource: dict[str, Any]) -> str:
    """`models` for the construct path `sagewatch-storage/models-table/Resource`."""
    return resource["Metadata"]["aws:cdk:path"].split("/")[1].rsplit("-", 1)[0]


def _key_schema(schema: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(k["AttributeName"], k["KeyType"]) for k in schema]


def _table_shape(definition: dict[str, Any]) -> dict[str, Any]:
    return {
        "keys": _key_schema(definition["KeySchema"]),
        "attributes": sorted(
            (a["AttributeName"], a["AttributeType"]) for a in definition["AttributeDefinitions"]
        ),
        "indexes": sorted(
            (i["IndexName"], tuple(_key_schema(i["KeySchema"])), i["Projection"]["ProjectionType"])
            for i in definition.get("GlobalSecondaryIndexes", [])
        ),
        "billing": definition.get("BillingMode") or definition["BillingModeSummary"]["BillingMode"],
    }


def test_tables_keys_indexes_and_ttl_are_the_same(aws: dict[str, str], synthesized: Synthesized) -> None:
    dynamodb = boto3.client("dynamodb")
    deployed = {
        _declared_name(resource): resource["Properties"]
        for resource in synthesized.template("storage").find_resources("AWS::DynamoDB::Table").values()
    }
    local = {}
    for name in deployed:
        local[name] = dynamodb.describe_table(TableName=aws[name])["Table"]
        ttl = dynamodb.describe_time_to_live(TableName=aws[name])["TimeToLiveDescription"]
        local[name]["ttl"] = ttl.get("AttributeName") if ttl["TimeToLiveStatus"] == "ENABLED" else None
    assert {n: _table_shape(d) for n, d in local.items()} == {n: _table_shape(d) for n, d in deployed.items()}
    assert {n: d["ttl"] for n, d in local.items()} == {
        n: d.get("TimeToLiveSpecification", {}).get("AttributeName") for n, d in deployed.items()
    }


def _deployed_queues(templates: dict[str, Template]) -> dict[str, dict[str, Any]]:
    """declared name -> {visibility, dead_letter, max_receives} from the ingest and monitor stacks."""
    queues: dict[str, dict[str, Any]] = {}
    for stack in ("ingest", "monitor"):
        resources = templates[stack].find_resources("AWS::SQS::Queue")
        names = {logical: _declared_name(r) for logical, r in resources.items()}
        for logical, resource in resources.items():
            redrive = resource["Properties"].get("RedrivePolicy")
            queues[names[logical]] = {
                "visibility": resource["Properties"]["VisibilityTimeout"],
                "dead_letter": names[redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]] if redrive else None,
                "max_receives": redrive["maxReceiveCount"] if redrive else None,
            }
    return queues


def test_queues_and_their_dead_letter_queues_are_the_same(
    aws: dict[str, str], templates: dict[str, Template]
) -> None:
    sqs = boto3.client("sqs")
    deployed = _deployed_queues(templates)
    arn_to_name = {}
    local_attributes = {}
    for name in deployed:
        attributes = sqs.get_queue_attributes(QueueUrl=aws[f"{name}_url"], AttributeNames=["All"])[
            "Attributes"
        ]
        arn_to_name[attributes["QueueArn"]] = name
        local_attributes[name] = attributes
    local = {}
    for name, attributes in local_attributes.items():
        redrive = json.loads(attributes["RedrivePolicy"]) if "RedrivePolicy" in attributes else None
        local[name] = {
            "visibility": int(attributes["VisibilityTimeout"]),
            "dead_letter": arn_to_name[redrive["deadLetterTargetArn"]] if redrive else None,
            "max_receives": int(redrive["maxReceiveCount"]) if redrive else None,
        }
    assert local == deployed


def _filters(configuration: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    rules = configuration.get("Filter", {}).get("Key", {}).get("FilterRules", [])
    return tuple(sorted((r["Name"].lower(), r["Value"]) for r in rules))


def test_s3_notifications_are_the_same(aws: dict[str, str], templates: dict[str, Template]) -> None:
    s3 = boto3.client("s3")
    local = sorted(
        (bucket, _filters(c), tuple(c["Events"]))
        for bucket in ("capture", "data")
        for c in s3.get_bucket_notification_configuration(Bucket=aws[bucket]).get("QueueConfigurations", [])
    )
    deployed = []
    for resource in templates["ingest"].find_resources("Custom::S3BucketNotifications").values():
        bucket = "capture" if "capture" in json.dumps(resource["Properties"]["BucketName"]) else "data"
        for c in resource["Properties"]["NotificationConfiguration"]["QueueConfigurations"]:
            deployed.append((bucket, _filters(c), tuple(c["Events"])))
    assert local == sorted(deployed)
