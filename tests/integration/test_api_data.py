"""Every other way data arrives, through the real api handler and the ingest Lambda on moto."""

from __future__ import annotations

import base64
import io
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests import factories
from tests.conftest import Call
from tests.inputs import record, register
from tests.lake import lake_rows, notifications

from sagewatch import aws as sagewatch_aws
from sagewatch import container
from sagewatch.api import inferences
from sagewatch.handlers.ingest import handler
from sagewatch.local.http_bridge import LocalContext, proxy_event
from sagewatch.services import ingestion
from sagewatch.stores.lake import GROUND_TRUTH_AREAS
from sagewatch.tables import latest_ground_truth

EVENTS = Path(__file__).resolve().parents[2] / "events"


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


# -- POST /inferences -------------------------------------------------------------------------------


def test_one_bad_row_fails_alone_with_a_message_naming_the_attribute(api: Call) -> None:
    # GIVEN a model and five records, three of them wrong in different ways
    model_id = register(api)
    sent = [
        record(partner_inference_id="good-1", inference_timestamp="2026-11-25T10:00:00Z"),
        record(age="thirty", partner_inference_id="bad-age"),
        record(partner_inference_id="good-2", inference_timestamp="2026-11-25T10:01:00Z"),
        {"partner_inference_id": "bad-field", "inference_data": {"age": 1, "colour": "red"}},
        record(partner_inference_id="bad-time", inference_timestamp="tomorrow"),
    ]

    # WHEN they are posted together
    answer = api("POST", f"/api/v3/models/{model_id}/inferences", sent)

    # THEN each bad row fails alone with a message naming its attribute
    assert answer.status == 207
    assert answer.body["counts"] == {"success": 2, "failure": 3, "total": 5}
    assert [(r["partner_inference_id"], r["status"], r["message"]) for r in answer.body["results"]] == [
        ("good-1", 200, "success"),
        ("bad-age", 400, "age: 'thirty' is not an INTEGER"),
        ("good-2", 200, "success"),
        ("bad-field", 400, "unknown attribute 'colour'"),
        ("bad-time", 400, "inference_timestamp: 'tomorrow' is not an ISO 8601 time"),
    ]

    # THEN only the good rows reach the lake; the bad ones are kept aside with their reason
    assert sorted(r["partner_inference_id"] for r in lake_rows("inferences", model_id)) == [
        "good-1",
        "good-2",
    ]
    reasons = {
        row["partner_inference_id"]: row["reason"] for row in container.lake_store().rejected(model_id)
    }
    assert reasons["bad-age"] == "age: 'thirty' is not an INTEGER"


def test_missing_ids_are_generated_and_missing_times_are_now(api: Call) -> None:
    model_id = register(api)
    before = datetime.now(UTC)
    answer = api("POST", f"/api/v3/models/{model_id}/inferences", [record(), record()])
    ids = [r["partner_inference_id"] for r in answer.body["results"]]
    assert len(set(ids)) == 2 and all(len(i) == 32 for i in ids)
    rows = lake_rows("inferences", model_id)
    assert sorted(r["partner_inference_id"] for r in rows) == sorted(ids)
    assert all(before <= r["inference_timestamp"] <= datetime.now(UTC) for r in rows)


def test_ground_truth_sent_with_the_inference(api: Call) -> None:
    model_id = register(api)
    api(
        "POST",
        f"/api/v3/models/{model_id}/inferences",
        [record(partner_inference_id="a", ground_truth_data={"churned": 1})],
    )
    assert [(r["partner_inference_id"], r["churned"]) for r in lake_rows("ground_truth", model_id)] == [
        ("a", 1)
    ]


def test_records_mixing_numbers_and_text_in_one_field(api: Call) -> None:
    model_id = register(api)
    answer = api(
        "POST",
        f"/api/v3/models/{model_id}/inferences",
        [record(age=31, partner_inference_id="n"), record(age="32", partner_inference_id="t"), "oops"],
    )
    assert [r["status"] for r in answer.body["results"]] == [200, 200, 400]
    assert answer.body["results"][2]["message"] == "the record is not a JSON object"
    assert sorted(r["age"] for r in lake_rows("inferences", model_id)) == [31, 32]


