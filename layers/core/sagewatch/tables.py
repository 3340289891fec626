"""The lake's tables: their columns per model, and the rules that resolve repeated rows.

Identity policy (docs/ingestion.md "Identity and duplicates"): an inference is identified by
(model, partner_inference_id). The first write wins: a later inference with the same id is a
duplicate, kept in the lake as written but ignored when the lake is read, and counted. Ground truth
is an upsert: the row with the latest ground_truth_timestamp wins (then the latest written).
Both are resolved when the lake is read, over whole columns, never with a per-row database write.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sagewatch.schema import Model, Stage
from sagewatch.values import ARROW_TYPES

TIMESTAMP = pa.timestamp("us", tz="UTC")


def inference_schema(model: Model) -> pa.Schema:
    """The lake's inference columns for a model: identity and provenance, its attributes, then the
    enrichments computed at ingest (`anomaly_score`, null without a detector)."""
    attributes = model.by_stage(Stage.PIPELINE_INPUT, Stage.NON_INPUT_DATA, Stage.PREDICTED_VALUE)
    return pa.schema(
        [
            ("partner_inference_id", pa.string()),
            ("inference_timestamp", TIMESTAMP),
            ("batch_id", pa.string()),
            ("source", pa.string()),
            ("variant", pa.string()),
            ("ingested_at", TIMESTAMP),
            *[(a.name, ARROW_TYPES[a.value_type]) for a in attributes],
            ("anomaly_score", pa.float64()),
        ]
    )


def ground_truth_schema(model: Model) -> pa.Schema:
    """The lake's ground-truth columns for a model: identity, time, provenance, then its truths."""
    attributes = model.by_stage(Stage.GROUND_TRUTH, Stage.GROUND_TRUTH_CLASS)
    return pa.schema(
        [
            ("partner_inference_id", pa.string()),
            ("ground_truth_timestamp", TIMESTAMP),
            ("source", pa.string()),
            ("ingested_at", TIMESTAMP),
            *[(a.name, ARROW_TYPES[a.value_type]) for a in attributes],
        ]
    )


def _first_of_each_id(
    table: pa.Table, order: list[tuple[str, str]], keys: list[str], fingerprints: np.ndarray
) -> np.ndarray:
    """Which rows come first of their identity (`keys`) in the given order: a mask, rows in place.

    Ties in `order` go to the row that comes first in the table. `fingerprints` are the identities'
    (equal identities have equal fingerprints): only rows whose fingerprint is shared are sorted, so
    the common case, each id once, costs a sort of integers, not of strings."""
    kept = np.ones(table.num_rows, dtype=bool)
    rows = np.flatnonzero(repeated(fingerprints))
    if len(rows) == 0:
        return kept
    order = [(name, direction) for name, direction in order if name in table.column_names]
    candidates = table.select([*keys, *(name for name, _ in order)]).take(pa.array(rows))
    indices = pc.sort_indices(candidates, sort_keys=[*((key, "ascending") for key in keys), *order])
    starts = np.ones(len(indices), dtype=bool)
    starts[1:] = False
    for key in keys:  # a row starts an identity where any key differs from the row before
        values = pc.fill_null(pc.cast(candidates.column(key).take(indices), pa.string()), "\x00")
        changed = pc.not_equal(values.slice(1), values.slice(0, len(values) - 1))
        starts[1:] |= changed.to_numpy(zero_copy_only=False)
    kept[rows] = False
    kept[rows[indices.to_numpy()[starts]]] = True
    return kept


def repeated(fingerprints: np.ndarray) -> np.ndarray:
    """Which values occur more than once (a mask), by one sort of the integers."""
    found = np.zeros(len(fingerprints), dtype=bool)
    if len(fingerprints) < 2:
        return found
    order = np.argsort(fingerprints)
    ordered = fingerprints[order]
    same = ordered[1:] == ordered[:-1]
    found[order[1:][same]] = True
    found[order[:-1][same]] = True
    return found


def inference_prints(id_prints: np.ndarray, variants: pa.Array | pa.ChunkedArray | None = None) -> np.ndarray:
    """Fingerprints of inferences' identities (partner_inference_id, variant): their ids'
    id_fingerprints xor their variants'. Equal identities have equal ones; for one variant, distinct
    ids share one exactly when their ids' fingerprints are equal."""
    prints = id_prints.astype(np.uint64)
    if variants is not None:
        prints = prints ^ id_fingerprints(pc.cast(variants, pa.string())).astype(np.uint64)
    return prints


