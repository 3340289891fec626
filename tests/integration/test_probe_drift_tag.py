"""Probes of a data_drift query's tag (metrics.sql.DriftBins in the text Athena keeps): a poll of a
query whose tag is malformed or forged answers an error naming the query, never a 500 nor another
model's values; labels that are not text (booleans, integers as categories), missing values and empty
bins answer the same values at the first answer, at the poll and in the Lambda; a KS request whose
tag is past Athena's limit answers the in-Lambda values."""

from __future__ import annotations

import base64
import io
import json
import math
import random
import string
import zlib
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests import athena as moto_athena
from tests import factories
from tests.conftest import Call
from tests.inputs import records, register

from sagewatch import container
from sagewatch.local.runtime import use_duckdb
from sagewatch.local.sql import TABLES
from sagewatch.metrics import drift
from sagewatch.metrics.drift import DriftQuery, binning
from sagewatch.metrics.sql import ATHENA_QUERY_BYTES, DriftBins, drift_base, drift_bins, drift_sql
from sagewatch.services import monitoring as monitoring_module
from sagewatch.stores.athena import tag, tagged
from sagewatch.stores.window import lake_loader

LIMIT = 100  # rows: the windows here are past it


def _model() -> dict[str, Any]:
    """The binary model with a boolean, an integer categorical, and a float never sent."""
    body = factories.binary_probability("probe")
    body["attributes"] += [
        {"name": "flag", "stage": "NON_INPUT_DATA", "value_type": "BOOLEAN"},
        {
            "name": "tier",
            "stage": "NON_INPUT_DATA",
            "value_type": "INTEGER",
            "categorical": True,
            "categories": [{"value": "1"}, {"value": "2"}, {"value": "3"}],
        },
        {"name": "blank", "stage": "NON_INPUT_DATA", "value_type": "FLOAT"},
    ]
    return body


def _rows(n: int, seed: int) -> list[dict[str, Any]]:
    sent = records(n, seed=seed)
    for index, row in enumerate(sent):
        row["inference_data"] |= {"flag": index % 3 == 0, "tier": 1 + index % 3 + seed % 2 * (index % 2)}
    return sent


def _lake(api: Call, upload, reference: pa.Table | None = None) -> str:
    model_id = register(api, _model())
    answer = api("POST", f"/api/v3/models/{model_id}/inferences", _rows(300, seed=5))
    assert answer.body["counts"]["failure"] == 0, answer.body
    if reference is None:
        sent = _rows(400, seed=2)
        reference = pa.Table.from_pylist([{**r["inference_data"], **r["ground_truth_data"]} for r in sent])
    sink = io.BytesIO()
    pq.write_table(reference, sink)
    path = f"/api/v3/models/{model_id}/reference_data"
    assert upload(path, {"reference_data": ("r.parquet", sink.getvalue())}).status == 207
    return model_id


def _path(model_id: str) -> str:
    return f"/api/v3/models/{model_id}/inferences/query/data_drift"


