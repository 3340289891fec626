"""CDK constructs built from sagewatch.resources, the declaration the local runtime also builds from.

Every table is on-demand with point-in-time recovery and encryption; every bucket versioned,
encrypted, TLS-only and private; every queue encrypted and TLS-only with its dead-letter queue.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from sagewatch.resources import DECLARATION, Declaration, Key, Table

_ATTRIBUTE_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}


def _attribute(key: Key) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=key.name, type=_ATTRIBUTE_TYPES[key.type])


class DeclaredResources(Construct):
    """Every table, bucket, queue and S3 notification of the declaration, by logical name."""

    def __init__(self, scope: Construct, construct_id: str, declaration: Declaration = DECLARATION) -> None:
        super().__init__(scope, construct_id)
        self.tables = {t.name: self._table(t) for t in declaration.tables}
        self.buckets = {
            b.name: s3.Bucket(
                self,
                f"{b.name}-bucket",
                versioned=True,
                encryption=s3.BucketEncryption.S3_MANAGED,
                enforce_ssl=True,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                removal_policy=RemovalPolicy.RETAIN,
            )
            for b in declaration.buckets
        }
        self.queues: dict[str, sqs.Queue] = {}
        for queue in sorted(declaration.queues, key=lambda q: q.dead_letter is not None):
            self.queues[queue.name] = sqs.Queue(
                self,
                f"{queue.name}-queue",
                visibility_timeout=Duration.seconds(queue.visibility_timeout_seconds),
                retention_period=Duration.days(14),
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                dead_letter_queue=sqs.DeadLetterQueue(
                    queue=self.queues[queue.dead_letter], max_receive_count=queue.max_receives
                )
                if queue.dead_letter
                else None,
            )
        for notification in declaration.notifications:
            filters = s3.NotificationKeyFilter(
                prefix=notification.prefix or None, suffix=notification.suffix or None
            )
            self.buckets[notification.bucket].add_event_notification(
                s3.EventType.OBJECT_CREATED, s3n.SqsDestination(self.queues[notification.queue]), filters
            )

    def _table(self, table: Table) -> dynamodb.Table:
        created = dynamodb.Table(
            self,
            f"{table.name}-table",
            partition_key=_attribute(table.partition_key),
            sort_key=_attribute(table.sort_key) if table.sort_key else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute=table.ttl_attribute,
            removal_policy=RemovalPolicy.RETAIN,
        )
        for index in table.indexes:
            created.add_global_secondary_index(
                index_name=index.name,
                partition_key=_attribute(index.partition_key),
                sort_key=_attribute(index.sort_key) if index.sort_key else None,
                projection_type=dynamodb.ProjectionType.ALL,
            )
        return created

    def environment(self) -> dict[str, str]:
        """The environment variables that point sagewatch's settings at these resources."""
        variables = {t.env_var: self.tables[t.name].table_name for t in DECLARATION.tables}
        variables |= {b.env_var: self.buckets[b.name].bucket_name for b in DECLARATION.buckets}
        variables |= {q.env_var: self.queues[q.name].queue_name for q in DECLARATION.queues}
        return variables
