"""The id index's pure parts: fingerprints of partner_inference_ids, and where labels belong."""

from __future__ import annotations

import uuid
from datetime import date

import numpy as np
import pyarrow as pa
import pytest

from sagewatch.tables import PADDED_WIDTH, id_fingerprints, label_days

pytestmark = pytest.mark.unit

MASK = 2**64


def scalar_fingerprint(text: str) -> int:
    """The documented hash, one id at a time with Python integers: polynomial of the UTF-8 bytes
    modulo 2^64 (Horner, base 0x100000001b3), salted with the length, splitmix64's finaliser."""
    data = text.encode()
    value = 0
    for byte in data:
        value = (value * 0x100000001B3 + byte) % MASK
    value ^= (len(data) * 0x9E3779B97F4A7C15) % MASK
    value ^= value >> 30
    value = (value * 0xBF58476D1CE4E5B9) % MASK
    value ^= value >> 27
    value = (value * 0x94D049BB133111EB) % MASK
    value ^= value >> 31
    return value


@pytest.mark.parametrize(
    "ids",
    [
        [str(uuid.UUID(int=i)) for i in range(50)],  # equal widths
        ["req-1", "req-1_0", "a", "", "x" * PADDED_WIDTH],  # ASCII of several widths
        ["é", "漢字-7", "plain", "😀_0"],  # multibyte: hashed byte by byte
        ["short", "y" * (PADDED_WIDTH + 1)],  # past the padded width
    ],
)
def test_fingerprints_are_the_documented_hash_of_each_id(ids: list[str]) -> None:
    expected = np.array([scalar_fingerprint(i) for i in ids], dtype=np.uint64)
    np.testing.assert_array_equal(id_fingerprints(pa.array(ids)), expected)


def test_a_null_id_is_fingerprinted_as_empty_and_slices_and_chunks_do_not_matter() -> None:
    ids = [f"id-{i}" for i in range(20)]
    whole = id_fingerprints(pa.array(ids))
    np.testing.assert_array_equal(id_fingerprints(pa.array(ids).slice(5, 7)), whole[5:12])
    chunked = pa.chunked_array([pa.array(ids[:3]), pa.array(ids[3:]).slice(0, 17)])
    np.testing.assert_array_equal(id_fingerprints(chunked), whole)
    assert id_fingerprints(pa.array([None], pa.string()))[0] == scalar_fingerprint("")
    assert len(id_fingerprints(pa.array([], pa.string()))) == 0


def test_distinct_ids_do_not_share_a_fingerprint() -> None:
    # Ids that differ in one character, or only in length, as capture ids do (eventId_0, eventId_1).
    ids = pa.array([f"{uuid.UUID(int=i * 7919)}_{i % 7}" for i in range(200_000)] + ["a", "a\x00", "\x00a"])
    # About n^2 / 2^65 pairs would share one by chance: 1e-9 here.
    assert len(np.unique(id_fingerprints(ids))) == len(ids)


def index_of(*ids: str) -> np.ndarray:
    return np.unique(id_fingerprints(pa.array(list(ids))))


def test_labels_belong_to_every_day_whose_inferences_they_label() -> None:
    labels = id_fingerprints(pa.array(["a", "b", "c", "unknown"]))
    days = {
        date(2026, 3, 5): index_of("c", "z"),
        date(2026, 3, 4): index_of("y"),
        date(2026, 3, 3): index_of("a", "b"),
        date(2026, 3, 2): index_of("a"),  # "a" sent again: it belongs here too
    }
    found = label_days(labels, iter(days.items()))
    assert {day: rows.tolist() for day, rows in found.items()} == {
        date(2026, 3, 5): [False, False, True, False],
        date(2026, 3, 3): [True, True, False, False],
        date(2026, 3, 2): [True, False, False, False],
    }


def test_an_id_sent_on_two_days_is_labelled_on_both_and_an_unknown_one_nowhere() -> None:
    labels = id_fingerprints(pa.array(["twice", "nowhere"]))
    found = label_days(
        labels, iter([(date(2026, 3, 2), index_of("twice")), (date(2026, 3, 1), index_of("twice"))])
    )
    assert {day: rows.tolist() for day, rows in found.items()} == {
        date(2026, 3, 2): [True, False],
        date(2026, 3, 1): [True, False],
    }
