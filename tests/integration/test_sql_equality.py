"""The query API's SQL (sagewatch.metrics.sql, issue 18) gives the in-Lambda engine's rows: the same
queries run by metrics.query.run over a lake written under moto, and as DuckDB SQL over the same
Parquet objects, give equal rows; the Trino SQL parses as Trino and calls only Athena v3 functions."""

from __future__ import annotations

import itertools
import json
import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import sqlglot
from sklearn import metrics as skm
from sqlglot import exp
from tests import factories
from tests.inputs import register

from sagewatch import container
from sagewatch.errors import InvalidInput
from sagewatch.local.runtime import use_duckdb
from sagewatch.metrics import filters
from sagewatch.metrics import sql as sql_module
from sagewatch.metrics.drift import DriftQuery, run_drift
from sagewatch.metrics.functions import FUNCTIONS
from sagewatch.metrics.query import Plan, Query, run
from sagewatch.metrics.sql import (
    DUCKDB_PLACE,
    DriftBins,
    LabelDays,
    NotInSql,
    SqlTables,
    drift_base,
    drift_bins,
    drift_sql,
    duckdb_views,
    like_pattern,
    query_sql,
)
from sagewatch.records import reference_schema
from sagewatch.schema import Model, ModelSpec, Stage
from sagewatch.stores import window as window_module
from sagewatch.stores.window import lake_loader
from sagewatch.tables import ground_truth_schema, inference_schema

DAY = datetime(2026, 11, 20, tzinfo=UTC)
DAYS = 3
TABLES = SqlTables(
    inferences="inferences",
    labels="labels",
    ground_truth="ground_truth",
    reference="reference",
    place=(DUCKDB_PLACE,),
)
ATHENA_TABLES = SqlTables(
    inferences="sagewatch.inferences_m1",
    labels="sagewatch.labels_m1",
    ground_truth="sagewatch.ground_truth_m1",
    reference="sagewatch.reference_m1",
    place=("$path",),
)


def ranged(body: dict[str, Any]) -> dict[str, Any]:
    """The body with ranges on age and income (outOfRangeRate, numeric distributions)."""
    body = factories.edited(body)
    factories.attribute(body, "age").update(min_range=20, max_range=80)
    factories.attribute(body, "income").update(min_range=20_000.0, max_range=90_000.0)
    return body


def values_of(model: Model, rng: np.random.Generator, count: int) -> dict[str, list[Any]]:
    """Random values of a model's stored attributes, some missing."""
    found: dict[str, list[Any]] = {
        "age": [int(a) for a in rng.integers(10, 95, count)],
        "income": [float(v) if rng.random() > 0.15 else None for v in rng.normal(50_000, 15_000, count)],
        "region": [
            str(rng.choice(["north", "south", "east"])) if rng.random() > 0.05 else None for _ in range(count)
        ],
    }
    predictions = [a.name for a in model.by_stage(Stage.PREDICTED_VALUE)]
    if len(predictions) > 1:  # class probabilities, some tied
        raw = rng.dirichlet(np.ones(len(predictions)), count).round(2)
        for index, name in enumerate(predictions):
            found[name] = [float(v) for v in raw[:, index]]
    elif predictions == ["predicted_value"]:
        found["predicted_value"] = [float(v) for v in rng.normal(100, 20, count)]
    else:
        found[predictions[0]] = [
            float(v) if rng.random() > 0.05 else None for v in rng.random(count).round(3)
        ]
    return found


def truth_of(model: Model, rng: np.random.Generator, count: int) -> dict[str, list[Any]]:
    """Random ground truth of a model's truth attributes, some missing."""
    names = [a.name for a in model.by_stage(Stage.GROUND_TRUTH, Stage.GROUND_TRUTH_CLASS)]
    if names == ["churned"]:
        return {"churned": [int(v) if rng.random() > 0.05 else None for v in rng.integers(0, 2, count)]}
    if names == ["animal"]:
        return {"animal": [str(rng.choice(["dog", "cat", "bird"])) for _ in range(count)]}
    if names == ["ground_truth_value"]:
        return {"ground_truth_value": [float(v) for v in rng.normal(100, 25, count)]}
    hot = rng.integers(0, 2, count)
    return {"gt_0": [int(1 - h) for h in hot], "gt_1": [int(h) for h in hot]}


class Lake:
    """A model's lake written file by file with the project's writers."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.lake = container.lake_store()
        self.files = 0
        self.label_files = 0

    def inferences(self, rows: list[dict[str, Any]], lacking: tuple[str, ...] = ()) -> None:
        schema = inference_schema(self.model)
        table = pa.table(
            {f.name: pa.array([r.get(f.name) for r in rows], f.type) for f in schema if f.name not in lacking}
        )
        name = f"file-{self.files:02d}"
        self.lake.write_id_index(self.model.id, table, name)
        self.lake.write_rows("inferences", self.model.id, table, "inference_timestamp", name)
        self.files += 1

    def ground_truth(self, rows: list[dict[str, Any]]) -> None:
        schema = ground_truth_schema(self.model)
        table = pa.table({f.name: pa.array([r.get(f.name) for r in rows], f.type) for f in schema})
        self.lake.write_ground_truth(self.model.id, table, f"labels-{self.label_files:04d}")
        self.label_files += 1


def make_lake(body: dict[str, Any], seed: int) -> Lake:
    """Files over DAYS days: ids repeated across and within files and days (ingest ties decided by
    source, or by the file and row), a shadow variant, a file without the variant column, missing
    values; labels late, relabelled (a later one wins, one timed earlier but written later loses),
    one sent before its inference (ground_truth/), one for no inference; a reference set."""
    rng = np.random.default_rng(seed)
    model = container.model_store().create(ModelSpec.model_validate(ranged(body)))
    lake = Lake(model)
    early = {"partner_inference_id": "r-0", "ground_truth_timestamp": DAY - timedelta(days=2)}
    lake.ground_truth(
        [
            {
                **early,
                "ingested_at": early["ground_truth_timestamp"],
                "source": "labels",
                **{k: v[0] for k, v in truth_of(model, rng, 1).items()},
            }
        ]
    )
    ids_seen: list[str] = []
    for f in range(7):
        count = int(rng.integers(30, 60))
        ids = [f"r-{i}" for i in rng.integers(0, 150, count)]
        ids[0] = "r-0"
        if f == 5:
            ids[1] = ids[2]  # one id twice in a file, written by one ingest: the first row wins
        day = DAY + timedelta(days=int(f % DAYS))
        values = values_of(model, rng, count)
        rows = [
            {
                "partner_inference_id": i,
                "inference_timestamp": day + timedelta(minutes=int(rng.integers(0, 24 * 60 + 600))),
                "batch_id": None,
                "source": "capture" if f == 5 else str(rng.choice(["capture", "api"])),
                "variant": "shadow" if f == 3 else "AllTraffic",
                "ingested_at": DAY + timedelta(hours=6 if f == 5 else int(rng.integers(0, 3))),
                "anomaly_score": float(rng.random()) if f != 4 else None,
                **{k: v[n] for k, v in values.items()},
            }
            for n, i in enumerate(ids)
        ]
        lake.inferences(rows, ("variant",) if f == 1 else ())
        ids_seen += ids
    labelled = [*(i for i in sorted(set(ids_seen)) if rng.random() < 0.8), "never-sent"]
    arrival = DAY + timedelta(days=1, hours=3)
    truths = truth_of(model, rng, len(labelled))
    rows = [
        {
            "partner_inference_id": i,
            "ground_truth_timestamp": arrival,
            "ingested_at": arrival,
            "source": "labels",
            **{k: v[n] for k, v in truths.items()},
        }
        for n, i in enumerate(labelled)
    ]
    lake.ground_truth(rows[: len(rows) // 2])
    lake.ground_truth(rows[len(rows) // 2 :])
    again = list(rng.choice(labelled, 30, replace=False))
    truths = truth_of(model, rng, len(again))
    lake.ground_truth(
        [
            {
                "partner_inference_id": i,
                "ground_truth_timestamp": arrival + timedelta(hours=1 if n % 2 else -1),
                "ingested_at": arrival + timedelta(days=2),
                "source": "labels",
                **{k: v[n] for k, v in truths.items()},
            }
            for n, i in enumerate(again)
        ]
    )
    schema = reference_schema(model)
    reference = {**values_of(model, rng, 300), **truth_of(model, rng, 300)}
    lake.lake.write_reference(
        model.id, pa.table({f.name: pa.array(reference[f.name], f.type) for f in schema}), "reference"
    )
    return lake


def downloaded(lake: Lake, root: Path) -> dict[str, str | None]:
    """The model's lake objects copied to `root` under their keys; a glob per area (None: none)."""
    globs: dict[str, str | None] = {}
    for area in ("inferences", "labels", "ground_truth", "reference"):
        keys = [k for k in lake.lake.keys(f"{area}/model_id={lake.model.id}/") if k.endswith(".parquet")]
        for key in keys:
            body = lake.lake.client.get_object(Bucket=lake.lake.bucket, Key=key)["Body"].read()
            (root / key).parent.mkdir(parents=True, exist_ok=True)
            (root / key).write_bytes(body)
        pattern = "*.parquet" if area == "reference" else "*/*.parquet"
        globs[area] = str(root / area / f"model_id={lake.model.id}" / pattern) if keys else None
    return globs


