"""Create the declared resources with boto3: the local runtime's (and the tests') `cdk deploy`.

Everything comes from sagewatch.resources, the declaration the CDK stacks read too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sagewatch import aws
from sagewatch.resources import DECLARATION, Declaration, Table


def table_definition(table: Table, physical_name: str) -> dict[str, Any]:
    """CreateTable arguments for a declared table (on-demand billing, as deployed)."""
    keys = [table.partition_key, *([table.sort_key] if table.sort_key else [])]
    for index in table.indexes:
        keys += [index.partition_key, *([index.sort_key] if index.sort_key else [])]
    attribute_types = {key.name: key.type for key in keys}

    def schema(partition: Any, sort: Any) -> list[dict[str, str]]:
        return [
            {"AttributeName": partition.name, "KeyType": "HASH"},
            *([{"AttributeName": sort.name, "KeyType": "RANGE"}] if sort else []),
        ]

    definition: dict[str, Any] = {
        "TableName": physical_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": n, "AttributeType": t} for n, t in attribute_types.items()
        ],
        "KeySchema": schema(table.partition_key, table.sort_key),
    }
    if table.indexes:
        definition["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": schema(index.partition_key, index.sort_key),
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in table.indexes
        ]
    return definition


def provision(names: Mapping[str, str], declaration: Declaration = DECLARATION) -> dict[str, str]:
    """Create every table, bucket and queue and wire the S3 notifications.

    Returns logical name -> physical name, with queue URLs under `<queue>_url`.
    """
    dynamodb, s3, sqs = aws.client("dynamodb"), aws.client("s3"), aws.client("sqs")
    created: dict[str, str] = dict(names)

    for table in declaration.tables:
        dynamodb.create_table(**table_definition(table, names[table.name]))
        if table.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=names[table.name],
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
            )

    for bucket in declaration.buckets:
        location = (
            {}
            if aws.region() == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": aws.region()}}
        )
        s3.create_bucket(Bucket=names[bucket.name], **location)
        s3.put_bucket_versioning(Bucket=names[bucket.name], VersioningConfiguration={"Status": "Enabled"})

    queue_arns: dict[str, str] = {}
    # Dead-letter queues first: a queue's redrive policy names its DLQ's ARN.
    for queue in sorted(declaration.queues, key=lambda q: q.dead_letter is not None):
        attributes = {"VisibilityTimeout": str(queue.visibility_timeout_seconds)}
        if queue.dead_letter:
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": queue_arns[queue.dead_letter], "maxReceiveCount": queue.max_receives}
            )
        url = sqs.create_queue(QueueName=names[queue.name], Attributes=attributes)["QueueUrl"]
        created[f"{queue.name}_url"] = url
        queue_arns[queue.name] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

    for bucket in declaration.buckets:
        notifications = [n for n in declaration.notifications if n.bucket == bucket.name]
        if not notifications:
            continue
        configurations = []
        for notification in notifications:
            rules = [
                {"Name": part, "Value": value}
                for part, value in (("prefix", notification.prefix), ("suffix", notification.suffix))
                if value
            ]
            configuration: dict[str, Any] = {
                "QueueArn": queue_arns[notification.queue],
                "Events": ["s3:ObjectCreated:*"],
            }
            if rules:
                configuration["Filter"] = {"Key": {"FilterRules": rules}}
            configurations.append(configuration)
        s3.put_bucket_notification_configuration(
            Bucket=names[bucket.name], NotificationConfiguration={"QueueConfigurations": configurations}
        )
    return created
