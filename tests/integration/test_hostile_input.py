"""What a second, hostile probe of issue 14's fixes found (about 1,300 requests and 50 files against
`sagewatch local`): each finding as a regression test. A bad value is a rejected row or a 4xx;
never a 500, a crash, a lost file or a stored bad value."""

from __future__ import annotations

import gzip
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests import factories
from tests.conftest import Call
from tests.deepchecks_api import version as deepchecks_version
from tests.inputs import capture_event, capture_model, put, record, register
from tests.lake import lake_keys, lake_rows, notifications

from sagewatch import aws as sagewatch_aws
from sagewatch import container, streams
from sagewatch.handlers.ingest import handler
from sagewatch.local.http_bridge import LocalContext
from sagewatch.services import ingestion
from sagewatch.stores import models as stores_models

DEEP = "[" * 3000 + "]" * 3000


def json_capture_event(number: int, data: str) -> str:
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": "application/json",
                    "data": data,
                    "encoding": "JSON",
                },
                "endpointOutput": {
                    "observedContentType": "application/json",
                    "data": "[0.1]",
                    "encoding": "JSON",
                },
            },
            "eventMetadata": {"eventId": f"e-{number}", "inferenceTime": "2026-11-25T10:00:00Z"},
        }
    )


def ingest_lines(aws: dict[str, str], lines: list[str], name: str = "capture.jsonl") -> None:
    put(aws, ("\n".join(lines) + "\n").encode(), name)
    assert handler(notifications(aws), LocalContext()) == {"batchItemFailures": []}


# -- crashes and memory --------------------------------------------------------------------------


def test_a_payload_nested_thousands_deep_is_rejected_not_a_crash(aws: dict[str, str]) -> None:
    """pyarrow's kernels crashed the whole process (a segfault) on JSON ~3,000 levels deep."""
    model_id = capture_model()
    ingest_lines(
        aws, [capture_event(1), json_capture_event(2, '{"instances": ' + DEEP + "}"), capture_event(3)]
    )
    assert sorted(r["partner_inference_id"] for r in lake_rows("inferences", model_id)) == ["e-1", "e-3"]
    [rejected] = container.lake_store().rejected(model_id)
    assert "deeper than 32 levels" in rejected["reason"]


def test_a_ground_truth_payload_nested_thousands_deep_is_rejected(aws: dict[str, str]) -> None:
    model_id = capture_model()
    labels = [
        json.dumps(
            {"groundTruthData": {"data": data, "encoding": "JSON"}, "eventMetadata": {"eventId": f"e-{n}"}}
        )
        for n, data in ((1, "1"), (2, DEEP))
    ]
    key = "ground-truth/churn-endpoint/2026/11/26/09/labels.jsonl"
    sagewatch_aws.client("s3").put_object(Bucket=aws["capture"], Key=key, Body="\n".join(labels).encode())
    assert handler(notifications(aws), LocalContext()) == {"batchItemFailures": []}
    assert [r["partner_inference_id"] for r in lake_rows("ground_truth", model_id)] == ["e-1"]


def test_a_deep_payload_uploaded_over_rest_is_a_rejected_row(api: Call, upload) -> None:
    model_id = register(api)
    body = (capture_event(1) + "\n" + json_capture_event(2, DEEP) + "\n").encode()
    answer = upload(
        f"/api/v3/models/{model_id}/inferences/integrations/sagemaker_data_capture",
        {"inference_data": ("c.jsonl", body)},
    )
    assert answer.status == 207 and answer.body["counts"] == {"success": 1, "failure": 1, "total": 2}


