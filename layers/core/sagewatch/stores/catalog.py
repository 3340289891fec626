"""CatalogStore: a Glue table per model and lake area, typed from the model's attributes, for Athena.

Layout: one table per (model, area) in the stack's Glue database, named `<area>__<model key>`
(`table_name`): a model's attributes have their own names and types, which a table shared by every
model could not type (the same name may be an INTEGER in one model and a STRING in another). Each
table's location is the model's prefix of its area (`<area>/model_id=<id>/`, sagewatch.stores.lake),
its columns are the ones the lake's writers put in its Parquet files (sagewatch.tables and
records.reference_schema, so Athena reads what is there), and its partition column `date` is
projected (`date=<YYYY-MM-DD>/` folders over the lake's whole time range), so no crawler or
partition listing is ever needed. `reference/` has no day folders: its table has no partitions
(Athena skips `_anomaly/`, as it skips any name starting with `_`).

The tables follow the model: created when it is registered, updated when its schema is replaced
(each table records the model version it follows, so a model registered another way, or before
the tables existed, gets them at its first SQL query: `current`), dropped by `drop`. A model with an attribute named `date` (the partition column) gets no tables:
its queries stay on the in-Lambda engine (`queryable`).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pyarrow as pa
from botocore.exceptions import ClientError

from sagewatch import aws
from sagewatch.records import reference_schema
from sagewatch.schema import Model
from sagewatch.settings import Settings
from sagewatch.stores.dynamo import error_code
from sagewatch.tables import ground_truth_schema, inference_schema
from sagewatch.values import TIME_RANGE

# The environment variable naming the Glue database (set by the storage stack on every function).
DATABASE_ENV = "SAGEWATCH_GLUE_DATABASE"
AREAS = ("inferences", "labels", "ground_truth", "reference")
PARTITION = "date"
VERSION_PARAMETER = "sagewatch.model_version"  # the model version a table's columns follow
# Projected days: the lake's whole time range (sagewatch.values.TIME_RANGE), so no row is out of
# reach; a query names its days (the SQL prunes on `date`), so only those are listed.
DATE_RANGE = f"{TIME_RANGE[0].date().isoformat()},{(TIME_RANGE[1] - timedelta(days=1)).date().isoformat()}"
# Glue/Hive types of the Arrow types the lake's writers use (sagewatch.values.ARROW_TYPES).
_HIVE_TYPES = {
    pa.int64(): "bigint",
    pa.float64(): "double",
    pa.bool_(): "boolean",
    pa.string(): "string",
}
_PLAIN_ID = re.compile(r"^[a-z0-9-]{1,200}$")
_PARQUET = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
}


def model_key(model_id: str) -> str:
    """The model's part of its table names: its id with `-` as `_` when the id is lowercase letters,
    digits and dashes (a UUID), else `x` and a digest of it (Glue names are lowercase `[a-z0-9_]`)."""
    if _PLAIN_ID.match(model_id):
        return model_id.replace("-", "_")
    return "x" + hashlib.sha256(model_id.encode()).hexdigest()[:32]


def table_name(model_id: str, area: str) -> str:
    """The Glue table of a model's area."""
    return f"{area}__{model_key(model_id)}"


def hive_type(data_type: pa.DataType) -> str:
    """The Glue column type of an Arrow type the lake writes (timestamps of any unit: `timestamp`)."""
    if pa.types.is_timestamp(data_type):
        return "timestamp"
    return _HIVE_TYPES[data_type]


def area_schema(model: Model, area: str) -> pa.Schema:
    """The columns the lake's writers put in a model's files of `area`."""
    if area == "inferences":
        return inference_schema(model)
    if area in ("labels", "ground_truth"):
        return ground_truth_schema(model)
    return reference_schema(model)


def queryable(model: Model) -> bool:
    """Whether the model's tables can exist: no attribute is named as the partition column."""
    return all(a.name.lower() != PARTITION for a in model.attributes)


