"""`sagewatch local --sql-rows N`: a query over a window past N rows runs in DuckDB (Athena's stand-in,
inside the handler's Lambda-like imports) and answers the rows the in-Lambda engine computes over the
same lake (read here from the stack's S3 by metrics.query.run)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from tests import factories
from tests.inputs import records
from tests.local_stack import http, start_local

from sagewatch import aws as sagewatch_aws
from sagewatch.local.runtime import LocalStack
from sagewatch.metrics.query import Query, run
from sagewatch.schema import Model
from sagewatch.stores.lake import LakeStore
from sagewatch.stores.window import lake_loader

pytestmark = pytest.mark.e2e

QUERY = {
    "select": [
        {
            "function": "roundTimestamp",
            "alias": "day",
            "parameters": {"property": "inference_timestamp", "time_interval": "day"},
        },
        {"property": "region"},
        {"function": "accuracyRate"},
        {"function": "count"},
        {"function": "avg", "alias": "mean_income", "parameters": {"property": "income"}},
    ],
    "group_by": [{"alias": "day"}, {"property": "region"}],
}


@pytest.fixture(scope="module")
def small_limit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    yield from start_local(tmp_path_factory.mktemp("state"), "--evaluate-every", "0", "--sql-rows", "100")


def test_a_window_past_the_limit_answers_the_in_lambda_rows(
    small_limit: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = small_limit["token"]
    status, model = http(small_limit, "POST", "/api/v3/models", token, factories.binary_probability())
    assert status == 201, model
    sent = records(400, seed=9)
    status, _ = http(small_limit, "POST", f"/api/v3/models/{model['id']}/inferences", token, sent)
    assert status == 207
    status, answer = http(small_limit, "POST", f"/api/v3/models/{model['id']}/inferences/query", token, QUERY)
    assert status == 200, answer

    for key, value in LocalStack.read(small_limit["state_dir"]).environment.items():
        monkeypatch.setenv(key, value)
    sagewatch_aws.reset()
    try:
        registered = Model.model_validate(model)
        lake = LakeStore(small_limit["buckets"]["data"])
        expected = run(Query.model_validate(QUERY), registered, lake_loader(lake, registered))
    finally:
        sagewatch_aws.reset()
    assert len(expected) == 2  # (day, region): records() alternate both together
    got, wanted = answer["query_result"], json.loads(json.dumps(expected))
    assert [sorted(row) for row in got] == [sorted(row) for row in wanted]
    for row, want in zip(got, wanted, strict=True):
        for name, value in want.items():
            # sums of floats in another order: equal to the last bits only
            assert row[name] == (pytest.approx(value, rel=1e-12) if isinstance(value, float) else value)
    assert "Traceback" not in (small_limit["state_dir"] / "stack.log").read_text()