def test_a_batch_model_needs_a_batch_id(api: Call) -> None:
    model_id = register(api, factories.edited(factories.binary_probability("batchy"), is_batch=True))
    answer = api("POST", f"/api/v3/models/{model_id}/inferences", [record(), record(batch_id="b1")])
    assert [r["message"] for r in answer.body["results"]] == [
        "batch_id is required: the model is a batch model",
        "success",
    ]


def test_archived_models_accept_no_data(api: Call) -> None:
    model_id = register(api)
    api("DELETE", f"/api/v3/models/{model_id}")
    refused = api("POST", f"/api/v3/models/{model_id}/inferences", [record()])
    assert refused.status == 409 and "archived" in refused.body["message"]


def test_a_body_that_is_not_a_list_is_a_400(api: Call) -> None:
    model_id = register(api)
    assert api("POST", f"/api/v3/models/{model_id}/inferences", {"inference_data": {}}).status == 400


# -- duplicates and ground truth policy -------------------------------------------------------------


def test_ground_truth_before_its_inference(api: Call) -> None:
    # GIVEN a model
    model_id = register(api)

    # WHEN a label arrives before its inference
    early = api(
        "PATCH",
        f"/api/v3/models/{model_id}/inferences",
        [{"partner_inference_id": "later", "ground_truth_data": {"churned": 1}}],
    )

    # THEN it is accepted but counts for nothing yet
    assert early.body["counts"] == {"success": 1, "failure": 0, "total": 1}
    status = api("GET", f"/api/v3/models/{model_id}/inferences/status").body
    assert (status["total"], status["with_ground_truth"], status["labelled_ratio"]) == (0, 0, None)

    # WHEN its inference arrives, with an unlabelled one
    api(
        "POST",
        f"/api/v3/models/{model_id}/inferences",
        [record(partner_inference_id="later"), record(partner_inference_id="unlabelled")],
    )

    # THEN the labelled one counts: half of the inferences are labelled
    status = api("GET", f"/api/v3/models/{model_id}/inferences/status").body
    assert (status["total"], status["with_ground_truth"], status["labelled_ratio"]) == (2, 1, 0.5)


def test_ground_truth_needs_an_id_and_a_value(api: Call) -> None:
    model_id = register(api)
    answer = api(
        "PATCH",
        f"/api/v3/models/{model_id}/ground_truth",
        [
            {"ground_truth_data": {"churned": 1}},
            {"partner_inference_id": "x", "ground_truth_data": {}},
            {"partner_inference_id": "y", "ground_truth_data": {"churned": "maybe"}},
        ],
    )
    assert [r["message"] for r in answer.body["results"]] == [
        "partner_inference_id is required for ground truth",
        "ground_truth_data holds no ground truth attribute",
        "churned: 'maybe' is not an INTEGER",
    ]


def test_the_latest_ground_truth_wins(api: Call) -> None:
    # GIVEN a model
    model_id = register(api)
    path = f"/api/v3/models/{model_id}/ground_truth"

    # WHEN a label for one inference is sent, then another one timed three hours earlier
    api(
        "PATCH",
        path,
        [
            {
                "partner_inference_id": "x",
                "ground_truth_timestamp": "2026-11-25T12:00:00Z",
                "ground_truth_data": {"churned": 1},
            }
        ],
    )
    api(
        "PATCH",
        path,
        [
            {
                "partner_inference_id": "x",
                "ground_truth_timestamp": "2026-11-25T09:00:00Z",
                "ground_truth_data": {"churned": 0},
            }
        ],
    )

    # THEN both are kept, and the one with the latest timestamp is the label
    table = container.lake_store().read_area(GROUND_TRUTH_AREAS, model_id)
    assert table.num_rows == 2
    assert latest_ground_truth(table).select(["partner_inference_id", "churned"]).to_pylist() == [
        {"partner_inference_id": "x", "churned": 1}
    ]


