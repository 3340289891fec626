"""Property: any rows, serialised as capture events in any encoding and shape, parse back to themselves."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.test_capture import churn_model

from sagewatch.capture import parse_capture

MODEL = churn_model()
BASE_TIME = datetime(2026, 11, 25, tzinfo=UTC)

ages = st.integers(min_value=-(2**53), max_value=2**53)
incomes = st.floats(allow_nan=False, allow_infinity=False, width=64)
# CSV carries any text but line breaks (SageMaker writes one inference a line); quoting handles commas.
# Blank text counts as missing (null), so regions hold something besides spaces.
regions = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"), min_size=1, max_size=12
).filter(lambda s: s.strip() != "")
probabilities = st.floats(min_value=0, max_value=1)
row = st.tuples(ages, incomes, regions, probabilities)


def csv_text(values: list[list]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(values)
    return buffer.getvalue()


def encode_input(rows: list[tuple], style: str) -> tuple[str, str, str]:
    """(data, encoding, content type) of a request carrying these rows."""
    values = [[age, repr(income), region] for age, income, region, _ in rows]
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


@st.composite
def capture_files(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, datetime, tuple]]]:
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
                {
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
            )
        )
        base = inference_id or f"event-{number}"
        for index, values in enumerate(event_rows):
            partner_id = base if len(event_rows) == 1 else f"{base}_{index}"
            expected.append((partner_id, when, values))
    return ("\n".join(lines) + "\n").encode(), expected


@settings(max_examples=150, deadline=None)
@given(capture_files())
def test_parsed_rows_equal_the_rows_that_were_captured(capture: tuple[bytes, list]) -> None:
    data, expected = capture
    parsed = parse_capture(data, MODEL, source="s3://b/k")
    assert parsed.rejected == []
    got = [
        (
            r["partner_inference_id"],
            r["inference_timestamp"],
            (r["age"], r["income"], r["region"], r["predicted_probability"]),
        )
        for r in parsed.rows.to_pylist()
    ]
    assert got == expected