def first_write_rows(inferences: pa.Table, prints: np.ndarray | None = None) -> np.ndarray:
    """Which inferences are first writes (a mask, rows in place): per partner_inference_id and
    variant, the earliest ingested_at, then source, then the row that comes first.

    The variant is part of an inference's identity: a SageMaker shadow test captures the same request
    (the same inferenceId) once for the production variant and once for the shadow, and both are
    kept, so their predictions can be compared pair by pair. `prints`: the rows' inference_prints,
    when the caller has them.
    """
    keys = ["partner_inference_id", *(["variant"] if "variant" in inferences.column_names else [])]
    if prints is None:
        prints = inference_prints(
            id_fingerprints(inferences.column("partner_inference_id")),
            inferences.column("variant") if "variant" in keys else None,
        )
    return _first_of_each_id(
        inferences, [("ingested_at", "ascending"), ("source", "ascending")], keys, prints
    )


def first_writes(inferences: pa.Table) -> pa.Table:
    """Inferences without duplicates (first_write_rows), in their order."""
    return inferences.filter(pa.array(first_write_rows(inferences)))


def latest_ground_truth_rows(ground_truth: pa.Table, id_prints: np.ndarray | None = None) -> np.ndarray:
    """Which ground truth rows are upserted last (a mask, rows in place): per partner_inference_id,
    the latest ground_truth_timestamp, then the latest written, then the row that comes first.
    `id_prints`: the ids' id_fingerprints, when the caller has them."""
    if id_prints is None:
        id_prints = id_fingerprints(ground_truth.column("partner_inference_id"))
    return _first_of_each_id(
        ground_truth,
        [("ground_truth_timestamp", "descending"), ("ingested_at", "descending")],
        ["partner_inference_id"],
        id_prints,
    )


def latest_ground_truth(ground_truth: pa.Table) -> pa.Table:
    """Ground truth upserted (latest_ground_truth_rows), in its order."""
    return ground_truth.filter(pa.array(latest_ground_truth_rows(ground_truth)))


def labelling(inferences: pa.Table | None, ground_truth: pa.Table | None) -> dict[str, int | float | None]:
    """Counts over the lake as read: rows written, distinct inferences, duplicates, labelled ones.

    `inferences` needs partner_inference_id, ingested_at and source; `ground_truth` its
    partner_inference_id. Ground truth for an inference not (yet) received labels nothing.
    """
    written = inferences.num_rows if inferences is not None else 0
    distinct = (
        first_writes(inferences).column("partner_inference_id") if written else pa.array([], pa.string())
    )
    labelled = 0
    if len(distinct) and ground_truth is not None and ground_truth.num_rows:
        truth_ids = pc.unique(ground_truth.column("partner_inference_id"))
        labelled = int(pc.sum(pc.is_in(distinct, value_set=truth_ids)).as_py() or 0)
    return {
        "rows": written,
        "distinct": len(distinct),
        "duplicates": written - len(distinct),
        "with_ground_truth": labelled,
        "labelled_ratio": labelled / len(distinct) if len(distinct) else None,
    }


# Ids are fingerprinted this many at a time (bounds the per-byte work arrays to a few tens of MB).
FINGERPRINT_CHUNK = 1 << 18
_FNV_PRIME = np.uint64(0x100000001B3)
_LENGTH_SALT = np.uint64(0x9E3779B97F4A7C15)
# Ids up to this many bytes are hashed as a padded matrix (fast); longer or non-ASCII ones byte by byte.
PADDED_WIDTH = 128