def test_a_duplicate_id_keeps_the_first_write_and_is_counted(api: Call) -> None:
    # GIVEN a model with one inference 'dup'
    model_id = register(api)
    path = f"/api/v3/models/{model_id}/inferences"
    api("POST", path, [record(partner_inference_id="dup", p=0.1)])

    # WHEN 'dup' is sent twice more in one request
    again = api(
        "POST", path, [record(partner_inference_id="dup", p=0.9), record(partner_inference_id="dup", p=0.5)]
    )

    # THEN the second in the request is refused as a duplicate
    assert [r["message"] for r in again.body["results"]] == [
        "success",
        "duplicate partner_inference_id in this request (the first one is kept)",
    ]

    # THEN the status counts one inference and one duplicate, and the first write is kept
    status = api("GET", f"/api/v3/models/{model_id}/inferences/status").body
    assert (status["total"], status["duplicates"], status["inferences"]["ingested"]) == (1, 1, 2)
    from sagewatch.tables import first_writes

    kept = first_writes(container.lake_store().read_area("inferences", model_id))
    assert kept.column("predicted_probability").to_pylist() == [0.1]


# -- files ------------------------------------------------------------------------------------------


def good_table() -> pa.Table:
    return pa.table(
        {
            "partner_inference_id": ["f1", "f2", "f3"],
            "inference_timestamp": pa.array(
                [datetime(2026, 11, 25, 10, tzinfo=UTC)] * 3, pa.timestamp("ms", tz="UTC")
            ),
            "age": pa.array([20, 30, 40], pa.int32()),
            "income": [1.5, 2.5, None],
            "region": ["north", "south", "north"],
            "predicted_probability": pa.array([0.1, 0.2, 0.3], pa.float32()),
            "churned": [0, 1, None],
        }
    )


def test_a_parquet_file_with_ground_truth_columns(api: Call, upload) -> None:
    # GIVEN a model
    model_id = register(api)

    # WHEN a Parquet file holding a ground truth column is uploaded with a batch id
    answer = upload(
        f"/api/v3/models/{model_id}/inferences/file",
        {"inference_data": ("f.parquet", parquet_bytes(good_table())), "batch_id": "batch-7"},
    )

    # THEN every row is ingested with that batch id, and the labelled rows as ground truth
    assert answer.status == 207, answer.body
    assert answer.body == {"counts": {"success": 3, "failure": 0, "total": 3}, "failures": []}
    rows = sorted(lake_rows("inferences", model_id), key=lambda r: r["partner_inference_id"])
    assert [(r["age"], r["income"], r["batch_id"]) for r in rows] == [
        (20, 1.5, "batch-7"),
        (30, 2.5, "batch-7"),
        (40, None, "batch-7"),
    ]
    assert sorted(r["partner_inference_id"] for r in lake_rows("ground_truth", model_id)) == ["f1", "f2"]


def test_a_json_file_of_records(api: Call, upload) -> None:
    model_id = register(api)
    records = [
        {
            "partner_inference_id": "j1",
            "age": 5,
            "income": 1,
            "region": "south",
            "predicted_probability": 0.5,
        },
        {"partner_inference_id": "j2", "age": "x", "region": "north", "predicted_probability": 0.5},
    ]
    answer = upload(
        f"/api/v3/models/{model_id}/inferences/file",
        {"inference_data": ("f.json", json.dumps(records).encode())},
    )
    assert answer.body["counts"] == {"success": 1, "failure": 1, "total": 2}
    assert answer.body["failures"] == [
        {
            "row": 1,
            "partner_inference_id": "j2",
            "event_id": None,
            "inference_index_in_event": None,
            "line": None,
            "message": "age: 'x' is not an INTEGER",
        }
    ]


def test_parquet_columns_are_typed_value_by_value_as_json_values_are(api: Call, upload) -> None:
    """pandas writes an int column holding NaN as float64: a whole file refused for it lost it all."""
    model_id = register(api)
    typed = good_table().set_column(2, "age", pa.array([20.0, None, 40.5]))  # 40.5 is no INTEGER
    answer = upload(
        f"/api/v3/models/{model_id}/inferences/file", {"inference_data": ("f.parquet", parquet_bytes(typed))}
    )
    assert answer.status == 207 and answer.body["counts"] == {"success": 2, "failure": 1, "total": 3}
    assert answer.body["failures"][0]["message"] == "age: 40.5 is not an INTEGER"
    assert sorted((r["age"] is None, r["age"]) for r in lake_rows("inferences", model_id)) == [
        (False, 20),
        (True, None),
    ]


