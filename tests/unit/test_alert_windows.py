"""Which windows a rule evaluates, when labels are awaited, and what it decides: a clock we control."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sagewatch.alerting.windows import (
    MAX_CATCH_UP,
    continues_incident,
    crosses,
    decide,
    eligible,
    sliding_windows,
    window_end,
    windows_to_check,
)

T = datetime(2026, 11, 25, 10, 7, 30, tzinfo=UTC)


def starts(found) -> list[str]:
    return [w.start.strftime("%H:%M") for w in found]


def test_windows_are_aligned_to_the_lookback() -> None:
    assert window_end(T, 5) == datetime(2026, 11, 25, 10, 5, tzinfo=UTC)
    assert window_end(T, 60) == datetime(2026, 11, 25, 10, tzinfo=UTC)
    assert window_end(T, 60 * 24) == datetime(2026, 11, 25, tzinfo=UTC)


def test_a_new_rule_evaluates_the_latest_complete_window() -> None:
    assert starts(windows_to_check(T, 5, since=None)) == ["10:00"]


def test_later_runs_evaluate_what_completed_since() -> None:
    since = datetime(2026, 11, 25, 9, 50, tzinfo=UTC)
    assert starts(windows_to_check(T, 5, since)) == ["09:50", "09:55", "10:00"]
    assert windows_to_check(T, 5, since=datetime(2026, 11, 25, 10, 5, tzinfo=UTC)) == []


def test_catching_up_is_bounded() -> None:
    found = windows_to_check(T, 5, since=T - timedelta(days=2))
    assert len(found) == MAX_CATCH_UP
    assert found[-1].end == window_end(T, 5)


def test_rules_waiting_for_labels_look_back_over_the_delay() -> None:
    found = windows_to_check(T, 60, since=datetime(2026, 11, 25, 10, tzinfo=UTC), look_back_seconds=3 * 3600)
    assert starts(found) == ["06:00", "07:00", "08:00", "09:00"]


@pytest.mark.parametrize(
    ("age", "rows", "labelled", "ratio", "expected"),
    [
        (timedelta(days=3), 10, 0, 1.0, True),  # old enough
        (timedelta(days=2, hours=23), 10, 9, 1.0, False),  # too young and not all labelled
        (timedelta(minutes=5), 10, 10, 1.0, True),  # all labelled
        (timedelta(minutes=5), 10, 5, 0.5, True),  # the model asks for half
        (timedelta(minutes=5), 0, 0, 0.0, False),  # nothing to judge yet
    ],
)
def test_eligibility_for_metrics_needing_labels(age, rows, labelled, ratio, expected) -> None:
    assert eligible(T - age, T, rows, labelled, 3 * 24 * 3600, ratio) is expected


def base(**overrides) -> dict:
    arguments = dict(
        value=0.9,
        rows=100,
        labelled=100,
        previous=None,
        bound="upper",
        threshold=0.5,
        needs_truth=False,
        is_eligible=True,
        now=T,
        last_triggered=None,
        wait_minutes=0,
    )
    arguments.update(overrides)
    return arguments


def test_crossing_in_both_directions() -> None:
    assert crosses(0.6, "upper", 0.5) and not crosses(0.5, "upper", 0.5)
    assert crosses(0.4, "lower", 0.5) and not crosses(0.5, "lower", 0.5)
    assert not crosses(None, "upper", 0.5)


def test_decisions() -> None:
    assert decide(**base()) == "fire"
    assert decide(**base(value=0.1)) == "quiet"
    assert decide(**base(rows=0, value=None)) == "empty"
    assert decide(**base(needs_truth=True, is_eligible=False)) == "wait"
    assert decide(**base(needs_truth=False, is_eligible=False)) == "fire"  # no labels needed: no waiting


def test_a_window_fires_once() -> None:
    assert decide(**base(previous={"fired": True, "rows": 100, "labelled": 100})) == "fired_before"
    assert (
        decide(**base(previous={"fired": True, "rows": 100, "labelled": 50}, labelled=100)) == "fired_before"
    )


def test_a_window_is_evaluated_again_when_more_labels_arrive() -> None:
    evaluated = {"fired": False, "rows": 100, "labelled": 50}
    assert decide(**base(previous=evaluated, labelled=50)) == "unchanged"
    assert decide(**base(previous=evaluated, labelled=80)) == "fire"


def test_the_wait_time_suppresses_repeats() -> None:
    earlier = T - timedelta(minutes=30)
    assert decide(**base(last_triggered=earlier, wait_minutes=60)) == "suppressed"
    assert decide(**base(last_triggered=earlier, wait_minutes=30)) == "fire"
    assert decide(**base(last_triggered=earlier, wait_minutes=0)) == "fire"


def test_a_sliding_window_is_the_lookback_ending_at_the_latest_scheduled_run() -> None:
    # at 10:07:30 the latest run's time is 10:05: an hour's lookback is [09:05, 10:05)
    [window] = sliding_windows(T, 60, since=None)
    assert (window.start, window.end) == (
        datetime(2026, 11, 25, 9, 5, tzinfo=UTC),
        datetime(2026, 11, 25, 10, 5, tzinfo=UTC),
    )


def test_sliding_windows_catch_up_one_per_scheduled_run() -> None:
    since = datetime(2026, 11, 25, 9, 55, tzinfo=UTC)  # the last evaluated window ended then
    assert [w.end.strftime("%H:%M") for w in sliding_windows(T, 60, since)] == ["10:00", "10:05"]
    long_ago = T - timedelta(days=1)
    assert len(sliding_windows(T, 60, long_ago)) == MAX_CATCH_UP


def test_worst_case_delays_are_those_the_docs_state() -> None:
    # a shift starting just after 09:00:00 (aligned hourly windows) fills [10:00, 11:00), judged at 11:05
    shift = datetime(2026, 11, 25, 9, 0, 1, tzinfo=UTC)
    full_aligned = min(
        w.end for w in windows_to_check(shift + timedelta(hours=3), 60, None, 3 * 3600) if w.start >= shift
    )
    assert full_aligned + timedelta(minutes=5) - shift <= timedelta(hours=2, minutes=5)
    # sliding: the first lookback wholly after the shift ends at the first run an hour after it
    runs = sliding_windows(shift + timedelta(hours=1, minutes=5), 60, shift)
    first_full = min(w.end for w in runs if w.start >= shift)
    assert first_full - shift <= timedelta(hours=1, minutes=5)


def test_a_crossing_continues_an_incident_until_a_day_of_quiet_lookbacks() -> None:
    end = datetime(2026, 11, 25, 10, tzinfo=UTC)
    assert continues_incident(end, end, 60)  # the next aligned window touches it
    assert continues_incident(end - timedelta(minutes=55), end, 60)  # a sliding window overlaps it
    assert continues_incident(end + timedelta(hours=3), end, 60)  # a few quiet hours: the same incident
    # a day of quiet hourly windows ends it: the window starting 24 lookbacks after is a new one
    assert continues_incident(end + timedelta(hours=23), end, 60)
    assert not continues_incident(end + timedelta(hours=24), end, 60)
    assert not continues_incident(end + timedelta(minutes=5 * 24), end, 5)  # a 5-minute rule: 2 hours
    assert not continues_incident(end, None, 60)  # no incident yet
    assert not continues_incident(None, end, 60)  # batches are apart
