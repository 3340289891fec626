"""The storage stack: the tables, the data lake, and Glue/Athena over the lake.

The Glue database holds three tables over every model's identity columns (LAKE_COLUMNS, partition
projection on model_id and date: ad hoc queries across models) and, created at run time by the api
function (sagewatch.stores.catalog), a table per model and area carrying every attribute, typed,
which the query API runs windows past its limit on (sagewatch.services.monitoring.SQL_ROWS).
"""

from __future__ import annotations

import re

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra import declared
from sagewatch.resources import DECLARATION
from sagewatch.stores.athena import WORKGROUP_ENV
from sagewatch.stores.catalog import AREAS, DATABASE_ENV

DATABASE = "sagewatch"  # the Glue database (sagewatch.stores.catalog names its tables in it)
# Partial aggregates (stores/partials.py) are derived from the lake and only read by evaluator runs
# for windows within a day, at most MAX_CATCH_UP lookbacks back: one older than this is made again
# from the lake's files if a run ever asks for it.
PARTIALS_KEPT_DAYS = 14
# With the context value retentionDays (`cdk deploy -c retentionDays=400`), what a model's history is
# made of expires that many days after it was written: its inferences and their id indexes, and its
# ground truth (labels/, ground_truth/). Without it, history is kept for ever. The reference set,
# the ledger's counters and alerts are kept either way.
RETAINED_AREAS = ("inferences/", "inference_ids/", "labels/", "ground_truth/")
WORKGROUP = "sagewatch"  # the Athena workgroup (results location and encryption enforced)

# Columns every lake row has, whatever the model (attributes vary per model and are read by name).
LAKE_COLUMNS = {
    "inferences": [
        ("partner_inference_id", "string"),
        ("inference_timestamp", "timestamp"),
        ("batch_id", "string"),
        ("source", "string"),
        ("variant", "string"),
        ("ingested_at", "timestamp"),
    ],
    # Ground truth is filed in two areas (sagewatch.stores.lake): labels/ by the day of the inference
    # it labels, ground_truth/ by its own day when that inference was not found as it arrived.
    "labels": [
        ("partner_inference_id", "string"),
        ("ground_truth_timestamp", "timestamp"),
        ("source", "string"),
        ("ingested_at", "timestamp"),
    ],
    "ground_truth": [
        ("partner_inference_id", "string"),
        ("ground_truth_timestamp", "timestamp"),
        ("source", "string"),
        ("ingested_at", "timestamp"),
    ],
}