def test_a_parquet_file_with_a_list_column_is_refused_whole(api: Call, upload) -> None:
    model_id = register(api)
    wrong = good_table().set_column(2, "age", pa.array([[20], [30], [40]]))
    answer = upload(
        f"/api/v3/models/{model_id}/inferences/file", {"inference_data": ("f.parquet", parquet_bytes(wrong))}
    )
    assert answer.status == 400
    assert answer.body["message"].startswith("column 'age' is list<")
    assert container.lake_store().keys(f"inferences/model_id={model_id}/") == []


def test_a_file_with_an_unknown_column_is_refused(api: Call, upload) -> None:
    model_id = register(api)
    extra = good_table().append_column("colour", pa.array(["r", "g", "b"]))
    answer = upload(
        f"/api/v3/models/{model_id}/inferences/file", {"inference_data": ("f.parquet", parquet_bytes(extra))}
    )
    assert (answer.status, answer.body["field"]) == (400, "colour")


def test_uploads_name_the_missing_field_and_refuse_non_files(api: Call, upload) -> None:
    model_id = register(api)
    assert (
        upload(f"/api/v3/models/{model_id}/inferences/file", {"batch_id": "b"}).body["field"]
        == "inference_data"
    )
    bad = upload(
        f"/api/v3/models/{model_id}/inferences/file", {"inference_data": ("f.bin", b"\x00\x01 not data")}
    )
    assert bad.status == 400 and "neither Parquet nor JSON" in bad.body["message"]
    plain = api("POST", f"/api/v3/models/{model_id}/inferences/file", {"not": "multipart"})
    assert plain.status == 400 and plain.body["field"] == "Content-Type"


def test_bodies_over_lambdas_limit_are_413(api: Call, upload, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inferences, "MAX_BODY_BYTES", 1000)
    model_id = register(api)
    answer = upload(
        f"/api/v3/models/{model_id}/inferences/file", {"inference_data": ("f.parquet", b"PAR1" * 500)}
    )
    assert answer.status == 413 and "upload URL" in answer.body["message"]


def test_sagemaker_capture_upload_reports_event_ids(api: Call, upload) -> None:
    model_id = register(api)
    answer = upload(
        f"/api/v3/models/{model_id}/inferences/integrations/sagemaker_data_capture",
        {"inference_data": ("c.jsonl", (EVENTS / "capture" / "corrupted.jsonl").read_bytes())},
    )
    assert answer.status == 207
    assert answer.body["counts"] == {"success": 2, "failure": 6, "total": 8}
    mismatch = [f for f in answer.body["failures"] if f["event_id"] == "bad-4"]
    assert [(f["inference_index_in_event"], f["line"]) for f in mismatch] == [(0, 4), (1, 4)]


# -- upload URLs and Parquet drops ------------------------------------------------------------------


def put_drop(aws: dict[str, str], key: str, table: pa.Table) -> None:
    sagewatch_aws.client("s3").put_object(Bucket=aws["data"], Key=key, Body=parquet_bytes(table))


def test_upload_urls_point_into_the_drop_area(api: Call, aws: dict[str, str]) -> None:
    model_id = register(api)
    answer = api(
        "POST", f"/api/v3/models/{model_id}/inferences/upload_url", {"kind": "ground_truth", "batch_id": "b9"}
    )
    assert answer.status == 200
    assert answer.body["key"].startswith(f"drops/{model_id}/ground_truth/b9/")
    assert aws["data"] in answer.body["url"] and answer.body["method"] == "PUT"
    assert api("POST", f"/api/v3/models/{model_id}/inferences/upload_url", {"kind": "images"}).status == 400


def test_parquet_drops_by_partner_model_id_with_a_batch_folder(api: Call, aws: dict[str, str]) -> None:
    # GIVEN inferences dropped under the partner model id in a batch folder, and labels under the model id
    model_id = register(api)
    put_drop(aws, "drops/churn/inferences/batch-3/part-0.parquet", good_table())
    truth = pa.table({"partner_inference_id": ["f3"], "churned": [1]})
    put_drop(aws, f"drops/{model_id}/ground_truth/labels.parquet", truth)

    # WHEN the ingest Lambda takes the drops
    assert handler(notifications(aws), LocalContext()) == {"batchItemFailures": []}

    # THEN the rows carry the folder's batch id and every inference is labelled
    assert {r["batch_id"] for r in lake_rows("inferences", model_id)} == {"batch-3"}
    assert sorted((r["partner_inference_id"], r["churned"]) for r in lake_rows("ground_truth", model_id)) == [
        ("f1", 0),
        ("f2", 1),
        ("f3", 1),
    ]
    status = api("GET", f"/api/v3/models/{model_id}/inferences/status").body
    assert (status["total"], status["with_ground_truth"], status["labelled_ratio"]) == (3, 3, 1.0)


