"""CDK resources built from sagewatch.resources, the declaration the local runtime also builds from.

Every table is on-demand with point-in-time recovery and encryption; every bucket versioned,
encrypted, TLS-only, private and access-logged; every queue encrypted and TLS-only with its
dead-letter queue. The stacks call these builders for the resources they own.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from sagewatch.resources import DECLARATION, Key, Notification, Queue, Table

_ATTRIBUTE_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}


def _attribute(key: Key) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=key.name, type=_ATTRIBUTE_TYPES[key.type])


def table(scope: Construct, declared: Table) -> dynamodb.Table:
    created = dynamodb.Table(
        scope,
        f"{declared.name}-table",
        partition_key=_attribute(declared.partition_key),
        sort_key=_attribute(declared.sort_key) if declared.sort_key else None,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        time_to_live_attribute=declared.ttl_attribute,
        removal_policy=RemovalPolicy.RETAIN,
    )
    for index in declared.indexes:
        created.add_global_secondary_index(
            index_name=index.name,
            partition_key=_attribute(index.partition_key),
            sort_key=_attribute(index.sort_key) if index.sort_key else None,
            projection_type=dynamodb.ProjectionType.ALL,
        )
    return created


def access_log_bucket(scope: Construct) -> s3.Bucket:
    """Where the other buckets' server access logs go (it logs to no one: that would recurse)."""
    return s3.Bucket(
        scope,
        "access-logs",
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))],
        removal_policy=RemovalPolicy.RETAIN,
    )


def bucket(
    scope: Construct, name: str, logs: s3.IBucket, lifecycle: list[s3.LifecycleRule] | None = None
) -> s3.Bucket:
    return s3.Bucket(
        scope,
        f"{name}-bucket",
        versioned=True,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        server_access_logs_bucket=logs,
        server_access_logs_prefix=f"{name}/",
        lifecycle_rules=lifecycle,
        removal_policy=RemovalPolicy.RETAIN,
    )


def queues(scope: Construct, names: tuple[str, ...]) -> dict[str, sqs.Queue]:
    """The declared queues of these names, dead-letter queues first."""
    chosen = [q for q in DECLARATION.queues if q.name in names]
    built: dict[str, sqs.Queue] = {}
    for declared in sorted(chosen, key=lambda q: q.dead_letter is not None):
        built[declared.name] = queue(scope, declared, built.get(declared.dead_letter or ""))
    return built


def queue(scope: Construct, declared: Queue, dead_letter: sqs.IQueue | None) -> sqs.Queue:
    return sqs.Queue(
        scope,
        f"{declared.name}-queue",
        visibility_timeout=Duration.seconds(declared.visibility_timeout_seconds),
        retention_period=Duration.days(14),
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        dead_letter_queue=sqs.DeadLetterQueue(queue=dead_letter, max_receive_count=declared.max_receives)
        if dead_letter is not None
        else None,
    )


def notify(source: s3.IBucket, target: sqs.IQueue, notification: Notification, prefix: str = "") -> None:
    """An ObjectCreated notification as declared (the prefix is put before the declared one)."""
    filters = s3.NotificationKeyFilter(
        prefix=(prefix + notification.prefix) or None, suffix=notification.suffix or None
    )
    source.add_event_notification(s3.EventType.OBJECT_CREATED, s3n.SqsDestination(target), filters)
