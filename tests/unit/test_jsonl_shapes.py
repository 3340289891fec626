"""Lines read by their shape (sagewatch.jsonl's byte scan) against pyarrow's JSON reader, line by line.

The scan must give, for every buffer, exactly what pyarrow gives: the same rows, line numbers and
refusals (with the same reasons). Buffers here are capture-like lines written every way a writer
could (keys in any order, extra fields, spacing, every kind of escape, unicode, missing fields),
mixed with lines that are broken or of shapes the scan leaves to pyarrow.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests import factories

from sagewatch import jsonl
from sagewatch.capture import CAPTURE_SCHEMA, GROUND_TRUTH_SCHEMA, parse_capture, parse_ground_truth
from sagewatch.jsonl import read_jsonl

# Text of every kind: quotes, backslashes, control characters, slashes, non-ASCII, surrogate pairs.
# Control characters are written as \u escapes, which the scan leaves to pyarrow: any text is drawn
# for one field of a line in four, so that most lines are of the kind the scan reads.
simple_texts = st.text(st.sampled_from('"\\/\n\r\t\b\f,:{}[] aé€😀'), max_size=30)  # every simple escape
samples = st.sampled_from(
    ["", "CSV", "JSON", "BASE64", "text/csv", "1,2,3\n4,5,6\n", '{"instances": [1, "a"]}']
)
texts = st.one_of(simple_texts, samples)
any_texts = st.text(max_size=30)


def exact(buffer: bytes, schema: pa.Schema = CAPTURE_SCHEMA) -> jsonl.LineTable:
    """pyarrow's reading alone (the scan not asked)."""
    return jsonl._read_any(buffer, schema, 1)


def assert_same(buffer: bytes, schema: pa.Schema = CAPTURE_SCHEMA) -> jsonl.LineTable:
    """The reading with the scan equals pyarrow's alone: rows, line numbers, refusals."""
    found, expected = read_jsonl(buffer, schema), exact(buffer, schema)
    assert found.table.schema == expected.table.schema
    assert found.table.to_pylist() == expected.table.to_pylist()
    assert found.line.tolist() == expected.line.tolist()
    assert found.broken == expected.broken
    return found


def event(draw: st.DrawFn) -> dict:
    """A capture event as a dict: fields dropped, added (any JSON value), their order shuffled."""
    side = lambda mode: {  # noqa: E731
        "observedContentType": draw(texts),
        "mode": mode,
        "data": draw(texts),
        "encoding": draw(texts),
    }
    document = {
        "captureData": {"endpointInput": side("INPUT"), "endpointOutput": side("OUTPUT")},
        "eventMetadata": {"eventId": draw(texts), "inferenceTime": draw(texts)},
        "eventVersion": "0",
    }
    if draw(st.booleans()):
        document["eventMetadata"]["inferenceId"] = draw(texts)
    if draw(st.integers(0, 3)) == 0:  # any text at all in one field
        document["captureData"]["endpointInput"][draw(st.sampled_from(["data", "mode"]))] = draw(any_texts)
    others = st.one_of(st.integers(), st.none(), st.lists(texts, max_size=2), st.booleans())
    extras = st.one_of(texts, texts, st.dictionaries(st.sampled_from(["a", "data"]), texts), others)
    for container in (document, document["eventMetadata"], document["captureData"]["endpointInput"]):
        for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
            container[draw(st.sampled_from(["customAttributes", "x", "é", "data2"]))] = draw(extras)
        for key in list(container):
            if draw(st.integers(0, 20)) == 0:
                del container[key]
    rng = random.Random(draw(st.integers(0, 2**16)))

    def shuffle(document: dict) -> dict:
        pairs = rng.sample(list(document.items()), len(document))
        return {k: shuffle(v) if isinstance(v, dict) else v for k, v in pairs}

    return shuffle(document) if draw(st.integers(0, 3)) == 0 else document


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    """One line as a writer would write it, or broken as a writer would break it."""
    document = event(draw)
    spacing = [(",", ":"), (", ", ": "), (",", ":"), (", ", ": "), (" , ", " : "), (",\t", ":\t")]
    separators = draw(st.sampled_from(spacing))
    text = json.dumps(document, ensure_ascii=draw(st.integers(0, 7)) == 0, separators=separators)
    fault = draw(st.sampled_from(["none"] * 3 * len(FAULTS) + FAULTS))
    at, variant = draw(st.integers(0, max(len(text) - 1, 0))), draw(st.integers(0, 2))
    return corrupt(text, fault, at, variant).encode("utf-8", errors="surrogatepass")


