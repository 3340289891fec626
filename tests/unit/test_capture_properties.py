"""Property: any rows, serialised as capture events in any encoding and shape, parse back to themselves."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from tests import factories
from tests.strategies import CorruptedFile, capture_files, corrupted_capture_files

from sagewatch.capture import parse_capture

pytestmark = pytest.mark.fuzz

MODEL = factories.model_of()


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


@settings(max_examples=300, deadline=None)
@given(corrupted_capture_files())
def test_a_fault_costs_its_own_inferences_and_nothing_else(capture: CorruptedFile) -> None:
    """GIVEN clean events mixed with events carrying one fault (in the event or in one row)
    WHEN the file is parsed
    THEN exactly the clean inferences come through, and every fault is rejected with a reason."""
    parsed = parse_capture(capture.data, MODEL, source="s3://b/k")
    assert set(parsed.rows.column("partner_inference_id").to_pylist()) == capture.kept
    assert parsed.rows.num_rows == len(capture.kept)
    assert all(r["reason"] for r in parsed.rejected)
    refused_lines = {r["line"] for r in parsed.rejected}
    assert refused_lines == set(capture.refused), capture.faults
    for line, indexes in capture.refused.items():
        if indexes:  # a row fault: that inference alone
            assert {r["inference_index"] for r in parsed.rejected if r["line"] == line} == indexes
