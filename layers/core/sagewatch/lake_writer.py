"""SourceWriter: what one source (an S3 file, an API request) produced, written to the lake and counted once.

Every way data arrives ends here: capture files, ground-truth files, Parquet drops, REST calls and
uploaded files. Parts are named `<source digest>-<part>`, so processing the same source again
rewrites the same objects, and the ledger counts the source once.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sagewatch.schema import Model
from sagewatch.stores.ingestion import IngestionLedger, SourceCounts
from sagewatch.stores.lake import LakeStore


class SourceWriter:
    def __init__(
        self,
        lake: LakeStore,
        ledger: IngestionLedger,
        model: Model,
        digest: str,
        source: str,
        variant: str | None = None,
    ) -> None:
        self.lake, self.ledger, self.model = lake, ledger, model
        self.digest, self.source, self.variant = digest, source, variant
        self.part = 0
        self.keys: list[str] = []
        self.tally: Counter[str] = Counter()
        self.batches: Counter[str] = Counter()
        self.latest: datetime | None = None

    def add(
        self,
        day: date,
        *,
        inferences: pa.Table | None = None,
        ground_truth: pa.Table | None = None,
        reference: pa.Table | None = None,
        rejected: list[dict[str, Any]] | None = None,
        rejected_as: str = "inferences",
        rejected_rows: int | None = None,
    ) -> None:
        """Write one part: rows by area and rejected rows (`rejected_as` says whose counter they raise;
        `rejected_rows` how many rows they stand for, when one entry refuses a whole file)."""
        name = f"{self.digest}-{self.part:05d}"
        self.part += 1
        model_id = self.model.id
        if inferences is not None and inferences.num_rows:
            self.keys += self.lake.write_rows("inferences", model_id, inferences, "inference_timestamp", name)
            self.tally["inferences"] += inferences.num_rows
            latest = pc.max(inferences.column("inference_timestamp")).as_py()
            self.latest = latest if self.latest is None or (latest and latest > self.latest) else self.latest
            batches = inferences.column("batch_id").drop_null()
            if len(batches):
                counts = pc.value_counts(batches)
                for value, count in zip(
                    counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
                ):
                    self.batches[value] += count
        if ground_truth is not None and ground_truth.num_rows:
            self.keys += self.lake.write_rows(
                "ground_truth", model_id, ground_truth, "ground_truth_timestamp", name
            )
            self.tally["ground_truth"] += ground_truth.num_rows
        if reference is not None and reference.num_rows:
            self.keys.append(self.lake.write_reference(model_id, reference, name))
            self.tally["reference"] += reference.num_rows
        if rejected:
            key = self.lake.write_rejected(model_id, day, name, self.source, rejected)
            self.keys += [key] if key else []
            self.tally[f"{rejected_as}_rejected"] += len(rejected) if rejected_rows is None else rejected_rows

    def counts(self) -> SourceCounts:
        return SourceCounts(
            inferences=self.tally["inferences"],
            inferences_rejected=self.tally["inferences_rejected"],
            ground_truth=self.tally["ground_truth"],
            ground_truth_rejected=self.tally["ground_truth_rejected"],
            reference=self.tally["reference"],
            latest_inference=self.latest,
            variant=self.variant,
            batches=dict(self.batches),
        )

    def finish(self) -> bool:
        """Count the source; False if it had been counted before (a replay)."""
        return self.ledger.record(self.model.id, self.digest, self.counts())