FAULTS = [
    "truncated",
    "raw quote",
    "raw control",
    "bad escape",
    "duplicate key",
    "text for object",
    "number for text",
    "null for text",
    "object for text",
    "two objects",
    "blank",
    "spaces",
    "bom",
    "deep",
    "array",
    "carriage return",
    "lone surrogate",
    "trailing backslash",
]


def corrupt(text: str, fault: str, at: int = 0, variant: int = 0) -> str:
    """The line with one fault of a writer (or of a shape the scan leaves to pyarrow), at a place."""
    if fault == "truncated":
        return text[:at]
    if fault == "raw quote":
        return text[:at] + '"' + text[at:]
    if fault == "raw control":
        return text[:at] + ["\x01", "\t", "\x1f"][variant] + text[at:]
    if fault == "bad escape":
        return text[:at] + "\\x" + text[at:]
    if fault == "duplicate key":
        return '{"eventVersion": "1", ' + text[1:]
    if fault == "text for object":
        return '{"captureData": "x", ' + text[1:]
    if fault == "number for text":
        return '{"eventVersion": 5, ' + text[1:]
    if fault == "null for text":
        return text.replace('"mode": "INPUT"', '"mode": null').replace('"mode":"INPUT"', '"mode":null')
    if fault == "object for text":
        return '{"eventVersion": {"a": "b"}, ' + text[1:]
    if fault == "two objects":
        return text + text
    if fault == "blank":
        return ""
    if fault == "spaces":
        return "   " + text if variant else "  \t "
    if fault == "bom":
        return "\ufeff" + text
    if fault == "deep":
        return '{"x": ' + '{"a": ' * 40 + '"b"' + "}" * 40 + ", " + text[1:]
    if fault == "array":
        return "[" + text + "]"
    if fault == "carriage return":
        return text + "\r"
    if fault == "lone surrogate":
        return text.replace('"0"', '"\\ud800"', 1)
    if fault == "trailing backslash":
        return text.replace('"0"', '"0\\\\"', 1)
    return text


@pytest.mark.fuzz
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(lines(), min_size=1, max_size=12), st.booleans())
def test_any_buffer_reads_as_pyarrow_reads_it(found_lines: list[bytes], final_break: bool) -> None:
    """GIVEN capture lines written any way, some broken
    WHEN the buffer is read
    THEN rows, line numbers and refusals (reasons included) are pyarrow's."""
    assert_same(b"\n".join(found_lines) + (b"\n" if final_break else b""))


@pytest.mark.fuzz
@settings(max_examples=100, deadline=None)
@given(st.data())
def test_ground_truth_lines_read_as_pyarrow_reads_them(data: st.DataObject) -> None:
    """The same holds for Model Monitor ground-truth lines."""
    rows = []
    for _ in range(data.draw(st.integers(1, 8))):
        document = {
            "groundTruthData": {"data": data.draw(texts), "encoding": data.draw(texts)},
            "eventMetadata": {"eventId": data.draw(texts)},
            "eventVersion": "0",
        }
        fault, at = data.draw(st.sampled_from(["none", *FAULTS])), data.draw(st.integers(0, 60))
        rows.append(corrupt(json.dumps(document), fault, at))
    assert_same("\n".join(rows).encode("utf-8", errors="surrogatepass"), GROUND_TRUTH_SCHEMA)


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_reads_as_pyarrow_reads_it(fault: str) -> None:
    """GIVEN SageMaker lines and json.dumps lines, one of them with a fault at one of many places
    WHEN the buffer is read
    THEN rows, line numbers and refusals are pyarrow's."""
    rng = random.Random(fault)
    for _ in range(25):
        clean = [sagemaker_line(i, rng.choice(['1,"a\\b"\n', "é\n", ""])) for i in range(3)]
        spaced = json.dumps(json.loads(clean[0]) | {"extra": {"k": "v"}})
        text = rng.choice([clean[1], spaced])
        broken = corrupt(text, fault, rng.randrange(len(text)), rng.randrange(3))
        assert_same("\n".join([clean[0], broken, clean[2], spaced]).encode("utf-8", errors="surrogatepass"))


