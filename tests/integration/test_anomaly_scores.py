"""Anomaly scores on moto through the real API and ingest handler: a detector fitted when the reference
closes (or, for a dropped reference, at the next ingest) and stored beside it; every inference
written with its `anomaly_score`; the query API averaging, filtering, binning and rating it; the
enrichment switched off; and the default "Anomalous inferences" rule, quiet on rows like the
reference and firing on an hour with planted outliers."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.conftest import Call
from tests.factories import Clock
from tests.inputs import capture_call, capture_model, put, register
from tests.lake import lake_keys, lake_rows, notifications

from sagewatch import container
from sagewatch.alerting import catalog
from sagewatch.enrichments import AnomalyDetectionConfig, EnrichmentsConfig
from sagewatch.handlers.ingest import handler
from sagewatch.local.http_bridge import LocalContext
from sagewatch.metrics import anomaly

NOW = datetime(2026, 11, 25, 10, 5, tzinfo=UTC)
FIRST_HOUR = datetime(2026, 11, 25, 9, tzinfo=UTC)


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def churn_rows(count: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded inputs of the churn model (tests/factories.binary_probability), one distribution."""
    rng = np.random.default_rng(seed)
    return {
        "age": rng.integers(18, 90, count),
        "income": rng.normal(1000, 100, count),
        "region": rng.choice(["north", "south"], count, p=[0.7, 0.3]),
        "predicted_probability": rng.uniform(0, 1, count),
    }


def reference_file(count: int = 2000, seed: int = 0) -> bytes:
    return parquet_bytes(pa.table(churn_rows(count, seed)))


def with_reference(api: Call, upload, model_id: str, count: int = 2000) -> float:
    """Upload and close a reference set of `count` rows; the detector's cutoff."""
    answer = upload(
        f"/api/v3/models/{model_id}/reference_data", {"reference_data": ("r.parquet", reference_file(count))}
    )
    assert answer.status == 207, answer.body
    closed = api("PATCH", f"/api/v3/models/{model_id}/reference_data", {"status": "uploaded"})
    assert closed.status == 200, closed.body
    return container.ingestion_ledger().state(model_id, anomaly.LEDGER_STATE)["cutoff"]


def records(count: int, seed: int, start: datetime, outliers: int = 0) -> list[dict]:
    """`count` inferences like the reference within the hour from `start`, the last `outliers` of them
    far off it (age 150, income 3000, the rarer region)."""
    columns = churn_rows(count, seed)
    minutes = np.random.default_rng(seed + 1).uniform(0, 59, count)
    sent = []
    for i in range(count):
        far = i >= count - outliers
        sent.append(
            {
                "partner_inference_id": f"{seed}-{i}",
                "inference_timestamp": (start + timedelta(minutes=float(minutes[i]))).isoformat(),
                "inference_data": {
                    "age": 150 if far else int(columns["age"][i]),
                    "income": 3000.0 if far else float(columns["income"][i]),
                    "region": "south" if far else str(columns["region"][i]),
                    "predicted_probability": float(columns["predicted_probability"][i]),
                },
            }
        )
    return sent


def send(api: Call, model_id: str, sent: list[dict]) -> None:
    answer = api("POST", f"/api/v3/models/{model_id}/inferences", sent)
    assert answer.status == 207 and answer.body["counts"]["failure"] == 0, answer.body


def query(api: Call, model_id: str, body: dict) -> list[dict]:
    answer = api("POST", f"/api/v3/models/{model_id}/inferences/query", body)
    assert answer.status == 200, answer.body
    return answer.body["query_result"]


def scores_by_id(model_id: str) -> dict[str, float | None]:
    """Each lake row's score by id (None for a file written before scores existed)."""
    return {
        row["partner_inference_id"]: row.get("anomaly_score") for row in lake_rows("inferences", model_id)
    }