def test_a_dropped_file_with_a_wrong_type_is_rejected_whole_with_its_reason(
    api: Call, aws: dict[str, str]
) -> None:
    # GIVEN a dropped Parquet file whose string column holds structs
    model_id = register(api)
    wrong = good_table().set_column(4, "region", pa.array([{"a": 1}, {"a": 2}, {"a": 3}]))
    put_drop(aws, f"drops/{model_id}/inferences/wrong.parquet", wrong)

    # WHEN the ingest Lambda takes it
    handler(notifications(aws), LocalContext())

    # THEN no row is stored; the file is rejected with its reason and its rows counted
    assert container.lake_store().keys(f"inferences/model_id={model_id}/") == []
    [rejected] = container.lake_store().rejected(model_id)
    assert rejected["reason"] == "column 'region' is struct<a: int64> but attribute 'region' is STRING"
    assert api("GET", f"/api/v3/models/{model_id}/inferences/status").body["inferences"]["rejected"] == 3


def test_drops_for_unknown_models_are_kept_aside(api: Call, aws: dict[str, str]) -> None:
    register(api)
    put_drop(aws, "drops/nobody/inferences/x.parquet", good_table())
    handler(notifications(aws), LocalContext())
    [record] = api("GET", "/api/v3/ingestion/unrouted").body["data"]
    assert "no active model with id or partner_model_id 'nobody'" in record["reason"]


# -- reference data ---------------------------------------------------------------------------------


