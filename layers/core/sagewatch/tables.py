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
    table: pa.Table, order: list[tuple[str, str]], keys: list[str] | None = None
) -> pa.Table:
    """One row per identity (`keys`, default partner_inference_id): the first in the given order."""
    if table.num_rows == 0:
        return table
    keys = keys or ["partner_inference_id"]
    indices = pc.sort_indices(table, sort_keys=[*((key, "ascending") for key in keys), *order])
    starts = np.ones(len(indices), dtype=bool)
    if len(indices) > 1:
        starts[1:] = False
        for key in keys:  # a row starts an identity where any key differs from the row before
            values = pc.fill_null(pc.cast(table.column(key).take(indices), pa.string()), "\x00")
            changed = pc.not_equal(values.slice(1), values.slice(0, len(values) - 1))
            starts[1:] |= changed.to_numpy(zero_copy_only=False)
    return table.take(indices.filter(pa.array(starts)))


def first_writes(inferences: pa.Table) -> pa.Table:
    """Inferences without duplicates: per partner_inference_id and variant, the first written.

    The variant is part of an inference's identity: a SageMaker shadow test captures the same request
    (the same inferenceId) once for the production variant and once for the shadow, and both are
    kept, so their predictions can be compared pair by pair.
    """
    keys = ["partner_inference_id", *(["variant"] if "variant" in inferences.column_names else [])]
    return _first_of_each_id(inferences, [("ingested_at", "ascending"), ("source", "ascending")], keys)


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
