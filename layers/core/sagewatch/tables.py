"""The lake's tables: their columns per model, and the rules that resolve repeated rows.

Identity policy (docs/ingestion.md "Identity and duplicates"): an inference is identified by
(model, partner_inference_id). The first write wins: a later inference with the same id is a
duplicate, kept in the lake as written but ignored when the lake is read, and counted. Ground truth
is an upsert: the row with the latest ground_truth_timestamp wins (then the latest written).
Both are resolved when the lake is read, over whole columns, never with a per-row database write.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sagewatch.schema import Model, Stage
from sagewatch.values import ARROW_TYPES

TIMESTAMP = pa.timestamp("us", tz="UTC")


def inference_schema(model: Model) -> pa.Schema:
    """The lake's inference columns for a model: identity and provenance, then its attributes."""
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


def _first_of_each_id(table: pa.Table, order: list[tuple[str, str]]) -> pa.Table:
    """One row per partner_inference_id: the first in the given order."""
    if table.num_rows == 0:
        return table
    indices = pc.sort_indices(table, sort_keys=[("partner_inference_id", "ascending"), *order])
    ids = table.column("partner_inference_id").take(indices)
    starts = np.ones(len(ids), dtype=bool)
    if len(ids) > 1:
        starts[1:] = pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1)).to_numpy(zero_copy_only=False)
    return table.take(indices.filter(pa.array(starts)))


def first_writes(inferences: pa.Table) -> pa.Table:
    """Inferences without duplicates: per partner_inference_id, the first written."""
    return _first_of_each_id(inferences, [("ingested_at", "ascending"), ("source", "ascending")])


def latest_ground_truth(ground_truth: pa.Table) -> pa.Table:
    """Ground truth upserted: per partner_inference_id, the latest ground_truth_timestamp (then write)."""
    return _first_of_each_id(
        ground_truth, [("ground_truth_timestamp", "descending"), ("ingested_at", "descending")]
    )


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
