"""Reading a window of the lake for a query: projected columns, pruned by day, duplicates resolved,
ground truth joined. The only part of the metrics engine that touches S3.

Rows come back one table per Parquet file (so partial aggregates are computed per file and merged).
Duplicates follow the identity policy (sagewatch.tables): the first write of a partner_inference_id
wins among the files read, and each inference is joined to its latest ground truth.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sagewatch.metrics.query import Loader, Source
from sagewatch.schema import GROUND_TRUTH_STAGES, Model
from sagewatch.stores.lake import LakeStore
from sagewatch.tables import first_writes, latest_ground_truth

IDENTITY = ["partner_inference_id", "variant", "ingested_at", "source"]
# Ground truth is filed under the day of the inference it labels (labels/) when that inference is
# found as it arrives (stores/lake.py). The rest (ground_truth/, by the label's own day: labels sent
# before their inferences, or more than LABEL_SEARCH_DAYS after them, and every label written before
# labels/ existed) is read from this many days before a window's first day on; one sent weeks
# before its inference is not looked for.
LABELS_EARLY_DAYS = 30


class LakeWindow:
    """One model's rows in the lake, read for a window of days."""

    def __init__(self, lake: LakeStore, model: Model) -> None:
        self.lake = lake
        self.model = model

    def _keys(self, area: str, first: date | None, last: date | None) -> list[str]:
        """The window's Parquet files: only its own days are listed (every page of them)."""
        prefix = f"{area}/model_id={self.model.id}/"
        return [key for key in self.lake.day_keys(prefix, first, last) if key.endswith(".parquet")]

    def inferences(
        self,
        columns: list[str],
        first: date | None = None,
        last: date | None = None,
        with_ground_truth: bool = False,
    ) -> list[pa.Table]:
        """One table per file of the window: the first write of each id, with its ground truth."""
        keys = self._keys("inferences", first, last)
        if not keys:
            return []
        wanted = list(dict.fromkeys([*IDENTITY, *columns]))
        parts = [self.lake.read_table(key, wanted) for key in keys]
        whole = pa.concat_tables(
            [
                p.append_column("__file", pa.array(np.full(p.num_rows, i, dtype=np.int32)))
                for i, p in enumerate(parts)
            ],
            promote_options="default",
        )
        kept = first_writes(whole)
        if with_ground_truth:
            kept = self._join_ground_truth(kept, first, last)
        files = kept.column("__file").to_numpy()
        return [kept.filter(pa.array(files == i)).drop_columns(["__file"]) for i in range(len(parts))]

    def ground_truth(self, first: date | None = None, last: date | None = None) -> pa.Table | None:
        """The latest ground truth of each id that can label the window's inferences ([first, last];
        None: every day): what was filed under the window's days (labels/, by the day of the
        inference each row labels), and what arrived before its inference was found, from
        LABELS_EARLY_DAYS before `first` on (ground_truth/, by the label's own day). So the labels read
        follow the window, not how many were ever received."""
        early = timedelta(days=LABELS_EARLY_DAYS)
        since = first - early if first is not None and first > date.min + early else None
        names = [a.name for a in self.model.by_stage(*GROUND_TRUTH_STAGES)]
        columns = ["partner_inference_id", "ground_truth_timestamp", "ingested_at", *names]
        keys = self._keys("labels", first, last) + self._keys("ground_truth", since, None)
        tables = [self.lake.read_table(key, columns) for key in keys]
        if not tables:
            return None
        return latest_ground_truth(pa.concat_tables(tables, promote_options="default"))

    def explanations(self, columns: list[str], first: date | None, last: date | None) -> list[pa.Table]:
        """Stored explanations of the window's days (services/explanations.py), one table per file."""
        return [self.lake.read_table(key, columns) for key in self._keys("explanations", first, last)]

    def reference(self, columns: list[str]) -> list[pa.Table]:
        """The reference set, `columns` only, one table per file."""
        return [self.lake.read_table(key, columns) for key in self._keys("reference", None, None)]

    def _join_ground_truth(self, inferences: pa.Table, first: date | None, last: date | None) -> pa.Table:
        truth = self.ground_truth(first, last)
        names = [a.name for a in self.model.by_stage(*GROUND_TRUTH_STAGES)]
        if truth is None:
            for name in names:
                inferences = inferences.append_column(name, pa.nulls(inferences.num_rows))
            return inferences.append_column(
                "ground_truth_timestamp", pa.nulls(inferences.num_rows, pa.timestamp("us", tz="UTC"))
            )
        where = pc.index_in(
            inferences.column("partner_inference_id"), value_set=truth.column("partner_inference_id")
        )
        for name in [*names, "ground_truth_timestamp"]:
            inferences = inferences.append_column(name, truth.column(name).take(where))
        return inferences


def lake_loader(lake: LakeStore, model: Model) -> Loader:
    """The lake as the metrics engines' loader: one table per Parquet file of the window."""
    window = LakeWindow(lake, model)

    def load(
        source: Source, columns: list[str], first: date | None, last: date | None, truth: bool
    ) -> list[pa.Table]:
        if source == "reference":
            return window.reference(columns)
        if source == "explanation":
            return window.explanations(columns, first, last)
        if source == "ground_truth":
            table = window.ground_truth()
            return [table] if table is not None else []
        return window.inferences(columns, first, last, with_ground_truth=truth)

    return load
