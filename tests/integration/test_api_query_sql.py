"""Queries over windows past the API's limit (services/monitoring.SQL_ROWS) through the real handler:
run in DuckDB in local mode (where SQL really runs) and in Athena (moto: canned results) with the
202-and-poll flow, they answer the rows the in-Lambda engine answers."""

from __future__ import annotations

import io
import json
import random
import uuid
from typing import Any
from urllib.parse import urljoin

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError
from tests import athena as moto_athena
from tests import factories
from tests.conftest import Call
from tests.inputs import records, register

from sagewatch import aws as sagewatch_aws
from sagewatch import container
from sagewatch.auth import Role
from sagewatch.handlers.api import handler
from sagewatch.local.http_bridge import LocalContext, proxy_event
from sagewatch.local.runtime import use_duckdb
from sagewatch.local.sql import TABLES, DuckdbEngine
from sagewatch.metrics import filters
from sagewatch.metrics.drift import DriftQuery
from sagewatch.metrics.query import Query
from sagewatch.metrics.sql import NotInSql, drift_base, drift_bins, drift_sql, query_sql
from sagewatch.services import monitoring as monitoring_module
from sagewatch.stores import catalog
from sagewatch.stores.athena import WORKGROUP_ENV, tagged
from sagewatch.stores.window import lake_loader

LIMIT = 100  # rows: the tests' windows are past it
QUERIES: list[dict[str, Any]] = [
    {
        "select": [
            {
                "function": "roundTimestamp",
                "alias": "day",
                "parameters": {"property": "inference_timestamp", "time_interval": "day"},
            },
            {"property": "region"},
            {"function": "accuracyRate"},
            {"function": "count"},
        ],
        "group_by": [{"alias": "day"}, {"property": "region"}],
    },
    {
        "select": [{"function": "avg", "alias": "mean_age", "parameters": {"property": "age"}}],
        "filter": [
            {"property": "inference_timestamp", "comparator": "gte", "value": "2026-11-26T00:00:00Z"},
            {"property": "region", "comparator": "eq", "value": "south"},
        ],
    },
    {
        "select": [{"property": "partner_inference_id"}, {"property": "income"}, {"property": "churned"}],
        "order_by": [{"property": "income", "direction": "desc"}],
        "limit": 7,
    },
]


def _lake(api: Call) -> str:
    model_id = register(api)
    sent = records(300, seed=5)
    assert api("POST", f"/api/v3/models/{model_id}/inferences", sent).body["counts"]["failure"] == 0
    # a resend of ten ids (first writes kept) and late labels for some
    assert api("POST", f"/api/v3/models/{model_id}/inferences", sent[:10]).status == 207
    labels = [
        {"partner_inference_id": r["partner_inference_id"], "ground_truth_data": {"churned": 1}}
        for r in sent[50:80]
    ]
    assert api("PATCH", f"/api/v3/models/{model_id}/inferences", labels).status in (200, 207)
    return model_id