def sagemaker_line(index: int, data: str, inference_id: str | None = None) -> str:
    """A line as SageMaker writes it: compact, keys in its order."""
    metadata = {"eventId": f"e-{index}", "inferenceTime": "2026-11-25T00:00:00Z"}
    if inference_id is not None:
        metadata["inferenceId"] = inference_id
    side = {"observedContentType": "text/csv", "mode": "INPUT", "data": data, "encoding": "CSV"}
    document = {
        "captureData": {"endpointInput": side, "endpointOutput": {**side, "mode": "OUTPUT", "data": "0.5\n"}},
        "eventMetadata": metadata,
        "eventVersion": "0",
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def test_sagemaker_lines_are_read_by_the_scan_with_their_escapes_undone() -> None:
    """GIVEN compact lines with quotes, backslashes, line breaks, slashes and unicode in their data
    WHEN the buffer is read
    THEN the scan reads them all itself (nothing left to pyarrow), and each data is the text sent."""
    sent = ['1,2,"a ""b"""\n', "c:\\path\\to\\\n", '\\\\\\"', "é€😀,/,\t", "", "x\\n"]
    buffer = "\n".join(sagemaker_line(i, d, "id" if i % 2 else None) for i, d in enumerate(sent)) + "\n"
    table, line, rest = jsonl._read_shaped(buffer.encode(), CAPTURE_SCHEMA)
    assert rest is None and line.tolist() == list(range(len(sent)))
    assert [r["captureData"]["endpointInput"]["data"] for r in table.to_pylist()] == sent
    assert_same(buffer.encode())


def test_lines_the_scan_is_not_sure_of_keep_their_numbers_among_the_others() -> None:
    """GIVEN known lines around a broken one, a \\u escape, a blank line and a line with a number
    WHEN the buffer is read
    THEN the scan reads the known ones and pyarrow the rest, each with its own line number."""
    rows = [
        sagemaker_line(1, "1\n"),
        '{"captureData": {',
        sagemaker_line(2, "2\n").replace("e-2", "\\u0065-2"),
        "",
        sagemaker_line(3, "3\n").replace('"eventVersion":"0"', '"eventVersion":"0","n":1'),
        sagemaker_line(4, "4\n"),
    ]
    buffer = "\n".join(rows).encode()
    _, line, rest = jsonl._read_shaped(buffer, CAPTURE_SCHEMA)
    assert line.tolist() == [0, 5] and rest is not None
    found = assert_same(buffer)
    assert found.line.tolist() == [1, 3, 5, 6]
    assert [b[0] for b in found.broken] == [2]
    assert [r["eventMetadata"]["eventId"] for r in found.table.to_pylist()] == ["e-1", "e-2", "e-3", "e-4"]


def parsed_both_ways(parse, buffer: bytes, monkeypatch: pytest.MonkeyPatch):
    """What a parser gives with the scan, and without it."""
    fast = parse(buffer)
    with monkeypatch.context() as patch:
        patch.setattr(jsonl, "_read_shaped", lambda buffer, schema: None)
        slow = parse(buffer)
    return fast, slow


@pytest.mark.fuzz
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(found_lines=st.lists(lines(), min_size=1, max_size=10))
def test_parse_capture_rows_and_rejections_are_the_same_with_the_scan(
    found_lines: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN capture lines written any way, some broken, of a model
    WHEN parsed with the scan and without it
    THEN the rows and the rejections (lines, event ids, reasons) are the same."""
    model = factories.model_of()
    buffer = b"\n".join(found_lines)
    parse = lambda b: parse_capture(b, model, source="s", first_line=7)  # noqa: E731
    fast, slow = parsed_both_ways(parse, buffer, monkeypatch)
    assert fast.rows.drop(["ingested_at"]).to_pylist() == slow.rows.drop(["ingested_at"]).to_pylist()
    assert fast.rejected == slow.rejected


def test_parse_ground_truth_is_the_same_with_the_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """GIVEN ground truth of several values per event, a broken line and one in another shape
    WHEN parsed with the scan and without it
    THEN the rows and the rejections are the same."""
    model = factories.model_of()
    rows = [
        json.dumps(
            {"groundTruthData": {"data": "1\n0\n", "encoding": "CSV"}, "eventMetadata": {"eventId": "a"}}
        ),
        '{"groundTruthData": ',
        json.dumps(
            {"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "b"}, "n": 2}
        ),
        json.dumps(
            {"eventMetadata": {"eventId": "c"}, "groundTruthData": {"encoding": "JSON", "data": "[0]"}}
        ),
    ]
    moment = datetime(2026, 11, 25, tzinfo=UTC)
    parse = lambda b: parse_ground_truth(b, model, source="s", received_at=moment, ingested_at=moment)  # noqa: E731
    fast, slow = parsed_both_ways(parse, "\n".join(rows).encode(), monkeypatch)
    assert fast.rows.to_pylist() == slow.rows.to_pylist()
    assert fast.rejected == slow.rejected
    assert {r["partner_inference_id"] for r in fast.rows.to_pylist()} >= {"a_0", "a_1", "c"}
