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

from sagewatch.errors import TooLarge
from sagewatch.schema import Model
from sagewatch.stores.ingestion import IngestionLedger, SourceCounts
from sagewatch.stores.lake import LakeStore

# A request is answered within API Gateway's 29 s: these bound what one request may write.
# (Files from S3 have no such bound: the ingest Lambda runs for minutes and answers nobody.)
MAX_DAYS_PER_REQUEST = 1000
MAX_BATCHES_PER_REQUEST = 1000


class SourceWriter:
    """Writes what one source produced and counts it once.

    `request=True` for an API request: its limits (days, batch_ids) are checked in `add` before
    anything is written, so a refused request (4xx) leaves no object behind.
    """

    def __init__(
        self,
        lake: LakeStore,
        ledger: IngestionLedger,
        model: Model,
        digest: str,
        source: str,
        variant: str | None = None,
        *,
        request: bool = False,
    ) -> None:
        self.lake, self.ledger, self.model = lake, ledger, model
        self.digest, self.source, self.variant = digest, source, variant
        self.request = request
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
        if self.request:
            check_request(inferences, ground_truth, self.batches)
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


def check_request(
    inferences: pa.Table | None, ground_truth: pa.Table | None, batches_so_far: Counter[str] | None = None
) -> None:
    """Refuse (413) a request whose rows span more days or batch_ids than one request may write."""
    for table, column in ((inferences, "inference_timestamp"), (ground_truth, "ground_truth_timestamp")):
        if table is None or table.num_rows == 0:
            continue
        days = len(pc.unique(pc.strftime(table.column(column), format="%Y-%m-%d")))
        if days > MAX_DAYS_PER_REQUEST:
            raise TooLarge(
                f"the rows span {days} days of {column}; at most {MAX_DAYS_PER_REQUEST} per request: "
                "send them in parts, or as a file through an upload URL",
                field=column,
            )
    if inferences is not None and inferences.num_rows:
        batches = set(pc.unique(inferences.column("batch_id").drop_null()).to_pylist())
        batches |= set(batches_so_far or ())
        if len(batches) > MAX_BATCHES_PER_REQUEST:
            raise TooLarge(
                f"{len(batches)} batch_ids in one request; at most {MAX_BATCHES_PER_REQUEST}",
                field="batch_id",
            )