def lowered(result: pa.Table) -> pa.Table:
    """A result as Athena names its columns: lower-cased."""
    return result.rename_columns([name.lower() for name in result.column_names])


class Engines:
    """One lake, queried by the in-Lambda engine and by DuckDB over its Parquet objects."""

    def __init__(self, lake: Lake, root: Path) -> None:
        self.lake, self.model = lake, lake.model
        self.connection = duckdb.connect()
        for statement in duckdb_views(self.model, TABLES, downloaded(lake, root)):
            self.connection.execute(statement)

    def engine(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        return run(Query.model_validate(body), self.model, lake_loader(self.lake.lake, self.model))

    def drift_engine(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        return run_drift(DriftQuery.model_validate(body), self.model, lake_loader(self.lake.lake, self.model))

    def drift_sql(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        request = DriftQuery.model_validate(body)
        base = drift_base(request, self.model, lake_loader(self.lake.lake, self.model))
        # the bins as a poll reads them back from the query's tag: through JSON text
        bins = DriftBins.from_json(json.loads(json.dumps(drift_bins(request, self.model, base).to_json())))
        query = drift_sql(request, self.model, TABLES, "duckdb", bins)
        return query.rows(lowered(self.connection.sql(query.sql).to_arrow_table()))

    def sql(self, body: dict[str, Any], label_days: LabelDays | None = None) -> list[dict[str, Any]]:
        query = query_sql(Query.model_validate(body), self.model, TABLES, "duckdb", label_days)
        return query.rows(lowered(self.connection.sql(query.sql).to_arrow_table()))


def same(a: Any, b: Any) -> bool:
    """Equal rows, floats to 1e-9 (sums added in another order)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b and type(a) is type(b)


def window(first: int = 0, days: int = DAYS) -> list[dict[str, Any]]:
    return [
        {
            "property": "inference_timestamp",
            "comparator": "gte",
            "value": (DAY + timedelta(days=first)).isoformat(),
        },
        {
            "property": "inference_timestamp",
            "comparator": "lt",
            "value": (DAY + timedelta(days=first + days)).isoformat(),
        },
    ]


def rounded(interval: str, multiple: int = 1, alias: str = "t") -> dict[str, Any]:
    return {
        "function": "roundTimestamp",
        "alias": alias,
        "parameters": {"time_interval": interval, "multiple": multiple},
    }


BINARY_QUERIES: dict[str, dict[str, Any]] = {
    "count": {"select": [{"function": "count"}]},
    "count of a day's window": {"select": [{"function": "count"}], "filter": window(1, 1)},
    "count by region and variant": {
        "select": [{"function": "count"}, {"property": "region"}, {"property": "variant"}],
        "group_by": [{"property": "region"}, {"property": "variant"}],
    },
    "summaries": {
        "select": [
            {"function": f, "alias": f"{f}_{p}", "parameters": {"property": p}}
            for f in ("sum", "avg", "min", "max")
            for p in ("age", "income", "predicted_probability")
        ],
        "filter": window(),
    },
    "rates": {
        "select": [
            rounded("day"),
            {
                "function": "rate",
                "alias": "rich",
                "parameters": {"property": "income", "comparator": "gt", "value": 50000},
            },
            {
                "function": "rate",
                "alias": "not_north",
                "parameters": {"property": "region", "comparator": "notin", "value": ["north"]},
            },
            {
                "function": "rate",
                "alias": "n_like",
                "parameters": {"property": "region", "comparator": "like", "value": "%o%th"},
            },
            {
                "function": "rate",
                "alias": "shadow",
                "parameters": {"property": "variant", "comparator": "eq", "value": "shadow"},
            },
            {
                "function": "rateTest",
                "alias": "test",
                "parameters": {"property": "age", "comparator": "lte", "value": 40, "share": 0.3},
            },
            {
                "function": "rateTest",
                "alias": "test_seen",
                "parameters": {
                    "property": "age",
                    "comparator": "lte",
                    "value": 40,
                    "share": 0.3,
                    "share_rows": 500,
                },
            },
        ],
        "group_by": [{"alias": "t"}],
        "filter": window(),
    },
    "integrity by day": {
        "select": [
            rounded("day"),
            {"function": "nullRate", "alias": "null_income", "parameters": {"property": "income"}},
            {"function": "nullRate", "alias": "null_region", "parameters": {"property": "region"}},
            {"function": "outOfRangeRate", "alias": "age_out", "parameters": {"property": "age"}},
            {"function": "outOfRangeRate", "alias": "income_out", "parameters": {"property": "income"}},
            {"function": "newCategoryRate", "alias": "new_region", "parameters": {"property": "region"}},
        ],
        "group_by": [{"alias": "t"}],
    },
    "distributions": {
        "select": [
            {"function": "distribution", "alias": "regions", "parameters": {"property": "region"}},
            {"function": "distribution", "alias": "ages", "parameters": {"property": "age", "num_bins": 7}},
            {
                "function": "distribution",
                "alias": "incomes",
                "parameters": {"property": "income", "lower": 30000, "upper": 70000, "num_bins": 13},
            },
            {"function": "distribution", "alias": "scores", "parameters": {"property": "anomaly_score"}},
            {"function": "count"},
        ],
    },
    "distribution by variant": {
        "select": [
            {"property": "variant"},
            {
                "function": "distribution",
                "alias": "ages",
                "parameters": {"property": "age", "num_bins": 1000},
            },
        ],
        "group_by": [{"property": "variant"}],
    },
    "classification by day": {
        "select": [
            rounded("day"),
            *[
                {"function": f}
                for f in (
                    "accuracyRate",
                    "balancedAccuracyRate",
                    "f1",
                    "precision",
                    "recall",
                    "specificity",
                    "sensitivity",
                    "truePositiveRate",
                    "trueNegativeRate",
                    "falsePositiveRate",
                    "falseNegativeRate",
                    "confusionMatrixRate",
                    "auc",
                )
            ],
            {"function": "accuracyRate", "alias": "strict", "parameters": {"threshold": 0.8}},
            {
                "function": "precision",
                "alias": "named",
                "parameters": {
                    "predicted_property": "predicted_probability",
                    "ground_truth_property": "churned",
                },
            },
        ],
        "group_by": [{"alias": "t"}],
        "filter": window(),
    },
    "auc and counts by region": {
        "select": [
            {"property": "region"},
            {"function": "auc"},
            {"function": "count"},
            {"function": "distribution", "alias": "d", "parameters": {"property": "region"}},
        ],
        "group_by": [{"property": "region"}],
        "order_by": [{"alias": "count", "direction": "desc"}],
        "limit": 2,
    },
    "filters on every comparator": {
        "select": [
            {"function": "count"},
            {"function": "avg", "alias": "a", "parameters": {"property": "income"}},
        ],
        "filter": [
            {"property": "age", "comparator": "gte", "value": 20},
            {"property": "age", "comparator": "lt", "value": "85"},
            {"property": "income", "comparator": "ne", "value": 1.5},
            {"property": "region", "comparator": "notin", "value": ["east"]},
            {"property": "variant", "comparator": "in", "value": ["AllTraffic", "shadow"]},
            {"property": "predicted_probability", "comparator": "gt", "value": 0.1},
            {"property": "predicted_probability", "comparator": "lte", "value": 0.95},
            {
                "property": "inference_timestamp",
                "comparator": "gt",
                "value": (DAY + timedelta(hours=5)).isoformat(),
            },
            {"property": "anomaly_score", "comparator": "NotNull"},
        ],
    },
    "nulls kept by notin and IsNull": {
        "select": [{"function": "count"}],
        "filter": [{"property": "region", "comparator": "nin", "value": ["north", "south"]}],
    },
    "IsNull and like": {
        "select": [{"function": "count"}, {"property": "variant"}],
        "group_by": [{"property": "variant"}],
        "filter": [
            {"property": "income", "comparator": "IsNull"},
            {"property": "region", "comparator": "like", "value": "s%"},
        ],
    },
    "eq on a ground truth and its time": {
        "select": [
            {"function": "count"},
            {"function": "avg", "alias": "p", "parameters": {"property": "predicted_probability"}},
        ],
        "filter": [
            {"property": "churned", "comparator": "eq", "value": 1},
            {
                "property": "ground_truth_timestamp",
                "comparator": "gte",
                "value": (DAY + timedelta(days=1)).isoformat(),
            },
        ],
    },
    "rounded times": {
        "select": [rounded("hour", 6, "h6"), rounded("week", 1, "w"), {"function": "count"}],
        "group_by": [{"alias": "h6"}, {"alias": "w"}],
    },
    "rounded by two days, weeks, months, years": {
        "select": [
            rounded("day", 2, "d2"),
            rounded("week", 2, "w2"),
            rounded("month", 2, "m2"),
            rounded("year", 3, "y3"),
            rounded("minute", 90, "m90"),
            {"function": "count"},
        ],
        "group_by": [{"alias": "d2"}, {"alias": "w2"}, {"alias": "m2"}, {"alias": "y3"}, {"alias": "m90"}],
    },
    "months and years": {
        "select": [rounded("month", 1, "m"), rounded("year", 1, "y"), {"function": "count"}],
        "group_by": [{"alias": "m"}, {"alias": "y"}],
    },
    "rows ordered": {
        "select": [
            {"property": "partner_inference_id"},
            {"property": "variant"},
            {"property": "age", "alias": "years"},
            {"property": "inference_timestamp"},
        ],
        "order_by": [
            {"property": "inference_timestamp", "direction": "desc"},
            {"property": "partner_inference_id"},
        ],
        "limit": 40,
    },
    "rows in the lake's order": {
        "select": [{"property": "partner_inference_id"}, {"property": "income"}, {"property": "churned"}],
        "filter": window(1, 2),
        "limit": 25,
    },
    "rows ordered with ties, in the lake's order": {
        "select": [{"property": "partner_inference_id"}, {"property": "region"}, {"property": "variant"}],
        "order_by": [{"property": "region", "direction": "desc"}],
        "limit": 30,
    },
    "ground truth rows": {"select": [{"property": "*"}], "from": "ground_truth", "limit": 500},
    "ground truth by class": {
        "select": [{"property": "churned"}, {"function": "count"}],
        "group_by": [{"property": "churned"}],
        "from": "ground_truth",
    },
    "every column": {
        "select": [{"property": "*"}],
        "filter": window(0, 1),
        "order_by": [{"property": "income"}],
    },
    "reference": {
        "select": [
            {"function": "count"},
            {"function": "distribution", "alias": "d", "parameters": {"property": "age"}},
            {"function": "avg", "alias": "a", "parameters": {"property": "income"}},
        ],
        "from": "reference",
    },
    "no rows": {
        "select": [
            {"function": "count"},
            {"function": "avg", "alias": "a", "parameters": {"property": "age"}},
            {"function": "distribution", "alias": "d", "parameters": {"property": "region"}},
            {"function": "auc"},
        ],
        "filter": [{"property": "age", "comparator": "gt", "value": 1000}],
    },
    "no rows, grouped": {
        "select": [{"property": "region"}, {"function": "count"}],
        "group_by": [{"property": "region"}],
        "filter": window(10, 1),
    },
}


def differences(engines: Engines, queries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The queries whose SQL rows differ from the engine's, with both."""
    found = {}
    for name, body in queries.items():
        expected, got = engines.engine(body), engines.sql(body)
        if (not expected and not name.startswith("no rows")) or not same(got, expected):
            found[name] = {"sql": got, "engine": expected}
    return found


def test_duckdb_sql_gives_the_engines_rows_for_a_binary_classifier(aws, tmp_path: Path) -> None:
    # GIVEN a lake with duplicates, late and repeated labels, nulls, several days and variants
    engines = Engines(make_lake(factories.binary_probability(), seed=1), tmp_path)

    # WHEN each query runs in-Lambda and as DuckDB SQL over the same Parquet objects
    # THEN the rows are the same
    assert differences(engines, BINARY_QUERIES) == {}


MULTICLASS_QUERIES: dict[str, dict[str, Any]] = {
    "multiclass metrics": {
        "select": [
            {"function": f}
            for f in ("accuracyRateMulticlass", "precisionMulticlass", "recallMulticlass", "f1Multiclass")
        ]
        + [
            {
                "function": "f1Multiclass",
                "alias": "f1_cat",
                "parameters": {"predicted_property": "probability_cat"},
            },
            {"function": "distribution", "alias": "animals", "parameters": {"property": "animal"}},
        ],
    },
    "multiclass by day and region": {
        "select": [
            rounded("day"),
            {"property": "region"},
            {"function": "accuracyRateMulticlass"},
            {"function": "count"},
        ],
        "group_by": [{"alias": "t"}, {"property": "region"}],
        "filter": [{"property": "animal", "comparator": "ne", "value": "bird"}],
    },
    "binary metrics of one class": {
        "select": [
            {"function": "recall", "parameters": {"predicted_property": "probability_dog"}},
            {"function": "auc", "parameters": {"predicted_property": "probability_dog"}},
        ],
    },
}
REGRESSION_QUERIES: dict[str, dict[str, Any]] = {
    "regression errors": {"select": [{"function": "rmse"}, {"function": "mae"}, {"function": "rSquared"}]},
    "regression by variant and day": {
        "select": [
            {"property": "variant"},
            rounded("day"),
            {"function": "rmse"},
            {"function": "avg", "alias": "a", "parameters": {"property": "ground_truth_value"}},
        ],
        "group_by": [{"property": "variant"}, {"alias": "t"}],
        "filter": window(0, 2),
    },
    "distribution of predictions": {
        "select": [
            {
                "function": "distribution",
                "alias": "d",
                "parameters": {"property": "predicted_value", "lower": 50, "upper": 150, "num_bins": 9},
            }
        ],
    },
}
ONE_HOT_QUERIES: dict[str, dict[str, Any]] = {
    "one-hot classification": {
        "select": [{"function": f} for f in ("accuracyRate", "f1", "auc", "confusionMatrixRate")]
        + [{"function": "accuracyRateMulticlass", "alias": "as_classes"}],
    },
}
MODELS = {
    "binary_probability": BINARY_QUERIES,
    "multiclass_class_column": MULTICLASS_QUERIES,
    "regression": REGRESSION_QUERIES,
    "binary_one_hot": ONE_HOT_QUERIES,
}


@pytest.mark.parametrize("form", [f for f in MODELS if f != "binary_probability"])
def test_duckdb_sql_gives_the_engines_rows_for_other_models(aws, tmp_path: Path, form: str) -> None:
    # GIVEN a multiclass, a regression or a one-hot binary model's lake
    engines = Engines(make_lake(factories.ALL_FORMS[form](), seed=2), tmp_path)

    # WHEN each query runs in-Lambda and as DuckDB SQL, THEN the rows are the same
    assert differences(engines, MODELS[form]) == {}


def test_sql_numbers_match_scikit_learn_over_the_rows_the_sql_itself_reads(aws, tmp_path: Path) -> None:
    # GIVEN a binary lake, and its window's resolved rows as the SQL reads them (properties only)
    engines = Engines(make_lake(factories.binary_probability(), seed=3), tmp_path)
    rows = engines.sql(
        {
            "select": [
                {"property": "partner_inference_id"},
                {"property": "predicted_probability"},
                {"property": "churned"},
            ],
            "limit": 100_000,
        }
    )
    labelled = [r for r in rows if r["predicted_probability"] is not None and r["churned"] is not None]

    # WHEN the metrics are computed by SQL
    [found] = engines.sql({"select": [{"function": f} for f in ("auc", "accuracyRate", "f1", "count")]})

    # THEN they are scikit-learn's over those rows (auc within its histogram's bound)
    truth = [r["churned"] for r in labelled]
    scores = [r["predicted_probability"] for r in labelled]
    predicted = [int(s >= 0.5) for s in scores]
    assert found["count"] == len(rows)
    assert found["labelled_count"] == len([r for r in rows if r["churned"] is not None])
    assert found["accuracyRate"] == pytest.approx(skm.accuracy_score(truth, predicted), abs=1e-12)
    assert found["f1"] == pytest.approx(skm.f1_score(truth, predicted), abs=1e-12)
    assert found["auc"] == pytest.approx(skm.roc_auc_score(truth, scores), abs=1e-3)
    # AND the rows are the lake's first writes: one per (id, variant), fewer than were written
    written = sum(pq.read_table(path).num_rows for path in tmp_path.glob("inferences/*/*/*.parquet"))
    assert len(rows) < written


def test_regression_sql_matches_scikit_learn(aws, tmp_path: Path) -> None:
    engines = Engines(make_lake(factories.regression(), seed=4), tmp_path)
    rows = engines.sql(
        {"select": [{"property": "predicted_value"}, {"property": "ground_truth_value"}], "limit": 100_000}
    )
    both = [r for r in rows if r["ground_truth_value"] is not None]
    [found] = engines.sql({"select": [{"function": "rmse"}, {"function": "mae"}, {"function": "rSquared"}]})
    y = [r["ground_truth_value"] for r in both]
    p = [r["predicted_value"] for r in both]
    assert found["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(y, p)), rel=1e-9)
    assert found["mae"] == pytest.approx(skm.mean_absolute_error(y, p), rel=1e-9)
    assert found["rSquared"] == pytest.approx(skm.r2_score(y, p), rel=1e-9)


# Athena engine v3's functions the SQL may call (https://docs.aws.amazon.com/athena/latest/ug/functions-env3.html):
# aggregates, window and date functions of Trino that Athena v3 lists.
ATHENA_V3_FUNCTIONS = {
    "ABS",
    "IF",
    "IS_NAN",
    "CAST",
    "DATE_ADD",
    "DATE_TRUNC",
    "FLOOR",
    "FROM_UNIXTIME",
    "GROUPING",
    "MAX",
    "MIN",
    "MONTH",
    "ROW_NUMBER",
    "SUM",
    "TO_UNIXTIME",
    "YEAR",
}


def called_functions(tree: exp.Expression, dialect: str) -> set[str]:
    """The SQL functions a statement calls, by the name it renders in `dialect` (NAME(...))."""
    names = set()
    for node in tree.walk():
        if isinstance(node, exp.Func):
            called = re.match(r"([A-Z_][A-Z0-9_]*)\(", node.sql(dialect=dialect).upper())
            if called:
                names.add(called.group(1))
    return names


@pytest.mark.parametrize("form", list(MODELS))
def test_trino_sql_parses_as_trino_and_calls_only_athena_v3_functions(form: str) -> None:
    model = factories.model_of(ranged(factories.ALL_FORMS[form]()))
    for name, body in MODELS[form].items():
        # WHEN a query is rendered for Athena
        sql = query_sql(Query.model_validate(body), model, ATHENA_TABLES, "trino").sql

        # THEN Trino's grammar reads it back, it reads the Glue tables, and calls nothing Athena lacks
        tree = sqlglot.parse_one(sql, read="trino")
        tables = {t.sql(dialect="trino") for t in tree.find_all(exp.Table)}
        assert tables <= {
            f"sagewatch.{area}_m1" for area in ("inferences", "labels", "ground_truth", "reference")
        }
        assert called_functions(tree, "trino") <= ATHENA_V3_FUNCTIONS, (name, sql)
        assert tree.sql(dialect="trino") == sql, name


def test_every_float_in_the_trino_sql_is_a_double_literal() -> None:
    # GIVEN numeric bins over negative and positive edges, and a negative filter value
    model = factories.model_of(ranged(factories.binary_probability()))
    body = {
        "select": [
            {"function": "distribution", "parameters": {"property": "income", "lower": -3.3, "upper": 0.1}},
            {"function": "rate", "parameters": {"property": "income", "comparator": "gt", "value": -0.25}},
        ]
    }
    sql = query_sql(Query.model_validate(body), model, ATHENA_TABLES, "trino").sql

    # THEN no fraction is written without an exponent (Trino would read it as a DECIMAL)
    tree = sqlglot.parse_one(sql, read="trino")
    numbers = [node.this for node in tree.find_all(exp.Literal) if not node.is_string]
    fractions = [n for n in numbers if "." in n or "e" in n]
    assert fractions and all("e" in n for n in fractions), fractions
    assert "-0.25e0" in sql and len(re.findall(r"< -\d+\.\d+e0", sql)) >= 5


def test_a_user_value_is_a_quoted_literal_never_sql(aws) -> None:
    model = factories.model_of(ranged(factories.binary_probability()))
    hostile = "x' OR 1=1 --"
    body = {
        "select": [{"function": "count"}, {"property": "region"}],
        "group_by": [{"property": "region"}],
        "filter": [{"property": "region", "comparator": "in", "value": [hostile, 'a"b']}],
    }
    sql = query_sql(Query.model_validate(body), model, ATHENA_TABLES, "trino").sql
    tree = sqlglot.parse_one(sql, read="trino")
    literals = {node.this for node in tree.find_all(exp.Literal) if node.is_string}
    assert {hostile, 'a"b'} <= literals
    assert not any(isinstance(node, exp.Or) and "1 = 1" in node.sql() for node in tree.walk())


def test_what_sql_does_not_compute_is_refused_by_name() -> None:
    model = factories.model_of(ranged(factories.binary_probability()))
    with pytest.raises(NotInSql, match="explanation"):
        query_sql(
            Query.model_validate({"select": [{"function": "count"}], "from": "explanation"}),
            model,
            TABLES,
            "duckdb",
        )
    # AND a bad query is the engine's 400, before any SQL
    with pytest.raises(InvalidInput, match="treshold"):
        query_sql(
            Query.model_validate({"select": [{"function": "f1", "parameters": {"treshold": 0.3}}]}),
            model,
            TABLES,
            "duckdb",
        )


def test_every_function_is_in_the_matrix_and_computed_in_sql() -> None:
    # every registered function is run by one of the equality tests above
    selected = {
        select.get("function")
        for queries in MODELS.values()
        for body in queries.values()
        for select in body["select"]
    }
    assert set(FUNCTIONS) <= selected, sorted(set(FUNCTIONS) - selected)


def test_the_labels_read_before_a_window_are_the_engines() -> None:
    assert sql_module.LABELS_EARLY_DAYS == window_module.LABELS_EARLY_DAYS


DRIFT_QUERIES: dict[str, dict[str, Any]] = {
    "psi of every input": {"properties": ["age", "income", "region", "predicted_probability"]},
    "each statistic": {"properties": ["age", "region"], "metric": "JSDivergence", "num_bins": 7},
    "kl by day": {"properties": ["income", "region"], "metric": "KLDivergence", "rollup": "day"},
    "hellinger by hour of one day": {
        "properties": ["age"],
        "metric": "HellingerDistance",
        "rollup": "hour",
        "target": {"source": "inference", "filter": window(1, 1)},
    },
    "hypothesis tests by variant": {
        "properties": ["age", "region"],
        "metric": "HypothesisTest",
        "group_by": [{"property": "variant"}],
    },
    "drift scores aggregated": {
        "properties": ["age", "income", "region"],
        "metric": "DriftScore",
        "aggregate": "weighted",
        "weights": {"age": 2, "income": 1, "region": 1},
    },
    "drift tests family-wise, by batch": {
        "properties": ["income", "region"],
        "metric": "DriftTest",
        "aggregate": "family_wise",
        "rollup": "batch_id",
    },
    "a ground truth's drift, filtered": {
        "properties": ["churned"],
        "target": {
            "source": "inference",
            "filter": [{"property": "region", "comparator": "eq", "value": "north"}],
        },
    },
    "base of inferences, target of another day": {
        "properties": ["age", "region"],
        "base": {"source": "inference", "filter": window(0, 1)},
        "target": {"source": "inference", "filter": window(2, 1)},
        "rollup": "day",
    },
    "no target rows": {"properties": ["age"], "target": {"source": "inference", "filter": window(9, 1)}},
}


def test_drift_sql_gives_the_engines_rows(aws, tmp_path: Path) -> None:
    # GIVEN a binary lake and its reference
    engines = Engines(make_lake(factories.binary_probability(), seed=5), tmp_path)

    # WHEN each data_drift request runs in-Lambda and as DuckDB SQL over the same Parquet objects
    found = {}
    for name, body in DRIFT_QUERIES.items():
        expected, got = engines.drift_engine(body), engines.drift_sql(body)
        if not same(got, expected):
            found[name] = {"sql": got, "engine": expected}

    # THEN the rows are the same
    assert found == {}


def test_a_lake_without_labels_or_reference_gives_the_engines_rows(aws, tmp_path: Path) -> None:
    # GIVEN inferences only: no labels, no reference (their relations are empty, typed)
    model = container.model_store().create(ModelSpec.model_validate(ranged(factories.binary_probability())))
    lake = Lake(model)
    rng = np.random.default_rng(6)
    values = values_of(model, rng, 40)
    lake.inferences(
        [
            {
                "partner_inference_id": f"r-{n % 30}",
                "inference_timestamp": DAY + timedelta(minutes=n),
                "source": "capture",
                "variant": "AllTraffic",
                "ingested_at": DAY + timedelta(hours=n // 30),
                **{k: v[n] for k, v in values.items()},
            }
            for n in range(40)
        ]
    )
    engines = Engines(lake, tmp_path)
    queries = {
        "accuracy": {"select": [{"function": "accuracyRate"}, {"function": "count"}, {"function": "auc"}]},
        "rows": {"select": [{"property": "*"}], "order_by": [{"property": "inference_timestamp"}]},
        "no rows, reference": {"select": [{"function": "count"}], "from": "reference"},
    }

    # WHEN the queries run both ways, THEN the rows are the same
    assert differences(engines, queries) == {}


def label_lake() -> Lake:
    """A binary model's labels on many days of both areas: labels sent before their inferences
    (ground_truth/, by their own day: 60 days and 1 day before, and 5 days after, one for an id
    never sent), labels of inferences of DAYS days (labels/, by the inference's day), relabels (a
    later one wins, one timed earlier but written later loses), missing labels."""
    rng = np.random.default_rng(7)
    model = container.model_store().create(ModelSpec.model_validate(factories.binary_probability()))
    lake = Lake(model)

    def labels(ids: list[str], moment: datetime, written: datetime) -> None:
        lake.ground_truth(
            [
                {
                    "partner_inference_id": i,
                    "ground_truth_timestamp": moment + timedelta(minutes=n),
                    "ingested_at": written,
                    "source": "labels",
                    "churned": None if rng.random() < 0.05 else int(rng.integers(0, 2)),
                }
                for n, i in enumerate(ids)
            ]
        )

    early = [f"late-{n}" for n in range(12)]
    labels(early[:6], DAY - timedelta(days=60), DAY - timedelta(days=60))
    labels(early[6:], DAY - timedelta(days=1), DAY - timedelta(days=1))
    ids = [f"i-{n}" for n in range(90)]
    for f, day in enumerate(DAY + timedelta(days=d) for d in range(DAYS)):
        sent = [*ids[f * 30 : (f + 1) * 30], *early[f * 4 : (f + 1) * 4]]
        values = values_of(model, rng, len(sent))
        lake.inferences(
            [
                {
                    "partner_inference_id": i,
                    "inference_timestamp": day + timedelta(minutes=n),
                    "source": "api",
                    "variant": "AllTraffic",
                    "ingested_at": day,
                    **{k: v[n] for k, v in values.items()},
                }
                for n, i in enumerate(sent)
            ]
        )
    arrival = DAY + timedelta(days=DAYS, hours=2)
    labels(ids[:70], arrival, arrival)
    labels([*ids[:10], *early[:3]], arrival + timedelta(hours=5), arrival + timedelta(days=1))  # win
    labels(ids[10:20], arrival - timedelta(hours=5), arrival + timedelta(days=1))  # timed earlier: lose
    labels(["never-sent"], DAY + timedelta(days=5), DAY + timedelta(days=5))
    return lake


GROUND_TRUTH_QUERIES: dict[str, dict[str, Any]] = {
    "count": {"select": [{"function": "count"}], "from": "ground_truth"},
    "by label": {
        "select": [{"property": "churned"}, {"function": "count"}],
        "group_by": [{"property": "churned"}],
        "from": "ground_truth",
    },
    "filtered by label and time": {
        "select": [
            {"function": "count"},
            {"function": "max", "alias": "m", "parameters": {"property": "churned"}},
        ],
        "filter": [
            {"property": "churned", "comparator": "NotNull"},
            {
                "property": "ground_truth_timestamp",
                "comparator": "gte",
                "value": (DAY - timedelta(days=2)).isoformat(),
            },
        ],
        "from": "ground_truth",
    },
    "relabelled ids": {
        "select": [
            {"property": "partner_inference_id"},
            {"property": "churned"},
            {"property": "ground_truth_timestamp"},
        ],
        "filter": [
            {
                "property": "partner_inference_id",
                "comparator": "in",
                "value": [f"i-{n}" for n in range(0, 25, 3)],
            }
        ],
        "from": "ground_truth",
    },
    "labels sent before their inferences": {
        "select": [{"property": "*"}],
        "filter": [{"property": "partner_inference_id", "comparator": "like", "value": "late-%"}],
        "order_by": [{"property": "ground_truth_timestamp"}],
        "from": "ground_truth",
    },
    "every label row": {"select": [{"property": "*"}], "from": "ground_truth", "limit": 500},
    "by day of label": {
        "select": [
            {
                "function": "roundTimestamp",
                "alias": "t",
                "parameters": {"property": "ground_truth_timestamp", "time_interval": "day"},
            },
            {"function": "count"},
        ],
        "group_by": [{"alias": "t"}],
        "from": "ground_truth",
    },
}


def test_ground_truth_sql_over_the_label_days_gives_the_engines_rows(aws, tmp_path: Path) -> None:
    # GIVEN labels on several days of both areas, ground_truth/ 60 days before the inferences
    lake = label_lake()
    engines = Engines(lake, tmp_path)
    days = LabelDays.of(
        lake.lake.days("labels", lake.model.id), lake.lake.days("ground_truth", lake.model.id)
    )
    start = DAY.date()
    assert days == LabelDays(
        (start, start + timedelta(days=DAYS - 1)),
        (start - timedelta(days=60), start + timedelta(days=5)),
    )

    # WHEN each ground_truth query runs in-Lambda and as DuckDB SQL bounded by those days
    found = {}
    for name, body in GROUND_TRUTH_QUERIES.items():
        expected, got = engines.engine(body), engines.sql(body, days)
        if not expected or not same(got, expected):
            found[name] = {"sql": got, "engine": expected}

    # THEN the rows are the same
    assert found == {}
    # and they are every id's latest label: 70 sent ids, 12 sent before their inference, one never
    # sent; the 13 relabelled later hold their later label, the 10 relabelled as earlier do not
    arrival = DAY + timedelta(days=DAYS, hours=2)

    def counted(*conditions: dict[str, Any]) -> int:
        body = {"select": [{"function": "count"}], "filter": list(conditions), "from": "ground_truth"}
        return engines.sql(body, days)[0]["count"]

    assert counted() == 83
    later = {"property": "ground_truth_timestamp", "comparator": "gte"}
    before_never_sent = {
        "property": "ground_truth_timestamp",
        "comparator": "lt",
        "value": (DAY + timedelta(days=5)).isoformat(),
    }
    assert counted({**later, "value": (arrival + timedelta(hours=5)).isoformat()}, before_never_sent) == 13
    earlier = {"property": "ground_truth_timestamp", "comparator": "lt", "value": arrival.isoformat()}
    assert counted(earlier, {"property": "partner_inference_id", "comparator": "like", "value": "i-%"}) == 0


def test_ground_truth_sql_bounds_the_date_of_each_label_area_it_reads() -> None:
    model = factories.model_of(factories.binary_probability())
    body = Query.model_validate(GROUND_TRUTH_QUERIES["by label"])
    start = DAY.date()
    both = LabelDays(
        (start, start + timedelta(days=2)), (start - timedelta(days=60), start + timedelta(days=5))
    )
    # the days as a poll reads them back from the query's tag: through JSON text
    assert LabelDays.from_json(json.loads(json.dumps(both.to_json()))) == both
    for days in (both, LabelDays(None, both.ground_truth), LabelDays(both.labels, None)):
        # WHEN a ground_truth query is rendered for Athena over the label days
        sql = query_sql(body, model, ATHENA_TABLES, "trino", days).sql
        tree = sqlglot.parse_one(sql, read="trino")

        # THEN each area with files is read between its first and last day, one without is not read
        read = {}
        for select in tree.find_all(exp.Select):
            source = select.args.get("from") or select.args.get("from_")
            if source is not None and isinstance(source.this, exp.Table):
                read[source.this.sql(dialect="trino")] = select.args["where"].this.sql(dialect="trino")
        spans = {"sagewatch.labels_m1": days.labels, "sagewatch.ground_truth_m1": days.ground_truth}
        assert read == {
            table: f"\"date\" >= '{first}' AND \"date\" <= '{last}'"
            for table, span in spans.items()
            if span is not None
            for first, last in [span]
        }, sql
        assert called_functions(tree, "trino") <= ATHENA_V3_FUNCTIONS


# Attribute names the SQL path could mistake for columns of its own: a folder of the lake's layout
# (model_id=<id>/), DuckDB's reader columns, the names the SQL gave its own columns before they
# took a `$`, a row query's output names, a keyword in another case.
ODD_NAMES = {
    "model_id": "STRING",
    "filename": "STRING",
    "file_row_number": "INTEGER",
    "file_index": "INTEGER",
    "place": "STRING",
    "__first": "FLOAT",
    "__place0": "STRING",
    "__area": "INTEGER",
    "c0": "STRING",
    "k0": "STRING",
    "Select": "FLOAT",
}


def odd_body() -> dict[str, Any]:
    """binary_probability() with an input of each ODD_NAMES name."""
    body = factories.binary_probability()
    body["attributes"] += [
        {"name": name, "stage": "PIPELINE_INPUT", "value_type": kind} for name, kind in ODD_NAMES.items()
    ]
    for position, attribute in enumerate(a for a in body["attributes"] if a["stage"] == "PIPELINE_INPUT"):
        attribute["position"] = position
    return body


def odd_values(n: int, count: int) -> dict[str, Any]:
    """Row n's values of the ODD_NAMES inputs, ordered unlike the lake (the place a name would give
    if it were read as the SQL's own column is not the row's)."""
    return {
        "model_id": f"other-{n % 3}",
        "filename": f"zz-{(count - n) % 4}.parquet",
        "file_row_number": count - n,
        "file_index": n % 2,
        "place": f"p{(count - n) % 5}",
        "__first": None if n % 6 == 0 else (n % 4) / 3,
        "__place0": f"q{(n * 7) % 5}",
        "__area": n % 3,
        "c0": None if n % 9 == 0 else f"c{n % 4}",
        "k0": f"k{n % 2}",
        "Select": n / 7,
    }


def odd_lake() -> Lake:
    """Three files over two days (an id twice in a file, ids again in later files), labels,
    a reference: every row with values under ODD_NAMES' names."""
    rng = np.random.default_rng(7)
    model = container.model_store().create(ModelSpec.model_validate(odd_body()))
    lake = Lake(model)
    for f in range(3):
        count = 40
        ids = [f"r-{i}" for i in rng.integers(0, 70, count)]
        ids[5] = ids[4]  # written twice by one ingest: the row first in the file wins
        values = values_of(model, rng, count)
        lake.inferences(
            [
                {
                    "partner_inference_id": i,
                    "inference_timestamp": DAY + timedelta(days=f % 2, minutes=int(rng.integers(0, 600))),
                    "source": "capture",
                    "variant": "AllTraffic",
                    "ingested_at": DAY,
                    **{k: v[n] for k, v in values.items()},
                    **odd_values(n, count),
                }
                for n, i in enumerate(ids)
            ]
        )
    truths = truth_of(model, rng, 70)
    lake.ground_truth(
        [
            {
                "partner_inference_id": f"r-{n}",
                "ground_truth_timestamp": DAY + timedelta(days=1),
                "ingested_at": DAY + timedelta(days=1),
                "source": "labels",
                **{k: v[n] for k, v in truths.items()},
            }
            for n in range(70)
        ]
    )
    reference = {**values_of(model, rng, 50), **truth_of(model, rng, 50)}
    reference |= {k: [odd_values(n, 50)[k] for n in range(50)] for k in ODD_NAMES}
    schema = reference_schema(model)
    lake.lake.write_reference(
        model.id, pa.table({f.name: pa.array(reference[f.name], f.type) for f in schema}), "reference"
    )
    return lake


def odd_queries() -> dict[str, dict[str, Any]]:
    every = [{"property": "partner_inference_id"}, *({"property": n} for n in ODD_NAMES)]
    queries: dict[str, dict[str, Any]] = {
        f"count by {name}": {
            "select": [{"function": "count"}, {"function": "accuracyRate"}, {"property": name}],
            "group_by": [{"property": name}],
        }
        for name in ODD_NAMES
    }
    queries |= {
        f"filtered on {name}": {
            "select": [{"function": "count"}],
            "filter": [{"property": name, "comparator": "ne", "value": odd_values(1, 40)[name]}],
        }
        for name in ODD_NAMES
    }
    queries |= {
        "rows in the lake's order": {"select": every, "limit": 50},
        "rows ordered by c0, ties in the lake's order": {
            "select": [{"property": "partner_inference_id"}, {"property": "c0"}, {"property": "k0"}],
            "order_by": [{"property": "c0", "direction": "desc"}],
            "limit": 45,
        },
        "rows ordered by file_row_number": {
            "select": [{"property": "file_row_number"}, {"property": "partner_inference_id"}],
            "order_by": [{"property": "file_row_number"}],
            "limit": 30,
        },
        "groups ordered by count, ties in the lake's order": {
            "select": [{"property": "place"}, {"function": "count"}],
            "group_by": [{"property": "place"}],
            "order_by": [{"alias": "count", "direction": "desc"}],
        },
        "every column": {"select": [{"property": "*"}], "filter": window(1, 1)},
        "reference rows": {"select": every[1:], "from": "reference", "limit": 20},
        "distributions": {
            "select": [
                {"function": "distribution", "alias": "model_id", "parameters": {"property": "model_id"}},
                {
                    "function": "distribution",
                    "alias": "file_row_number",
                    "parameters": {"property": "file_row_number", "lower": 0, "upper": 40, "num_bins": 8},
                },
            ]
        },
    }
    return queries


def test_any_attribute_name_reads_its_own_column_in_duckdb(aws, tmp_path: Path) -> None:
    # GIVEN a model whose inputs are named as the lake's folders, DuckDB's reader columns and the
    # SQL's own columns, its lake in the lake's layout (folders model_id=<id>/date=<day>/)
    engines = Engines(odd_lake(), tmp_path)

    # WHEN queries group, filter and order by them, in-Lambda and as DuckDB SQL
    # THEN the rows are the same
    assert differences(engines, odd_queries()) == {}
    # AND so are data_drift's against the reference
    drift = {"properties": ["model_id", "filename", "file_row_number", "place", "__first"]}
    assert same(engines.drift_sql(drift), engines.drift_engine(drift))


def test_a_place_column_named_as_an_attribute_is_refused() -> None:
    # GIVEN relations whose place columns are `filename` and `file_row_number`, and a model with an
    # attribute of one of those names (in another case)
    body = factories.binary_probability()
    body["attributes"].insert(0, {"name": "FileName", "stage": "PIPELINE_INPUT", "value_type": "STRING"})
    for position, attribute in enumerate(a for a in body["attributes"] if a["stage"] == "PIPELINE_INPUT"):
        attribute["position"] = position
    model = factories.model_of(body)
    tables = SqlTables("i", "l", "g", "r", place=("filename", "file_row_number"))

    # WHEN a query is rendered, THEN it is not SQL's (it runs in-Lambda): its place would be the attribute
    with pytest.raises(NotInSql, match=r"'filename'"):
        query_sql(Query.model_validate({"select": [{"function": "count"}]}), model, tables, "duckdb")


# Text with SQL's and Arrow's special characters, and like patterns over it (issue 18's probe)
ODD_TEXT = [
    "it's",
    'a"b',
    "back\\slash",
    "100%",
    "a_b",
    "ünïcødé 日本",
    "line\nbreak",
    "tab\there",
    "end\\",
    "%",
    "_",
    "\\a",
    "MiXeD",
    "mixed",
    "",
    "-- comment",
]
LIKE_PATTERNS = [
    "%\\%",
    "%\\_%",
    "a_b",
    "%\\",
    "\\a%",
    "\\a",
    "%\\a",
    "back\\s%",
    "%k\\s%",
    "%'%",
    '%"%',
    "line%",
    "%break",
    "%.%",
    "[a-z]%",
    "MiXeD",
    "%日本",
    "_nïcødé%",
    "%\\\\%",
    "\\\\%",
    "end\\\\",
    "e%\\",
    "%_\\",
    "a*b",
    "",
    "%",
    "__",
]


def test_like_patterns_match_what_the_engine_matches(aws, tmp_path: Path) -> None:
    # GIVEN a lake whose region values have quotes, backslashes, wildcards, line breaks, non-ASCII
    model = container.model_store().create(ModelSpec.model_validate(factories.binary_probability()))
    lake = Lake(model)
    rng = np.random.default_rng(8)
    values = values_of(model, rng, 3 * len(ODD_TEXT))
    lake.inferences(
        [
            {
                "partner_inference_id": f"r-{n}",
                "inference_timestamp": DAY + timedelta(minutes=n),
                "source": "capture",
                "variant": "AllTraffic",
                "ingested_at": DAY,
                **{k: v[n] for k, v in values.items()},
                "region": ODD_TEXT[n % len(ODD_TEXT)],
            }
            for n in range(3 * len(ODD_TEXT))
        ]
    )
    engines = Engines(lake, tmp_path)
    queries = {
        repr(p): {
            "select": [
                {"function": "count"},
                {
                    "function": "rate",
                    "alias": "share",
                    "parameters": {"property": "region", "comparator": "like", "value": p},
                },
            ],
            "filter": [{"property": "region", "comparator": "like", "value": p}],
        }
        for p in LIKE_PATTERNS
    }

    # WHEN each pattern filters in-Lambda and in DuckDB SQL, THEN the counts are the same
    found = {}
    for name, body in queries.items():
        expected, got = engines.engine(body), engines.sql(body)
        if not same(got, expected):
            found[name] = {"sql": got, "engine": expected}
    assert found == {}
    # AND the patterns did tell rows apart (the test is not of empty answers)
    counts = {engines.engine(body)[0]["count"] for body in queries.values()}
    assert len(counts) > 5


def test_random_like_patterns_match_arrows_in_duckdb_and_escape_only_what_trino_takes() -> None:
    # GIVEN random texts and patterns of letters, wildcards, backslashes, a line break, non-ASCII
    rng = np.random.default_rng(9)
    alphabet = ["a", "b", "%", "_", "\\", "\n", "ü", "."]

    def text(longest: int) -> str:
        return "".join(rng.choice(alphabet, int(rng.integers(0, longest + 1))))

    texts = pa.table({"v": sorted({text(5) for _ in range(2000)})})
    connection = duckdb.connect()
    connection.register("texts", texts)
    wrong = []
    for _ in range(1500):
        pattern = text(6)
        like = like_pattern(pattern)
        # WHEN DuckDB matches the SQL pattern, THEN it matches what pc.match_like (the engine) matches
        found = connection.sql(
            "SELECT v LIKE ? ESCAPE '\\' AS m FROM texts ORDER BY v", params=[like]
        ).to_arrow_table()
        if found["m"].to_pylist() != pc.match_like(texts["v"], pattern).to_pylist():
            wrong.append((pattern, like))
        # AND an escape precedes only %, _ or itself (Trino refuses any other) and never ends it
        assert re.fullmatch(r"([^\\]|\\[%_\\])*", like), (pattern, like)
    assert wrong == []


def test_trino_sql_of_odd_names_parses_and_calls_only_athena_v3_functions() -> None:
    model = factories.model_of(odd_body())
    for name, body in odd_queries().items():
        # WHEN a query on inputs named as DuckDB's columns or the SQL's former own is rendered for Athena
        sql = query_sql(Query.model_validate(body), model, ATHENA_TABLES, "trino").sql

        # THEN Trino's grammar reads it back, and it calls nothing Athena lacks
        tree = sqlglot.parse_one(sql, read="trino")
        assert tree.sql(dialect="trino") == sql, name
        assert called_functions(tree, "trino") <= ATHENA_V3_FUNCTIONS, (name, sql)


def test_local_duckdb_answers_queries_on_odd_names_as_the_engine(api) -> None:
    # GIVEN a model registered through the API with inputs named as the lake's folder, DuckDB's
    # reader columns and the SQL's own columns, its inferences sent through the API
    model_id = register(api, odd_body())
    sent = [
        {
            "partner_inference_id": f"id-{n % 150}",
            "inference_timestamp": f"2026-11-25T{n % 24:02d}:{n % 60:02d}:00Z",
            "inference_data": {
                "age": 20 + n % 50,
                "income": 1000.0 + n,
                "region": ["north", "south"][n % 2],
                "predicted_probability": (n % 10) / 10,
                **odd_values(n, 200),
            },
            "ground_truth_data": {"churned": n % 2},
        }
        for n in range(200)
    ]
    assert api("POST", f"/api/v3/models/{model_id}/inferences", sent).status in (200, 207)
    engine = use_duckdb(50)  # local mode's SQL engine for windows past 50 rows
    watched = container.monitoring()
    queries = [
        {"select": [{"function": "count"}, {"property": "place"}], "group_by": [{"property": "place"}]},
        {
            "select": [{"property": "partner_inference_id"}, *({"property": n} for n in ODD_NAMES)],
            "order_by": [{"property": "file_row_number"}],
            "limit": 20,
        },
        {
            "select": [{"function": "count"}, {"function": "accuracyRate"}],
            "filter": [{"property": "model_id", "comparator": "ne", "value": "other-1"}],
        },
        {"select": [{"property": "filename"}, {"property": "partner_inference_id"}], "limit": 30},
    ]
    for body in queries:
        # WHEN the query runs in the Lambda and, past the limit, in local mode's DuckDB
        watched.sql = None
        expected = api("POST", f"/api/v3/models/{model_id}/inferences/query", body)
        watched.sql = engine
        ran = len(engine.finished)
        got = api("POST", f"/api/v3/models/{model_id}/inferences/query", body)

        # THEN DuckDB ran it and answered the engine's rows
        assert len(engine.finished) == ran + 1, body
        assert (got.status, got.body) == (expected.status, expected.body), body
        assert expected.status == 200 and expected.body["query_result"], body


# -- top-N: a grouped query's order_by and limit computed in SQL -----------------------------------

TOP_GROUPS = 300  # region values: many more groups than any query's limit
# incomes whose sums are exact in any order (small dyadic fractions), so the engine's and SQL's
# averages are the same numbers and tie where they should; -0.0 beside 0.0 (equal in Python)
EXACT_INCOMES = [None, -1.0, -0.0, 0.0, 0.5, 1.0, 2.5, 4.0, 100.0]


def top_body() -> dict[str, Any]:
    """binary_probability() (ranges on age and income) with a boolean input `member`."""
    body = ranged(factories.binary_probability())
    body["attributes"].append(
        {"name": "member", "stage": "PIPELINE_INPUT", "value_type": "BOOLEAN", "position": 3}
    )
    return body


def top_lake(incomes: list[float | None], seed: int) -> Lake:
    """Four files over DAYS days of ~TOP_GROUPS regions (counts tied, a null region), incomes from
    `incomes`; every 41st region without incomes (null avg, sum, min, max), every 43rd with zeros
    only (-0.0 and 0.0: tied at 0), one with NaN incomes (its sum read as 0, as aggregates.state
    reads a NaN sum); ages whose text orders unlike their numbers (5, 100); a boolean, and
    probabilities rounded to 2 places (tied min and max)."""
    rng = np.random.default_rng(seed)
    model = container.model_store().create(ModelSpec.model_validate(top_body()))
    lake = Lake(model)
    ages = [5, 9, *range(18, 31), 100, 101]
    for f in range(4):
        count = 500
        groups = rng.integers(0, TOP_GROUPS, count)
        rows = []
        for n, group in enumerate(groups):
            region = None if rng.random() < 0.03 else f"g{group:03d}"
            income = incomes[int(rng.integers(0, len(incomes)))]
            if group % 41 == 0:
                income = None
            elif group % 43 == 1:
                income = [0.0, -0.0][n % 2]
            elif group == 7 and n % 5 == 0:
                income = math.nan
            rows.append(
                {
                    "partner_inference_id": f"t-{f}-{n}",
                    "inference_timestamp": DAY
                    + timedelta(days=f % DAYS, minutes=int(rng.integers(0, 24 * 60))),
                    "source": "capture",
                    "variant": "AllTraffic",
                    "ingested_at": DAY,
                    "age": ages[int(rng.integers(0, len(ages)))],
                    "income": income,
                    "region": region,
                    "member": None if n % 17 == 0 else bool(rng.random() < 0.5),
                    "predicted_probability": float(round(rng.random(), 2)),
                }
            )
        lake.inferences(rows)
    return lake


# the region whose incomes have a NaN, left out where the engines read a NaN otherwise (DuckDB's
# max is NaN and its NaN > 1 true, Arrow's max skips it and its NaN > 1 is false)
WITHOUT_NAN = [{"property": "region", "comparator": "ne", "value": "g007"}]


def by_region(
    *functions: dict[str, Any], order: list[dict[str, Any]], limit: int, where: list[dict[str, Any]] = ()
) -> dict[str, Any]:
    return {
        "select": [{"property": "region"}, {"function": "count", "alias": "n"}, *functions],
        "group_by": [{"property": "region"}],
        "order_by": order,
        "limit": limit,
        "filter": list(where),
    }


def of_income(function: str, alias: str, prop: str = "income") -> dict[str, Any]:
    return {"function": function, "alias": alias, "parameters": {"property": prop}}


TOP_QUERIES: dict[str, dict[str, Any]] = {
    "top 10 by count, ties at the cut": by_region(order=[{"alias": "n", "direction": "desc"}], limit=10),
    "bottom 12 by count": by_region(order=[{"alias": "n"}], limit=12),
    "top 20 by avg, nulls first": by_region(
        of_income("avg", "a"), order=[{"alias": "a", "direction": "desc"}], limit=20
    ),
    "bottom 25 by avg, negatives and zeros": by_region(
        of_income("avg", "a"), order=[{"alias": "a"}], limit=25
    ),
    "by avg then count": by_region(
        of_income("avg", "a"), order=[{"alias": "a"}, {"alias": "n", "direction": "desc"}], limit=40
    ),
    "top 15 by sum": by_region(of_income("sum", "s"), order=[{"alias": "s", "direction": "desc"}], limit=15),
    "bottom 15 by min": by_region(
        of_income("min", "lo", "predicted_probability"), order=[{"alias": "lo"}], limit=15
    ),
    "top 15 by max, nulls first": by_region(
        of_income("max", "hi"), order=[{"alias": "hi", "direction": "desc"}], limit=15, where=WITHOUT_NAN
    ),
    "top 10 by rate and null rate": by_region(
        {
            "function": "rate",
            "alias": "rich",
            "parameters": {"property": "income", "comparator": "gt", "value": 1.0},
        },
        of_income("nullRate", "missing"),
        order=[{"alias": "rich", "direction": "desc"}, {"alias": "missing"}],
        limit=10,
        where=WITHOUT_NAN,
    ),
    "a key then a function": {
        "select": [{"property": "age"}, {"property": "region"}, {"function": "count", "alias": "n"}],
        "group_by": [{"property": "age"}, {"property": "region"}],
        "order_by": [{"property": "age", "direction": "desc"}, {"alias": "n", "direction": "desc"}],
        "limit": 30,
    },
    "a function then a key": by_region(
        order=[{"alias": "n", "direction": "desc"}, {"property": "region", "direction": "desc"}], limit=10
    ),
    "by region under another name, the null first": {
        "select": [rounded("day"), {"property": "region", "alias": "r"}],
        "group_by": [{"alias": "t"}, {"property": "region"}],
        "order_by": [{"alias": "r", "direction": "desc"}, {"alias": "t"}],
        "limit": 5,
    },
    "hours then count": {
        "select": [rounded("hour"), {"property": "member"}, {"function": "count", "alias": "n"}],
        "group_by": [{"alias": "t"}, {"property": "member"}],
        "order_by": [{"alias": "t", "direction": "desc"}, {"alias": "n"}],
        "limit": 9,
    },
    "rounded times alone": {
        "select": [rounded("hour", 3)],
        "group_by": [{"alias": "t"}],
        "order_by": [{"alias": "t"}],
        "limit": 4,
    },
    "no order: regions' text": {
        "select": [{"property": "region"}, {"function": "count"}],
        "group_by": [{"property": "region"}],
        "limit": 10,
    },
    "no order: ages' text": {
        "select": [{"property": "age"}, {"property": "member"}, {"function": "count"}],
        "group_by": [{"property": "age"}, {"property": "member"}],
        "limit": 7,
    },
    "no order: hours": {
        "select": [rounded("hour"), {"function": "count"}],
        "group_by": [{"alias": "t"}],
        "limit": 6,
    },
}
# not ordered in SQL: a float key's text (Python's differs from SQL's), a p-value, a distribution
NOT_PUSHED: dict[str, dict[str, Any]] = {
    "no order: incomes' text": {
        "select": [{"property": "income"}, {"function": "count"}],
        "group_by": [{"property": "income"}],
        # not 0.0 and -0.0: one group in DuckDB, two in Arrow
        "filter": [{"property": "income", "comparator": "ne", "value": 0.0}],
        "limit": 3,
    },
    "top 5 by a p-value": by_region(
        {
            "function": "rateTest",
            "alias": "p",
            "parameters": {"property": "income", "comparator": "gt", "value": 1.0, "share": 0.4},
        },
        order=[{"alias": "p"}],
        limit=5,
    ),
    "top 5 beside a distribution": by_region(
        {"function": "distribution", "alias": "d", "parameters": {"property": "age"}},
        order=[{"alias": "n", "direction": "desc"}],
        limit=5,
    ),
}


def ends_with_limit(sql: str, limit: int) -> bool:
    return bool(re.search(rf"\sORDER BY .*\sLIMIT {limit}$", sql))


def first_places(engines: Engines, body: dict[str, Any]) -> dict[tuple, int]:
    """Each group's first row among the window's rows in the lake's order, as the engine reads them
    (its loader, filter and keys), by its key values as the answer gives them."""
    query = Query.model_validate(body)
    plan = Plan(query, engines.model)
    tables = lake_loader(engines.lake.lake, engines.model)(query.from_, plan.columns(), None, None, False)
    rows = pa.concat_tables(
        [filters.apply(t, query.filter, plan.types, "filter") for t in tables], promote_options="default"
    )
    keyed = plan.with_keys(rows)
    places: dict[tuple, int] = {}
    for place, key in enumerate(zip(*(keyed.column(k).to_pylist() for k, _ in plan.keys), strict=True)):
        places.setdefault(tuple(v.isoformat() if isinstance(v, datetime) else v for v in key), place)
    return places


def top_of(engines: Engines, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The query's answer as its order_by and limit define it over every group's values (the
    engine's, without the limit): ordered by each item (nulls last ascending, first descending),
    groups tied in the lake's order (their first row's), then cut."""
    rows = engines.engine({**body, "limit": 100_000})
    places = first_places(engines, body)
    outputs = [output for _, output in Plan(Query.model_validate(body), engines.model).keys]
    rows.sort(key=lambda r: places[tuple(r[o] for o in outputs)])
    for item in reversed(body["order_by"]):
        name = item.get("alias") or item["property"]
        rows.sort(key=lambda r, n=name: (r[n] is None, r[n]), reverse=item.get("direction") == "desc")
    return rows[: body["limit"]]


def order_values(body: dict[str, Any], rows: list[dict[str, Any]]) -> list[tuple]:
    return [tuple(r[i.get("alias") or i["property"]] for i in body["order_by"]) for r in rows]


def test_a_grouped_top_n_is_ordered_and_limited_in_sql_as_defined(aws, tmp_path: Path) -> None:
    # GIVEN a lake of ~300 regions: counts tied, nulls, a NaN, -0.0 beside 0.0, sums exact in any order
    engines = Engines(top_lake(EXACT_INCOMES, seed=11), tmp_path)
    model = engines.model
    for name, body in (TOP_QUERIES | NOT_PUSHED).items():
        # WHEN a top-N runs as DuckDB SQL
        got = engines.sql(body)

        # THEN it answers the groups its order_by and limit keep of every group, ties in the lake's
        # order; the engine's answer has the same order values (its ties are in the order Arrow's
        # group_by gives groups: their first row's, but for its hash table's collisions)
        if body.get("order_by"):
            assert same(got, top_of(engines, body)), name
            assert same(order_values(body, got), order_values(body, engines.engine(body))), name
        else:
            assert same(got, engines.engine(body)), name
    for name, body in TOP_QUERIES.items():
        # AND the SQL orders and limits the groups itself: `limit` rows of many more
        sql = query_sql(Query.model_validate(body), model, TABLES, "duckdb").sql
        assert ends_with_limit(sql, body["limit"]), name
        assert engines.connection.sql(sql).to_arrow_table().num_rows == body["limit"], name
        every = engines.engine({**body, "limit": 100_000})
        assert len(every) > 3 * body["limit"] or name.startswith("rounded"), name
        # AND the Trino SQL of it parses and calls only Athena's functions
        trino = query_sql(Query.model_validate(body), model, ATHENA_TABLES, "trino").sql
        tree = sqlglot.parse_one(trino, read="trino")
        assert tree.sql(dialect="trino") == trino and ends_with_limit(trino, body["limit"]), name
        assert called_functions(tree, "trino") <= ATHENA_V3_FUNCTIONS, (name, trino)
    for name, body in NOT_PUSHED.items():  # what SQL cannot order as Python does is cut in Python
        sql = query_sql(Query.model_validate(body), model, TABLES, "duckdb").sql
        assert not ends_with_limit(sql, body["limit"]), name
    # AND the data had what the cut must get right: ties at it, nulls, zeros and negatives
    counts = order_values(
        TOP_QUERIES["top 10 by count, ties at the cut"],
        engines.engine({**TOP_QUERIES["top 10 by count, ties at the cut"], "limit": 100_000}),
    )
    assert counts[9] == counts[10]
    averages = [
        a
        for (a,) in order_values(
            TOP_QUERIES["top 20 by avg, nulls first"],
            engines.engine({**TOP_QUERIES["top 20 by avg, nulls first"], "limit": 100_000}),
        )
    ]
    assert 3 <= averages.count(None) < 20 and averages.count(0.0) >= 2
    assert min(a for a in averages if a is not None) < 0


def test_a_pushed_limit_keeps_the_groups_python_keeps_of_every_group(aws, tmp_path: Path) -> None:
    # GIVEN incomes whose sums depend on the order they are added in (0.1 + 0.2 != 0.2 + 0.1 in the
    # last bit), and DuckDB adding them in one order in every run (one thread)
    engines = Engines(top_lake([0.1, 0.2, 0.3, 0.7, None], seed=12), tmp_path)
    engines.connection.execute("SET threads = 1")
    averages = [
        r["a"]
        for r in engines.sql({**TOP_QUERIES["bottom 25 by avg, negatives and zeros"], "limit": 100_000})
    ]
    assert any(
        a != b and abs(a - b) < 1e-12 for a, b in itertools.pairwise(a for a in averages if a is not None)
    )
    for name, body in TOP_QUERIES.items():
        # WHEN a top-N's groups are cut by SQL, and by Python over every group SQL returns
        cut = engines.sql(body)
        every = engines.sql({**body, "limit": 100_000})

        # THEN they are the same rows, exactly: SQL orders the very values Python orders
        assert cut == every[: body["limit"]], name