def test_inferences_sent_after_the_reference_closes_carry_scores_the_query_api_reads(
    api: Call, upload
) -> None:
    # GIVEN a model whose reference set of 2,000 rows is uploaded and closed
    model_id = register(api)
    cutoff = with_reference(api, upload, model_id)

    # THEN its detector is stored beside the reference
    assert f"reference/model_id={model_id}/_anomaly/detector.json" in lake_keys()

    # WHEN 190 inferences like the reference and 10 far off it are sent
    send(api, model_id, records(200, seed=5, start=FIRST_HOUR, outliers=10))

    # THEN every row in the lake has a score in [0, 1]; the far-off ones are above the cutoff
    scores = scores_by_id(model_id)
    assert len(scores) == 200 and all(0 <= s <= 1 for s in scores.values())
    far = [scores[f"5-{i}"] for i in range(190, 200)]
    near = np.array([scores[f"5-{i}"] for i in range(190)])
    assert min(far) > cutoff and (near > cutoff).sum() <= 2
    values = np.array(list(scores.values()))

    # WHEN the query API averages, counts with a filter, rates and bins the score
    [averaged] = query(
        api, model_id, {"select": [{"function": "avg", "parameters": {"property": "anomaly_score"}}]}
    )
    above = {"property": "anomaly_score", "comparator": "gt", "value": cutoff}
    [filtered] = query(api, model_id, {"select": [{"function": "count"}], "filter": [above]})
    [rated] = query(api, model_id, {"select": [{"function": "rate", "parameters": above}]})
    [binned] = query(
        api,
        model_id,
        {
            "select": [
                {"function": "distribution", "parameters": {"property": "anomaly_score", "num_bins": 4}}
            ]
        },
    )

    # THEN each is the lake's scores summed up by hand
    assert averaged["avg"] == pytest.approx(values.mean())
    assert filtered["count"] == (values > cutoff).sum() >= 10
    assert rated["rate"] == pytest.approx((values > cutoff).mean())
    counts = np.histogram(values, bins=np.linspace(0, 1, 5))[0]
    assert [(b["lower"], b["upper"], b["count"]) for b in binned["distribution"]] == [
        (lower, lower + 0.25, count)
        for lower, count in zip([0.0, 0.25, 0.5, 0.75], counts, strict=True)
        if count
    ]


def test_a_data_capture_file_is_scored_as_it_is_ingested(api: Call, upload, aws: dict[str, str]) -> None:
    # GIVEN a model monitoring churn-endpoint, with a closed reference set
    model_id = capture_model()
    cutoff = with_reference(api, upload, model_id)

    # WHEN its Data Capture file of 50 calls like the reference and one far off lands in S3
    columns = churn_rows(50, seed=8)
    lines = [
        capture_call(
            f"call-{i}",
            f"{columns['age'][i]},{columns['income'][i]:.2f},{columns['region'][i]}",
            "0.3",
            f"e-{i}",
        )
        for i in range(50)
    ]
    lines.append(capture_call("call-far", "150,3000.0,south", "0.3", "e-far"))
    put(aws, "\n".join(lines).encode())
    handler(notifications(aws), LocalContext())

    # THEN every captured row is scored, the far-off call above the cutoff and above every other
    scores = scores_by_id(model_id)
    assert len(scores) == 51 and None not in scores.values()
    assert scores["call-far"] > cutoff
    assert scores["call-far"] == max(scores.values())


def test_a_dropped_reference_is_fitted_at_the_next_ingest_and_scoring_follows_the_configuration(
    api: Call, aws: dict[str, str]
) -> None:
    # GIVEN a model whose reference arrived as a Parquet drop (the set is never closed)
    model_id = register(api)
    key = f"drops/{model_id}/reference/r.parquet"
    container.lake_store().client.put_object(Bucket=aws["data"], Key=key, Body=reference_file(500))
    handler(notifications(aws), LocalContext())
    detector_key = f"reference/model_id={model_id}/_anomaly/detector.json"
    assert detector_key not in lake_keys()

    # WHEN inferences are sent
    send(api, model_id, records(20, seed=1, start=FIRST_HOUR))

    # THEN the detector is fitted then, stored, and the rows are scored
    assert detector_key in lake_keys()
    assert None not in scores_by_id(model_id).values()

    # WHEN anomaly detection is switched off and more inferences are sent
    model = container.model_store().get(model_id)
    off = EnrichmentsConfig(anomaly_detection=AnomalyDetectionConfig(enabled=False))
    container.enrichments().save(model, off)
    send(api, model_id, records(20, seed=2, start=FIRST_HOUR))

    # THEN those rows have no score
    assert {i: s for i, s in scores_by_id(model_id).items() if i.startswith("2-")} == {
        f"2-{i}": None for i in range(20)
    }

    # WHEN it is switched on again but the reference is deleted
    container.enrichments().save(model, EnrichmentsConfig())
    assert api("DELETE", f"/api/v3/models/{model_id}/reference_data").status in (200, 204)
    send(api, model_id, records(20, seed=3, start=FIRST_HOUR))

    # THEN the detector went with the reference, and the new rows have no score
    assert detector_key not in lake_keys()
    assert {s for i, s in scores_by_id(model_id).items() if i.startswith("3-")} == {None}


def anomaly_rules(model_id: str) -> list:
    return [
        r for r in container.evaluator().rules.list(model_id) if r.metric_name == catalog.ANOMALOUS_INFERENCES
    ]


