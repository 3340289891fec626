"""The storage stack: the tables, the data lake, and Glue/Athena over the lake."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import declared
from sagewatch.resources import DECLARATION

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


class StorageStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.tables: dict[str, dynamodb.Table] = {t.name: declared.table(self, t) for t in DECLARATION.tables}
        self.access_logs = declared.access_log_bucket(self)
        self.data = declared.bucket(
            self,
            "data",
            self.access_logs,
            lifecycle=[
                s3.LifecycleRule(id="rejected-rows", prefix="rejected/", expiration=cdk.Duration.days(90)),
                s3.LifecycleRule(id="ingested-drops", prefix="drops/", expiration=cdk.Duration.days(30)),
                s3.LifecycleRule(id="old-versions", noncurrent_version_expiration=cdk.Duration.days(30)),
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
        return names

    def _catalog(self) -> None:
        """A Glue database and tables with partition projection (model_id, date) and an Athena workgroup."""
        database = glue.CfnDatabase(
            self,
            "lake-database",
            catalog_id=self.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name="sagewatch", description="sagewatch's lake"
            ),
        )
        for area, columns in LAKE_COLUMNS.items():
            location = f"s3://{self.data.bucket_name}/{area}/"
            table = glue.CfnTable(
                self,
                f"{area}-table-glue",
                catalog_id=self.account,
                database_name="sagewatch",
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
            lifecycle=[s3.LifecycleRule(id="old-results", expiration=cdk.Duration.days(30))],
        )
        athena.CfnWorkGroup(
            self,
            "workgroup",
            name="sagewatch",
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{self.athena_results.bucket_name}/",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                ),
            ),
        )