def _in_lambda(api: Call, model_id: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    watched = container.monitoring()
    engine, watched.sql = watched.sql, None
    try:
        answer = api("POST", _path(model_id), body)
    finally:
        watched.sql = engine
    assert answer.status == 200, answer.body
    return answer.body["query_result"]


def _same(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert [sorted(row) for row in got] == [sorted(row) for row in want]
    for row, wanted in zip(got, want, strict=True):
        assert row == {k: pytest.approx(v) if isinstance(v, float) else v for k, v in wanted.items()}


CATEGORIES = {
    "properties": ["flag", "tier", "churned"],
    "metric": "PSI",
    "base": {"source": "reference"},
    "target": {"source": "inference"},
    "group_by": [{"property": "region"}],
}


def test_labels_that_are_not_text_answer_the_same_at_the_poll_and_in_the_lambda(api: Call, upload) -> None:
    model_id = _lake(api, upload)
    engine = use_duckdb(LIMIT)
    for metric in ("PSI", "JSDivergence", "HypothesisTest", "DriftTest", "DriftScore"):
        body = {**CATEGORIES, "metric": metric}
        expected = _in_lambda(api, model_id, body)
        assert any(row["tier"] for row in expected)  # something to compare
        first = api("POST", _path(model_id), body)
        assert first.status == 200, first.body
        _same(first.body["query_result"], expected)
        polled = api("GET", f"/api/v3/models/{model_id}/inferences/query/{engine.finished[-1]}")
        assert polled.status == 200 and polled.body == first.body


def test_missing_values_and_empty_bins_answer_the_same_at_the_poll_and_in_the_lambda(
    api: Call, upload
) -> None:
    """A reference whose income is NaN (a missing value) or infinite (rows refused: values.py) in a
    quarter of its rows each, and a property never sent (no edges: only the missing-value bin)."""
    sent = _rows(400, seed=2)
    rows = [{**r["inference_data"], **r["ground_truth_data"]} for r in sent]
    for index, row in enumerate(rows):
        row["income"] = (
            [math.inf, -math.inf, math.nan, row["income"]][index % 4] if index < 200 else row["income"]
        )
        row["blank"] = None
    reference = pa.Table.from_pylist(rows)
    model_id = _lake(api, upload, reference)
    engine = use_duckdb(LIMIT)
    for metric in ("PSI", "KLDivergence", "HypothesisTest", "DriftScore"):
        body = {
            "properties": ["income", "blank", "age"],
            "metric": metric,
            "base": {"source": "reference"},
            "target": {"source": "inference"},
        }
        expected = _in_lambda(api, model_id, body)
        first = api("POST", _path(model_id), body)
        assert first.status == 200, first.body
        _same(first.body["query_result"], expected)
        polled = api("GET", f"/api/v3/models/{model_id}/inferences/query/{engine.finished[-1]}")
        assert polled.status == 200 and polled.body == first.body


FORGED: list[Any] = [
    "bins",
    [],
    {"flag": "x"},
    {"flag": {"numeric": True}},
    {"flag": {"numeric": True, "edges": ["a"], "counts": []}},
    {"flag": {"numeric": True, "edges": [1.0, 0.0], "counts": [[0, 1]]}},
    {"flag": {"numeric": False, "edges": None, "counts": [[1, 2, 3]]}},
    {"flag": {"numeric": False, "edges": None, "counts": [["true", "many"]]}},
    {"flag": {"numeric": False, "edges": None, "counts": [[["a"], 1]]}},
    {"flag": {"numeric": False, "edges": None, "counts": []}},  # a base has rows
    {"flag": {"numeric": False, "edges": None, "counts": [[1, 2.0], ["true", 1.0]]}},
    {"flag": {"numeric": False, "edges": None, "counts": [["true", -5.0]]}},
    {"flag": {"numeric": True, "edges": [0.5], "counts": [[7, 2.0]]}},  # no bin 7
    {"flag": {"numeric": True, "edges": [0.5], "counts": [[True, 2.0]]}},
    {},  # no property's bins
]


@pytest.mark.parametrize("bins", FORGED, ids=range(len(FORGED)))
def test_a_poll_of_a_forged_tag_answers_409_not_500(api: Call, upload, bins: Any) -> None:
    model_id = _lake(api, upload)
    engine = use_duckdb(LIMIT)
    body = {**CATEGORIES, "properties": ["flag"]}
    assert api("POST", _path(model_id), body).status == 200
    query_id = engine.finished[-1]
    what = tagged(engine.execution(query_id).sql)
    moto_athena.retag(engine, query_id, {**what, "bins": bins})
    polled = api("GET", f"/api/v3/models/{model_id}/inferences/query/{query_id}")
    assert polled.status == 409, polled.body
    assert query_id in polled.body["message"] and "run the query again" in polled.body["message"]


@pytest.mark.parametrize(
    "change",
    [
        lambda what: {**what, "body": {"properties": 3}},
        lambda what: {**what, "body": None},
        lambda what: {**what, "rows": "many"},
        lambda what: {**what, "body": {**what["body"], "properties": ["tier"]}},  # bins of another
    ],
    ids=["body", "no-body", "rows", "other-property"],
)
def test_a_poll_of_a_forged_request_answers_409_not_500(api: Call, upload, change) -> None:
    model_id = _lake(api, upload)
    engine = use_duckdb(LIMIT)
    body = {**CATEGORIES, "properties": ["flag"]}
    assert api("POST", _path(model_id), body).status == 200
    query_id = engine.finished[-1]
    moto_athena.retag(engine, query_id, change(tagged(engine.execution(query_id).sql)))
    polled = api("GET", f"/api/v3/models/{model_id}/inferences/query/{query_id}")
    assert polled.status == 409, polled.body
    assert query_id in polled.body["message"] and "run the query again" in polled.body["message"]


@pytest.mark.parametrize(
    "tail",
    [
        "/* sagewatch:z:!!!! */",  # not the tag's alphabet: not a tag
        "/* sagewatch:z:AAAA */",  # not zlib
        "/* sagewatch:e30= */",  # {} uncompressed
        "/* sagewatch:bnVsbA== */",  # null
        "/* sagewatch:WzFd */",  # [1]
        "/* sagewatch:e3 */",  # bad base64 padding
        "/* sagewatch:eyJhIjog */",  # truncated JSON
    ],
)
def test_a_poll_of_a_query_with_a_broken_tag_answers_404_not_500(api: Call, upload, tail: str) -> None:
    model_id = _lake(api, upload)
    engine = use_duckdb(LIMIT)
    assert api("POST", _path(model_id), CATEGORIES).status == 200
    query_id = engine.finished[-1]
    moto_athena.replace_text(
        engine, query_id, f"{moto_athena.untagged(engine.execution(query_id).sql)}\n{tail}"
    )
    polled = api("GET", f"/api/v3/models/{model_id}/inferences/query/{query_id}")
    assert polled.status == 404, polled.body


def test_a_poll_of_a_tag_that_inflates_to_hundreds_of_mb_answers_404(api: Call, upload) -> None:
    """A tag of 64 KB of zlib text that would inflate to 64 MB (no tag sagewatch writes): refused as
    it inflates, not read into memory."""
    model_id = _lake(api, upload)
    engine = use_duckdb(LIMIT)
    assert api("POST", _path(model_id), CATEGORIES).status == 200
    query_id = engine.finished[-1]
    bomb = zlib.compress(b'{"a": "' + b" " * (64 * 2**20) + b'"}', 9)
    assert len(bomb) < 100_000
    untagged = moto_athena.untagged(engine.execution(query_id).sql)
    moto_athena.replace_text(
        engine, query_id, f"{untagged}\n/* sagewatch:z:{base64.b64encode(bomb).decode()} */"
    )
    with pytest.raises(ValueError, match="inflates past"):
        tagged(engine.execution(query_id).sql)
    polled = api("GET", f"/api/v3/models/{model_id}/inferences/query/{query_id}")
    assert polled.status == 404, polled.body


def test_a_tag_cannot_raise_the_rows_a_poll_reads_back(
    api: Call, upload, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tag naming more result rows than the service reads back still answers 413 past its bound."""
    model_id = _lake(api, upload)
    engine = use_duckdb(LIMIT)
    query = {
        "select": [{"property": "partner_inference_id"}],
        "order_by": [{"property": "partner_inference_id"}],
    }
    path = f"/api/v3/models/{model_id}/inferences/query"
    assert api("POST", path, {**query, "limit": 30}).status == 200
    query_id = engine.finished[-1]
    what = tagged(engine.execution(query_id).sql)
    moto_athena.retag(engine, query_id, {**what, "rows": 10**9})
    monkeypatch.setattr(monitoring_module, "SQL_RESULT_ROWS", 20)
    polled = api("GET", f"{path}/{query_id}")
    assert polled.status == 413, polled.body


def test_ks_bins_past_athenas_limit_once_tagged_answer_the_in_lambda_values(api: Call, upload) -> None:
    """KS bins (1,000 a numeric property) whose SQL Athena would take, but not with the tag holding
    them and their base counts: the request runs in the Lambda, with its values."""
    sent = _rows(1_500, seed=2)
    rows = [{**r["inference_data"], **r["ground_truth_data"]} for r in sent]
    for index, row in enumerate(rows):
        row["blank"] = index * 0.37 % 11  # a third property with 1,000 KS bins
    reference = pa.Table.from_pylist(rows)
    model_id = _lake(api, upload, reference)
    engine = use_duckdb(LIMIT)
    body = {
        "properties": ["income", "predicted_probability", "blank"],
        "metric": "HypothesisTest",
        "base": {"source": "reference"},
        "target": {"source": "inference"},
        "group_by": [{"property": "region"}],
    }
    model = container.model_store().get(model_id)
    request = DriftQuery.model_validate(body)
    bins = drift_bins(request, model, drift_base(request, model, lake_loader(container.lake_store(), model)))
    assert min(len(p.edges) for p in bins.profiles.values()) > 900
    sql = drift_sql(request, model, TABLES, "duckdb", bins).sql
    what = {"bins": bins.to_json(), "body": request.model_dump(mode="json")}
    print(len(sql.encode()), len(tag(sql, what).encode()))
    assert len(sql.encode()) < ATHENA_QUERY_BYTES < len(tag(sql, what).encode())
    expected = _in_lambda(api, model_id, body)
    answer = api("POST", _path(model_id), body)
    assert answer.status == 200, answer.body
    assert engine.finished == []  # not in DuckDB
    _same(answer.body["query_result"], expected)


def test_a_categorical_property_of_many_categories_is_counted_in_sql(api: Call, upload) -> None:
    """15,000 categories in the base: the tag holds each once (its base count; the categories are
    the counted labels), so SQL and tag stay within Athena's limit and the target is counted in SQL
    with the in-Lambda values (each category twice put the tag past it: the Lambda read the target)."""
    body = factories.binary_probability("cities")
    body["attributes"].append({"name": "city", "stage": "NON_INPUT_DATA", "value_type": "STRING"})
    model_id = register(api, body)
    rng = random.Random(7)
    cities = ["".join(rng.choices(string.ascii_lowercase, k=10)) for _ in range(15_000)]
    sent = records(300, seed=5)
    for index, row in enumerate(sent):
        row["inference_data"]["city"] = cities[index * 37 % len(cities)] if index % 5 else "elsewhere"
    assert api("POST", f"/api/v3/models/{model_id}/inferences", sent).body["counts"]["failure"] == 0
    rows = [{**r["inference_data"], **r["ground_truth_data"]} for r in records(len(cities), seed=2)]
    reference = pa.Table.from_pylist([{**row, "city": city} for row, city in zip(rows, cities, strict=True)])
    sink = io.BytesIO()
    pq.write_table(reference, sink)
    path = f"/api/v3/models/{model_id}/reference_data"
    assert upload(path, {"reference_data": ("r.parquet", sink.getvalue())}).status == 207
    engine = use_duckdb(LIMIT)
    for metric in ("PSI", "HypothesisTest", "DriftTest"):
        request = {
            "properties": ["city"],
            "metric": metric,
            "base": {"source": "reference"},
            "target": {"source": "inference"},
            "group_by": [{"property": "region"}],
        }
        expected = _in_lambda(api, model_id, request)
        before = len(engine.finished)
        answer = api("POST", _path(model_id), request)
        assert answer.status == 200, answer.body
        assert len(engine.finished) == before + 1  # counted in DuckDB
        _same(answer.body["query_result"], expected)
        polled = api("GET", f"/api/v3/models/{model_id}/inferences/query/{engine.finished[-1]}")
        assert polled.status == 200 and polled.body == answer.body


def test_bins_read_back_from_json_are_the_bins_fitted() -> None:
    """Categories (not written: the counted labels but the missing values') and edges come back as
    binning.fit made them, booleans and integers as their text, a property never sent as no bins."""
    base = pa.table(
        {
            "flag": pa.array([True, False, None, True]),
            "tier": pa.array([3, 1, 1, None]),
            "word": pa.array(["b", None, "a", "a"]),
            "income": pa.array([1.5, None, 2.5, 9.0]),
            "blank": pa.nulls(4, pa.float64()),
        }
    )
    categorical = {"tier": True}
    profiles = {
        name: binning.fit(base.column(name).combine_chunks(), 3, categorical.get(name, False))
        for name in base.column_names
    }
    counts = {
        name: drift._base_counts(profiles[name], base.column(name).combine_chunks()) for name in profiles
    }
    read = DriftBins.from_json(json.loads(json.dumps(DriftBins(profiles, counts).to_json())))
    assert read.counts == counts
    for name, profile in profiles.items():
        back = read.profiles[name]
        assert (back.numeric, back.categories, back.size) == (
            profile.numeric,
            profile.categories,
            profile.size,
        )
        assert back.edges is None if profile.edges is None else back.edges.tolist() == profile.edges.tolist()
    assert read.profiles["flag"].categories == ("false", "true")
    assert read.profiles["tier"].categories == ("1", "3")