def test_a_reference_set_streamed_from_several_files(
    api: Call, aws: dict[str, str], upload, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a model, and drops read two rows at a time
    monkeypatch.setattr(ingestion, "DROP_BATCH_ROWS", 2)  # a few rows at a time, as a large set would be read
    model_id = register(api)
    reference = good_table().drop_columns(["partner_inference_id", "inference_timestamp"])

    # WHEN two reference files are dropped and ingested, and a third is uploaded
    put_drop(aws, f"drops/{model_id}/reference/part-0.parquet", reference)
    put_drop(aws, f"drops/{model_id}/reference/part-1.parquet", reference)
    handler(notifications(aws), LocalContext())
    answer = upload(
        f"/api/v3/models/{model_id}/reference_data",
        {"reference_data": ("r.parquet", parquet_bytes(reference))},
    )

    # THEN the upload counts its own rows
    assert answer.body["counts"] == {"success": 3, "failure": 0, "total": 3}

    # WHEN the set is closed, declaring nine rows
    closed = api(
        "PATCH", f"/api/v3/models/{model_id}/reference_data", {"status": "uploaded", "total_record_count": 9}
    )

    # THEN all nine rows are in the set, in one part per batch of rows read
    assert closed.body["status"] == "uploaded" and closed.body["ingested"] == 9
    parts = container.lake_store().keys(f"reference/model_id={model_id}/")
    assert len(parts) == 5  # two rows a part from each drop, one part from the upload
    table = container.lake_store().read_area("reference", model_id)
    assert table.num_rows == 9 and sorted(set(table.column("region").to_pylist())) == ["north", "south"]


def test_a_closed_reference_set_takes_no_more_rows_until_deleted(
    api: Call, aws: dict[str, str], upload
) -> None:
    """set_reference_data run twice (a notebook cell) added to the set and moved every baseline."""
    # GIVEN a reference set of three rows, uploaded and closed
    model_id = register(api)
    reference = good_table().drop_columns(["partner_inference_id", "inference_timestamp"])
    path = f"/api/v3/models/{model_id}/reference_data"
    assert upload(path, {"reference_data": ("r.parquet", parquet_bytes(reference))}).status == 207
    assert api("PATCH", path, {"status": "uploaded"}).body["ingested"] == 3

    # WHEN the same file is uploaded again
    again = upload(path, {"reference_data": ("r.parquet", parquet_bytes(reference))})

    # THEN it is refused with a 409 pointing at DELETE
    assert (
        again.status == 409 and again.body["field"] == "reference_data" and "DELETE" in again.body["message"]
    )

    # WHEN a file is dropped after the set was closed
    time.sleep(1.1)  # S3 times objects to the second: this one is put after the set was closed
    put_drop(aws, f"drops/{model_id}/reference/late.parquet", reference)
    handler(notifications(aws), LocalContext())

    # THEN the drop is refused whole
    assert container.lake_store().read_area("reference", model_id).num_rows == 3  # the drop refused whole

    # WHEN the set is deleted
    assert api("DELETE", path).status == 204

    # THEN it is empty, and a new set can be uploaded
    assert api("GET", path).body == {
        "status": "none",
        "ingested": 0,
        "total_record_count": None,
        "uploaded_at": None,
    }
    assert upload(path, {"reference_data": ("r.parquet", parquet_bytes(reference.slice(0, 2)))}).status == 207
    assert container.lake_store().read_area("reference", model_id).num_rows == 2


def test_a_reference_file_put_before_the_set_was_closed_still_belongs_to_it(
    api: Call, aws: dict[str, str]
) -> None:
    """The client puts its file through an upload URL and closes the set at once, before ingestion."""
    # GIVEN a reference file put in the drop area, then the set closed before it was ingested
    model_id = register(api)
    reference = good_table().drop_columns(["partner_inference_id", "inference_timestamp"])
    put_drop(aws, f"drops/{model_id}/reference/in-flight.parquet", reference)
    time.sleep(1.1)  # S3 times objects to the second
    assert api("PATCH", f"/api/v3/models/{model_id}/reference_data", {"status": "uploaded"}).status == 200

    # WHEN the ingest Lambda takes the file
    handler(notifications(aws), LocalContext())

    # THEN its rows are in the set
    assert container.lake_store().read_area("reference", model_id).num_rows == 3


def test_an_empty_batch_id_field_is_no_batch(api: Call, upload) -> None:
    """The arthurai SDK sends batch_id empty when the user gives none: every row was refused."""
    model_id = register(api)
    answer = upload(
        f"/api/v3/models/{model_id}/inferences/file",
        {"inference_data": ("f.parquet", parquet_bytes(good_table())), "batch_id": ""},
    )
    assert answer.body["counts"] == {"success": 3, "failure": 0, "total": 3}


# -- batches ----------------------------------------------------------------------------------------


def test_closing_a_batch_reports_its_counts(api: Call) -> None:
    # GIVEN a batch model with two rows in batch b1 and one in b2
    model_id = register(api, factories.edited(factories.binary_probability("batchy"), is_batch=True))
    api(
        "POST",
        f"/api/v3/models/{model_id}/inferences",
        [record(batch_id="b1"), record(batch_id="b1"), record(batch_id="b2")],
    )

    # WHEN b1 is read while open THEN it is receiving, with two rows
    open_batch = api("GET", f"/api/v3/models/{model_id}/batches/b1").body
    assert (open_batch["status"], open_batch["ingested"]) == ("receiving", 2)

    # WHEN b1 is closed, declaring three rows
    closed = api(
        "PATCH", f"/api/v3/models/{model_id}/batches/b1", {"status": "uploaded", "total_record_count": 3}
    )

    # THEN it is uploaded but not complete
    assert (closed.body["status"], closed.body["ingested"], closed.body["complete"]) == ("uploaded", 2, False)

    # WHEN a batch or a status is unknown THEN the answer is a 404 or a 400
    assert api("GET", f"/api/v3/models/{model_id}/batches/nope").status == 404
    assert api("PATCH", f"/api/v3/models/{model_id}/batches/b1", {"status": "done"}).status == 400


def test_rejected_rows_are_paged(api: Call) -> None:
    model_id = register(api)
    api("POST", f"/api/v3/models/{model_id}/inferences", [record(age=f"bad{i}") for i in range(5)])
    first = api("GET", f"/api/v3/models/{model_id}/inferences/rejected", query="page=1&page_size=2").body
    assert (first["total_count"], first["total_pages"], len(first["data"])) == (5, 3, 2)
    assert first["data"][0]["reason"].startswith("age: 'bad")


def test_base64_is_how_binary_bodies_arrive() -> None:
    event = proxy_event("POST", "/x", {"Content-Type": "multipart/form-data; boundary=a"}, b"\x00\x01")
    assert base64.b64decode(event["body"]) == b"\x00\x01"
