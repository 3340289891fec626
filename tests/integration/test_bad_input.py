"""Bad input, as an attacker or a careless client sends it: a rejected row or a 4xx, never a 500,
nothing accepted lost, nothing refused stored. One test per probe of issue 14."""

from __future__ import annotations

import gzip
import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from tests import factories
from tests.conftest import Call
from tests.deepchecks_api import version as deepchecks_version
from tests.inputs import capture_event, capture_model, put, record, register
from tests.lake import lake_keys, lake_rows, notifications

from sagewatch import capture, container
from sagewatch.handlers.ingest import handler
from sagewatch.local.http_bridge import LocalContext
from sagewatch.services import ingestion
from sagewatch.services.ingestion import Ingestor
from sagewatch.stores.lake import LakeStore


def ninety_nine_good_and(bad: str) -> bytes:
    return (
        "\n".join([capture_event(n, time=f"2026-11-25T10:{n % 60:02d}:00Z") for n in range(99)] + [bad])
        + "\n"
    ).encode()


# -- 1. one bad value never sinks a capture file --------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        capture_event(99, time="2026-13-45T99:00:00Z"),
        capture_event(99, data=f"{2**63},1.0,north"),
        capture_event(99, data="34,1e400,north"),
        capture_event(99, time="1e20"),
    ],
    ids=["calendar-invalid time", "integer past int64", "float overflow", "epoch overflow"],
)
def test_one_bad_value_in_a_capture_file_costs_its_row_alone(aws: dict[str, str], bad: str) -> None:
    model_id = capture_model()
    put(aws, ninety_nine_good_and(bad))
    assert handler(notifications(aws), LocalContext()) == {"batchItemFailures": []}
    assert len(lake_rows("inferences", model_id)) == 99
    [rejected] = container.lake_store().rejected(model_id)
    assert rejected["line"] == 100 and rejected["event_id"] == "e-99" and rejected["reason"]
    total = container.ingestion_ledger().counts(model_id)["total"]
    assert (total["inferences_ingested"], total["inferences_rejected"]) == (99, 1)


