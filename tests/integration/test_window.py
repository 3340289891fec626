"""A window of the lake read file by file (stores/window.py, issue 18): duplicates across files resolved
as the identity policy says, each inference joined to its latest ground truth, files lacking a column
read as nulls, and every default metric as computed over rows resolved by hand in plain Python."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from sklearn import metrics as skm
from tests import factories

from sagewatch import aws as sagewatch_aws
from sagewatch import container
from sagewatch.alerting import catalog
from sagewatch.metrics.query import Query, run
from sagewatch.records import reference_schema
from sagewatch.schema import Model, ModelSpec
from sagewatch.stores import window as window_module
from sagewatch.stores.lake import LakeStore
from sagewatch.stores.window import LakeWindow, lake_loader
from sagewatch.tables import inference_schema

DAY = datetime(2026, 11, 20, tzinfo=UTC)
TIME = pa.timestamp("us", tz="UTC")
FILES = 6
IDS = 120  # ids drawn with repeats: most are sent in more than one file


def coarse_fingerprints(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A fingerprint most distinct ids share (their length mod 3): every match must be checked."""
    lengths = pc.utf8_length(pc.fill_null(ids, "")).to_numpy(zero_copy_only=False)
    return (lengths % 3).astype(np.uint32)


@pytest.fixture(params=["fingerprints", "colliding fingerprints"])
def collisions(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.param == "colliding fingerprints":
        monkeypatch.setattr(window_module, "id_fingerprints", coarse_fingerprints)


class Lake:
    """A model's lake written file by file, and every row as written, to resolve by hand."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.lake = container.lake_store()
        self.files: list[list[dict[str, Any]]] = []  # inference files, in key order
        self.labels: list[dict[str, Any]] = []

    def inferences(self, rows: list[dict[str, Any]], lacking: tuple[str, ...] = ()) -> None:
        schema = inference_schema(self.model)
        columns = {
            f.name: pa.array([row.get(f.name) for row in rows], f.type)
            for f in schema
            if f.name not in lacking
        }
        table = pa.table(columns)
        name = f"file-{len(self.files):02d}"
        self.lake.write_id_index(self.model.id, table, name)
        self.lake.write_rows("inferences", self.model.id, table, "inference_timestamp", name)
        self.files.append([{**row, **dict.fromkeys(lacking)} for row in rows])

    def ground_truth(self, rows: list[dict[str, Any]]) -> None:
        table = pa.table(
            {
                "partner_inference_id": pa.array([r["partner_inference_id"] for r in rows], pa.string()),
                "ground_truth_timestamp": pa.array([r["ground_truth_timestamp"] for r in rows], TIME),
                "source": pa.array(["labels"] * len(rows)),
                "ingested_at": pa.array([r["ingested_at"] for r in rows], TIME),
                "churned": pa.array([r["churned"] for r in rows], pa.int64()),
            }
        )
        self.lake.write_ground_truth(self.model.id, table, f"labels-{len(self.labels):04d}")
        self.labels += rows

    def first_writes(self) -> list[list[dict[str, Any]]]:
        """Per file, its rows that are first writes, by hand: per (id, variant), the earliest
        ingested_at, then source (missing ones last), then the first file and row."""
        best: dict[tuple, tuple] = {}
        for f, rows in enumerate(self.files):
            for r, row in enumerate(rows):
                key = (row["partner_inference_id"], row.get("variant"))
                rank = (
                    row.get("ingested_at") is None,
                    row.get("ingested_at") or DAY,
                    row.get("source") is None,
                    row.get("source") or "",
                    f,
                    r,
                )
                best[key] = min(best.get(key, rank), rank)
        winners = {rank[-2:] for rank in best.values()}
        return [[row for r, row in enumerate(rows) if (f, r) in winners] for f, rows in enumerate(self.files)]

    def latest_labels(self) -> dict[str, dict[str, Any]]:
        """Per id, its label with the latest ground_truth_timestamp, then the latest written."""
        latest: dict[str, dict[str, Any]] = {}
        for row in self.labels:
            held = latest.get(row["partner_inference_id"])
            rank = (row["ground_truth_timestamp"], row["ingested_at"])
            if held is None or rank > (held["ground_truth_timestamp"], held["ingested_at"]):
                latest[row["partner_inference_id"]] = row
        return latest


def make_lake(seed: int = 0) -> Lake:
    """Six files of one day, their ids drawn with repeats (so most are duplicates across files, some
    within a file), ingested at times that tie, one file a shadow variant, one written before the
    variant column existed, one lacking income and one lacking anomaly_score; labels for most ids,
    some relabelled, one sent before its inference (kept by its own day) and one weeks later."""
    rng = np.random.default_rng(seed)
    model = container.model_store().create(ModelSpec.model_validate(factories.binary_probability()))
    lake = Lake(model)
    lake.ground_truth(  # before any inference: filed by its own day, still labels r-0
        [
            {
                "partner_inference_id": "r-0",
                "ground_truth_timestamp": DAY - timedelta(days=2),
                "ingested_at": DAY - timedelta(days=2),
                "churned": 1,
            }
        ]
    )
    for f in range(FILES):
        count = int(rng.integers(40, 80))
        ids = rng.integers(0, IDS, count)
        ids[0] = 0
        rows = [
            {
                "partner_inference_id": f"r-{i}",
                "inference_timestamp": DAY + timedelta(hours=int(rng.integers(0, 24))),
                "source": str(rng.choice(["capture", "api"])),
                "variant": "shadow" if f == 3 else "AllTraffic",
                "ingested_at": DAY + timedelta(hours=int(rng.integers(0, 3))),  # ties: source decides
                "age": int(rng.integers(18, 90)),
                "income": float(rng.normal(50_000, 9_000)) if rng.random() > 0.1 else None,
                "region": str(rng.choice(["north", "south"])),
                "predicted_probability": float(rng.random()),
                "anomaly_score": float(rng.random()),
            }
            for i in ids
        ]
        lacking = {1: ("variant",), 2: ("income",), 4: ("anomaly_score",)}.get(f, ())
        lake.inferences(rows, lacking)
    labelled = [f"r-{i}" for i in range(1, IDS) if rng.random() < 0.8]
    again = list(rng.choice(labelled, 25, replace=False))
    arrival = DAY + timedelta(days=1)
    rows = [
        {
            "partner_inference_id": i,
            "ground_truth_timestamp": arrival,
            "ingested_at": arrival,
            "churned": int(rng.integers(0, 2)),
        }
        for i in labelled
    ]
    lake.ground_truth(rows[: len(rows) // 2])
    lake.ground_truth(rows[len(rows) // 2 :])
    relabels = [  # a later label wins; one timed earlier but written later loses
        {
            "partner_inference_id": i,
            "ground_truth_timestamp": arrival + timedelta(hours=1 if n % 2 else -1),
            "ingested_at": arrival + timedelta(days=2),
            "churned": int(rng.integers(0, 2)),
        }
        for n, i in enumerate(again)
    ]
    lake.ground_truth(relabels)
    reference = reference_schema(model)
    values = {
        "age": rng.integers(18, 90, 400),
        "income": rng.normal(50_000, 10_000, 400),
        "region": rng.choice(["north", "south"], 400),
        "predicted_probability": rng.random(400),
        "churned": rng.integers(0, 2, 400),
    }
    table = pa.table({f.name: pa.array(values[f.name], f.type) for f in reference})
    lake.lake.write_reference(model.id, table, "reference")
    return lake


def test_duplicates_across_files_keep_each_first_write_in_its_own_file(aws, collisions) -> None:
    # GIVEN a day's files sharing ids across and within files, in two variants, with ingest ties
    lake = make_lake()

    # WHEN the window is read file by file
    tables = LakeWindow(lake.lake, lake.model).inferences(
        ["variant", "predicted_probability", "income", "anomaly_score"], DAY.date(), DAY.date()
    )

    # THEN each file gives its own first writes, in its order (the hand resolution)
    expected = lake.first_writes()
    assert [t.num_rows for t in tables] == [len(rows) for rows in expected]
    for table, rows in zip(tables, expected, strict=True):
        got = table.select(["partner_inference_id", "variant", "predicted_probability", "income"])
        assert got.to_pylist() == [
            {k: row.get(k) for k in ("partner_inference_id", "variant", "predicted_probability", "income")}
            for row in rows
        ]
    # AND the shadow's copies are kept beside the production ones, and duplicates were dropped
    kept = sum(len(rows) for rows in expected)
    assert kept < sum(len(rows) for rows in lake.files)
    assert any(r["partner_inference_id"] == "r-0" for r in expected[3])
    # AND a file lacking a column reads it as nulls of the window's type
    assert tables[4].column("anomaly_score").null_count == tables[4].num_rows
    assert tables[4].schema.field("anomaly_score").type == pa.float64()
    assert tables[2].column("income").null_count == tables[2].num_rows


def test_each_inference_gets_its_latest_ground_truth(aws, collisions) -> None:
    # GIVEN the lake, its labels in labels/ (by the inference's day) and ground_truth/ (sent first)
    lake = make_lake(seed=1)

    # WHEN the window is read with ground truth
    tables = LakeWindow(lake.lake, lake.model).inferences(["variant"], DAY.date(), DAY.date(), True)

    # THEN every kept inference carries its id's latest label and its time (by hand), or nulls
    latest = lake.latest_labels()
    for table, rows in zip(tables, lake.first_writes(), strict=True):
        labels = [latest.get(row["partner_inference_id"]) for row in rows]
        assert table.column("churned").to_pylist() == [label and label["churned"] for label in labels]
        assert table.column("ground_truth_timestamp").to_pylist() == [
            label and label["ground_truth_timestamp"] for label in labels
        ]
    # AND r-0's label, sent before any inference (kept by its own day, ground_truth/), labels it
    found = [
        label
        for t in tables
        for i, label in zip(
            t.column("partner_inference_id").to_pylist(), t.column("churned").to_pylist(), strict=True
        )
        if i == "r-0"
    ]
    assert found and set(found) == {1} and latest["r-0"]["ground_truth_timestamp"] < DAY


def test_accuracy_counts_and_labels_match_scikit_learn_over_the_rows_resolved_by_hand(
    aws, collisions
) -> None:
    lake = make_lake(seed=2)
    body = {
        "select": [{"function": "accuracyRate"}, {"function": "count"}],
        "filter": [
            {"property": "inference_timestamp", "comparator": "gte", "value": DAY.isoformat()},
            {
                "property": "inference_timestamp",
                "comparator": "lt",
                "value": (DAY + timedelta(days=1)).isoformat(),
            },
        ],
    }
    [row] = run(Query.model_validate(body), lake.model, lake_loader(lake.lake, lake.model))

    rows = [row for rows in lake.first_writes() for row in rows]
    latest = lake.latest_labels()
    labelled = [r for r in rows if r["partner_inference_id"] in latest]
    truth = [latest[r["partner_inference_id"]]["churned"] for r in labelled]
    predicted = [int(r["predicted_probability"] >= 0.5) for r in labelled]
    assert row["count"] == len(rows)
    assert row["labelled_count"] == len(labelled)
    assert row["accuracyRate"] == pytest.approx(skm.accuracy_score(truth, predicted), abs=1e-12)


def hand_loader(lake: Lake):
    """The window as one table of the rows resolved by hand, joined to their labels by hand."""
    schema = inference_schema(lake.model)
    latest = lake.latest_labels()
    rows = [row for rows in lake.first_writes() for row in rows]
    table = pa.table({f.name: pa.array([r.get(f.name) for r in rows], f.type) for f in schema})
    labels = [latest.get(r["partner_inference_id"]) for r in rows]
    table = table.append_column("churned", pa.array([x and x["churned"] for x in labels], pa.int64()))
    table = table.append_column(
        "ground_truth_timestamp", pa.array([x and x["ground_truth_timestamp"] for x in labels], TIME)
    )
    reference = lake.lake.read_table(lake.lake.keys(f"reference/model_id={lake.model.id}/")[0])

    def load(source, columns, first, last, truth):
        return [reference] if source == "reference" else [table]

    return load


def test_every_default_metric_equals_its_value_over_the_rows_resolved_by_hand(aws, collisions) -> None:
    # GIVEN the lake, and a loader of the same window resolved by hand
    lake = make_lake(seed=3)
    window = catalog.Window(start=DAY, end=DAY + timedelta(days=1))
    by_hand = hand_loader(lake)
    load = lake_loader(lake.lake, lake.model)  # one loader for all: as an evaluator run uses it

    # WHEN every default metric is measured through the lake's loader
    for metric in catalog.default_metrics(lake.model):
        measured = catalog.measure(metric, lake.model, load, window)
        expected = catalog.measure(metric, lake.model, by_hand, window)

        # THEN each equals its value over the rows resolved by hand
        assert (measured.rows, measured.labelled) == (expected.rows, expected.labelled), metric.name
        if expected.value is None or math.isnan(expected.value):
            assert measured.value is None or math.isnan(measured.value), metric.name
        else:
            assert measured.value == pytest.approx(expected.value, rel=1e-12), metric.name

    # AND the plain ones are the hand counts
    rows = [row for rows in lake.first_writes() for row in rows]
    values = {
        m.name: catalog.measure(m, lake.model, load, window).value
        for m in catalog.default_metrics(lake.model)
    }
    incomes = [r["income"] for r in rows]
    assert values["Inference Count"] == len(rows)
    assert values["Average predicted_probability"] == pytest.approx(
        np.mean([r["predicted_probability"] for r in rows])
    )
    assert values["Null Rate income"] == pytest.approx(sum(i is None for i in incomes) / len(rows))


def gets() -> list[str]:
    keys: list[str] = []
    sagewatch_aws.client("s3").meta.events.register(
        "provide-client-params.s3.GetObject", lambda params, **_: keys.append(params["Key"])
    )
    return keys


def test_a_loader_fetches_each_file_once_and_a_small_cache_reads_the_same(aws) -> None:
    # GIVEN the lake, one loader (as one request or one evaluator run uses it)
    lake = make_lake(seed=4)
    load = lake_loader(lake.lake, lake.model)
    fetched = gets()

    # WHEN it is asked for several column sets, with and without ground truth
    reads = [
        load("inference", columns, DAY.date(), DAY.date(), truth)
        for columns, truth in (
            (["age"], False),
            (["income", "region"], True),
            (["age", "predicted_probability"], True),
            (["income"], False),
        )
    ]

    # THEN each inference file was fetched once, and the window's labels once
    inference_gets = [k for k in fetched if k.startswith("inferences/")]
    assert sorted(inference_gets) == sorted(set(inference_gets)) and len(inference_gets) == FILES
    assert len([k for k in fetched if k.startswith(("labels/", "ground_truth/"))]) == len(
        set(lake.lake.keys(f"labels/model_id={lake.model.id}/"))
        | set(lake.lake.keys(f"ground_truth/model_id={lake.model.id}/"))
    )
    # AND a window keeping nothing but its resolution between reads (a cache of one byte) gives the
    # same tables, and still reads the window's labels once
    small = LakeWindow(LakeStore(lake.lake.bucket), lake.model, cache_bytes=1)
    fetched.clear()
    for (columns, truth), tables in zip(
        (
            (["age"], False),
            (["income", "region"], True),
            (["age", "predicted_probability"], True),
            (["income"], False),
        ),
        reads,
        strict=True,
    ):
        again = small.inferences(columns, DAY.date(), DAY.date(), truth)
        assert [t.to_pylist() for t in again] == [t.to_pylist() for t in tables]
        assert all({"partner_inference_id", *columns} <= set(t.column_names) for t in again)
    labels_read = [k for k in fetched if k.startswith(("labels/", "ground_truth/"))]
    assert labels_read and len(labels_read) == len(set(labels_read))


def test_a_window_of_no_files_and_a_file_of_no_kept_rows(aws) -> None:
    model = container.model_store().create(ModelSpec.model_validate(factories.binary_probability()))
    lake = Lake(model)
    assert LakeWindow(lake.lake, model).inferences(["age"], DAY.date(), DAY.date(), True) == []
    row = {
        "partner_inference_id": "same",
        "inference_timestamp": DAY,
        "ingested_at": DAY,
        "source": "a",
        "age": 1,
    }
    lake.inferences([row])
    lake.inferences([{**row, "ingested_at": DAY + timedelta(hours=1), "age": 2}])  # a later copy
    tables = LakeWindow(lake.lake, model).inferences(["age"], DAY.date(), date(2026, 11, 21), True)
    assert [t.column("age").to_pylist() for t in tables] == [[1], []]
    assert [t.column("churned").to_pylist() for t in tables] == [[None], []]