def test_the_default_anomaly_rule_is_quiet_on_rows_like_the_reference_and_fires_on_planted_outliers(
    api: Call, upload
) -> None:
    # GIVEN a model that had its default rules before anomaly detection existed, then a closed reference
    clock = Clock(NOW)
    container.evaluator().clock = clock
    model_id = register(api)
    container.ingestion_ledger().set_state(model_id, "DEFAULT_RULES", created="before anomaly detection")
    cutoff = with_reference(api, upload, model_id)

    # WHEN six hours of 50 to 400 inferences like the reference arrive, each evaluated after its hour
    for hour, count in enumerate((400, 50, 120, 300, 80, 200)):
        start = FIRST_HOUR + timedelta(hours=hour)
        send(api, model_id, records(count, seed=100 + hour, start=start))
        clock.moment = start + timedelta(hours=1, minutes=5)
        report = container.evaluator().evaluate_model(model_id)
        assert report.errors == []

    # THEN the model got the anomaly rule once, on its detector's cutoff, and it never fired
    [rule] = anomaly_rules(model_id)
    assert (rule.name, rule.bound, rule.threshold, rule.lookback_period, rule.is_default) == (
        "Anomalous inferences",
        "upper",
        0.1,
        60,
        True,
    )
    assert rule.metric_parameters == {"cutoff": cutoff}
    windows = container.evaluator().rules.windows(model_id, rule.id)
    assert len(windows) == 6 and {w["decision"] for w in windows} == {"quiet"}
    assert container.evaluator().alerts.list(model_id) == []

    # WHEN the next hour holds 200 such inferences and 60 planted outliers
    start = FIRST_HOUR + timedelta(hours=6)
    send(api, model_id, records(260, seed=200, start=start, outliers=60))
    clock.moment = start + timedelta(hours=1, minutes=5)
    container.evaluator().evaluate_model(model_id)

    # THEN the rule fires on that hour, with the share of anomalous inferences
    [alert] = container.evaluator().alerts.list(model_id)
    assert alert.alert_rule_id == rule.id and alert.window_start == start
    assert alert.metric_value == pytest.approx(60 / 260, abs=0.02)
    assert len(anomaly_rules(model_id)) == 1


def test_a_new_reference_moves_the_default_rules_cutoff_and_keeps_the_users_edits(api: Call, upload) -> None:
    # GIVEN a model with a closed reference, evaluated once (its anomaly rule made), the rule's threshold edited
    container.evaluator().clock = Clock(NOW)
    model_id = register(api)
    first_cutoff = with_reference(api, upload, model_id, count=2000)
    container.evaluator().evaluate_model(model_id)
    [rule] = anomaly_rules(model_id)
    edited = api("PATCH", f"/api/v3/models/{model_id}/alert_rules/{rule.id}", {"threshold": 0.2})
    assert edited.status == 200, edited.body

    # WHEN the reference is deleted, a smaller one closed, and the model evaluated again
    assert api("DELETE", f"/api/v3/models/{model_id}/reference_data").status in (200, 204)
    second_cutoff = with_reference(api, upload, model_id, count=400)
    container.evaluator().evaluate_model(model_id)

    # THEN the rule follows the new detector's cutoff and keeps its threshold
    [rule] = anomaly_rules(model_id)
    assert second_cutoff != first_cutoff
    assert (rule.metric_parameters, rule.threshold) == ({"cutoff": second_cutoff}, 0.2)


def test_files_written_before_scoring_read_as_unscored_rows(api: Call, upload) -> None:
    # GIVEN a model whose lake holds a file written before anomaly_score existed (no such column)
    model_id = register(api)
    model = container.model_store().get(model_id)
    old = pa.table(
        {
            "partner_inference_id": ["old-1", "old-2"],
            "inference_timestamp": pa.array([FIRST_HOUR, FIRST_HOUR], pa.timestamp("us", tz="UTC")),
            "ingested_at": pa.array([FIRST_HOUR, FIRST_HOUR], pa.timestamp("us", tz="UTC")),
            "source": ["before", "before"],
            "age": [30, 40],
            "income": [1000.0, 1100.0],
            "region": ["north", "south"],
        }
    )
    container.lake_store().write_rows("inferences", model.id, old, "inference_timestamp", "old-file")

    # WHEN a reference closes and 18 scored inferences join them, 2 of them far off
    cutoff = with_reference(api, upload, model_id)
    send(api, model_id, records(18, seed=4, start=FIRST_HOUR, outliers=2))

    # THEN a filter, a rate and an average read the old rows as unscored (null): counted as rows,
    # never above a value, left out of the average
    above = {"property": "anomaly_score", "comparator": "gt", "value": cutoff}
    [rated] = query(api, model_id, {"select": [{"function": "rate", "parameters": above}]})
    [unscored] = query(
        api,
        model_id,
        {
            "select": [{"function": "count"}],
            "filter": [{"property": "anomaly_score", "comparator": "is_null", "value": None}],
        },
    )
    [averaged] = query(
        api, model_id, {"select": [{"function": "avg", "parameters": {"property": "anomaly_score"}}]}
    )
    scores = scores_by_id(model_id)
    new = np.array([s for i, s in scores.items() if not i.startswith("old-")])
    assert rated["rate"] == pytest.approx((new > cutoff).sum() / 20)
    assert unscored["count"] == 2
    assert averaged["avg"] == pytest.approx(new.mean())
