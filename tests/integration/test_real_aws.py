"""Faults a deployed sagewatch would meet on real AWS and moto forgives (issue 15), each kept caught.

Listings page at S3's 1,000 keys (here a page size small enough to cross in a test); the api
handler runs with only the Lambda layers' packages importable (tests/conftest.py)."""

from __future__ import annotations

import importlib
import json
import tempfile
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
from tests import factories
from tests.conftest import Call
from tests.lake import notifications

from sagewatch import aws as sagewatch_aws
from sagewatch import container, streams
from sagewatch.handlers.ingest import handler
from sagewatch.local.http_bridge import LocalContext
from sagewatch.schema import ModelSpec
from sagewatch.services import ingestion
from sagewatch.stores.lake import LakeStore
from sagewatch.stores.window import LakeWindow
from sagewatch.tables import ground_truth_schema, inference_schema

DAYS = [date(2026, 1, 1) + timedelta(days=d) for d in range(12)]


def lake_with_days(files_per_day: int = 4) -> tuple[object, LakeStore]:
    """A model whose lake holds `files_per_day` files on each of DAYS, listed 3 keys a page."""
    model = container.model_store().create(ModelSpec.model_validate(factories.binary_probability()))
    lake = LakeStore(container.lake_store().bucket, page_size=3)
    schema = inference_schema(model)
    for day in DAYS:
        moment = datetime.combine(day, datetime.min.time(), UTC)
        for part in range(files_per_day):
            rows = {f.name: pa.nulls(1, f.type) for f in schema}
            rows["partner_inference_id"] = pa.array([f"{day}-{part}"])
            rows["inference_timestamp"] = pa.array([moment], schema.field("inference_timestamp").type)
            table = pa.Table.from_arrays([rows[f.name] for f in schema], schema=schema)
            lake.write_rows("inferences", model.id, table, "inference_timestamp", f"file-{part}")
    return model, lake


def listings() -> list[dict]:
    calls: list[dict] = []
    sagewatch_aws.client("s3").meta.events.register(
        "provide-client-params.s3.ListObjectsV2", lambda params, **_: calls.append(dict(params))
    )
    return calls


def test_a_window_lists_only_its_own_days_and_every_page_of_them(aws: dict[str, str]) -> None:
    model, lake = lake_with_days()
    calls = listings()
    tables = LakeWindow(lake, model).inferences(["partner_inference_id"], DAYS[-2], DAYS[-1])
    ids = sorted(i for t in tables for i in t.column("partner_inference_id").to_pylist())
    assert ids == sorted(f"{day}-{part}" for day in DAYS[-2:] for part in range(4))
    # 8 keys at 3 a page: 3 pages, starting at the window's first day, not at the model's first
    assert len(calls) == 3
    assert calls[0]["StartAfter"].endswith(f"date={DAYS[-2].isoformat()}")


def test_nothing_past_a_page_or_any_count_is_left_out(aws: dict[str, str]) -> None:
    """The listing was cut at 100,000 keys, ascending: past it, the newest days vanished."""
    model, lake = lake_with_days()
    everything = LakeWindow(lake, model).inferences(["partner_inference_id"])
    assert sum(t.num_rows for t in everything) == len(DAYS) * 4
    newest = LakeWindow(lake, model).inferences(["partner_inference_id"], DAYS[-1], None)
    assert sorted(i for t in newest for i in t.column("partner_inference_id").to_pylist()) == [
        f"{DAYS[-1]}-{part}" for part in range(4)
    ]


def test_deepchecks_data_comes_back_without_pandas(api: Call) -> None:
    """get-prod-data and get-ref-data used DataFrame.to_json: pandas is not in the Lambda layer."""
    model = api("POST", "/api/v1/models", {"name": "dc", "task_type": "binary"}).body
    assert (
        api(
            "POST",
            f"/api/v1/models/{model['id']}/version",
            {"name": "v1", "features": {"x": "numeric"}, "classes": ["a", "b"]},
        ).status
        == 200
    )
    version = api("GET", "/api/v1/models/dc/model-versions/v1").body
    sample = {"_dc_sample_id": "s1", "_dc_time": "2026-11-24T10:00:00Z", "x": 1.5, "_dc_prediction": "a"}
    assert api("POST", f"/api/v1/model-versions/{version['id']}/data", [sample]).status == 200
    answer = api("POST", f"/api/v1/model-versions/{version['id']}/get-prod-data", {"rows_count": 10})
    assert answer.status == 200, answer.body
    [row] = json.loads(answer.body)
    assert (row["_dc_sample_id"], row["x"]) == ("s1", 1.5)
    assert datetime.fromisoformat(row["_dc_time"].replace("Z", "+00:00")) == datetime(
        2026, 11, 24, 10, tzinfo=UTC
    )
    assert (
        api("POST", f"/api/v1/model-versions/{version['id']}/get-ref-data", {"rows_count": 10}).status == 200
    )


