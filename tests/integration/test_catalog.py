"""Each model's Glue tables (sagewatch.stores.catalog) through the real API under moto: one per lake
area, typed as the Parquet files the lake really holds, following the model's schema."""

from __future__ import annotations

import io

import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError
from tests import factories
from tests.conftest import Call
from tests.inputs import records, register

from sagewatch import aws as sagewatch_aws
from sagewatch import container
from sagewatch.stores import catalog
from sagewatch.stores.athena import AthenaEngine, AthenaStore

DATABASE = "sagewatch"
# Parquet's physical/logical types as Hive's, written out here (not taken from the code under test).
HIVE_OF_PARQUET = {
    ("INT64", "None"): "bigint",
    ("DOUBLE", "None"): "double",
    ("BOOLEAN", "None"): "boolean",
    ("BYTE_ARRAY", "String"): "string",
    (
        "INT64",
        "Timestamp(isAdjustedToUTC=true, timeUnit=microseconds, is_from_converted_type=false, force_set_converted_type=false)",
    ): "timestamp",
}


@pytest.fixture
def glue(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(catalog.DATABASE_ENV, DATABASE)
    client = sagewatch_aws.client("glue")
    client.create_database(DatabaseInput={"Name": DATABASE})
    return client


def _columns(glue, name: str) -> list[tuple[str, str]]:
    table = glue.get_table(DatabaseName=DATABASE, Name=name)["Table"]
    return [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]


def _parquet_columns(aws: dict[str, str], prefix: str) -> tuple[str, list[tuple[str, str]]]:
    s3 = sagewatch_aws.client("s3")
    key = s3.list_objects_v2(Bucket=aws["data"], Prefix=prefix)["Contents"][0]["Key"]
    body = s3.get_object(Bucket=aws["data"], Key=key)["Body"].read()
    schema = pq.ParquetFile(io.BytesIO(body)).schema
    columns = [
        (
            schema.column(i).name,
            HIVE_OF_PARQUET[(schema.column(i).physical_type, str(schema.column(i).logical_type))],
        )
        for i in range(len(schema))
    ]
    return key, columns


def test_registering_a_model_makes_a_table_per_area_typed_as_its_lake_files(
    api: Call, glue, aws: dict[str, str], upload
) -> None:
    model_id = register(api)
    sent = records(20, seed=1)
    assert api("POST", f"/api/v3/models/{model_id}/inferences", sent).status == 207
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName=DATABASE)["TableList"]}
    key = catalog.model_key(model_id)
    assert set(tables) == {f"{area}__{key}" for area in ("inferences", "labels", "ground_truth", "reference")}

    written, columns = _parquet_columns(aws, f"inferences/model_id={model_id}/")
    inferences = tables[f"inferences__{key}"]
    assert _columns(glue, f"inferences__{key}") == columns
    assert [p["Name"] for p in inferences["PartitionKeys"]] == ["date"]
    # the projected location of the file's day is the folder the lake wrote it in
    day = written.split("date=")[1].split("/")[0]
    template = inferences["Parameters"]["storage.location.template"]
    assert f"s3://{aws['data']}/{written.rsplit('/', 1)[0]}/" == template.replace("${date}", day)
    assert (
        inferences["StorageDescriptor"]["Location"] == f"s3://{aws['data']}/inferences/model_id={model_id}/"
    )
    assert inferences["Parameters"]["projection.enabled"] == "true"

    _, labels = _parquet_columns(aws, f"labels/model_id={model_id}/")
    assert _columns(glue, f"labels__{key}") == labels == _columns(glue, f"ground_truth__{key}")
    reference = tables[f"reference__{key}"]
    assert reference["PartitionKeys"] == []
    assert reference["StorageDescriptor"]["Location"] == f"s3://{aws['data']}/reference/model_id={model_id}/"