def _in_lambda(api: Call, model_id: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    watched = container.monitoring()
    engine, watched.sql = watched.sql, None
    try:
        answer = api("POST", f"/api/v3/models/{model_id}/inferences/query", body)
    finally:
        watched.sql = engine
    assert answer.status == 200, answer.body
    return answer.body["query_result"]


def test_a_window_past_the_limit_runs_in_duckdb_locally_with_the_in_lambda_rows(api: Call) -> None:
    model_id = _lake(api)
    engine = use_duckdb(LIMIT)
    for body in QUERIES:
        expected = _in_lambda(api, model_id, body)
        assert expected  # something to compare
        before = len(engine.finished)
        answer = api("POST", f"/api/v3/models/{model_id}/inferences/query", body)
        assert answer.status == 200, answer.body
        assert len(engine.finished) == before + 1  # DuckDB answered
        assert answer.body["query_result"] == expected
        # the poll route reads a finished query's rows again
        polled = api("GET", f"/api/v3/models/{model_id}/inferences/query/{engine.finished[-1]}")
        assert polled.status == 200 and polled.body["query_result"] == expected


GROUND_TRUTH_QUERIES: list[dict[str, Any]] = [
    {
        "select": [{"property": "churned"}, {"function": "count"}],
        "group_by": [{"property": "churned"}],
        "from": "ground_truth",
    },
    {
        "select": [{"property": "*"}],
        "filter": [
            {"property": "partner_inference_id", "comparator": "in", "value": ["5-0", "5-1", "e-0", "e-9"]}
        ],
        "order_by": [{"property": "partner_inference_id"}],
        "from": "ground_truth",
    },
]


def test_a_ground_truth_query_past_the_limit_runs_in_duckdb_over_the_label_days(api: Call) -> None:
    # GIVEN labels of 300 inferences of 2026-11-25 and 26 (labels/, by their inference's day), ten
    # labels of 2026-11-20 sent before their inferences (ground_truth/, by their own day), one of
    # them labelled twice more on 2026-11-21, the later label sent first
    model_id = _lake(api)
    early = [
        {
            "partner_inference_id": f"e-{n}",
            "ground_truth_timestamp": "2026-11-20T08:00:00Z",
            "ground_truth_data": {"churned": n % 2},
        }
        for n in range(10)
    ]
    assert api("PATCH", f"/api/v3/models/{model_id}/inferences", early).status in (200, 207)
    late = [
        {**{k: v for k, v in r.items() if k != "ground_truth_data"}, "partner_inference_id": f"e-{n}"}
        for n, r in enumerate(records(10, seed=9))
    ]
    assert api("POST", f"/api/v3/models/{model_id}/inferences", late).status in (200, 207)
    for hour, churned in ((12, 1), (11, 0)):
        relabel = {
            "partner_inference_id": "e-0",
            "ground_truth_timestamp": f"2026-11-21T{hour}:00:00Z",
            "ground_truth_data": {"churned": churned},
        }
        assert api("PATCH", f"/api/v3/models/{model_id}/inferences", [relabel]).status in (200, 207)
    engine = use_duckdb(LIMIT)
    for body in GROUND_TRUTH_QUERIES:
        expected = _in_lambda(api, model_id, body)
        assert expected

        # WHEN the query runs past the limit
        before = len(engine.finished)
        answer = api("POST", f"/api/v3/models/{model_id}/inferences/query", body)

        # THEN DuckDB answered the in-Lambda rows, and the poll route answers them again
        assert answer.status == 200, answer.body
        assert len(engine.finished) == before + 1
        assert answer.body["query_result"] == expected
        polled = api("GET", f"/api/v3/models/{model_id}/inferences/query/{engine.finished[-1]}")
        assert polled.status == 200 and polled.body["query_result"] == expected

        # and its SQL read each label area between the first and last day it has files on
        sql = engine.execution(engine.finished[-1]).sql
        labels = """FROM labels WHERE "date" >= '2026-11-25' AND "date" <= '2026-11-26'"""
        received = """FROM ground_truth WHERE "date" >= '2026-11-20' AND "date" <= '2026-11-21'"""
        assert labels in sql and received in sql, sql
    latest = {r["partner_inference_id"]: r for r in expected}
    assert latest["e-0"]["churned"] == 1 and latest["e-9"]["churned"] == 1  # the later label; an early one


def test_a_ground_truth_query_without_label_files_answers_in_the_lambda(api: Call) -> None:
    model_id = register(api)
    sent = [{k: v for k, v in r.items() if k != "ground_truth_data"} for r in records(150, seed=6)]
    assert api("POST", f"/api/v3/models/{model_id}/inferences", sent).body["counts"]["failure"] == 0
    engine = use_duckdb(-1)  # every window past the limit
    answer = api("POST", f"/api/v3/models/{model_id}/inferences/query", GROUND_TRUTH_QUERIES[0])
    assert answer.status == 200 and answer.body["query_result"] == []
    assert engine.finished == []


def test_a_window_within_the_limit_stays_in_the_lambda(api: Call) -> None:
    model_id = _lake(api)
    engine = use_duckdb(10_000)
    assert api("POST", f"/api/v3/models/{model_id}/inferences/query", QUERIES[1]).status == 200
    assert engine.finished == []


@pytest.fixture
def athena(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch):
    """The deployed engine: a Glue database and workgroup in moto, named in the environment."""
    moto_athena.create_stack()
    monkeypatch.setenv(catalog.DATABASE_ENV, moto_athena.DATABASE)
    monkeypatch.setenv(WORKGROUP_ENV, moto_athena.WORKGROUP)
    container.reset()
    watched = container.monitoring()
    watched.sql_rows, watched.sql_wait = LIMIT, 0.3
    yield watched.sql
    moto_athena.finish_immediately()


def _duckdb_result(model_id: str, body: dict[str, Any]):
    """The result table the query's SQL gives over the lake's files (DuckDB: moto runs no SQL)."""
    model = container.model_store().get(model_id)
    query = Query.model_validate(body)
    engine = DuckdbEngine(container.lake_store())
    first, last = filters.date_range(query.filter) if query.from_ == "inference" else (None, None)
    query_id = engine.start(query_sql(query, model, TABLES, "duckdb").sql, model, first, last)
    return engine.results(query_id)


def _sent(tokens: dict[Role, str], method: str, path: str, body: Any = None) -> tuple[dict[str, Any], str]:
    """The handler's raw answer to a writer's request, and its Location header."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {tokens[Role.WRITER]}"}
    raw = b"" if body is None else json.dumps(body).encode()
    answer = handler(proxy_event(method, path, headers, raw), LocalContext())
    found = {**(answer.get("headers") or {}), **(answer.get("multiValueHeaders") or {})}
    location = found.get("Location", "")
    return answer, location[0] if isinstance(location, list) else location


def test_athena_answers_202_then_the_poll_answers_the_in_lambda_rows(api: Call, athena, tokens) -> None:
    model_id = _lake(api)
    body = QUERIES[0]
    expected = _in_lambda(api, model_id, body)
    moto_athena.keep_running(10_000)
    answer, location = _sent(tokens, "POST", f"/api/v3/models/{model_id}/inferences/query", body)
    assert answer["statusCode"] == 202, answer
    query_id = json.loads(answer["body"])["query_id"]
    poll = f"/api/v3/models/{model_id}/inferences/query/{query_id}"
    assert json.loads(answer["body"])["poll"] == poll
    # Location is relative to the URL called: a stage or base path in front of the API stays
    stage = "https://api.example.com/prod"
    assert urljoin(f"{stage}/api/v3/models/{model_id}/inferences/query", location) == f"{stage}{poll}"
    polled, location = _sent(tokens, "GET", poll)
    assert polled["statusCode"] == 202 and urljoin(f"{stage}{poll}", location) == f"{stage}{poll}"

    # what Athena was asked: Trino SQL over the model's Glue tables, the files' paths as their order
    sql = sagewatch_aws.client("athena").get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
    key = catalog.model_key(model_id)
    assert f'"{moto_athena.DATABASE}"."inferences__{key}"' in sql["Query"]
    assert '"$path"' in sql["Query"] and sql["WorkGroup"] == moto_athena.WORKGROUP
    # no time filter: the days the model's inferences span are named, so only they are listed
    assert """"date" >= '2026-11-25'""" in sql["Query"] and """"date" <= '2026-11-26'""" in sql["Query"]
    assert sagewatch_aws.client("glue").get_table(DatabaseName=moto_athena.DATABASE, Name=f"labels__{key}")

    moto_athena.queue_result(_duckdb_result(model_id, body))
    moto_athena.finish_immediately()
    done = api("GET", poll)
    assert done.status == 200, done.body
    assert done.body["query_result"] == expected


def test_an_athena_ground_truth_query_reads_the_label_days_and_its_poll_answers_the_in_lambda_rows(
    api: Call, athena
) -> None:
    # GIVEN labels of 2026-11-25 and 26 (labels/) and two sent before their inference (ground_truth/)
    model_id = _lake(api)
    early = [
        {
            "partner_inference_id": f"e-{n}",
            "ground_truth_timestamp": f"2026-11-{18 + n}T08:00:00Z",
            "ground_truth_data": {"churned": n},
        }
        for n in range(2)
    ]
    assert api("PATCH", f"/api/v3/models/{model_id}/inferences", early).status in (200, 207)
    body = GROUND_TRUTH_QUERIES[0]
    expected = _in_lambda(api, model_id, body)
    moto_athena.keep_running(10_000)

    # WHEN it runs past the limit
    answer = api("POST", f"/api/v3/models/{model_id}/inferences/query", body)

    # THEN Athena was asked for each label table between the first and last day it has files on
    assert answer.status == 202, answer.body
    query_id = answer.body["query_id"]
    sql = sagewatch_aws.client("athena").get_query_execution(QueryExecutionId=query_id)["QueryExecution"][
        "Query"
    ]
    key = catalog.model_key(model_id)
    labels = f"""FROM "{moto_athena.DATABASE}"."labels__{key}" WHERE "date" >= '2026-11-25' AND "date" <= '2026-11-26'"""
    received = f"""FROM "{moto_athena.DATABASE}"."ground_truth__{key}" WHERE "date" >= '2026-11-18' AND "date" <= '2026-11-19'"""
    assert labels in sql and received in sql, sql
    # and the poll decodes its result (what the SQL gives over the lake's files) as the in-Lambda rows
    moto_athena.queue_result(_duckdb_result(model_id, body))
    moto_athena.finish_immediately()
    done = api("GET", f"/api/v3/models/{model_id}/inferences/query/{query_id}")
    assert done.status == 200, done.body
    assert done.body["query_result"] == expected


def test_a_failed_athena_query_answers_its_reason_and_other_models_do_not_see_it(api: Call, athena) -> None:
    model_id = _lake(api)
    other = register(api, factories.binary_probability("other"))
    moto_athena.keep_running(10_000)
    answer = api("POST", f"/api/v3/models/{model_id}/inferences/query", QUERIES[1])
    assert answer.status == 202
    query_id = answer.body["query_id"]
    assert api("GET", f"/api/v3/models/{other}/inferences/query/{query_id}").status == 404
    moto_athena.fail(query_id)
    failed = api("GET", f"/api/v3/models/{model_id}/inferences/query/{query_id}")
    assert failed.status == 502
    assert query_id in failed.body["message"] and "Athena could not run" in failed.body["message"]


def test_a_model_with_a_date_attribute_stays_in_the_lambda(api: Call) -> None:
    body = factories.binary_probability("dated")
    body["attributes"].append({"name": "date", "stage": "NON_INPUT_DATA", "value_type": "STRING"})
    model_id = register(api, body)
    sent = [{**r, "inference_data": {**r["inference_data"], "date": "x"}} for r in records(150, seed=6)]
    assert api("POST", f"/api/v3/models/{model_id}/inferences", sent).body["counts"]["failure"] == 0
    engine = use_duckdb(LIMIT)
    answer = api("POST", f"/api/v3/models/{model_id}/inferences/query", QUERIES[0])
    assert answer.status == 200 and sum(r["count"] for r in answer.body["query_result"]) == 150
    assert engine.finished == []


DRIFTS: list[dict[str, Any]] = [
    {
        "properties": ["income", "age", "region"],
        "metric": "PSI",
        "num_bins": 10,
        "base": {"source": "reference"},
        "target": {
            "source": "inference",
            "filter": [{"property": "region", "comparator": "eq", "value": "north"}],
        },
    },
    {
        "properties": ["income"],
        "metric": "KLDivergence",
        "base": {"source": "reference"},
        "target": {"source": "inference"},
        "group_by": [{"property": "region"}],
        "rollup": "day",
    },
]


def _with_reference(api: Call, upload) -> str:
    model_id = _lake(api)
    reference = records(400, seed=2)
    table = pa.Table.from_pylist([{**r["inference_data"], **r["ground_truth_data"]} for r in reference])
    sink = io.BytesIO()
    pq.write_table(table, sink)
    path = f"/api/v3/models/{model_id}/reference_data"
    assert upload(path, {"reference_data": ("r.parquet", sink.getvalue())}).status == 207
    return model_id


def test_a_drift_target_past_the_limit_is_counted_in_duckdb_with_the_in_lambda_values(
    api: Call, upload
) -> None:
    model_id = _with_reference(api, upload)
    engine = use_duckdb(LIMIT)
    for body in DRIFTS:
        path = f"/api/v3/models/{model_id}/inferences/query/data_drift"
        watched = container.monitoring()
        watched.sql = None
        expected = api("POST", path, body)
        watched.sql = engine
        assert expected.status == 200, expected.body
        before = len(engine.finished)
        answer = api("POST", path, body)
        assert answer.status == 200, answer.body
        assert len(engine.finished) == before + 1
        got, want = answer.body["query_result"], expected.body["query_result"]
        assert [sorted(row) for row in got] == [sorted(row) for row in want]
        for row, wanted in zip(got, want, strict=True):
            assert row == {k: pytest.approx(v) if isinstance(v, float) else v for k, v in wanted.items()}


def test_an_athena_drift_answers_202_then_the_in_lambda_values(api: Call, upload, athena, tokens) -> None:
    model_id = _with_reference(api, upload)
    body = DRIFTS[1]
    path = f"/api/v3/models/{model_id}/inferences/query/data_drift"
    watched = container.monitoring()
    engine, watched.sql = watched.sql, None
    expected = api("POST", path, body).body["query_result"]
    watched.sql = engine
    moto_athena.keep_running(10_000)
    answer, location = _sent(tokens, "POST", path, body)
    assert answer["statusCode"] == 202, answer
    poll = json.loads(answer["body"])["poll"]
    assert poll == f"/api/v3/models/{model_id}/inferences/query/{json.loads(answer['body'])['query_id']}"
    assert urljoin(f"https://api.example.com/prod{path}", location) == f"https://api.example.com/prod{poll}"
    assert api("GET", poll).status == 202

    # the result Athena would give: the same request's DuckDB SQL over the lake's files
    model = container.model_store().get(model_id)
    request = DriftQuery.model_validate(body)
    base = drift_base(request, model, lake_loader(container.lake_store(), model))
    duckdb = DuckdbEngine(container.lake_store())
    bins = drift_bins(request, model, base)
    query_id = duckdb.start(drift_sql(request, model, TABLES, "duckdb", bins).sql, model, None, None)
    moto_athena.queue_result(duckdb.results(query_id))
    moto_athena.finish_immediately()
    done = api("GET", poll)
    assert done.status == 200, done.body
    got = done.body["query_result"]
    assert [sorted(row) for row in got] == [sorted(row) for row in expected]
    for row, wanted in zip(got, expected, strict=True):
        assert row == {k: pytest.approx(v) if isinstance(v, float) else v for k, v in wanted.items()}


def test_a_query_sql_cannot_express_runs_in_the_lambda_as_before(
    api: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_id = _lake(api)
    expected = _in_lambda(api, model_id, QUERIES[0])
    engine = use_duckdb(LIMIT)

    def untranslated(*arguments: Any) -> None:
        raise NotInSql("a function metrics.sql does not translate yet", field="select")

    monkeypatch.setattr(monitoring_module, "query_sql", untranslated)
    answer = api("POST", f"/api/v3/models/{model_id}/inferences/query", QUERIES[0])
    assert answer.status == 200 and answer.body["query_result"] == expected
    assert engine.finished == []


def test_glue_refusing_the_tables_at_query_time_runs_the_query_in_the_lambda(
    api: Call, athena, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    model_id = _lake(api)
    expected = _in_lambda(api, model_id, QUERIES[0])
    glue = athena.catalog.client
    for table in glue.get_tables(DatabaseName=moto_athena.DATABASE)["TableList"]:
        glue.delete_table(DatabaseName=moto_athena.DATABASE, Name=table["Name"])

    def refused(**arguments: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "CreateTable")

    monkeypatch.setattr(glue, "create_table", refused)
    answer = api("POST", f"/api/v3/models/{model_id}/inferences/query", QUERIES[0])
    assert answer.status == 200, answer.body
    assert answer.body["query_result"] == expected
    assert sagewatch_aws.client("athena").list_query_executions()["QueryExecutionIds"] == []
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("run in the Lambda: Glue refused" in m and "AccessDenied" in m for m in warned), warned


def test_athena_refusing_to_start_a_query_runs_it_in_the_lambda(
    api: Call, athena, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_id = _lake(api)
    expected = _in_lambda(api, model_id, QUERIES[1])

    def refused(**arguments: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "InvalidRequestException", "Message": "query string too long"}},
            "StartQueryExecution",
        )

    monkeypatch.setattr(athena.athena.client, "start_query_execution", refused)
    answer = api("POST", f"/api/v3/models/{model_id}/inferences/query", QUERIES[1])
    assert answer.status == 200, answer.body
    assert answer.body["query_result"] == expected


def test_sql_past_athenas_limit_once_tagged_runs_in_the_lambda(api: Call) -> None:
    """SQL under Athena's 262,144 bytes, which the request's tag (its filter values again) would
    carry past it: the query runs in the Lambda, with the same rows."""
    model_id = _lake(api)
    values = [uuid.UUID(int=random.Random(n).getrandbits(128)).hex for n in range(6_000)]
    body = {
        "select": [{"function": "count"}],
        "filter": [{"property": "region", "comparator": "nin", "value": values}],
    }
    model = container.model_store().get(model_id)
    sql = query_sql(Query.model_validate(body), model, TABLES, "duckdb").sql
    assert 200_000 < len(sql.encode()) < 262_144  # SQL alone would be sent
    expected = _in_lambda(api, model_id, body)
    engine = use_duckdb(LIMIT)
    answer = api("POST", f"/api/v3/models/{model_id}/inferences/query", body)
    assert answer.status == 200, answer.body
    assert answer.body["query_result"] == expected == [{"count": 300}]
    assert engine.finished == []


def test_a_poll_after_the_schema_changed_answers_409_never_rows_of_another_plan(api: Call) -> None:
    body = factories.binary_probability()
    model_id = register(api, body)
    assert api("POST", f"/api/v3/models/{model_id}/inferences", records(150, seed=1)).status in (200, 207)
    engine = use_duckdb(LIMIT)
    query = {"select": [{"property": "*"}], "order_by": [{"property": "partner_inference_id"}], "limit": 2}
    first = api("POST", f"/api/v3/models/{model_id}/inferences/query", query)
    assert first.status == 200, first.body
    poll = f"/api/v3/models/{model_id}/inferences/query/{engine.finished[-1]}"
    assert api("GET", poll).body == first.body
    edited = factories.edited(body)
    edited["attributes"].insert(0, {"name": "aaa", "stage": "PIPELINE_INPUT", "value_type": "STRING"})
    for position, attribute in enumerate(a for a in edited["attributes"] if a["stage"] == "PIPELINE_INPUT"):
        attribute["position"] = position
    assert api("PUT", f"/api/v3/models/{model_id}", edited).status == 200
    polled = api("GET", poll)
    assert polled.status == 409, polled.body
    assert "schema changed" in polled.body["message"] and "run the query again" in polled.body["message"]
    # a model edit its plan does not read (tags) leaves the answer readable
    again = api("POST", f"/api/v3/models/{model_id}/inferences/query", query)
    poll = f"/api/v3/models/{model_id}/inferences/query/{engine.finished[-1]}"
    assert api("PUT", f"/api/v3/models/{model_id}", {**edited, "tags": ["new"]}).status == 200
    assert api("GET", poll).body == again.body


def _replace_reference(upload, model_id: str, shift: float) -> None:
    reference = records(400, seed=9, shift=shift)
    table = pa.Table.from_pylist([{**r["inference_data"], **r["ground_truth_data"]} for r in reference])
    sink = io.BytesIO()
    pq.write_table(table, sink)
    path = f"/api/v3/models/{model_id}/reference_data"
    assert upload(path, {"reference_data": ("r.parquet", sink.getvalue())}).status == 207


def test_a_drift_poll_answers_over_the_reference_its_query_started_with(api: Call, upload) -> None:
    model_id = _with_reference(api, upload)
    engine = use_duckdb(LIMIT)
    path = f"/api/v3/models/{model_id}/inferences/query/data_drift"
    first = api("POST", path, DRIFTS[0])
    assert first.status == 200, first.body
    poll = f"/api/v3/models/{model_id}/inferences/query/{engine.finished[-1]}"
    assert api("GET", poll).body == first.body
    _replace_reference(upload, model_id, shift=500.0)
    now = api("POST", path, DRIFTS[0])
    assert now.status == 200 and now.body != first.body  # the base did change
    polled = api("GET", poll)
    assert polled.status == 200, polled.body
    assert polled.body == first.body  # the answer of the query as it started


def test_a_drift_poll_with_an_open_base_window_is_not_moved_by_rows_sent_since(api: Call) -> None:
    model_id = _lake(api)  # 300 rows, every region
    engine = use_duckdb(LIMIT)
    body = {
        "properties": ["income", "age"],
        "metric": "PSI",
        "num_bins": 10,
        "base": {
            "source": "inference",
            "filter": [{"property": "region", "comparator": "eq", "value": "north"}],
        },
        "target": {"source": "inference"},
    }
    path = f"/api/v3/models/{model_id}/inferences/query/data_drift"
    first = api("POST", path, body)
    assert first.status == 200, first.body
    assert [row["income"] for row in first.body["query_result"]] != [None]
    poll = f"/api/v3/models/{model_id}/inferences/query/{engine.finished[-1]}"
    sent = [
        {**r, "inference_data": {**r["inference_data"], "region": "north"}}
        for r in records(200, seed=21, shift=300.0)
    ]
    assert api("POST", f"/api/v3/models/{model_id}/inferences", sent).body["counts"]["failure"] == 0
    watched = container.monitoring()
    engine_now, watched.sql = watched.sql, None
    moved = api("POST", path, body)
    watched.sql = engine_now
    assert moved.status == 200 and moved.body != first.body  # the open base window did change
    polled = api("GET", poll)
    assert polled.status == 200, polled.body
    assert polled.body == first.body


def test_a_drift_poll_of_a_query_tagged_without_bins_answers_409(api: Call, upload) -> None:
    model_id = _with_reference(api, upload)
    engine = use_duckdb(LIMIT)
    path = f"/api/v3/models/{model_id}/inferences/query/data_drift"
    assert api("POST", path, DRIFTS[0]).status == 200
    query_id = engine.finished[-1]
    what = tagged(engine.execution(query_id).sql)
    del what["bins"]  # as the text of a query started before bins were kept
    moto_athena.retag(engine, query_id, what)
    polled = api("GET", f"/api/v3/models/{model_id}/inferences/query/{query_id}")
    assert polled.status == 409, polled.body
    assert "run the query again" in polled.body["message"]


def test_a_result_past_what_the_api_reads_back_answers_413(
    api: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_id = _lake(api)
    monkeypatch.setattr(monitoring_module, "SQL_RESULT_ROWS", 20)
    engine = use_duckdb(LIMIT)
    path = f"/api/v3/models/{model_id}/inferences/query"
    rows = {
        "select": [{"property": "partner_inference_id"}, {"property": "income"}],
        "order_by": [{"property": "income"}],
    }
    for body in (rows, {**rows, "limit": 25}):  # no limit, or a limit past the bound
        answer = api("POST", path, body)
        assert answer.status == 413, answer.body
        assert answer.body["message"].startswith("the answer is larger than a Lambda can return")
        assert engine.execution(engine.finished[-1]).sql.split("\n/*")[0].endswith("LIMIT 21")
        assert api("GET", f"{path}/{engine.finished[-1]}").status == 413
    grouped = {"select": [{"property": "age"}, {"function": "count"}], "group_by": [{"property": "age"}]}
    assert api("POST", path, grouped).status == 413  # more than 20 ages: more groups than it reads
    for body in ({**rows, "limit": 20}, QUERIES[2], QUERIES[0]):  # within it: the in-Lambda rows
        answer = api("POST", path, body)
        assert answer.status == 200, answer.body
        assert answer.body["query_result"] == _in_lambda(api, model_id, body)


def test_a_top_n_of_more_groups_than_the_api_reads_back_answers_the_in_lambda_rows(
    api: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a window past the in-Lambda limit with more ages than the API reads back from SQL
    model_id = _lake(api)
    monkeypatch.setattr(monitoring_module, "SQL_RESULT_ROWS", 20)
    engine = use_duckdb(LIMIT)
    path = f"/api/v3/models/{model_id}/inferences/query"
    top = {
        "select": [{"property": "age"}, {"function": "count", "alias": "n"}],
        "group_by": [{"property": "age"}],
        "order_by": [{"alias": "n", "direction": "desc"}, {"property": "age"}],
    }
    assert len(_in_lambda(api, model_id, {**top, "limit": 100_000})) > 21
    first_ages = {key: value for key, value in top.items() if key != "order_by"}
    for body in ({**top, "limit": 5}, {**top, "limit": 20}, {**first_ages, "limit": 7}):
        # WHEN the top groups are asked (up to as many as the API reads), or the first by their text
        answer = api("POST", path, body)

        # THEN DuckDB answers the in-Lambda rows: its SQL orders and limits the groups itself
        assert answer.status == 200, answer.body
        assert answer.body["query_result"] == _in_lambda(api, model_id, body)
        assert engine.execution(engine.finished[-1]).sql.split("\n/*")[0].endswith(f"LIMIT {body['limit']}")
    for body in (top, {**top, "limit": 21}):
        # AND without a limit, or with one past what the API reads, it answers 413 as before
        answer = api("POST", path, body)
        assert answer.status == 413, answer.body
        assert engine.execution(engine.finished[-1]).sql.split("\n/*")[0].endswith("LIMIT 21")