def id_fingerprints(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """64-bit fingerprints of partner_inference_ids (null as ""), computed over whole columns.

    The lake's id index (stores/lake.py) keeps an inference file's fingerprints so ground truth can
    be filed under the day of the inference it labels without reading the inferences. Equal ids
    have equal fingerprints; unequal ones almost never do (a label matches a day of n other ids
    with probability about n / 2^64). 32 bits would not do: at 8.6 M inferences a day one label in
    500 would match a newer day falsely, and the search, finding it there, would stop before its own.

    The hash is a polynomial of the UTF-8 bytes modulo 2^64 (base 0x100000001b3, the last byte
    weighted 1), salted with the length and mixed by splitmix64's finaliser. No loop per id: bytes
    are weighted by their distance from their id's end and summed per id.
    """
    array = pc.fill_null(ids, "")
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    array = array.cast(pa.large_string())
    fingerprints = np.empty(len(array), dtype=np.uint64)
    for start in range(0, len(array), FINGERPRINT_CHUNK):
        part = array.slice(start, FINGERPRINT_CHUNK)
        fingerprints[start : start + len(part)] = _fingerprint_chunk(part)
    return fingerprints


def _fingerprint_chunk(array: pa.LargeStringArray) -> np.ndarray:
    lengths = pc.binary_length(array).to_numpy(zero_copy_only=False).astype(np.int64)
    width = int(lengths.max(initial=0))
    with np.errstate(over="ignore"):
        if width <= PADDED_WIDTH and pc.all(pc.string_is_ascii(array)).as_py() is not False:
            sums = _padded_sums(array, width)
        else:
            sums = _summed_bytes(array)
        mixed = sums ^ (lengths.astype(np.uint64) * _LENGTH_SALT)
        mixed ^= mixed >> np.uint64(30)
        mixed *= np.uint64(0xBF58476D1CE4E5B9)
        mixed ^= mixed >> np.uint64(27)
        mixed *= np.uint64(0x94D049BB133111EB)
        mixed ^= mixed >> np.uint64(31)
    return mixed


def _bytes_of(array: pa.LargeStringArray) -> tuple[np.ndarray, np.ndarray]:
    """An array's offsets (from 0) and the UTF-8 bytes they index."""
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    body = array.buffers()[2]
    data = np.frombuffer(body, dtype=np.uint8) if body is not None else np.empty(0, np.uint8)
    return offsets - offsets[0], data[offsets[0] : offsets[-1]]


def _padded_sums(array: pa.LargeStringArray, width: int) -> np.ndarray:
    """The polynomial of ASCII ids, padded on the left with NUL to one width (leading zeros add
    nothing), by Horner's rule over the columns of an (ids x width) byte matrix."""
    padded = pc.utf8_lpad(array, width=width, padding="\x00").cast(pa.large_string())
    _, data = _bytes_of(padded)
    matrix = data.reshape(len(array), width)
    sums = np.zeros(len(array), dtype=np.uint64)
    for column in range(width):  # one pass per byte position, over every id at once
        sums = sums * _FNV_PRIME + matrix[:, column]
    return sums


def _summed_bytes(array: pa.LargeStringArray) -> np.ndarray:
    """The polynomial of any ids: each byte weighted by the base to its distance from its id's end,
    summed per id (a running sum differenced at the offsets)."""
    offsets, data = _bytes_of(array)
    lengths = np.diff(offsets)
    distance = np.repeat(offsets[1:], lengths) - 1 - np.arange(len(data))
    powers = np.cumprod(np.full(int(lengths.max(initial=0)) + 1, _FNV_PRIME, dtype=np.uint64))
    powers = np.concatenate([np.ones(1, np.uint64), powers[:-1]])
    sums = np.concatenate([np.zeros(1, np.uint64), np.cumsum(data.astype(np.uint64) * powers[distance])])
    return sums[offsets[1:]] - sums[offsets[:-1]]


def matched_rows(fingerprints: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Which fingerprints are in a sorted index of fingerprints (a boolean mask)."""
    if len(index) == 0:
        return np.zeros(len(fingerprints), dtype=bool)
    where = np.minimum(np.searchsorted(index, fingerprints), len(index) - 1)
    return index[where] == fingerprints


def label_days(
    fingerprints: np.ndarray, indexes: Iterable[tuple[date, np.ndarray]]
) -> dict[date, np.ndarray]:
    """Where ground truth belongs: for each day whose id index (sorted fingerprints) holds some of the
    rows' fingerprints, those rows (a mask). Every day given is searched: a row found on two days
    (an id sent on both, or a shadow variant's copy after midnight) belongs to both, and a false
    match can only add a day, never hide the row's own."""
    found: dict[date, np.ndarray] = {}
    for day, index in indexes:
        rows = matched_rows(fingerprints, index)
        if rows.any():
            found[day] = rows
    return found