def test_a_line_that_crashes_the_parser_is_rejected_alone(
    aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last guard: whatever a parser did not foresee costs one line, with the error as its reason."""
    model_id = capture_model()
    real = capture.parse_capture

    def crashing(buffer: bytes, *args, **kwargs):
        if b"e-42" in buffer:
            raise KeyError("an unforeseen shape")
        return real(buffer, *args, **kwargs)

    monkeypatch.setattr(ingestion, "parse_capture", crashing)
    put(aws, ninety_nine_good_and(capture_event(99)))
    assert handler(notifications(aws), LocalContext()) == {"batchItemFailures": []}
    assert len(lake_rows("inferences", model_id)) == 99
    [rejected] = container.lake_store().rejected(model_id)
    assert rejected["line"] == 43 and "KeyError" in rejected["reason"]


def test_a_file_that_cannot_be_ingested_is_set_aside_with_its_reason_not_retried(
    aws: dict[str, str], api: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    capture_model()

    def broken(*args, **kwargs):
        raise ValueError("something in this file breaks ingestion")

    monkeypatch.setattr(Ingestor, "ingest_capture", broken)
    key = put(aws, ninety_nine_good_and(capture_event(99)))
    assert handler(notifications(aws), LocalContext()) == {"batchItemFailures": []}
    [record_] = api("GET", "/api/v3/ingestion/unrouted").body["data"]
    assert record_["source"] == f"s3://{aws['capture']}/{key}"
    assert "ValueError: something in this file breaks ingestion" in record_["reason"]


# -- 2. a refused request writes nothing -----------------------------------------------------------


def test_a_request_with_more_batch_ids_than_allowed_is_refused_before_writing(api: Call) -> None:
    model_id = register(api)
    before = lake_keys()
    answer = api(
        "POST", f"/api/v3/models/{model_id}/inferences", [record(batch_id=f"b{i}") for i in range(1001)]
    )
    assert answer.status == 413 and answer.body["field"] == "batch_id"
    assert lake_keys() == before
    assert container.ingestion_ledger().counts(model_id)["total"] == {}


def test_batch_ids_past_one_transaction_are_each_counted(api: Call) -> None:
    model_id = register(api)
    answer = api(
        "POST", f"/api/v3/models/{model_id}/inferences", [record(batch_id=f"b{i}") for i in range(250)]
    )
    assert answer.body["counts"]["success"] == 250
    by_batch = container.ingestion_ledger().counts(model_id)["by_batch"]
    assert len(by_batch) == 250 and {b["inferences_ingested"] for b in by_batch.values()} == {1}
    assert api("GET", f"/api/v3/models/{model_id}/batches/b249").body["ingested"] == 1


def test_an_over_long_batch_id_fails_its_row_alone(api: Call) -> None:
    model_id = register(api)
    answer = api(
        "POST", f"/api/v3/models/{model_id}/inferences", [record(batch_id="x" * 2000), record(batch_id="ok")]
    )
    assert [r["message"] for r in answer.body["results"]] == [
        "batch_id is longer than 128 characters",
        "success",
    ]


def test_rows_spanning_more_days_than_a_request_may_write_are_refused_before_writing(api: Call) -> None:
    model_id = register(api)
    start = datetime(2022, 1, 1, tzinfo=UTC)
    days = [record(inference_timestamp=(start + timedelta(days=d)).isoformat()) for d in range(1001)]
    before = lake_keys()
    answer = api("POST", f"/api/v3/models/{model_id}/inferences", days)
    assert answer.status == 413 and "1001 days" in answer.body["message"]
    assert lake_keys() == before
    assert api("POST", f"/api/v3/models/{model_id}/inferences", days[:1000]).body["counts"]["success"] == 1000


# -- 3. non-finite numbers are refused, NaN is missing ---------------------------------------------


def test_infinite_floats_are_refused_and_nan_is_a_missing_value(api: Call) -> None:
    model_id = register(api)
    body = (
        '[{"partner_inference_id": "inf", "inference_data": {"age": 1, "income": Infinity}},'
        ' {"partner_inference_id": "-inf", "inference_data": {"age": 1, "income": -Infinity}},'
        ' {"partner_inference_id": "huge", "inference_data": {"age": 1, "income": 1e400}},'
        ' {"partner_inference_id": "nan", "inference_data": {"age": 1, "income": NaN}},'
        ' {"partner_inference_id": "a", "inference_data": {"age": 1, "income": 10.5}},'
        ' {"partner_inference_id": "b", "inference_data": {"age": 1, "income": -4.25}}]'
    )
    answer = api("POST", f"/api/v3/models/{model_id}/inferences", body.encode())
    assert [r["status"] for r in answer.body["results"]] == [400, 400, 400, 200, 200, 200]
    assert all("finite number" in r["message"] for r in answer.body["results"][:3])
    stored = {r["partner_inference_id"]: r["income"] for r in lake_rows("inferences", model_id)}
    assert stored == {"nan": None, "a": 10.5, "b": -4.25}
    finite = np.array([10.5, -4.25])
    select = [{"function": f, "parameters": {"property": "income"}} for f in ("avg", "sum", "max", "min")]
    [row] = api("POST", f"/api/v3/models/{model_id}/inferences/query", {"select": select}).body[
        "query_result"
    ]
    assert (row["avg"], row["sum"], row["max"], row["min"]) == (
        finite.mean(),
        finite.sum(),
        finite.max(),
        finite.min(),
    )


def test_infinity_in_a_capture_csv_is_rejected(aws: dict[str, str]) -> None:
    model_id = capture_model()
    put(aws, ninety_nine_good_and(capture_event(99, data="34,-Infinity,north")))
    handler(notifications(aws), LocalContext())
    assert all(math.isfinite(r["income"]) for r in lake_rows("inferences", model_id))
    [rejected] = container.lake_store().rejected(model_id)
    assert rejected["reason"] == "income: '-Infinity' is not a finite number"


# -- 4. malformed requests are 400s ----------------------------------------------------------------


def test_json_nested_past_the_parsers_depth_is_a_400(api: Call) -> None:
    model_id = register(api)
    answer = api("POST", f"/api/v3/models/{model_id}/inferences", b"[" * 5000 + b"]" * 5000)
    assert answer.status == 400 and answer.body["field"] == "body"


def test_integers_past_int64_fail_their_row(api: Call) -> None:
    model_id = register(api)
    answer = api(
        "POST",
        f"/api/v3/models/{model_id}/inferences",
        [
            record(age=2**63, partner_inference_id="big"),
            record(inference_timestamp=2**63),
            record(partner_inference_id="ok"),
        ],
    )
    assert [r["status"] for r in answer.body["results"]] == [400, 400, 200]
    assert answer.body["results"][0]["message"] == "age: '9223372036854775808' is not an INTEGER"


def test_a_calendar_invalid_time_fails_its_row_not_the_request(api: Call) -> None:
    model_id = register(api)
    answer = api(
        "POST",
        f"/api/v3/models/{model_id}/inferences",
        [record(inference_timestamp="2026-13-45T99:00:00Z"), record(partner_inference_id="ok")],
    )
    assert [r["status"] for r in answer.body["results"]] == [400, 200]


@pytest.mark.parametrize(
    ("condition", "status"),
    [
        ({"property": "inference_timestamp", "comparator": "gte", "value": "0001-01-01"}, 200),
        ({"property": "inference_timestamp", "comparator": "gte", "value": 1e20}, 400),
        ({"property": "inference_timestamp", "comparator": "lt", "value": "2026-02-30"}, 400),
        ({"property": "age", "comparator": "gte", "value": 2**63}, 400),
        ({"property": "age", "comparator": "in", "value": list(range(10_001))}, 400),
        ({"property": "age", "comparator": "eq", "value": [1, 2]}, 400),
        ({"property": "income", "comparator": "lt", "value": "Infinity"}, 400),
    ],
    ids=["year 1", "epoch 1e20", "30 February", "past int64", "10,001 values", "a list for eq", "Infinity"],
)
def test_query_filter_values_are_typed_or_refused(api: Call, condition: dict, status: int) -> None:
    model_id = register(api)
    api("POST", f"/api/v3/models/{model_id}/inferences", [record()])
    answer = api(
        "POST",
        f"/api/v3/models/{model_id}/inferences/query",
        {"select": [{"function": "count"}], "filter": [condition]},
    )
    assert answer.status == status, answer.body
    if status == 400:
        assert answer.body["field"] == "filter[0].value"


@pytest.mark.parametrize(
    ("select", "field"),
    [
        ({"function": "count", "parameters": {"bogus": 1}}, "select[0].parameters.bogus"),
        ({"function": "accuracyRate", "parameters": {"treshold": 0.3}}, "select[0].parameters.treshold"),
        ({"function": "accuracyRate", "parameters": {"threshold": "high"}}, "select[0].parameters.threshold"),
        (
            {"function": "distribution", "parameters": {"property": "age", "num_bins": "many"}},
            "select[0].parameters.num_bins",
        ),
    ],
)
def test_unknown_or_ill_typed_function_parameters_are_400s(api: Call, select: dict, field: str) -> None:
    body = factories.binary_probability()
    factories.attribute(body, "age").update(min_range=0, max_range=120)
    model_id = register(api, body)
    answer = api("POST", f"/api/v3/models/{model_id}/inferences/query", {"select": [select]})
    assert (answer.status, answer.body["field"]) == (400, field)


@pytest.mark.parametrize("threshold", ["high", "Infinity", "NaN"])
def test_an_alert_rule_threshold_is_a_finite_number(api: Call, threshold: str) -> None:
    model_id = register(api)
    metric = api("GET", f"/api/v3/models/{model_id}/metrics").body["metrics"][0]
    value = json.dumps(threshold) if threshold == "high" else threshold
    body = f'{{"metric_id": "{metric["id"]}", "bound": "upper", "threshold": {value}}}'
    answer = api("POST", f"/api/v3/models/{model_id}/alert_rules", body.encode())
    assert (answer.status, answer.body["field"]) == (400, "threshold")


def test_a_label_outside_the_classes_is_rejected_not_stored(api: Call) -> None:
    model_id = register(api)
    answer = api(
        "PATCH",
        f"/api/v3/models/{model_id}/inferences",
        [
            {"partner_inference_id": "x", "ground_truth_data": {"churned": 7}},
            {"partner_inference_id": "y", "ground_truth_data": {"churned": 1}},
        ],
    )
    assert [r["message"] for r in answer.body["results"]] == [
        "churned: 7 is not one of the classes (0, 1)",
        "success",
    ]
    assert [r["partner_inference_id"] for r in lake_rows("ground_truth", model_id)] == ["y"]


def test_a_multiclass_label_must_be_one_of_the_mapped_classes(api: Call) -> None:
    body = factories.multiclass_class_column()
    factories.attribute(body, "animal").update(
        categorical=False, categories=None
    )  # the map names the classes
    model_id = register(api, body)
    answer = api(
        "PATCH",
        f"/api/v3/models/{model_id}/inferences",
        [{"partner_inference_id": "x", "ground_truth_data": {"animal": "fish"}}],
    )
    assert answer.body["results"][0]["message"] == "animal: 'fish' is not one of the classes (dog, cat, bird)"


def test_deepchecks_features_with_dots_and_slashes_take_samples(api: Call) -> None:
    version = deepchecks_version(api, "odd-names", {"../x": "numeric", "a.b": "numeric"}, ["a", "b"])
    sample = {
        "_dc_sample_id": "s1",
        "_dc_time": "2026-11-24T10:00:00Z",
        "../x": 1.5,
        "a.b": 2.0,
        "_dc_prediction": "a",
    }
    for _ in range(2):  # a later upload works as well as the first
        answer = api("POST", f"/api/v1/model-versions/{version['id']}/data", [sample])
        assert answer.status == 200, answer.body
    refused = api(
        "POST",
        f"/api/v1/model-versions/{version['id']}/data",
        [{**sample, "_dc_sample_id": "s2", "_dc_label": "zzz"}],
    )
    assert refused.status == 400 and refused.body["field"] == "_dc_label"


# -- 5. request limits -----------------------------------------------------------------------------


def test_an_in_filter_past_the_limit_is_refused_before_the_lake_is_read(
    api: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_id = register(api)
    api("POST", f"/api/v3/models/{model_id}/inferences", [record()])

    def no_reads(*args, **kwargs):
        raise AssertionError("the lake was read for a refused query")

    monkeypatch.setattr(LakeStore, "read_table", no_reads)
    condition = {"property": "age", "comparator": "in", "value": list(range(100_000))}
    answer = api(
        "POST",
        f"/api/v3/models/{model_id}/inferences/query",
        {"select": [{"function": "count"}], "filter": [condition]},
    )
    assert answer.status == 400 and "at most 10000" in answer.body["message"]


# -- 6. quiet gaps ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["capture.jsonl.gz", "capture.jsonl"])
def test_gzip_capture_files_are_ingested(aws: dict[str, str], name: str) -> None:
    model_id = capture_model()
    put(aws, gzip.compress(ninety_nine_good_and(capture_event(99))), name)
    assert handler(notifications(aws), LocalContext()) == {"batchItemFailures": []}
    assert len(lake_rows("inferences", model_id)) == 100


def test_a_truncated_gzip_file_keeps_what_came_before_the_break_and_says_so(aws: dict[str, str]) -> None:
    model_id = capture_model()
    plain = ninety_nine_good_and(capture_event(99))
    compressed = gzip.compress(plain)
    put(aws, compressed[: len(compressed) * 3 // 4], "capture.jsonl.gz")
    assert handler(notifications(aws), LocalContext()) == {"batchItemFailures": []}
    kept = lake_rows("inferences", model_id)
    assert 0 < len(kept) < 100
    assert {r["partner_inference_id"] for r in kept} == {f"e-{n}" for n in range(len(kept))}
    reasons = [r["reason"] for r in container.lake_store().rejected(model_id)]
    assert any("gzip stream is truncated" in reason for reason in reasons)


def test_empty_and_control_character_ids_are_rejected(api: Call) -> None:
    model_id = register(api)
    answer = api(
        "POST",
        f"/api/v3/models/{model_id}/inferences",
        [
            record(partner_inference_id=""),
            record(partner_inference_id="a\x00b"),
            record(partner_inference_id="   "),
        ],
    )
    assert [r["message"] for r in answer.body["results"]] == [
        "partner_inference_id is empty",
        "partner_inference_id holds a control character",
        "partner_inference_id is empty",
    ]
    assert lake_rows("inferences", model_id) == []


@pytest.mark.parametrize(
    "destination",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest",
        "http://10.0.0.8/hook",
        "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next",
        "http://localhost/hook",
        "http://[::ffff:169.254.169.254]/",
        "http://0.0.0.0/",
        "ftp://example.com/x",
        "https://user:secret@hooks.example.com/x",
        # numeric spellings a resolver accepts, and IPv6 addresses carrying an IPv4 one
        "http://2852039166/",
        "http://0xA9FEA9FE/",
        "http://0251.0376.0251.0376/",
        "http://169.254.43518/",
        "http://\uff11\uff16\uff19.\uff12\uff15\uff14.\uff11\uff16\uff19.\uff12\uff15\uff14/",
        "http://[::169.254.169.254]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:a9fe:a9fe::]/",
        "http://[::ffff:0:a9fe:a9fe]/",
    ],
)
def test_webhooks_to_private_or_local_addresses_are_refused(api: Call, destination: str) -> None:
    model_id = register(api)
    answer = api(
        "POST",
        "/api/v3/alert_notification_configurations",
        {"model_id": model_id, "type": "webhook", "destination": destination},
    )
    assert (answer.status, answer.body["field"]) == (400, "destination"), answer.body


def test_a_public_webhook_is_accepted(api: Call) -> None:
    model_id = register(api)
    answer = api(
        "POST",
        "/api/v3/alert_notification_configurations",
        {
            "model_id": model_id,
            "type": "webhook",
            "destination": "https://hooks.example.com/services/T0/B0/x",
        },
    )
    assert answer.status == 201
