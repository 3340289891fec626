"""The ingest stack: the capture bucket (or yours), S3 notifications through SQS, the ingest function."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import declared
from infra.functions import SagewatchFunction
from infra.layers import layer
from infra.storage import DELETE_MARKERS, OLD_VERSIONS, StorageStack, history_rules
from sagewatch.resources import DECLARATION

# The SQS event source's floor is 2; 5 ingest functions of 3 GB fit a new account's quota of 10
# beside the API and the evaluator. Raise it with -c ingestConcurrency=N for more throughput.
DEFAULT_CONCURRENCY = 5


class IngestStack(cdk.Stack):
    """Context: captureBucket (an existing bucket's name), capturePrefix (where its capture files are),
    captureKmsKeyArn (the KMS key its objects are encrypted with, if any), ingestConcurrency."""

    def __init__(self, scope: Construct, construct_id: str, *, storage: StorageStack, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        existing = self.node.try_get_context("captureBucket")
        prefix = self.node.try_get_context("capturePrefix") or ""
        if existing:
            self.capture: s3.IBucket = s3.Bucket.from_bucket_name(self, "capture-bucket", existing)
        else:
            # capture files are ingested within minutes; kept as long as the lake keeps what they hold
            history = history_rules(storage.retention_days, ("",))
            lifecycle = [*history, OLD_VERSIONS, DELETE_MARKERS] if history else None
            self.capture = declared.bucket(self, "capture", storage.access_logs, lifecycle=lifecycle)
        self.queues = declared.queues(self, ("ingest", "ingest-dlq"))
        data = s3.Bucket.from_bucket_attributes(
            self, "data", bucket_arn=storage.data.bucket_arn, bucket_name=storage.data.bucket_name
        )
        for notification in DECLARATION.notifications:
            source = self.capture if notification.bucket == "capture" else data
            declared.notify(
                source,
                self.queues[notification.queue],
                notification,
                prefix if notification.bucket == "capture" else "",
            )

        environment = {
            **storage.environment(),
            DECLARATION.bucket("capture").env_var: self.capture.bucket_name,
            **{DECLARATION.queue(n).env_var: q.queue_name for n, q in self.queues.items()},
        }
        self.ingest = SagewatchFunction(
            self,
            "ingest",
            name="ingest",
            layers=[layer(self, "deps"), layer(self, "core")],
            environment=environment,
            memory_mb=3008,
            timeout=cdk.Duration.minutes(15),
            description="sagewatch ingest: capture files, ground truth and Parquet drops into the lake",
        )
        function = self.ingest.function
        function.add_event_source(
            sources.SqsEventSource(
                self.queues["ingest"],
                batch_size=10,
                max_batching_window=cdk.Duration.seconds(5),
                report_batch_item_failures=True,
                # The poller never runs more than this many at once, so messages wait in the queue
                # rather than being throttled (a throttled receive counts toward the dead-letter
                # queue). Reserved concurrency would also take this many from an account whose
                # quota may be 10, failing the deploy.
                max_concurrency=int(self.node.try_get_context("ingestConcurrency") or DEFAULT_CONCURRENCY),
            )
        )
        for name in ("models", "idempotency"):
            storage.tables[name].grant_read_write_data(function)
        self.ingest.grant_objects(storage.data, write=True)
        self.ingest.grant_objects(self.capture)
        key_arn = self.node.try_get_context("captureKmsKeyArn")
        if key_arn:  # Data Capture written with a KMS key (DataCaptureConfig.KmsKeyId) must be decrypted
            function.add_to_role_policy(iam.PolicyStatement(actions=["kms:Decrypt"], resources=[key_arn]))
        cdk.CfnOutput(self, "capture-bucket-name", value=self.capture.bucket_name)
        cdk.CfnOutput(self, "capture-prefix", value=prefix or "(the whole bucket)")
