"""The storage stack: every declared table, bucket, queue and S3 notification."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from infra.declared import DeclaredResources


class StorageStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.resources = DeclaredResources(self, "declared")
        for logical, bucket in self.resources.buckets.items():
            cdk.CfnOutput(self, f"{logical}-bucket-name", value=bucket.bucket_name)
        for logical, table in self.resources.tables.items():
            cdk.CfnOutput(self, f"{logical}-table-name", value=table.table_name)
