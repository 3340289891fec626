"""Hypothesis strategies shared by the property tests: capture files, clean and corrupted.

The churn model of tests.factories.binary_probability: age INTEGER, income FLOAT, region STRING in,
predicted_probability out. A clean event's rows parse back to themselves; a corrupted event carries
one fault, either in the event (all its inferences are rejected) or in one of its rows (that
inference alone is rejected), and the strategy says which partner ids must come through.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

BASE_TIME = datetime(2026, 11, 25, tzinfo=UTC)

ages = st.one_of(st.none(), st.integers(min_value=-(2**53), max_value=2**53))  # null: a missing value
incomes = st.floats(allow_nan=False, allow_infinity=False, width=64)
# CSV carries any text but line breaks (SageMaker writes one inference a line); quoting handles commas.
# Blank text counts as missing (null), so regions hold something besides spaces.
regions = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"), min_size=1, max_size=12
).filter(lambda s: s.strip() != "")
probabilities = st.floats(min_value=0, max_value=1)
row = st.tuples(ages, incomes, regions, probabilities)

# Faults that sink one event (every inference of the call), as (name, how the event is changed).
EVENT_FAULTS = (
    "time_not_a_time",
    "time_calendar_invalid",
    "time_out_of_range",
    "time_epoch_overflow",
    "time_missing",
    "event_id_missing",
    "input_missing",
    "output_missing",
    "one_prediction_too_many",
    "not_json",
    "truncated_line",
    "json_array_line",
    "bad_base64",
    "inference_id_control_character",
    "inference_id_too_long",
    "time_deeply_nested",
)
# Faults of one row (one inference) in a CSV payload.
ROW_FAULTS = ("age_past_int64", "age_not_a_number", "income_infinite", "income_overflows", "age_fraction")


def csv_text(values: list[list]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(values)
    return buffer.getvalue()


def encode_input(rows: list[tuple], style: str) -> tuple[str, str, str]:
    """(data, encoding, content type) of a request carrying these rows."""
    values = [
        [age, repr(income) if isinstance(income, float) else income, region]
        for age, income, region, _ in rows
    ]
    if style == "csv":
        return csv_text(values), "CSV", "text/csv"
    if style == "features":
        body = {"instances": [{"features": [age, income, region]} for age, income, region, _ in rows]}
    elif style == "lists":
        body = {"instances": [[age, income, region] for age, income, region, _ in rows]}
    else:  # objects by name
        body = [{"age": age, "income": income, "region": region} for age, income, region, _ in rows]
    return json.dumps(body), "JSON", "application/json"


def encode_output(rows: list[tuple], style: str) -> tuple[str, str, str]:
    scores = [p for *_, p in rows]
    if style == "csv":
        return "".join(f"{s!r}\n" for s in scores), "CSV", "text/csv"
    if style == "scores":
        return json.dumps({"predictions": [{"score": s} for s in scores]}), "JSON", "application/json"
    return json.dumps({"predictions": scores}), "JSON", "application/json"


def capture_line(
    data_in: str,
    encoding_in: str,
    type_in: str,
    data_out: str,
    encoding_out: str,
    type_out: str,
    metadata: dict,
) -> dict:
    return {
        "captureData": {
            "endpointInput": {
                "observedContentType": type_in,
                "mode": "INPUT",
                "data": data_in,
                "encoding": encoding_in,
            },
            "endpointOutput": {
                "observedContentType": type_out,
                "mode": "OUTPUT",
                "data": data_out,
                "encoding": encoding_out,
            },
        },
        "eventMetadata": metadata,
        "eventVersion": "0",
    }


@st.composite
def capture_files(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, datetime, tuple]]]:
    """A clean capture file and the (partner id, time, values) of every inference in it."""
    events = draw(st.lists(st.lists(row, min_size=1, max_size=4), min_size=1, max_size=8))
    lines, expected = [], []
    for number, event_rows in enumerate(events):
        data_in, encoding_in, type_in = encode_input(
            event_rows, draw(st.sampled_from(["csv", "features", "lists", "objects"]))
        )
        data_out, encoding_out, type_out = encode_output(
            event_rows, draw(st.sampled_from(["csv", "scores", "list"]))
        )
        if draw(st.booleans()):
            data_in, encoding_in = base64.b64encode(data_in.encode()).decode(), "BASE64"
        if draw(st.booleans()):
            data_out, encoding_out = base64.b64encode(data_out.encode()).decode(), "BASE64"
        inference_id = draw(st.one_of(st.none(), st.just(f"req-{number}")))
        when = BASE_TIME + timedelta(seconds=number, microseconds=draw(st.integers(0, 999_999)))
        metadata = {"eventId": f"event-{number}", "inferenceTime": when.isoformat().replace("+00:00", "Z")}
        if inference_id:
            metadata["inferenceId"] = inference_id
        lines.append(
            json.dumps(
                capture_line(data_in, encoding_in, type_in, data_out, encoding_out, type_out, metadata)
            )
        )
        base = inference_id or f"event-{number}"
        for index, values in enumerate(event_rows):
            partner_id = base if len(event_rows) == 1 else f"{base}_{index}"
            expected.append((partner_id, when, values))
    return ("\n".join(lines) + "\n").encode(), expected


@dataclass
class CorruptedFile:
    """A capture file with faults planted, and what must come of it."""

    data: bytes
    kept: set[str]  # partner ids that must be ingested
    refused: dict[int, set[int | None]] = field(default_factory=dict)  # line -> inference indexes refused
    faults: list[str] = field(default_factory=list)


def _event_fault(fault: str, line: dict, rows: list[tuple]) -> dict | str:
    """The event with `fault` planted: a dict to serialise, or the raw text of a broken line."""
    metadata = line["eventMetadata"]
    data = line["captureData"]
    if fault == "time_not_a_time":
        metadata["inferenceTime"] = "yesterday"
    elif fault == "time_calendar_invalid":
        metadata["inferenceTime"] = "2026-13-45T99:00:00Z"
    elif fault == "time_out_of_range":
        metadata["inferenceTime"] = "1900-01-01T00:00:00Z"
    elif fault == "time_epoch_overflow":
        metadata["inferenceTime"] = "1e20"
    elif fault == "time_missing":
        del metadata["inferenceTime"]
    elif fault == "event_id_missing":
        del metadata["eventId"]
        metadata.pop("inferenceId", None)
    elif fault == "input_missing":
        del data["endpointInput"]["data"]
    elif fault == "output_missing":
        del data["endpointOutput"]["data"]
    elif fault == "one_prediction_too_many":
        data["endpointOutput"] = {
            "observedContentType": "text/csv",
            "mode": "OUTPUT",
            "data": "".join(f"{p!r}\n" for *_, p in rows) + "0.5\n",
            "encoding": "CSV",
        }
    elif fault == "not_json":
        return "this is not JSON at all"
    elif fault == "truncated_line":
        text = json.dumps(line)
        return text[: len(text) // 2]
    elif fault == "json_array_line":
        return json.dumps([line])
    elif fault == "bad_base64":
        data["endpointInput"]["data"], data["endpointInput"]["encoding"] = "%%%not base64%%%", "BASE64"
    elif fault == "inference_id_control_character":
        metadata["inferenceId"] = "bad\x00id"
    elif fault == "inference_id_too_long":
        metadata["inferenceId"] = "x" * 300
    elif fault == "time_deeply_nested":
        metadata["inferenceTime"] = json.loads("[" * 200 + "]" * 200)
    return line


def _row_fault(fault: str, values: tuple) -> tuple:
    age, income, region, probability = values
    if fault == "age_past_int64":
        return (2**63 + 7, income, region, probability)
    if fault == "age_not_a_number":
        return ("sixty", income, region, probability)
    if fault == "income_infinite":
        return (age, "Infinity", region, probability)
    if fault == "income_overflows":
        return (age, "1e400", region, probability)
    return (f"{age}.5", income, region, probability)  # age_fraction


@st.composite
def corrupted_capture_files(draw: st.DrawFn) -> CorruptedFile:
    """Clean events mixed with events carrying one fault each (in the event, or in one row)."""
    count = draw(st.integers(min_value=1, max_value=12))
    lines: list[str] = []
    result = CorruptedFile(b"", set())
    for number in range(count):
        event_rows = draw(st.lists(row, min_size=1, max_size=3))
        kind = draw(st.sampled_from(["clean", "clean", "event", "row"]))
        style_in = "csv" if kind == "row" else draw(st.sampled_from(["csv", "features", "lists", "objects"]))
        bad_row = draw(st.integers(0, len(event_rows) - 1)) if kind == "row" else None
        row_fault = draw(st.sampled_from(ROW_FAULTS)) if kind == "row" else None
        sent = [
            _row_fault(row_fault, values) if index == bad_row else values
            for index, values in enumerate(event_rows)
        ]
        data_in, encoding_in, type_in = encode_input(sent, style_in)
        data_out, encoding_out, type_out = encode_output(
            event_rows, draw(st.sampled_from(["csv", "scores", "list"]))
        )
        when = BASE_TIME + timedelta(seconds=number)
        metadata = {"eventId": f"event-{number}", "inferenceTime": when.isoformat().replace("+00:00", "Z")}
        if draw(st.booleans()):
            metadata["inferenceId"] = f"req-{number}"
        line = capture_line(data_in, encoding_in, type_in, data_out, encoding_out, type_out, metadata)
        base = metadata.get("inferenceId", f"event-{number}")
        ids = [base if len(event_rows) == 1 else f"{base}_{i}" for i in range(len(event_rows))]
        line_number = number + 1
        if kind == "event":
            fault = draw(st.sampled_from(EVENT_FAULTS))
            planted = _event_fault(fault, line, event_rows)
            lines.append(planted if isinstance(planted, str) else json.dumps(planted))
            result.refused[line_number] = set()
            result.faults.append(fault)
        else:
            lines.append(json.dumps(line))
            if kind == "row":
                result.refused[line_number] = {bad_row if len(event_rows) > 1 else None}
                result.faults.append(row_fault)
            result.kept |= {partner_id for index, partner_id in enumerate(ids) if index != bad_row}
    result.data = ("\n".join(lines) + "\n").encode()
    return result
