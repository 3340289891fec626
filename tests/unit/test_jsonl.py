"""JSON nesting depth of many segments at once (sagewatch.jsonl), against a plain Python scan."""

from __future__ import annotations

import random

import numpy as np
import pytest

from sagewatch.capture import CAPTURE_SCHEMA
from sagewatch.jsonl import MAX_JSON_DEPTH, read_jsonl, segments_too_deep


def python_depth(text: bytes) -> int:
    """Deepest bracket nesting outside JSON strings, one byte at a time."""
    deepest = level = 0
    inside = escaped = False
    for byte in text:
        if inside:
            if escaped:
                escaped = False
            elif byte == ord("\\"):
                escaped = True
            elif byte == ord('"'):
                inside = False
        elif byte == ord('"'):
            inside = True
        elif byte in b"[{":
            level += 1
            deepest = max(deepest, level)
        elif byte in b"]}":
            level -= 1
    return deepest


@pytest.mark.parametrize("seed", range(5))
def test_segments_too_deep_matches_a_byte_by_byte_scan(seed: int) -> None:
    """Segments of bracket runs and JSON strings (holding brackets and escaped quotes), cut between
    pieces: what the Python scan finds deeper than MAX_JSON_DEPTH, and only that, is too deep."""
    rng = random.Random(seed)
    pieces = [b"[", b"{", b"]", b"}", b" ", b"[" * 40, b"]" * 40, b'"[[[["', b'"a\\"[[[{"', b'"\\\\"']
    for _ in range(200):
        chosen = [rng.choice(pieces) for _ in range(rng.randint(1, 60))]
        text = b"".join(chosen)
        bounds = np.cumsum([0, *map(len, chosen)])
        cuts = sorted({0, len(text), *rng.sample(list(bounds), min(len(bounds), 5))})
        starts, ends = np.array(cuts[:-1]), np.array(cuts[1:])
        found = segments_too_deep(np.frombuffer(text, dtype=np.uint8), starts, ends)
        expected = [python_depth(text[s:e]) > MAX_JSON_DEPTH for s, e in zip(starts, ends, strict=True)]
        assert found.tolist() == expected


def test_a_deep_line_is_refused_wherever_it_falls_among_the_blocks() -> None:
    """GIVEN capture lines of every length around a line nested 33 deep (and one 32 deep)
    WHEN the buffer is read
    THEN exactly the 33-deep line is refused, with its number."""
    for padding in range(70):
        deep = b'{"x": ' + b"[" * 32 + b"]" * 32 + b"}"  # 33 levels
        fine = b'{"x": ' + b"[" * 31 + b"]" * 31 + b"}"  # 32 levels
        buffer = b"\n".join([b'{"eventVersion": "' + b"p" * padding + b'"}', fine, deep, fine]) + b"\n"
        lines = read_jsonl(buffer, CAPTURE_SCHEMA)
        assert lines.broken == [(3, f"not a JSON object: nested deeper than {MAX_JSON_DEPTH} levels")]
        assert lines.line.tolist() == [1, 2, 4]