def test_a_line_longer_than_the_limit_is_skipped_and_reported(
    aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A newline-less gzip bomb grew memory by gigabytes; an over-long line is now dropped as it streams."""
    monkeypatch.setattr(streams, "MAX_LINE_BYTES", 5_000)
    monkeypatch.setattr(
        ingestion, "CHUNK_BYTES", 1_000
    )  # the long line arrives in pieces, as a big one would
    monkeypatch.setattr(streams, "CHUNK_BYTES", 1_000)
    model_id = capture_model()
    ingest_lines(aws, [capture_event(1), "x" * 20_000, capture_event(3)], "capture.jsonl.gz")
    assert sorted(r["partner_inference_id"] for r in lake_rows("inferences", model_id)) == ["e-1", "e-3"]
    [rejected] = container.lake_store().rejected(model_id)
    assert (rejected["line"], rejected["reason"]) == (2, "the line is longer than 0 MB")


def test_a_junk_first_line_mentioning_ground_truth_does_not_reroute_the_file(aws: dict[str, str]) -> None:
    model_id = capture_model()
    ingest_lines(aws, ['{"groundTruthData": "junk"', *[capture_event(n) for n in range(5)]])
    assert len(lake_rows("inferences", model_id)) == 5


# -- 500s -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'[{"partner_inference_id": "\\ud800", "inference_data": {"age": 1}}]',
        b'[{"inference_data": {"age": ' + b"9" * 5000 + b"}}]",
        b"[" * 40 + b"]" * 40,
    ],
    ids=["lone surrogate", "5,000-digit integer", "40 levels"],
)
def test_bodies_json_cannot_carry_are_400s(api: Call, body: bytes) -> None:
    model_id = register(api)
    answer = api("POST", f"/api/v3/models/{model_id}/inferences", body)
    assert (answer.status, answer.body["field"]) == (400, "body")


def test_a_body_over_lambdas_limit_is_a_413(api: Call) -> None:
    model_id = register(api)
    answer = api("POST", f"/api/v3/models/{model_id}/inferences", [record(region="x" * 1000)] * 7000)
    assert answer.status == 413


def test_averages_over_integers_past_2_53_are_computed(api: Call) -> None:
    model_id = register(api)
    api("POST", f"/api/v3/models/{model_id}/inferences", [record(age=2**63 - 1), record(age=1)])
    select = [{"function": "avg", "parameters": {"property": "age"}}]
    [row] = api("POST", f"/api/v3/models/{model_id}/inferences/query", {"select": select}).body[
        "query_result"
    ]
    assert row["avg"] == pytest.approx((2**63) / 2)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (
            {
                "select": [{"function": "count"}, {"property": "region"}],
                "group_by": [{"property": "region"}, {"property": "region"}],
            },
            "group_by[1]",
        ),
        (
            {"select": [{"function": "avg", "parameters": {"property": ["age"]}}]},
            "select[0].parameters.property",
        ),
        (
            {"select": [{"function": "roundTimestamp", "parameters": {"time_interval": ["day"]}}]},
            "select[0].parameters.time_interval",
        ),
        (
            {
                "select": [{"function": "count", "alias": "region"}, {"property": "region"}],
                "group_by": [{"property": "region"}],
            },
            "select",
        ),
    ],
    ids=["group_by twice", "property a list", "interval a list", "alias of a grouped property"],
)
def test_malformed_queries_are_400s(api: Call, query: dict, field: str) -> None:
    model_id = register(api)
    answer = api("POST", f"/api/v3/models/{model_id}/inferences/query", query)
    assert (answer.status, answer.body["field"]) == (400, field)


@pytest.mark.parametrize(
    "condition",
    [("lt", "0001-01-01"), ("gte", "0001-01-01T00:00:00+14:00"), ("lte", "9999-12-31T23:59:59-14:00")],
)
def test_time_bounds_at_the_ends_of_the_calendar_are_answered(api: Call, condition: tuple[str, str]) -> None:
    model_id = register(api)
    api("POST", f"/api/v3/models/{model_id}/inferences", [record()])
    comparator, value = condition
    query = {
        "select": [{"function": "count"}],
        "filter": [{"property": "inference_timestamp", "comparator": comparator, "value": value}],
    }
    assert api("POST", f"/api/v3/models/{model_id}/inferences/query", query).status == 200


def test_batch_paths_and_counts_are_checked(api: Call) -> None:
    model_id = register(api)
    assert (
        api("PATCH", f"/api/v3/models/{model_id}/batches/{'b' * 2000}", {"status": "uploaded"}).status == 400
    )
    assert (
        api(
            "PATCH",
            f"/api/v3/models/{model_id}/batches/b0",
            {"status": "uploaded", "total_record_count": 1e40},
        ).status
        == 400
    )
    assert (
        api(
            "PATCH",
            f"/api/v3/models/{model_id}/reference_data",
            {"status": "uploaded", "total_record_count": 1e40},
        ).status
        == 400
    )


def parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def test_odd_parquet_files_are_answered_not_500s(api: Call, upload) -> None:
    model_id = register(api)
    path = f"/api/v3/models/{model_id}/inferences/file"
    assert upload(path, {"inference_data": ("f.parquet", b"PAR1" + b"\0" * 100 + b"PAR1")}).status == 400
    odd = pa.table(
        {
            "partner_inference_id": pa.array([b"ok", b"\xff\xfe"], pa.binary()),
            "inference_timestamp": pa.array([1_800_000_000_000, 2**62], pa.timestamp("ms")),
            "age": [1, 2],
        }
    )
    answer = upload(path, {"inference_data": ("f.parquet", parquet(odd))})
    assert answer.status == 207 and answer.body["counts"] == {"success": 1, "failure": 1, "total": 2}
    dates = pa.table({"inference_timestamp": pa.array([-1_000_000, 20_500], pa.date32()), "age": [1, 2]})
    answer = upload(path, {"inference_data": ("f.parquet", parquet(dates))})
    assert answer.status == 207 and answer.body["counts"]["success"] == 1


def test_pandas_category_columns_are_read_as_their_values(api: Call, upload) -> None:
    model_id = register(api)
    regions = pa.array(["north", "south", "north"]).dictionary_encode()
    table = pa.table({"region": regions, "age": [1, 2, 3]})
    answer = upload(
        f"/api/v3/models/{model_id}/inferences/file", {"inference_data": ("f.parquet", parquet(table))}
    )
    assert answer.body["counts"]["success"] == 3
    assert sorted(r["region"] for r in lake_rows("inferences", model_id)) == ["north", "north", "south"]


# -- Deepchecks bodies ------------------------------------------------------------------------------


@pytest.fixture
def version(api: Call) -> dict:
    return deepchecks_version(api, "dc", {"x": "numeric", "colour": "categorical"}, ["a", "b"])


def reference_upload(api: Call, upload, version: dict, batch: bytes):
    return upload(f"/api/v1/model-versions/{version['id']}/reference", {"batch": ("batch.json", batch)})


@pytest.mark.parametrize(
    "batch",
    [
        b'{"columns": ["x"], "data": 5}',
        b'{"columns": 5, "data": []}',
        b'{"columns": [["x"]], "data": [[1]]}',
        b"null",
        b"\xff",
    ],
)
def test_malformed_deepchecks_reference_batches_are_400s(
    api: Call, upload, version: dict, batch: bytes
) -> None:
    assert reference_upload(api, upload, version, batch).status == 400


def test_a_deepchecks_reference_with_a_number_past_int64_is_stored_as_a_float(
    api: Call, upload, version: dict
) -> None:
    batch = json.dumps({"columns": ["x", "colour"], "data": [[2**70, "red"], [1, "blue"]]}).encode()
    assert reference_upload(api, upload, version, batch).status == 200


def test_a_deepchecks_reference_with_a_categorical_feature_is_stored_once(
    api: Call, upload, version: dict
) -> None:
    """It answered 500 after storing its rows; the retry then stored them again."""
    batch = json.dumps(
        {"columns": ["x", "colour", "_dc_label"], "data": [[1.0, "red", "a"], [2.0, "blue", "b"]]}
    ).encode()
    assert reference_upload(api, upload, version, batch).status == 200
    counts = api("GET", f"/api/v1/model-versions/{version['id']}/count-samples").body
    assert counts["reference_count"] == 2
    model = api("GET", f"/api/v3/models/{version['model_id']}").body
    colour = next(a for a in model["attributes"] if a["label"] == "colour")
    assert {c["value"] for c in colour["categories"]} == {"red", "blue"}


@pytest.mark.parametrize(
    ("sample", "field"),
    [
        ({"_dc_prediction_probabilities": [[0.5], [0.5]]}, "_dc_prediction_probabilities"),
        ({"_dc_prediction_probabilities": [5, -4]}, "_dc_prediction_probabilities"),
        ({"x": "large"}, "x"),
    ],
)
def test_odd_deepchecks_samples_are_400s_naming_the_column(
    api: Call, version: dict, sample: dict, field: str
) -> None:
    base = {
        "_dc_sample_id": "s1",
        "_dc_time": "2026-11-24T10:00:00Z",
        "x": 1.0,
        "colour": "red",
        "_dc_prediction": "a",
    }
    answer = api("POST", f"/api/v1/model-versions/{version['id']}/data", [{**base, **sample}])
    assert (answer.status, answer.body["field"]) == (400, field), answer.body


def test_a_sample_of_mixed_types_is_refused_naming_its_column(api: Call, version: dict) -> None:
    """One text value among numbers read the samples value by value, and then blamed _dc_sample_id."""
    base = {
        "_dc_time": "2026-11-24T10:00:00Z",
        "colour": "red",
        "_dc_prediction": "a",
        "_dc_prediction_probabilities": [0.9, 0.1],
    }
    samples = [{**base, "_dc_sample_id": "s1", "x": 1.0}, {**base, "_dc_sample_id": "s2", "x": "large"}]
    answer = api("POST", f"/api/v1/model-versions/{version['id']}/data", samples)
    assert (answer.status, answer.body["field"]) == (400, "x"), answer.body


def test_an_infinite_deepchecks_label_is_a_400(api: Call, version: dict) -> None:
    answer = api(
        "PUT",
        f"/api/v1/model/{version['model_id']}/labels",
        b'[{"_dc_sample_id": "s1", "_dc_label": Infinity}]',
    )
    assert answer.status == 400


def test_a_deepchecks_version_wider_than_a_model_is_refused_before_it_is_stored(api: Call) -> None:
    model = api("POST", "/api/v1/models", {"name": "wide", "task_type": "regression"}).body
    answer = api(
        "POST",
        f"/api/v1/models/{model['id']}/version",
        {"name": "v1", "features": {f"f{i}": "numeric" for i in range(3000)}},
    )
    assert (answer.status, answer.body["field"]) == (400, "features")
    assert api("GET", "/api/v1/models/wide/model-versions/v1").status == 404


@pytest.mark.parametrize("timestamp", ["2026-13-01", "1e400", "tomorrow"])
def test_a_deepchecks_schedule_time_is_a_time(api: Call, version: dict, timestamp: str) -> None:
    answer = api(
        "POST", f"/api/v1/models/{version['model_id']}/monitors-set-schedule-time", {"timestamp": timestamp}
    )
    assert (answer.status, answer.body["field"]) == (400, "timestamp")


# -- stored instead of rejected ---------------------------------------------------------------------


def test_capture_lines_that_cannot_be_placed_are_rejected(aws: dict[str, str]) -> None:
    model_id = capture_model()
    blank_time = capture_event(1, time="")
    control = json.loads(capture_event(2))
    control["eventMetadata"]["inferenceId"] = "a\u0085b"  # a C1 control character
    utf16 = json.loads(capture_event(3))
    utf16["captureData"]["endpointInput"]["encoding"] = "UTF-16"
    blank_id = json.loads(capture_event(4))
    blank_id["eventMetadata"]["inferenceId"] = "   "  # blank: the eventId stands in
    ingest_lines(
        aws,
        [
            blank_time,
            json.dumps(control),
            json.dumps(utf16),
            json.dumps(blank_id),
            capture_event(4),
            capture_event(5),
        ],
    )
    assert sorted(r["partner_inference_id"] for r in lake_rows("inferences", model_id)) == ["e-4", "e-5"]
    reasons = sorted(r["reason"] for r in container.lake_store().rejected(model_id))
    assert reasons == [
        "duplicate inference id in this file (the first one is kept)",
        "endpointInput.encoding is not CSV, JSON or BASE64",
        "eventMetadata.inferenceTime is missing",
        "partner_inference_id holds a control character",
    ]


def test_model_monitor_ids_and_empty_labels_are_rejected(aws: dict[str, str]) -> None:
    model_id = capture_model()
    labels = [
        {"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": event_id}}
        for event_id in ("", "x\u0000", "y" * 300, "good")
    ] + [
        {
            "groundTruthData": {"data": "null", "encoding": "JSON"},
            "eventMetadata": {"eventId": "no-label"},
        }
    ]
    key = "ground-truth/churn-endpoint/2026/11/26/09/labels.jsonl"
    sagewatch_aws.client("s3").put_object(
        Bucket=aws["capture"], Key=key, Body="\n".join(map(json.dumps, labels)).encode()
    )
    assert handler(notifications(aws), LocalContext()) == {"batchItemFailures": []}
    assert [r["partner_inference_id"] for r in lake_rows("ground_truth", model_id)] == ["good"]
    assert len(container.lake_store().rejected(model_id)) == 4


def test_an_attribute_given_twice_in_a_record_is_refused_whichever_comes_first(api: Call) -> None:
    model_id = register(api)
    for body in (
        b'[{"age": 999, "inference_data": {"age": 1}}]',
        b'[{"inference_data": {"age": 1}, "age": 999}]',
    ):
        answer = api("POST", f"/api/v3/models/{model_id}/inferences", body)
        assert (answer.status, answer.body["field"]) == (400, "age")
    assert lake_rows("inferences", model_id) == []


# -- values that would fail later -------------------------------------------------------------------


def test_bounds_that_would_break_evaluation_are_refused_when_saved(api: Call) -> None:
    assert (
        api(
            "POST", "/api/v3/models", {**factories.binary_probability("late"), "alerts_delay_seconds": 1e40}
        ).status
        == 400
    )
    model_id = register(api)
    metric = api("GET", f"/api/v3/models/{model_id}/metrics").body["metrics"][0]
    rule = {"metric_id": metric["id"], "bound": "upper", "threshold": 1}
    for extra in (
        {"subsequent_alert_wait_time": 1e40},
        {"filters": [{"property": "colour", "comparator": "eq", "value": "red"}]},
        {"filters": [{"property": "income", "comparator": "gt", "value": "Infinity"}]},
        {"filters": [{"property": "age", "comparator": "eq", "value": [1, 2]}]},
    ):
        answer = api("POST", f"/api/v3/models/{model_id}/alert_rules", {**rule, **extra})
        assert answer.status == 400, (extra, answer.body)


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://169.254.169.254/inferences/query",
        "/api/v3/models/someone-else/inferences/query",
        "/api/v3/models/x",
    ],
)
def test_a_metric_endpoint_is_the_models_own(api: Call, endpoint: str) -> None:
    model_id = register(api)
    body = {"name": "mine", "query": {"select": [{"function": "count"}]}, "endpoint": endpoint}
    answer = api("POST", f"/api/v3/models/{model_id}/metrics", body)
    assert (answer.status, answer.body["field"]) == (400, "endpoint")


@pytest.mark.parametrize(
    "body",
    [
        {"properties": ["age"], "group_by": [{"property": "age"}]},
        {"properties": ["age", "income"], "aggregate": "mean", "weights": {"age": "Infinity", "income": 1}},
        {"properties": ["age", "income"], "aggregate": "mean", "weights": {"age": -1, "income": 1}},
    ],
    ids=["group_by a measured property", "infinite weight", "negative weight"],
)
def test_odd_drift_bodies_are_400s(api: Call, body: dict) -> None:
    model_id = register(api)
    raw = json.dumps(body).replace('"Infinity"', "Infinity").encode()
    assert api("POST", f"/api/v3/models/{model_id}/inferences/query/data_drift", raw).status == 400


def test_a_gzip_capture_upload_is_read(api: Call, upload) -> None:
    model_id = register(api)
    body = gzip.compress(("\n".join(capture_event(n) for n in range(3)) + "\n").encode())
    answer = upload(
        f"/api/v3/models/{model_id}/inferences/integrations/sagemaker_data_capture",
        {"inference_data": ("c.jsonl.gz", body)},
    )
    assert answer.body["counts"] == {"success": 3, "failure": 0, "total": 3}


def test_a_refused_deepchecks_batch_writes_nothing(api: Call, version: dict) -> None:
    before = lake_keys()
    answer = api(
        "POST",
        f"/api/v1/model-versions/{version['id']}/data",
        [{"_dc_sample_id": "s", "_dc_time": "2026-11-24T10:00:00Z", "x": "large", "colour": "red"}],
    )
    assert answer.status == 400 and lake_keys() == before


# -- the re-probe: valid input refused, and what a refused request left behind ------------------------


def test_a_deepchecks_version_too_large_to_store_leaves_nothing(
    api: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stores_models, "MAX_DOCUMENT_BYTES", 2_000)  # what 2,000 wide columns would hit
    model = api("POST", "/api/v1/models", {"name": "w", "task_type": "binary"}).body
    version = {
        "name": "v1",
        "features": {f"feature_{i}": "numeric" for i in range(400)},
        "classes": ["0", "1"],
    }
    assert api("POST", f"/api/v1/models/{model['id']}/version", version).status == 413
    assert api("GET", f"/api/v1/models/{model['id']}/versions").body == []
    assert (
        api("POST", f"/api/v1/models/{model['id']}/version", {**version, "features": {"x": "numeric"}}).status
        == 200
    )


def test_a_model_of_2000_attributes_is_stored(api: Call) -> None:
    body = factories.regression("wide")
    body["attributes"] += [
        {
            "name": f"feature_{i}",
            "stage": "PIPELINE_INPUT",
            "value_type": "FLOAT",
            "position": 3 + i,
            "min_range": 0.0,
            "max_range": 1.0,
        }
        for i in range(1995)
    ]
    answer = api("POST", "/api/v3/models", body)
    assert answer.status == 201, answer.body
    assert len(api("GET", f"/api/v3/models/{answer.body['id']}").body["attributes"]) == 2000


@pytest.mark.parametrize(
    "data",
    ['[null, 2.0, "north"]', '{"instances": [{"features": [null, 2.0, "north"]}]}'],
)
def test_a_json_capture_row_starting_with_null_is_stored(aws: dict[str, str], data: str) -> None:
    """pyarrow's JSON reader built an invalid list for it; the row was lost."""
    model_id = capture_model()
    ingest_lines(aws, [json_capture_event(1, data)])
    [row] = lake_rows("inferences", model_id)
    assert (row["age"], row["income"], row["region"]) == (None, 2.0, "north")


def test_a_rule_changed_by_patch_is_checked_as_when_created(api: Call) -> None:
    model_id = register(api)
    metric = api("GET", f"/api/v3/models/{model_id}/metrics").body["metrics"][0]
    rule = api(
        "POST",
        f"/api/v3/models/{model_id}/alert_rules",
        {"metric_id": metric["id"], "bound": "upper", "threshold": 1},
    ).body
    path = f"/api/v3/models/{model_id}/alert_rules/{rule['id']}"
    assert api("PATCH", path, {"filters": [{"property": "zz", "comparator": "eq", "value": 1}]}).status == 400
    assert (
        api("PATCH", path, {"metric_parameters": {"feature": "age"}}).status == 400
    )  # the metric takes none
    assert (
        api(
            "POST",
            f"/api/v3/models/{model_id}/alert_rules",
            {"metric_id": metric["id"], "bound": "upper", "threshold": 1, "metric_parameters": {"x": 1}},
        ).status
        == 400
    )
    assert api("GET", path).body["filters"] is None


def test_drift_filters_and_groups_see_ground_truth(api: Call) -> None:
    model_id = register(api)
    rows = [
        record(age=20 + i, partner_inference_id=f"r{i}", ground_truth_data={"churned": i % 2})
        for i in range(40)
    ]
    api("POST", f"/api/v3/models/{model_id}/inferences", rows)
    base = {"source": "inference"}
    target = {"source": "inference", "filter": [{"property": "churned", "comparator": "eq", "value": 1}]}
    answer = api(
        "POST",
        f"/api/v3/models/{model_id}/inferences/query/data_drift",
        {"properties": ["age"], "base": base, "target": target},
    )
    assert answer.status == 200 and answer.body["query_result"][0]["age"] is not None, answer.body
    grouped = api(
        "POST",
        f"/api/v3/models/{model_id}/inferences/query/data_drift",
        {"properties": ["age"], "base": base, "group_by": [{"property": "churned"}]},
    )
    assert sorted(r["churned"] for r in grouped.body["query_result"]) == [0, 1]


def test_a_batch_named_with_a_space_is_reached_through_its_encoded_path(api: Call) -> None:
    model_id = register(api)
    api("POST", f"/api/v3/models/{model_id}/inferences", [record(batch_id="b 1")])
    closed = api("PATCH", f"/api/v3/models/{model_id}/batches/b%201", {"status": "uploaded"}).body
    assert (closed["batch_id"], closed["ingested"]) == ("b 1", 1)
    url = api("POST", f"/api/v3/models/{model_id}/inferences/upload_url", {"batch_id": "b 1"})
    assert url.status == 200 and "/b 1/" in url.body["key"]


def test_deepchecks_data_keeps_full_precision(api: Call, version: dict) -> None:
    sample = {
        "_dc_sample_id": "p",
        "_dc_time": "2026-11-24T10:00:00Z",
        "x": 0.123456789012345,
        "colour": "red",
        "_dc_prediction": "a",
    }
    tiny = {**sample, "_dc_sample_id": "t", "x": 1e-12}
    api("POST", f"/api/v1/model-versions/{version['id']}/data", [sample, tiny])
    rows = json.loads(
        api("POST", f"/api/v1/model-versions/{version['id']}/get-prod-data", {"rows_count": 10}).body
    )
    assert sorted(r["x"] for r in rows) == [1e-12, 0.123456789012345]


def test_a_class_named_like_an_input_is_a_class(api: Call) -> None:
    model = api("POST", "/api/v1/models", {"name": "animals", "task_type": "multiclass"}).body
    body = {
        "name": "v1",
        "features": {"cat": "categorical", "weight": "numeric"},
        "classes": ["cat", "dog", "bird"],
    }
    assert api("POST", f"/api/v1/models/{model['id']}/version", body).status == 200


def test_valid_spellings_of_numbers_and_times_are_read(api: Call) -> None:
    model_id = register(api)
    answer = api(
        "POST",
        f"/api/v3/models/{model_id}/inferences",
        [
            record(age="+7", partner_inference_id="plus"),
            record(age="1e2", partner_inference_id="exponent"),
            record(inference_timestamp="2026-11-25t10:00:00z", partner_inference_id="lowercase"),
        ],
    )
    assert answer.body["counts"]["success"] == 3, answer.body
    assert sorted(r["age"] for r in lake_rows("inferences", model_id)) == [7, 30, 100]


def test_a_line_just_over_the_limit_is_skipped(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streams, "MAX_LINE_BYTES", 5_000)
    monkeypatch.setattr(ingestion, "CHUNK_BYTES", 1_000)
    monkeypatch.setattr(streams, "CHUNK_BYTES", 1_000)
    model_id = capture_model()
    ingest_lines(aws, [capture_event(1), "x" * 5_001, capture_event(3)])
    assert sorted(r["partner_inference_id"] for r in lake_rows("inferences", model_id)) == ["e-1", "e-3"]


def test_an_uploaded_capture_file_past_the_record_limit_is_a_413(
    api: Call, upload, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingestion, "MAX_RECORDS", 3)
    model_id = register(api)
    body = ("\n".join(capture_event(n) for n in range(4)) + "\n").encode()
    answer = upload(
        f"/api/v3/models/{model_id}/inferences/integrations/sagemaker_data_capture",
        {"inference_data": ("c.jsonl", body)},
    )
    assert answer.status == 413 and lake_rows("inferences", model_id) == []


def test_a_blank_filter_value_says_how_to_find_missing_text(api: Call) -> None:
    model_id = register(api)
    query = {
        "select": [{"function": "count"}],
        "filter": [{"property": "region", "comparator": "eq", "value": ""}],
    }
    answer = api("POST", f"/api/v3/models/{model_id}/inferences/query", query)
    assert answer.status == 400 and "IsNull" in answer.body["message"]