class CatalogStore:
    """The Glue tables of every model (see the module docstring)."""

    def __init__(self, database: str, bucket: str, client: Any = None) -> None:
        self.database, self.bucket = database, bucket
        self._client = client

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, environ: Mapping[str, str] | None = None
    ) -> CatalogStore | None:
        """The stack's catalog, or None where no Glue database is configured (local mode, tests)."""
        database = (os.environ if environ is None else environ).get(DATABASE_ENV)
        if not database:
            return None
        return cls(database, (settings or Settings.from_env()).name("data"))

    @property
    def client(self) -> Any:
        return self._client or aws.client("glue")

    def relations(self, model_id: str) -> dict[str, str]:
        """The model's tables by area as SQL names them (database-qualified, quoted)."""
        return {area: f'"{self.database}"."{table_name(model_id, area)}"' for area in AREAS}

    def table_input(self, model: Model, area: str) -> dict[str, Any]:
        """CreateTable/UpdateTable's TableInput for a model's area."""
        location = f"s3://{self.bucket}/{area}/model_id={model.id}/"
        columns = [{"Name": f.name, "Type": hive_type(f.type)} for f in area_schema(model, area)]
        parameters = {
            "classification": "parquet",
            "sagewatch.model_id": model.id,
            VERSION_PARAMETER: str(model.version),
        }
        partitions: list[dict[str, str]] = []
        if area != "reference":
            partitions = [{"Name": PARTITION, "Type": "string"}]
            parameters |= {
                "projection.enabled": "true",
                "projection.date.type": "date",
                "projection.date.format": "yyyy-MM-dd",
                "projection.date.range": DATE_RANGE,
                "projection.date.interval": "1",
                "projection.date.interval.unit": "DAYS",
                "storage.location.template": f"{location}{PARTITION}=${{{PARTITION}}}/",
            }
        return {
            "Name": table_name(model.id, area),
            "Description": f"sagewatch {area} of model {model.id} ({model.partner_model_id})",
            "TableType": "EXTERNAL_TABLE",
            "Parameters": parameters,
            "PartitionKeys": partitions,
            "StorageDescriptor": {"Columns": columns, "Location": location, **_PARQUET},
        }

    def put(self, model: Model) -> None:
        """Create the model's tables, or update them to its current schema. Every area is tried even
        when Glue refuses one (a throttle, a limit), so one refusal leaves no other table stale; the
        first refusal is raised after them (`current` then says False, and the next query retries)."""
        if not queryable(model):
            self.drop(model.id)
            return
        refused: list[ClientError] = []
        for area in AREAS:
            try:
                self._put_table(self.table_input(model, area))
            except ClientError as error:
                refused.append(error)
        if refused:
            raise refused[0]

    def _put_table(self, table: dict[str, Any]) -> None:
        try:
            self.client.create_table(DatabaseName=self.database, TableInput=table)
        except ClientError as error:
            if error_code(error) != "AlreadyExistsException":
                raise
            self.client.update_table(DatabaseName=self.database, TableInput=table)

    def drop(self, model_id: str) -> None:
        """Delete the model's tables (those that exist)."""
        for area in AREAS:
            try:
                self.client.delete_table(DatabaseName=self.database, Name=table_name(model_id, area))
            except ClientError as error:
                if error_code(error) != "EntityNotFoundException":
                    raise

    def current(self, model: Model) -> bool:
        """Whether every one of the model's tables exists and follows its current version (a GetTable
        per area, stopping at the first that does not: one refused at registration is made again)."""
        for area in AREAS:
            try:
                table = self.client.get_table(DatabaseName=self.database, Name=table_name(model.id, area))[
                    "Table"
                ]
            except ClientError as error:
                if error_code(error) == "EntityNotFoundException":
                    return False
                raise
            if table.get("Parameters", {}).get(VERSION_PARAMETER) != str(model.version):
                return False
        return True

    def columns(self, model_id: str, area: str) -> list[tuple[str, str]] | None:
        """A table's columns (name, type) as Glue holds them, partitions last; None without the table."""
        try:
            table = self.client.get_table(DatabaseName=self.database, Name=table_name(model_id, area))[
                "Table"
            ]
        except ClientError as error:
            if error_code(error) == "EntityNotFoundException":
                return None
            raise
        found = [*table["StorageDescriptor"]["Columns"], *table.get("PartitionKeys", [])]
        return [(c["Name"], c["Type"]) for c in found]
