"""Labels filed by their inference's day when one id is on several days (a shadow test straddling
midnight, two Deepchecks versions, a resent inference): every day labelled; what filing one label
costs (the days each label could belong to, each day's index read as one merged object once the
day is closed); ids crafted to share a fingerprint hide no label."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
from sklearn import metrics as skm
from tests import factories
from tests.conftest import Call
from tests.deepchecks_api import version as deepchecks_version
from tests.factories import Clock
from tests.inputs import capture_call, record, register
from tests.lake import notifications

from sagewatch import aws as sagewatch_aws
from sagewatch import container
from sagewatch.alerting import catalog
from sagewatch.alerting.types import Rule
from sagewatch.container import evaluator
from sagewatch.handlers.ingest import handler
from sagewatch.local.http_bridge import LocalContext
from sagewatch.services.evaluation import ANOMALY_RULE_STATE
from sagewatch.stores.lake import LABEL_SEARCH_DAYS, day_of

DAY = datetime(2026, 11, 20, tzinfo=UTC)
N = 30  # enough labels for the evaluator's interval (catalog.MIN_LABELLED) to settle a window


def send(api: Call, model_id: str, ids: list[str], at: datetime, p: float = 0.8) -> None:
    rows = [record(partner_inference_id=i, inference_timestamp=at.isoformat(), p=p) for i in ids]
    answer = api("POST", f"/api/v3/models/{model_id}/inferences", rows)
    assert answer.body["counts"]["failure"] == 0, answer.body


def label(api: Call, model_id: str, labels: dict[str, int], at: list[datetime] | datetime) -> None:
    times = at if isinstance(at, list) else [at] * len(labels)
    rows = [
        {
            "partner_inference_id": i,
            "ground_truth_timestamp": t.isoformat(),
            "ground_truth_data": {"churned": y},
        }
        for (i, y), t in zip(labels.items(), times, strict=True)
    ]
    answer = api("PATCH", f"/api/v3/models/{model_id}/inferences", rows)
    assert answer.body["counts"]["failure"] == 0, answer.body


def on_day(api: Call, model_id: str, day: datetime, group_by: str | None = None) -> list[dict]:
    body = {
        "select": [{"function": "accuracyRate"}, {"function": "count"}],
        "filter": [
            {"property": "inference_timestamp", "comparator": "gte", "value": day.isoformat()},
            {
                "property": "inference_timestamp",
                "comparator": "lt",
                "value": (day + timedelta(days=1)).isoformat(),
            },
        ],
    }
    if group_by:
        body["group_by"] = [{"property": group_by}]
        body["select"].append({"property": group_by})
    answer = api("POST", f"/api/v3/models/{model_id}/inferences/query", body)
    assert answer.status == 200, answer.body
    return answer.body["query_result"]


def shadow_test_across_midnight(api: Call, aws: dict[str, str], score: str) -> str:
    """N requests answered by production at 23:59:59.9 and by its shadow 0.2 s later (the next day)."""
    body = factories.binary_probability()
    body["sagemaker"] = {"endpoint_name": "churn-endpoint"}
    model_id = api("POST", "/api/v3/models", body).body["id"]
    s3 = sagewatch_aws.client("s3")
    for variant, hour, moment in (
        ("AllTraffic", "2026/11/25/23", "2026-11-25T23:59:59.900000Z"),
        ("ShadowVariant", "2026/11/26/00", "2026-11-26T00:00:00.100000Z"),
    ):
        lines = [
            capture_call(f"req-{i}", "34,52000.5,north", score, f"{variant}-{i}", moment) for i in range(N)
        ]
        s3.put_object(
            Bucket=aws["capture"],
            Key=f"datacapture/churn-endpoint/{variant}/{hour}/capture.jsonl",
            Body=("\n".join(lines) + "\n").encode(),
        )
    assert handler(notifications(aws), LocalContext()) == {"batchItemFailures": []}
    return model_id


def index_reads() -> list[str]:
    keys: list[str] = []
    sagewatch_aws.client("s3").meta.events.register(
        "provide-client-params.s3.GetObject",
        lambda params, **_: (
            keys.append(params["Key"]) if params["Key"].startswith("inference_ids/") else None
        ),
    )
    return keys


# -- one id on two days: both days are labelled ---------------------------------------


def test_both_variants_of_a_shadow_test_straddling_midnight_are_labelled(
    api: Call, aws: dict[str, str]
) -> None:
    # GIVEN a shadow test whose production answers fall at 23:59:59.9 and the shadow's just after midnight
    model_id = shadow_test_across_midnight(api, aws, "0.9")
    truth = np.random.default_rng(5).integers(0, 2, N)

    # WHEN the requests are labelled two days later
    label(api, model_id, {f"req-{i}": int(truth[i]) for i in range(N)}, DAY + timedelta(days=7))

    # THEN the production variant's day counts every label (scikit-learn over what was sent: predicted 1)
    [production] = on_day(api, model_id, datetime(2026, 11, 25, tzinfo=UTC), "variant")
    expected = skm.accuracy_score(truth, np.ones(N, dtype=int))
    assert (production["variant"], production["labelled_count"]) == ("AllTraffic", N), production
    assert production["accuracyRate"] == expected


def test_deepchecks_versions_logged_on_different_days_are_both_labelled(api: Call) -> None:
    # GIVEN the same five sample ids logged to version v1 on the 24th and to a new version v2 on the 27th
    v1 = deepchecks_version(api, "dc", {"x": "numeric"}, ["a", "b"])
    created = api(
        "POST",
        f"/api/v1/models/{v1['model_id']}/version",
        {"name": "v2", "features": {"x": "numeric"}, "classes": ["a", "b"]},
    )
    v2 = created.body["id"]
    for version_id, day in ((v1["id"], "2026-11-24"), (v2, "2026-11-27")):
        samples = [
            {"_dc_sample_id": f"s-{i}", "_dc_time": f"{day}T10:00:00Z", "x": float(i), "_dc_prediction": "a"}
            for i in range(5)
        ]
        assert api("POST", f"/api/v1/model-versions/{version_id}/data", samples).status == 200

    # WHEN the samples are labelled ("any time before or after the samples")
    labels = [{"_dc_sample_id": f"s-{i}", "_dc_label": "a"} for i in range(5)]
    assert api("PUT", f"/api/v1/model/{v1['model_id']}/labels", labels).status == 200

    # THEN v1's day counts its five samples labelled, as v2's does
    window = {"start_time": "2026-11-24T00:00:00Z", "end_time": "2026-11-25T00:00:00Z"}
    stats = api("GET", f"/api/v1/model-versions/{v1['id']}/time-window-statistics", window).body
    assert stats == {"num_samples": 5, "num_labeled_samples": 5}


def test_a_relabel_after_a_resend_replaces_the_label_on_the_first_day(api: Call) -> None:
    # GIVEN an inference predicted 1 and labelled 0, then resent on a later day (a duplicate, ignored)
    model_id = register(api)
    send(api, model_id, ["x"], DAY.replace(hour=10))
    label(api, model_id, {"x": 0}, DAY + timedelta(days=1))
    send(api, model_id, ["x"], DAY.replace(hour=10) + timedelta(days=2))

    # WHEN it is relabelled 1 (the latest label wins)
    label(api, model_id, {"x": 1}, DAY + timedelta(days=3))

    # THEN its day's accuracy uses the latest label (docs/ingestion.md says it would at worst be
    # unlabelled; it keeps the stale label, so the accuracy is wrong, not missing)
    [row] = on_day(api, model_id, DAY)
    assert (row["labelled_count"], row["accuracyRate"]) == (1, 1.0), row


def test_the_evaluator_fires_on_a_production_hour_whose_shadow_answers_fell_after_midnight(
    api: Call, aws: dict[str, str]
) -> None:
    # GIVEN a shadow test straddling midnight, every production answer wrong (predicted 1, labelled 0),
    # and an hourly accuracy rule (>= 0.8) waiting for all labels (alerts_delay_labels_ratio 1.0)
    model_id = shadow_test_across_midnight(api, aws, "0.9")
    ledger = container.ingestion_ledger()
    ledger.set_state(model_id, "DEFAULT_RULES", created="not in this test")
    ledger.set_state(model_id, ANOMALY_RULE_STATE, digest="not in this test")
    label(api, model_id, {f"req-{i}": 0 for i in range(N)}, datetime(2026, 11, 26, 0, 10, tzinfo=UTC))
    model = container.model_store().get(model_id)
    metric = next(m for m in catalog.default_metrics(model) if m.name == "Accuracy Rate")
    rule = Rule(
        id=uuid.uuid4().hex,
        model_id=model_id,
        name="accuracy",
        metric_id=metric.id,
        bound="lower",
        threshold=0.8,
        lookback_period=60,
        created_at=DAY,
    )
    evaluator().rules.put(rule)

    # WHEN the evaluator runs at 00:20, every label in
    evaluator().clock = Clock(datetime(2026, 11, 26, 0, 20, tzinfo=UTC))
    assert evaluator().evaluate_model(model_id).errors == []

    # THEN the 23:00 window (production's answers only) is fully labelled and fires at accuracy 0
    hour = datetime(2026, 11, 25, 23, tzinfo=UTC)
    fired = [a.metric_value for a in evaluator().alerts.list(model_id) if a.window_start == hour]
    recorded = [w for w in evaluator().rules.windows(model_id, rule.id) if w["window"] == hour.isoformat()]
    assert fired == [0.0], (fired, recorded)


# -- what filing one label costs ---------------------------------------------------------------


def test_one_label_with_an_old_timestamp_does_not_read_every_days_id_index(api: Call) -> None:
    # GIVEN 60 days of inferences
    model_id = register(api)
    for offset in range(60):
        send(api, model_id, [f"d{offset}"], DAY - timedelta(days=offset))

    # WHEN a batch of two labels arrives: one for an inference not sent yet (labels may come first),
    # stamped at the epoch (a careless client's 0)
    read = index_reads()
    label(api, model_id, {"d0": 1, "later": 1}, [DAY + timedelta(days=1), datetime(1970, 1, 1, tzinfo=UTC)])

    # THEN only the days either label can be filed under are read: [its day - LABEL_SEARCH_DAYS, its
    # day + 1] for each (the epoch's holds no inference), not the 60 days between the two
    days = {day_of(k) for k in read}
    assert len(days) <= LABEL_SEARCH_DAYS + 2, f"{len(days)} days of id index read for 2 labels"


def test_a_closed_days_index_is_merged_so_a_label_costs_a_get_per_day_not_per_request(api: Call) -> None:
    # GIVEN 3 closed days of 20 inference requests each (each request writes one index object)
    model_id = register(api)
    for offset in range(3):
        for n in range(20):
            send(api, model_id, [f"d{offset}-{n}"], DAY - timedelta(days=offset))

    # WHEN a first label is filed, each day's objects are read once and merged into one
    label(api, model_id, {"d2-0": 1}, DAY + timedelta(hours=1))
    lake = container.lake_store()
    merged = [k for k in lake.keys(f"inference_ids/model_id={model_id}/") if "/_merged-" in k]
    assert sorted(str(day_of(k)) for k in merged) == ["2026-11-18", "2026-11-19", "2026-11-20"]

    # THEN a process that has read nothing yet (a cold Lambda) files the next label with one GET a day
    container.reset()
    read = index_reads()
    label(api, model_id, {"d1-7": 0}, DAY + timedelta(hours=2))
    assert len(read) == 3, read

    # AND an inference written to a closed day later is found beside the merged object
    send(api, model_id, ["late"], DAY - timedelta(days=2))
    container.reset()
    read = index_reads()
    label(api, model_id, {"late": 1}, DAY + timedelta(hours=3))
    assert len(read) == 4, read
    rows = on_day(api, model_id, DAY - timedelta(days=2))
    assert [(r["count"], r["labelled_count"]) for r in rows] == [(21, 2)]


# -- crafted fingerprint collisions --------------------------------------------------------------


def thue_morse(levels: int, a: str, b: str) -> str:
    text = a
    for _ in range(levels):
        text += text.translate({ord(a): b, ord(b): a})
    return text


def test_an_id_crafted_to_share_a_fingerprint_does_not_hide_another_ids_label(api: Call) -> None:
    # GIVEN two distinct ids of 128 characters (Thue-Morse words over two 4-byte characters whose
    # polynomial hashes differ by a multiple of 2^15: their hashes mod 2^64 are equal)
    victim, crafted = thue_morse(7, "\U0001f600", "\U0001e1cc"), thue_morse(7, "\U0001e1cc", "\U0001f600")
    assert victim != crafted and len(victim) <= 255
    model_id = register(api)
    send(api, model_id, [victim], DAY)
    send(api, model_id, [crafted], DAY + timedelta(days=1))  # anyone who may send inferences

    # WHEN the victim's inference is labelled
    label(api, model_id, {victim: 1}, DAY + timedelta(days=2))

    # THEN its day counts it labelled
    [row] = on_day(api, model_id, DAY)
    assert row["labelled_count"] == 1, row
