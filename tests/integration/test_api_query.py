"""The query and data_drift APIs through the real handler, over a lake written by the API itself."""

from __future__ import annotations

from sklearn import metrics as skm
from tests import factories
from tests.conftest import Call
from tests.inputs import records, register


def test_a_daily_accuracy_series_by_region_matches_scikit_learn(api: Call) -> None:
    model_id = register(api)
    sent = records(300, seed=1)
    assert api("POST", f"/api/v3/models/{model_id}/inferences", sent).body["counts"]["failure"] == 0
    answer = api(
        "POST",
        f"/api/v3/models/{model_id}/inferences/query",
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
            "filter": [{"property": "churned", "comparator": "NotNull"}],
        },
    )
    assert answer.status == 200, answer.body
    rows = answer.body["query_result"]
    assert [(r["day"][:10], r["region"]) for r in rows] == [("2026-11-25", "north"), ("2026-11-26", "south")]
    for row in rows:
        members = [r for r in sent if r["inference_data"]["region"] == row["region"]]
        y = [r["ground_truth_data"]["churned"] for r in members]
        p = [int(r["inference_data"]["predicted_probability"] >= 0.5) for r in members]
        assert row["accuracyRate"] == skm.accuracy_score(y, p)
        assert row["count"] == row["labelled_count"] == len(members)


def test_psi_from_reference_to_a_filtered_window(api: Call, upload) -> None:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    model_id = register(api)
    reference = records(400, seed=2)
    table = pa.Table.from_pylist([{**r["inference_data"], **r["ground_truth_data"]} for r in reference])
    sink = io.BytesIO()
    pq.write_table(table, sink)
    assert (
        upload(
            f"/api/v3/models/{model_id}/reference_data", {"reference_data": ("r.parquet", sink.getvalue())}
        ).status
        == 207
    )
    api("POST", f"/api/v3/models/{model_id}/inferences", records(200, seed=3, shift=150))
    answer = api(
        "POST",
        f"/api/v3/models/{model_id}/inferences/query/data_drift",
        {
            "properties": ["income", "age"],
            "metric": "PSI",
            "num_bins": 10,
            "base": {"source": "reference"},
            "target": {
                "source": "inference",
                "filter": [{"property": "region", "comparator": "eq", "value": "north"}],
            },
        },
    )
    assert answer.status == 200, answer.body
    [row] = answer.body["query_result"]
    assert row["income"] > 1.0 > 0.2 > row["age"]


def test_drift_test_p_values_and_the_family_wise_aggregate(api: Call, upload) -> None:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    # GIVEN a reference, and a window whose income moved far while age did not
    model_id = register(api)
    reference = records(1000, seed=12)
    table = pa.Table.from_pylist([{**r["inference_data"], **r["ground_truth_data"]} for r in reference])
    sink = io.BytesIO()
    pq.write_table(table, sink)
    upload(f"/api/v3/models/{model_id}/reference_data", {"reference_data": ("r.parquet", sink.getvalue())})
    api("POST", f"/api/v3/models/{model_id}/inferences", records(300, seed=13, shift=150))

    # WHEN the drift test is asked for both, with the family-wise aggregate
    answer = api(
        "POST",
        f"/api/v3/models/{model_id}/inferences/query/data_drift",
        {"properties": ["income", "age"], "metric": "DriftTest", "aggregate": "family_wise"},
    )

    # THEN income's p is tiny, age's is not, and the aggregate is Bonferroni's: 2 x the smaller p
    assert answer.status == 200, answer.body
    [row] = answer.body["query_result"]
    assert row["income"] < 1e-10 and row["age"] > 1e-3
    assert row["aggregate"] == min(1.0, 2 * min(row["income"], row["age"]))

    # WHEN the family-wise aggregate is asked of another statistic
    wrong = api(
        "POST",
        f"/api/v3/models/{model_id}/inferences/query/data_drift",
        {"properties": ["income"], "metric": "PSI", "aggregate": "family_wise"},
    )

    # THEN a 400 naming aggregate
    assert (wrong.status, wrong.body["field"]) == (400, "aggregate")

    # WHEN weights come with it (Bonferroni weighs every property alike), THEN a 400 naming weights
    weighted = api(
        "POST",
        f"/api/v3/models/{model_id}/inferences/query/data_drift",
        {
            "properties": ["income"],
            "metric": "DriftTest",
            "aggregate": "family_wise",
            "weights": {"income": 2},
        },
    )
    assert (weighted.status, weighted.body["field"]) == (400, "weights")


def test_queries_name_what_is_wrong(api: Call) -> None:
    model_id = register(api)
    bad = api("POST", f"/api/v3/models/{model_id}/inferences/query", {"select": [{"function": "median"}]})
    assert (bad.status, bad.body["field"]) == (400, "select[0].function")
    bad = api(
        "POST",
        f"/api/v3/models/{model_id}/inferences/query/data_drift",
        {"properties": ["shoe_size"], "metric": "PSI"},
    )
    assert (bad.status, bad.body["field"]) == (400, "properties[0]")
    bad = api(
        "POST",
        f"/api/v3/models/{model_id}/inferences/query/data_drift",
        {"properties": ["age"], "metric": "XYZ"},
    )
    assert (bad.status, bad.body["field"]) == (400, "metric")
    empty = api("POST", f"/api/v3/models/{model_id}/inferences/query/data_drift", {"properties": ["age"]})
    assert (empty.status, empty.body["field"]) == (400, "base")


def test_readers_may_query(api: Call, tokens) -> None:
    from sagewatch.auth import Role

    model_id = register(api)
    answer = api(
        "POST",
        f"/api/v3/models/{model_id}/inferences/query",
        {"select": [{"function": "count"}]},
        token=tokens[Role.READER],
    )
    assert answer.status == 200 and answer.body == {"query_result": [{"count": 0}]}


def test_a_regression_model_through_the_api(api: Call) -> None:
    model_id = register(api, factories.regression())
    rows = [
        {
            "partner_inference_id": str(i),
            "inference_data": {"age": 1, "income": 1.0, "region": "north", "predicted_value": float(i)},
            "ground_truth_data": {"ground_truth_value": float(i) + (1 if i % 2 else -1)},
        }
        for i in range(10)
    ]
    api("POST", f"/api/v3/models/{model_id}/inferences", rows)
    answer = api(
        "POST",
        f"/api/v3/models/{model_id}/inferences/query",
        {"select": [{"function": "rmse"}, {"function": "mae"}]},
    )
    assert answer.body["query_result"] == [{"rmse": 1.0, "mae": 1.0, "labelled_count": 10}]
