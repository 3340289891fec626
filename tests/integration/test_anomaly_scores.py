"""Anomaly scores on moto through the real API and ingest handler: a detector fitted when the reference
closes (or, for a dropped reference, at the next ingest) and stored beside it; every inference
written with its `anomaly_score`; the query API averaging, filtering, binning and rating it; the
enrichment switched off; integers past 2^53 scored, never refused; and the default "Anomalous
inferences" rule (rateTest's p-value below 0.0001), quiet on hours like the reference whatever their
size, firing on an hour with planted far outliers from a 300-row reference, and an earlier rule moved
to its form once."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.stats import betabinom
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
from sagewatch.services import evaluation

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


def evaluate_hour(model_id: str, clock: Clock, start: datetime) -> None:
    clock.moment = start + timedelta(hours=1, minutes=5)
    report = container.evaluator().evaluate_model(model_id)
    assert report.errors == []


def test_the_default_anomaly_rule_is_quiet_on_rows_like_the_reference_and_fires_on_planted_outliers(
    api: Call, upload
) -> None:
    # GIVEN a model that had its default rules before anomaly detection existed, then a closed
    # reference of 300 rows (where the old cutoff, the 99.9th percentile, was above far outliers)
    clock = Clock(NOW)
    container.evaluator().clock = clock
    model_id = register(api)
    container.ingestion_ledger().set_state(model_id, "DEFAULT_RULES", created="before anomaly detection")
    cutoff = with_reference(api, upload, model_id, count=300)
    noted = container.ingestion_ledger().state(model_id, anomaly.LEDGER_STATE)

    # WHEN hours of 1 to 3,000 inferences like the reference arrive, each evaluated after its hour
    sizes = (1, 10, 50, 300, 1000, 3000)
    for hour, count in enumerate(sizes):
        start = FIRST_HOUR + timedelta(hours=hour)
        send(api, model_id, records(count, seed=100 + hour, start=start))
        evaluate_hour(model_id, clock, start)

    # THEN the model got the anomaly rule once: the p-value of the hour's rows above the detector's
    # cutoff, below 0.0001, the share to expect being the reference's own above it; it never fired
    [rule] = anomaly_rules(model_id)
    assert (rule.name, rule.bound, rule.threshold, rule.lookback_period, rule.is_default) == (
        "Anomalous inferences",
        "lower",
        0.0001,
        60,
        True,
    )
    share_rows = int(noted["scored_rows"])
    assert rule.metric_parameters == {
        "cutoff": cutoff,
        "share": int(noted["above_cutoff"]) / share_rows,
        "share_rows": share_rows,
    }
    assert share_rows == 300 and 1 <= int(noted["above_cutoff"]) <= 3
    windows = container.evaluator().rules.windows(model_id, rule.id)
    assert len(windows) == len(sizes) and {w["decision"] for w in windows} == {"quiet"}
    assert container.evaluator().alerts.list(model_id) == []

    # WHEN the next hour holds 270 such inferences and 30 planted far outliers
    start = FIRST_HOUR + timedelta(hours=len(sizes))
    send(api, model_id, records(300, seed=200, start=start, outliers=30))
    evaluate_hour(model_id, clock, start)

    # THEN every outlier is above the cutoff, and the rule fires on that hour with the p-value of
    # the rows above it (the beta-binomial tail, summed here with scipy)
    scores = scores_by_id(model_id)
    assert min(scores[f"200-{i}"] for i in range(270, 300)) > cutoff
    above = sum(scores[f"200-{i}"] > cutoff for i in range(300))
    share = int(noted["above_cutoff"]) / share_rows
    expected = betabinom.sf(above - 1, 300, share * share_rows + 1, share_rows - share * share_rows + 1)
    [alert] = container.evaluator().alerts.list(model_id)
    assert alert.alert_rule_id == rule.id and alert.window_start == start
    assert alert.metric_value == pytest.approx(expected, rel=1e-3) and alert.metric_value < 1e-4
    assert len(anomaly_rules(model_id)) == 1


def test_a_rule_made_in_the_earlier_form_is_moved_to_the_test_once_keeping_the_users_edits(
    api: Call, upload
) -> None:
    # GIVEN a model whose anomaly rule was made in the earlier form (an upper bound of 0.1 on the
    # rate above the cutoff), its severity since edited by the user
    container.evaluator().clock = Clock(NOW)
    model_id = register(api)
    cutoff = with_reference(api, upload, model_id, count=1000)
    container.evaluator().evaluate_model(model_id)
    [rule] = anomaly_rules(model_id)
    evaluator = container.evaluator()
    evaluator.rules.put(
        rule.model_copy(
            update={
                "bound": "upper",
                "threshold": 0.1,
                "metric_parameters": {"cutoff": 0.7},
                "severity": "critical",
                "version": rule.version + 1,
            }
        ),
        expected_version=rule.version,
    )
    digest = container.ingestion_ledger().state(model_id, anomaly.LEDGER_STATE)["digest"]
    container.ingestion_ledger().clear_state(model_id, evaluation.ANOMALY_RULE_STATE)
    container.ingestion_ledger().set_state(model_id, evaluation.ANOMALY_RULE_STATE, digest=digest, cutoff=0.7)

    # WHEN the model is evaluated
    evaluator.evaluate_model(model_id)

    # THEN the rule is the test's (bound lower, 0.0001, the detector's parameters), the user's
    # severity stays
    [moved] = anomaly_rules(model_id)
    assert (moved.bound, moved.threshold, moved.severity) == ("lower", 0.0001, "critical")
    assert moved.metric_parameters is not None and moved.metric_parameters["cutoff"] == cutoff

    # WHEN the user then edits its threshold and the model is evaluated again
    edited = api("PATCH", f"/api/v3/models/{model_id}/alert_rules/{rule.id}", {"threshold": 0.001})
    assert edited.status == 200, edited.body
    evaluator.evaluate_model(model_id)

    # THEN the move happened once: the edit stands
    assert anomaly_rules(model_id)[0].threshold == 0.001


def test_a_new_reference_moves_the_default_rules_cutoff_and_keeps_the_users_edits(api: Call, upload) -> None:
    # GIVEN a model with a closed reference, evaluated once (its anomaly rule made), the rule's threshold edited
    container.evaluator().clock = Clock(NOW)
    model_id = register(api)
    first_cutoff = with_reference(api, upload, model_id, count=2000)
    container.evaluator().evaluate_model(model_id)
    [rule] = anomaly_rules(model_id)
    edited = api("PATCH", f"/api/v3/models/{model_id}/alert_rules/{rule.id}", {"threshold": 0.001})
    assert edited.status == 200, edited.body

    # WHEN the reference is deleted, a smaller one closed, and the model evaluated again
    assert api("DELETE", f"/api/v3/models/{model_id}/reference_data").status in (200, 204)
    second_cutoff = with_reference(api, upload, model_id, count=400)
    container.evaluator().evaluate_model(model_id)

    # THEN the rule follows the new detector's cutoff and reference count, and keeps its threshold
    [rule] = anomaly_rules(model_id)
    assert second_cutoff != first_cutoff
    assert rule.metric_parameters is not None
    assert (rule.metric_parameters["cutoff"], rule.metric_parameters["share_rows"]) == (second_cutoff, 400)
    assert rule.threshold == 0.001


def test_integers_past_2_53_are_scored_and_stored_never_refused(api: Call, upload) -> None:
    # GIVEN a model with a closed reference
    model_id = register(api)
    with_reference(api, upload, model_id, count=300)
    row = {"age": 30, "income": 1000.0, "region": "north", "predicted_probability": 0.3}

    # WHEN a batch holds one row with age 2^60 and one ordinary row
    sent = [
        {
            "partner_inference_id": "huge",
            "inference_timestamp": FIRST_HOUR.isoformat(),
            "inference_data": {**row, "age": 2**60},
        },
        {
            "partner_inference_id": "fine",
            "inference_timestamp": FIRST_HOUR.isoformat(),
            "inference_data": row,
        },
    ]
    answer = api("POST", f"/api/v3/models/{model_id}/inferences", sent)

    # THEN both are accepted, stored and scored
    assert answer.status == 207 and answer.body["counts"] == {"success": 2, "failure": 0, "total": 2}
    scores = scores_by_id(model_id)
    assert set(scores) == {"huge", "fine"} and all(0 <= s <= 1 for s in scores.values())


def test_a_reference_holding_the_int64_extremes_closes_and_scores(api: Call, upload) -> None:
    # GIVEN a model whose reference holds the int64 extremes
    other = register(api)
    reference = pa.table(churn_rows(100, 0)).set_column(
        0, "age", pa.array([2**63 - 1, -(2**63), *range(18, 116)], pa.int64())
    )
    upload(
        f"/api/v3/models/{other}/reference_data", {"reference_data": ("r.parquet", parquet_bytes(reference))}
    )

    # WHEN it is closed and inferences follow
    closed = api("PATCH", f"/api/v3/models/{other}/reference_data", {"status": "uploaded"})
    send(api, other, records(20, seed=1, start=FIRST_HOUR))

    # THEN it closed with a detector, and the inferences are stored with scores
    assert closed.status == 200, closed.body
    assert len(scores_by_id(other)) == 20 and None not in scores_by_id(other).values()


def test_a_capture_file_with_an_integer_past_2_53_is_stored_whole(
    api: Call, upload, aws: dict[str, str]
) -> None:
    # WHEN a Data Capture file holds five calls and one with an input of 2^60
    capture_id = capture_model()
    with_reference(api, upload, capture_id, count=300)
    lines = [capture_call(f"c-{i}", f"{30 + i},1000.0,north", "0.3", f"e-{i}") for i in range(5)]
    lines.append(capture_call("c-huge", f"{2**60},1000.0,north", "0.3", "e-huge"))
    put(aws, "\n".join(lines).encode())
    handler(notifications(aws), LocalContext())

    # THEN all six are stored, scored and counted
    captured = scores_by_id(capture_id)
    assert len(captured) == 6 and None not in captured.values()
    assert container.ingestion_ledger().counts(capture_id)["total"]["inferences_ingested"] == 6


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