def test_a_replaced_schema_updates_the_tables_and_a_date_attribute_gets_none(api: Call, glue) -> None:
    body = factories.binary_probability()
    model_id = register(api, body)
    key = catalog.model_key(model_id)
    grown = factories.edited(body)
    grown["attributes"].append({"name": "tenure", "stage": "NON_INPUT_DATA", "value_type": "INTEGER"})
    assert api("PUT", f"/api/v3/models/{model_id}", grown).status == 200
    assert ("tenure", "bigint") in _columns(glue, f"inferences__{key}")
    assert ("tenure", "bigint") in _columns(glue, f"reference__{key}")
    table = glue.get_table(DatabaseName=DATABASE, Name=f"inferences__{key}")["Table"]
    assert table["Parameters"][catalog.VERSION_PARAMETER] == "2"

    dated = factories.edited(body, partner_model_id="dated")
    dated["attributes"].append({"name": "Date", "stage": "NON_INPUT_DATA", "value_type": "STRING"})
    other = register(api, dated)
    names = {t["Name"] for t in glue.get_tables(DatabaseName=DATABASE)["TableList"]}
    assert not any(n.endswith(catalog.model_key(other)) for n in names)


def test_drop_removes_a_models_tables_and_odd_ids_get_distinct_names(glue, aws: dict[str, str]) -> None:
    store = catalog.CatalogStore(DATABASE, aws["data"])
    plain, odd = factories.model_of(model_id="a-b"), factories.model_of(model_id="A/b")
    store.put(plain)
    store.put(odd)
    assert catalog.model_key("a-b") != catalog.model_key("A/b")
    assert store.current(plain) and store.current(odd)
    store.drop(plain.id)
    names = {t["Name"] for t in glue.get_tables(DatabaseName=DATABASE)["TableList"]}
    assert names == {f"{area}__{catalog.model_key('A/b')}" for area in catalog.AREAS}
    assert not store.current(plain)
    store.drop(plain.id)  # nothing left to drop: no error


def test_glue_refusing_does_not_refuse_the_model_and_the_first_query_makes_its_tables(
    api: Call, aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(catalog.DATABASE_ENV, DATABASE)  # named, but not there yet: Glue refuses
    model_id = register(api)
    glue = sagewatch_aws.client("glue")
    glue.create_database(DatabaseInput={"Name": DATABASE})
    assert glue.get_tables(DatabaseName=DATABASE)["TableList"] == []
    engine = AthenaEngine(AthenaStore("sagewatch"), catalog.CatalogStore(DATABASE, aws["data"]))
    tables = engine.tables(container.model_store().get(model_id))
    key = catalog.model_key(model_id)
    assert tables.inferences == f'"{DATABASE}"."inferences__{key}"'
    assert {t["Name"] for t in glue.get_tables(DatabaseName=DATABASE)["TableList"]} == {
        f"{area}__{key}" for area in catalog.AREAS
    }


def test_a_table_glue_refused_at_registration_is_made_by_the_first_query(
    api: Call, glue, aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Glue refusing one area (a throttle) still makes the others, and the first query makes it."""
    container.reset()
    store = container.registry().catalog
    assert store is not None
    real = store.client.create_table

    def throttled(**arguments):
        if arguments["TableInput"]["Name"].startswith("labels__"):
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "CreateTable"
            )
        return real(**arguments)

    monkeypatch.setattr(store.client, "create_table", throttled)
    model_id = register(api)
    monkeypatch.setattr(store.client, "create_table", real)
    key = catalog.model_key(model_id)
    names = {t["Name"] for t in glue.get_tables(DatabaseName=DATABASE)["TableList"]}
    assert names == {f"{area}__{key}" for area in ("inferences", "ground_truth", "reference")}
    model = container.model_store().get(model_id)
    assert not store.current(model)
    AthenaEngine(AthenaStore("sagewatch"), store).tables(model)  # what a query past the limit does
    names = {t["Name"] for t in glue.get_tables(DatabaseName=DATABASE)["TableList"]}
    assert names == {f"{area}__{key}" for area in catalog.AREAS}
    assert store.current(model)