def retention_days(value: object) -> int | None:
    """The context value retentionDays as a number of days (None: not set, history kept for ever);
    anything but a whole number of days from 1 on stops the synthesis, naming the value."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not re.fullmatch(r"[0-9]+", text) or int(text) < 1:  # ASCII digits: str.isdigit takes "²", "٣"
        raise ValueError(
            f"the context value retentionDays must be a whole number of days, 1 or more: got {value!r}"
        )
    return int(text)


def history_rules(days: int | None, prefixes: tuple[str, ...]) -> list[s3.LifecycleRule]:
    """Lifecycle rules expiring each prefix `days` after its objects were written (none when None)."""
    if days is None:
        return []
    return [
        s3.LifecycleRule(
            id=f"history-{prefix.strip('/').replace('_', '-') or 'all'}",
            prefix=prefix,
            expiration=cdk.Duration.days(days),
        )
        for prefix in prefixes
    ]


# A versioned bucket's expired object leaves a delete marker once its old version is gone: removed,
# so listings do not wade through them.
DELETE_MARKERS = s3.LifecycleRule(id="expired-delete-markers", expired_object_delete_marker=True)
OLD_VERSIONS = s3.LifecycleRule(id="old-versions", noncurrent_version_expiration=cdk.Duration.days(30))


class StorageStack(cdk.Stack):
    """Context: retentionDays (how long a model's inferences and ground truth are kept; RETAINED_AREAS)."""

    def __init__(self, scope: Construct, construct_id: str, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.retention_days = retention_days(self.node.try_get_context("retentionDays"))
        self.tables: dict[str, dynamodb.Table] = {t.name: declared.table(self, t) for t in DECLARATION.tables}
        self.access_logs = declared.access_log_bucket(self)
        self.data = declared.bucket(
            self,
            "data",
            self.access_logs,
            lifecycle=[
                s3.LifecycleRule(id="rejected-rows", prefix="rejected/", expiration=cdk.Duration.days(90)),
                s3.LifecycleRule(id="ingested-drops", prefix="drops/", expiration=cdk.Duration.days(30)),
                s3.LifecycleRule(
                    id="partial-aggregates",
                    prefix="partials/",
                    expiration=cdk.Duration.days(PARTIALS_KEPT_DAYS),
                ),
                *history_rules(self.retention_days, RETAINED_AREAS),
                OLD_VERSIONS,
                DELETE_MARKERS,
            ],
        )
        self._catalog()
        for logical, table in self.tables.items():
            cdk.CfnOutput(self, f"{logical}-table-name", value=table.table_name)
        cdk.CfnOutput(self, "data-bucket-name", value=self.data.bucket_name)

    def environment(self) -> dict[str, str]:
        """Environment variables naming the storage resources for sagewatch's settings."""
        names = {t.env_var: self.tables[t.name].table_name for t in DECLARATION.tables}
        names[DECLARATION.bucket("data").env_var] = self.data.bucket_name
        names[DATABASE_ENV] = DATABASE
        names[WORKGROUP_ENV] = WORKGROUP
        return names

    def grant_queries(self, function: lambda_.IFunction) -> None:
        """Let a function run the query API's SQL: keep each model's Glue tables (create, update,
        delete, read), run queries in the workgroup, write and read its results, and let Athena
        read the lake with the function's credentials (GetObject and ListBucket: grant_objects)."""
        region, account, partition = self.region, self.account, self.partition
        glue_arn = f"arn:{partition}:glue:{region}:{account}"
        model_tables = [f"{glue_arn}:table/{DATABASE}/{area}__*" for area in AREAS]
        statements = [
            iam.PolicyStatement(
                actions=[
                    "glue:GetDatabase",
                    "glue:GetTable",
                    "glue:CreateTable",
                    "glue:UpdateTable",
                    "glue:DeleteTable",
                ],
                resources=[f"{glue_arn}:catalog", f"{glue_arn}:database/{DATABASE}", *model_tables],
            ),
            iam.PolicyStatement(
                actions=[
                    "athena:StartQueryExecution",
                    "athena:GetQueryExecution",
                    "athena:GetQueryResults",
                    "athena:StopQueryExecution",
                ],
                resources=[f"arn:{partition}:athena:{region}:{account}:workgroup/{WORKGROUP}"],
            ),
            iam.PolicyStatement(
                actions=["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                resources=[self.athena_results.bucket_arn],
            ),
            iam.PolicyStatement(
                actions=[
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                resources=[self.athena_results.arn_for_objects("*")],
            ),
            iam.PolicyStatement(actions=["s3:GetBucketLocation"], resources=[self.data.bucket_arn]),
        ]
        for statement in statements:
            function.add_to_role_policy(statement)
        if function.role is not None:
            NagSuppressions.add_resource_suppressions(
                function.role,
                [
                    NagPackSuppression(
                        id="AwsSolutions-IAM5",
                        reason="Glue tables of the sagewatch database named <area>__<model> (one per model "
                        "and lake area, created as models are registered: sagewatch.stores.catalog); "
                        "the actions are listed, never wildcards.",
                        applies_to=[
                            {
                                "regex": f"/^Resource::arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table/{DATABASE}/[a-z_]+__\\*$/"
                            }
                        ],
                    )
                ],
                apply_to_children=True,
            )

    def _catalog(self) -> None:
        """A Glue database and tables with partition projection (model_id, date) and an Athena workgroup."""
        database = glue.CfnDatabase(
            self,
            "lake-database",
            catalog_id=self.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=DATABASE, description="sagewatch's lake"
            ),
        )
        for area, columns in LAKE_COLUMNS.items():
            location = f"s3://{self.data.bucket_name}/{area}/"
            table = glue.CfnTable(
                self,
                f"{area}-table-glue",
                catalog_id=self.account,
                database_name=DATABASE,
                table_input=glue.CfnTable.TableInputProperty(
                    name=area,
                    table_type="EXTERNAL_TABLE",
                    parameters={
                        "classification": "parquet",
                        "projection.enabled": "true",
                        "projection.model_id.type": "injected",
                        "projection.date.type": "date",
                        "projection.date.format": "yyyy-MM-dd",
                        "projection.date.range": "2020-01-01,NOW",
                        "projection.date.interval": "1",
                        "projection.date.interval.unit": "DAYS",
                        "storage.location.template": f"{location}model_id=${{model_id}}/date=${{date}}/",
                    },
                    partition_keys=[
                        glue.CfnTable.ColumnProperty(name="model_id", type="string"),
                        glue.CfnTable.ColumnProperty(name="date", type="string"),
                    ],
                    storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                        location=location,
                        columns=[glue.CfnTable.ColumnProperty(name=n, type=t) for n, t in columns],
                        input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                        output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                        serde_info=glue.CfnTable.SerdeInfoProperty(
                            serialization_library="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                        ),
                    ),
                ),
            )
            table.add_dependency(database)
        self.athena_results = declared.bucket(
            self,
            "athena-results",
            self.access_logs,
            # results hold the rows queries answered: their old versions go too (the bucket is versioned)
            lifecycle=[
                s3.LifecycleRule(id="old-results", expiration=cdk.Duration.days(30)),
                OLD_VERSIONS,
                DELETE_MARKERS,
            ],
        )
        athena.CfnWorkGroup(
            self,
            "workgroup",
            name=WORKGROUP,
            description="sagewatch: the query API's windows past what its Lambda holds, and ad hoc queries",
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                # the Trino dialect sagewatch.metrics.sql writes (Athena engine version 3)
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{self.athena_results.bucket_name}/",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                ),
            ),
        )
