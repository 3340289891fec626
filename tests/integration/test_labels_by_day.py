"""Ground truth filed under the day of the inference it labels, so a window reads its own labels and
no others, however many were ever received (issue 18); labels whose inference is not found when they
arrive still label it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sklearn import metrics as skm
from tests.conftest import Call
from tests.inputs import record, register

from sagewatch import aws as sagewatch_aws
from sagewatch import container
from sagewatch.stores.lake import LABEL_SEARCH_DAYS, day_of

DAY = datetime(2026, 11, 20, tzinfo=UTC)


def send(api: Call, model_id: str, ids: list[str], at: datetime, p: float = 0.8) -> None:
    rows = [record(partner_inference_id=i, inference_timestamp=at.isoformat(), p=p) for i in ids]
    assert api("POST", f"/api/v3/models/{model_id}/inferences", rows).body["counts"]["failure"] == 0


def label(api: Call, model_id: str, labels: dict[str, int], at: datetime) -> None:
    rows = [
        {
            "partner_inference_id": i,
            "ground_truth_timestamp": at.isoformat(),
            "ground_truth_data": {"churned": y},
        }
        for i, y in labels.items()
    ]
    assert api("PATCH", f"/api/v3/models/{model_id}/inferences", rows).body["counts"]["failure"] == 0


def accuracy_on(api: Call, model_id: str, day: datetime) -> dict:
    answer = api(
        "POST",
        f"/api/v3/models/{model_id}/inferences/query",
        {
            "select": [{"function": "accuracyRate"}, {"function": "count"}],
            "filter": [
                {"property": "inference_timestamp", "comparator": "gte", "value": day.isoformat()},
                {
                    "property": "inference_timestamp",
                    "comparator": "lt",
                    "value": (day + timedelta(days=1)).isoformat(),
                },
            ],
        },
    )
    assert answer.status == 200, answer.body
    [row] = answer.body["query_result"]
    return row


def area_days(area: str, model_id: str) -> set[str]:
    return {str(day_of(k)) for k in container.lake_store().keys(f"{area}/model_id={model_id}/")}


def gets() -> list[str]:
    keys: list[str] = []
    sagewatch_aws.client("s3").meta.events.register(
        "provide-client-params.s3.GetObject", lambda params, **_: keys.append(params["Key"])
    )
    return keys


def test_labels_arriving_days_later_are_filed_under_their_inferences_days(api: Call) -> None:
    # GIVEN inferences on two days (predicted churn: 0.8 -> 1)
    model_id = register(api)
    send(api, model_id, ["a", "b"], DAY.replace(hour=10))
    send(api, model_id, ["c"], DAY.replace(hour=23, minute=59) + timedelta(minutes=1))  # the next day

    # WHEN their labels arrive together three days later
    label(api, model_id, {"a": 1, "b": 0, "c": 1}, DAY + timedelta(days=3))

    # THEN each is filed under its inference's day, none under the label's own day
    assert area_days("labels", model_id) == {"2026-11-20", "2026-11-21"}
    assert area_days("ground_truth", model_id) == set()
    # AND each day's accuracy is its own labels' (scikit-learn over the rows sent)
    first = accuracy_on(api, model_id, DAY)
    assert (first["accuracyRate"], first["labelled_count"]) == (skm.accuracy_score([1, 0], [1, 1]), 2)
    second = accuracy_on(api, model_id, DAY + timedelta(days=1))
    assert (second["accuracyRate"], second["labelled_count"]) == (1.0, 1)


def test_a_window_reads_its_own_days_labels_whatever_else_was_received(api: Call) -> None:
    # GIVEN a day of inferences, and thirty other days of inferences with ten times as many labels
    model_id = register(api)
    send(api, model_id, ["mine-0", "mine-1"], DAY.replace(hour=12))
    for offset in range(1, 31):
        day = DAY - timedelta(days=offset)
        ids = [f"other-{offset}-{i}" for i in range(20)]
        send(api, model_id, ids, day)
        label(api, model_id, dict.fromkeys(ids, 1), day + timedelta(days=2))
    label(api, model_id, {"mine-0": 1, "mine-1": 1}, DAY + timedelta(days=2))

    # WHEN the day's accuracy is asked for
    read = gets()
    row = accuracy_on(api, model_id, DAY)

    # THEN it is right, and only that day's labels were read
    assert (row["accuracyRate"], row["labelled_count"]) == (1.0, 2)
    labels_read = [k for k in read if k.startswith(("labels/", "ground_truth/"))]
    assert labels_read and {str(day_of(k)) for k in labels_read} == {"2026-11-20"}
    assert all(k.startswith(f"labels/model_id={model_id}/date=2026-11-20/") for k in labels_read)


def test_a_label_sent_before_its_inference_still_labels_it(api: Call) -> None:
    # GIVEN a label for an inference not sent yet (kept by its own day)
    model_id = register(api)
    label(api, model_id, {"early": 0}, DAY - timedelta(hours=1))
    assert area_days("ground_truth", model_id) == {"2026-11-19"} and area_days("labels", model_id) == set()

    # WHEN the inference arrives
    send(api, model_id, ["early"], DAY)

    # THEN the day's accuracy counts it (predicted 1, label 0), and the status too
    row = accuracy_on(api, model_id, DAY)
    assert (row["accuracyRate"], row["labelled_count"]) == (0.0, 1)
    status = api("GET", f"/api/v3/models/{model_id}/inferences/status").body
    assert (status["total"], status["with_ground_truth"]) == (1, 1)


def test_a_label_arriving_longer_after_its_inference_than_the_search_still_labels_it(api: Call) -> None:
    # GIVEN an inference, and its label LABEL_SEARCH_DAYS + 10 days later
    model_id = register(api)
    send(api, model_id, ["late"], DAY)
    late = DAY + timedelta(days=LABEL_SEARCH_DAYS + 10)
    label(api, model_id, {"late": 1}, late)

    # THEN it is kept by its own day, and still labels the inference
    assert area_days("ground_truth", model_id) == {str(late.date())}
    row = accuracy_on(api, model_id, DAY)
    assert (row["accuracyRate"], row["labelled_count"]) == (1.0, 1)


def test_a_relabel_replaces_the_label_on_the_inferences_day(api: Call) -> None:
    # GIVEN an inference labelled 0
    model_id = register(api)
    send(api, model_id, ["x"], DAY)
    label(api, model_id, {"x": 0}, DAY + timedelta(days=1))

    # WHEN it is labelled again later, 1
    label(api, model_id, {"x": 1}, DAY + timedelta(days=2))

    # THEN the later label is the one that counts
    row = accuracy_on(api, model_id, DAY)
    assert (row["accuracyRate"], row["labelled_count"]) == (1.0, 1)


def test_labels_timed_at_the_ends_of_the_accepted_times_are_kept(api: Call) -> None:
    model_id = register(api)
    send(api, model_id, ["x"], DAY)
    for moment in ("1970-01-01T00:00:00Z", "2199-12-31T23:59:59Z"):
        rows = [
            {
                "partner_inference_id": "x",
                "ground_truth_timestamp": moment,
                "ground_truth_data": {"churned": 1},
            }
        ]
        answer = api("PATCH", f"/api/v3/models/{model_id}/inferences", rows)
        assert answer.body["counts"] == {"success": 1, "failure": 0, "total": 1}, answer.body
    assert area_days("ground_truth", model_id) == {"1970-01-01", "2199-12-31"}


def test_the_status_counts_the_latest_days_of_inferences_and_reads_no_others(api: Call) -> None:
    # GIVEN ten days of three inferences, each day's first labelled, and one duplicate on the last day
    model_id = register(api)
    for offset in range(10):
        day = DAY + timedelta(days=offset)
        send(api, model_id, [f"{offset}-{i}" for i in range(3)], day)
        label(api, model_id, {f"{offset}-0": 1}, day + timedelta(hours=1))
    send(api, model_id, ["9-1"], DAY + timedelta(days=9, hours=2))

    # WHEN the status of the latest three days is asked for
    read = gets()
    status = api("GET", f"/api/v3/models/{model_id}/inferences/status?days=3").body

    # THEN it counts those days' inferences, and the ledger's counters the whole history
    assert (status["counted_from"], status["counted_to"]) == ("2026-11-27", "2026-11-29")
    assert (status["total"], status["duplicates"], status["with_ground_truth"]) == (9, 1, 3)
    assert status["inferences"]["ingested"] == 31 and status["ground_truth"]["ingested"] == 10
    # AND it read no older day's inferences or labels
    data = [k for k in read if k.startswith(("inferences/", "labels/", "ground_truth/"))]
    assert data and {str(day_of(k)) for k in data} <= {"2026-11-27", "2026-11-28", "2026-11-29"}

    # AND by default it counts the latest seven days
    status = api("GET", f"/api/v3/models/{model_id}/inferences/status").body
    assert (status["counted_from"], status["total"], status["with_ground_truth"]) == ("2026-11-23", 21, 7)


def test_the_status_of_a_model_without_inferences_and_a_bad_day_count(api: Call) -> None:
    model_id = register(api)
    status = api("GET", f"/api/v3/models/{model_id}/inferences/status").body
    assert (status["counted_from"], status["total"], status["labelled_ratio"]) == (None, 0, None)
    for days in ("0", "91", "seven"):
        answer = api("GET", f"/api/v3/models/{model_id}/inferences/status?days={days}")
        assert answer.status == 400 and "days" in answer.body["message"], answer.body