def test_a_parquet_drop_streams_from_s3_without_local_disk(aws: dict[str, str], monkeypatch) -> None:
    """Drops were spooled to /tmp (512 MB in Lambda): a larger file failed. They are read by range."""
    monkeypatch.setattr(ingestion, "CHUNK_BYTES", 64 * 1024)  # small ranges, as a large file would get

    monkeypatch.setattr(streams, "CHUNK_BYTES", 64 * 1024)

    def no_disk(*args, **kwargs):
        raise AssertionError("the ingest wrote a local file")

    monkeypatch.setattr(tempfile, "TemporaryFile", no_disk)
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", no_disk)
    model = container.model_store().create(ModelSpec.model_validate(factories.binary_probability()))
    count = 60_000
    table = pa.table(
        {
            "partner_inference_id": [f"p-{i}" for i in range(count)],
            "inference_timestamp": pa.array([datetime(2026, 11, 25, tzinfo=UTC)] * count),
            "age": pa.array(range(count)),
            "income": pa.array([float(i) for i in range(count)]),
        }
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=10_000, compression="none")
    body = sink.getvalue().to_pybytes()
    ranges = []
    sagewatch_aws.client("s3").meta.events.register(
        "provide-client-params.s3.GetObject", lambda params, **_: ranges.append(params.get("Range"))
    )
    sagewatch_aws.client("s3").put_object(
        Bucket=aws["data"], Key=f"drops/{model.id}/inferences/big.parquet", Body=body
    )
    assert handler(notifications(aws), LocalContext()) == {"batchItemFailures": []}
    assert container.ingestion_ledger().counts(model.id)["total"]["inferences_ingested"] == count
    assert len(ranges) > 2 and all(r and r.startswith("bytes=") for r in ranges)


def test_a_window_reads_the_ground_truth_received_since_shortly_before_it(aws: dict[str, str]) -> None:
    """Every ground-truth file ever received was read for every labelled query."""
    model, lake = lake_with_days(files_per_day=1)
    schema = ground_truth_schema(model)
    for day in (DAYS[0] - timedelta(days=60), DAYS[-1]):  # long before the window, and in it
        moment = datetime.combine(day, datetime.min.time(), UTC)
        label = {f.name: pa.nulls(1, f.type) for f in schema}
        label["partner_inference_id"] = pa.array([f"{DAYS[-1]}-0"])
        label["ground_truth_timestamp"] = pa.array([moment], schema.field("ground_truth_timestamp").type)
        label["churned"] = pa.array([1 if day == DAYS[-1] else 0])
        lake.write_rows(
            "ground_truth",
            model.id,
            pa.Table.from_arrays([label[f.name] for f in schema], schema=schema),
            "ground_truth_timestamp",
            "labels",
        )
    reads: list[str] = []
    sagewatch_aws.client("s3").meta.events.register(
        "provide-client-params.s3.GetObject", lambda params, **_: reads.append(params["Key"])
    )
    [table] = LakeWindow(lake, model).inferences(
        ["partner_inference_id"], DAYS[-1], DAYS[-1], with_ground_truth=True
    )
    assert table.column("churned").to_pylist() == [1]
    assert [k for k in reads if k.startswith("ground_truth/")] == [
        k for k in lake.keys(f"ground_truth/model_id={model.id}/") if str(DAYS[-1]) in k
    ]


def test_an_answer_larger_than_a_lambda_returns_is_a_413_saying_how_to_ask_for_less(
    api: Call, monkeypatch
) -> None:
    """Lambda refuses responses over 6 MB (API Gateway then answers a bare 500)."""
    app = importlib.import_module("sagewatch.handlers.api")

    model_id = api("POST", "/api/v3/models", factories.binary_probability()).body["id"]
    rows = [{"inference_data": {"age": i, "region": "north" * 20}} for i in range(200)]
    assert api("POST", f"/api/v3/models/{model_id}/inferences", rows).status == 207
    monkeypatch.setattr(app, "MAX_RESPONSE_BYTES", 10_000)  # stands for 6 MB
    answer = api("POST", f"/api/v3/models/{model_id}/inferences/query", {"select": [{"property": "*"}]})
    assert answer.status == 413 and "ask for less" in answer.body["message"]
    small = api("POST", f"/api/v3/models/{model_id}/inferences/query", {"select": [{"function": "count"}]})
    assert small.status == 200
