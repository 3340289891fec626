"""Data Capture and ground-truth files from events/, each against a table written by hand."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests import factories

from sagewatch.capture import parse_capture, parse_ground_truth
from sagewatch.schema import Model

EVENTS = Path(__file__).resolve().parents[2] / "events"
NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


def rows(name: str, model: Model | None = None) -> list[tuple]:
    parsed = parse_capture(
        (EVENTS / "capture" / name).read_bytes(),
        model or factories.model_of(),
        source="s3://b/k",
        variant="AllTraffic",
    )
    assert parsed.rejected == []
    return table_rows(parsed.rows)


def table_rows(table) -> list[tuple]:
    return [
        (
            r["partner_inference_id"],
            r["inference_timestamp"].isoformat(),
            r["age"],
            r["income"],
            r["region"],
            r["predicted_probability"],
        )
        for r in table.to_pylist()
    ]


def test_csv_one_inference_per_call() -> None:
    assert rows("csv_single.jsonl") == [
        ("0b1f6c1e-0001-4c9a-9e1b-7c6f2a000001", "2026-11-25T10:00:01+00:00", 34, 52000.5, "north", 0.12),
        ("0b1f6c1e-0002-4c9a-9e1b-7c6f2a000002", "2026-11-25T10:05:30+00:00", 61, 18000.0, "south", 0.87),
        ("order-9931", "2026-11-25T10:59:59.250000+00:00", 45, 33000.25, "north", 0.5),
    ]


def test_csv_several_rows_per_call_get_indexed_ids() -> None:
    assert rows("csv_multi_rows.jsonl") == [
        ("5e0c-multi-1_0", "2026-11-25T11:00:00+00:00", 20, 1000.0, "north", 0.1),
        ("5e0c-multi-1_1", "2026-11-25T11:00:00+00:00", 30, 2000.0, "south", 0.2),
        ("5e0c-multi-1_2", "2026-11-25T11:00:00+00:00", 40, 3000.0, "north", 0.3),
        ("batch-77_0", "2026-11-25T11:00:05+00:00", 50, 5000.0, "south", 0.4),
        ("batch-77_1", "2026-11-25T11:00:05+00:00", 60, 6000.0, "north", 0.6),
    ]


def test_json_instances_lists_objects_and_scalar_outputs() -> None:
    assert rows("json_instances.jsonl") == [
        ("json-1_0", "2026-11-25T12:00:00+00:00", 34, 52000.5, "north", 0.12),
        ("json-1_1", "2026-11-25T12:00:00+00:00", 61, 18000.0, "south", 0.87),
        ("json-2", "2026-11-25T12:00:01+00:00", 45, 33000.25, "north", 0.5),
        ("json-3", "2026-11-25T12:00:02+00:00", 29, 41000.0, "south", 0.33),
    ]


def test_base64_csv_in_and_base64_json_out() -> None:
    assert rows("base64.jsonl") == [
        ("b64-1_0", "2026-11-25T13:00:00+00:00", 34, 52000.5, "north", 0.12),
        ("b64-1_1", "2026-11-25T13:00:00+00:00", 61, 18000.0, "south", 0.87),
    ]


def test_csv_in_and_json_out_by_name() -> None:
    assert rows("csv_in_json_out.jsonl") == [
        ("mix-1_0", "2026-11-25T14:00:00+00:00", 34, 52000.5, "north", 0.12),
        ("mix-1_1", "2026-11-25T14:00:00+00:00", 61, 18000.0, "south", 0.87),
    ]


def test_json_lines_bodies_labelled_json() -> None:
    assert rows("jsonlines_labelled_json.jsonl") == [
        ("jsonl-1_0", "2026-11-25T15:00:00+00:00", 34, 52000.5, "north", 0.12),
        ("jsonl-1_1", "2026-11-25T15:00:00+00:00", 61, 18000.0, "south", 0.87),
    ]


def test_corrupted_lines_are_rejected_alone_and_the_rest_is_kept() -> None:
    parsed = parse_capture(
        (EVENTS / "capture" / "corrupted.jsonl").read_bytes(),
        factories.model_of(),
        source="s3://b/k",
        variant="A",
    )
    assert table_rows(parsed.rows) == [
        ("bad-1", "2026-11-25T16:00:00+00:00", 34, 52000.5, "north", 0.12),
        ("bad-7", "2026-11-25T16:00:06+00:00", 50, 5000.0, "south", 0.4),
    ]
    by_line = sorted((r["line"], r["event_id"], r["inference_index"], r["reason"]) for r in parsed.rejected)
    assert [(line, event, index) for line, event, index, _ in by_line] == [
        (2, None, None),
        (3, "bad-3", None),
        (4, "bad-4", 0),
        (4, "bad-4", 1),
        (5, None, None),
        (6, "bad-6", None),
    ]
    reasons = {line: reason for line, _, _, reason in by_line}
    assert reasons[2].startswith("not a JSON object")
    assert reasons[3] == "age: 'sixty' is not an INTEGER"
    assert reasons[4] == "the request holds 2 inferences but the response 1"
    assert reasons[6] == "endpointInput: expected 3 comma-separated values (age, income, region), got 2"


def capture_line(data_in: str, data_out: str, **overrides) -> str:
    event = {
        "captureData": {
            "endpointInput": {
                "observedContentType": "text/csv",
                "mode": "INPUT",
                "data": data_in,
                "encoding": "CSV",
            },
            "endpointOutput": {
                "observedContentType": "text/csv",
                "mode": "OUTPUT",
                "data": data_out,
                "encoding": "CSV",
            },
        },
        "eventMetadata": {"eventId": "e", "inferenceTime": "2026-11-25T10:00:00Z"},
        "eventVersion": "0",
    }
    for path, value in overrides.items():
        target = event
        *parents, last = path.split(".")
        for parent in parents:
            target = target[parent]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return json.dumps(event)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"eventMetadata.eventId": None}, "eventMetadata.eventId is missing"),
        (
            {"eventMetadata.inferenceTime": "last tuesday"},
            "eventMetadata.inferenceTime is not an ISO 8601 time",
        ),
        ({"captureData.endpointOutput": None}, "captureData.endpointOutput.data is missing"),
        (
            {"captureData.endpointInput.encoding": "BASE64", "captureData.endpointInput.data": "%%%"},
            "endpointInput.data is not valid base64",
        ),
        (
            {
                "captureData.endpointInput.observedContentType": "application/x-protobuf",
                "captureData.endpointInput.encoding": "BASE64",
                "captureData.endpointInput.data": "AAEC",
            },
            "endpointInput: expected 3 comma-separated values (age, income, region), got 1",
        ),
        (
            {
                "captureData.endpointInput.observedContentType": "application/json",
                "captureData.endpointInput.encoding": "JSON",
                "captureData.endpointInput.data": '{"instances": [1, 2',
            },
            "endpointInput: invalid JSON: Expecting ',' delimiter at character 19",
        ),
    ],
)
def test_event_level_problems_name_the_field(overrides: dict, reason: str) -> None:
    parsed = parse_capture(
        capture_line("1,2,north", "0.5", **overrides).encode(), factories.model_of(), source="s"
    )
    assert parsed.rows.num_rows == 0
    assert [r["reason"] for r in parsed.rejected] == [reason]


def test_predictions_by_position_when_names_do_not_match() -> None:
    line = capture_line(
        "1,2,north",
        json.dumps({"predictions": [{"score": 0.25}]}),
        **{
            "captureData.endpointOutput.observedContentType": "application/json",
            "captureData.endpointOutput.encoding": "JSON",
        },
    )
    parsed = parse_capture(line.encode(), factories.model_of(), source="s")
    assert parsed.rows.column("predicted_probability").to_pylist() == [0.25]


def test_two_probability_outputs_fill_two_predictions_in_position_order() -> None:
    model = factories.model_of(factories.binary_one_hot())
    line = capture_line("1,2,north\n3,4,south", "0.9,0.1\n0.2,0.8")
    parsed = parse_capture(line.encode(), model, source="s")
    assert parsed.rows.select(["pred_0", "pred_1"]).to_pylist() == [
        {"pred_0": 0.9, "pred_1": 0.1},
        {"pred_0": 0.2, "pred_1": 0.8},
    ]


def test_missing_and_blank_values_are_nulls_not_rejections() -> None:
    parsed = parse_capture(capture_line(",,north", "0.5").encode(), factories.model_of(), source="s")
    assert parsed.rejected == []
    assert parsed.rows.select(["age", "income", "region"]).to_pylist() == [
        {"age": None, "income": None, "region": "north"}
    ]


def test_lake_columns_carry_provenance() -> None:
    parsed = parse_capture(
        capture_line("1,2,north", "0.5").encode(),
        factories.model_of(),
        source="s3://cap/x.jsonl",
        variant="Blue",
    )
    assert parsed.rows.schema.names == [
        "partner_inference_id",
        "inference_timestamp",
        "batch_id",
        "source",
        "variant",
        "ingested_at",
        "age",
        "income",
        "region",
        "predicted_probability",
        "anomaly_score",  # null until written: the ingestor scores rows as it writes them
    ]
    row = parsed.rows.to_pylist()[0]
    assert (row["source"], row["variant"], row["batch_id"]) == ("s3://cap/x.jsonl", "Blue", None)


def test_line_numbers_continue_across_chunks() -> None:
    parsed = parse_capture(b"{oops\n", factories.model_of(), source="s", first_line=1001)
    assert [r["line"] for r in parsed.rejected] == [1001]


def test_model_monitor_ground_truth() -> None:
    parsed = parse_ground_truth(
        (EVENTS / "ground_truth" / "ground_truth.jsonl").read_bytes(),
        factories.model_of(),
        source="s3://gt/x",
        received_at=NOW,
    )
    assert [(r["partner_inference_id"], r["churned"]) for r in parsed.rows.to_pylist()] == [
        ("0b1f6c1e-0001-4c9a-9e1b-7c6f2a000001", 0),
        ("0b1f6c1e-0002-4c9a-9e1b-7c6f2a000002", 1),
        ("5e0c-multi-1_0", 0),
        ("5e0c-multi-1_1", 1),
        ("5e0c-multi-1_2", 0),
        ("batch-77_0", 1),
        ("batch-77_1", 0),
    ]
    assert {r["ground_truth_timestamp"] for r in parsed.rows.to_pylist()} == {NOW}
    assert [(r["line"], r["event_id"], r["reason"]) for r in parsed.rejected] == [
        (5, "json-1", "churned: 'yes' is not an INTEGER")
    ]


def test_ground_truth_of_a_regression_model() -> None:
    model = factories.model_of(factories.regression())
    line = json.dumps(
        {"groundTruthData": {"data": "123.5", "encoding": "CSV"}, "eventMetadata": {"eventId": "r1"}}
    )
    parsed = parse_ground_truth(line.encode(), model, source="s", received_at=NOW)
    assert parsed.rows.select(["partner_inference_id", "ground_truth_value"]).to_pylist() == [
        {"partner_inference_id": "r1", "ground_truth_value": 123.5}
    ]


def json_side(body: object) -> dict:
    return {
        "captureData.endpointInput.observedContentType": "application/json",
        "captureData.endpointInput.encoding": "JSON",
        "captureData.endpointInput.data": body if isinstance(body, str) else json.dumps(body),
    }


def test_a_file_mixing_payload_kinds_keeps_each_call_apart() -> None:
    """GIVEN one file of CSV calls (with and without a final newline), JSON calls of several shapes,
    a base64 call, a call whose JSON is malformed, one whose counts disagree and rows with bad values
    WHEN it is parsed
    THEN every good call's rows come through in file order, each bad call or row is refused with its
    line and reason, and its neighbours are untouched."""
    lines = [
        capture_line("1,2.5,north\n3,4.5,south", "0.1\n0.2\n", **{"eventMetadata.eventId": "csv"}),
        capture_line("5,6.5,north\n", "0.3", **{"eventMetadata.eventId": "csv-one"}),
        capture_line(
            "",
            "0.4",
            **json_side({"instances": [{"features": [7, 8.5, "south"]}]}),
            **{"eventMetadata.eventId": "features"},
        ),
        capture_line(
            "", "0.5", **json_side('{"instances": [[9, 10.5, "north"]'), **{"eventMetadata.eventId": "broken"}
        ),
        capture_line(
            "",
            "0.6\n0.7",
            **json_side([[11, 12.5, "south"], [13, 14.5, "north"]]),
            **{"eventMetadata.eventId": "bare"},
        ),
        capture_line(
            "",
            "0.8",
            **json_side([{"age": 15, "income": 16.5, "region": "south"}]),
            **{"eventMetadata.eventId": "objects"},
        ),
        capture_line(
            base64.b64encode(b"17,18.5,north").decode(),
            "0.9",
            **{"captureData.endpointInput.encoding": "BASE64", "eventMetadata.eventId": "base64"},
        ),
        capture_line("19,20.5,south\n21,22.5,north", "0.1", **{"eventMetadata.eventId": "counts"}),
        capture_line(
            "sixty,1,north\n23,24.5,south\n25,26.5", "0.2\n0.3\n0.4", **{"eventMetadata.eventId": "rows"}
        ),
        capture_line(
            "",
            "0.5\n0.6",
            **json_side({"instances": [[27, "x", "north"], [29, 30.5]]}),
            **{"eventMetadata.eventId": "json-rows"},
        ),
    ]
    parsed = parse_capture(("\n".join(lines) + "\n").encode(), factories.model_of(), source="s")
    assert [
        (r["partner_inference_id"], r["age"], r["income"], r["region"], r["predicted_probability"])
        for r in parsed.rows.to_pylist()
    ] == [
        ("csv_0", 1, 2.5, "north", 0.1),
        ("csv_1", 3, 4.5, "south", 0.2),
        ("csv-one", 5, 6.5, "north", 0.3),
        ("features", 7, 8.5, "south", 0.4),
        ("bare_0", 11, 12.5, "south", 0.6),
        ("bare_1", 13, 14.5, "north", 0.7),
        ("objects", 15, 16.5, "south", 0.8),
        ("base64", 17, 18.5, "north", 0.9),
        ("rows_1", 23, 24.5, "south", 0.3),
    ]
    assert sorted((r["line"], r["event_id"], r["inference_index"], r["reason"]) for r in parsed.rejected) == [
        (4, "broken", None, "endpointInput: invalid JSON: Expecting ',' delimiter at character 33"),
        (8, "counts", 0, "the request holds 2 inferences but the response 1"),
        (8, "counts", 1, "the request holds 2 inferences but the response 1"),
        (9, "rows", 0, "age: 'sixty' is not an INTEGER"),
        (9, "rows", 2, "endpointInput: expected 3 comma-separated values (age, income, region), got 2"),
        (10, "json-rows", 0, "income: 'x' is not a FLOAT"),
        (10, "json-rows", 1, "endpointInput: expected 3 values (age, income, region), got 2"),
    ]
