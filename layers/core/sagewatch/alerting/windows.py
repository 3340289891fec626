"""When a rule looks at which window, and what it decides there: pure functions of a clock.

Streaming rules look at windows of `lookback_period` (L) minutes, in one of two modes:

- aligned (the default): [k*L, (k+1)*L) counted from the Unix epoch, so every run agrees on what
  "the window" is and an alert is raised at most once per (rule, window). A shift that starts just
  after a window opens is fully in the next one: noticed at most 2L + SCHEDULE_MINUTES after it
  starts.
- sliding: the lookback ending at each scheduled run, [t - L, t) with t a multiple of
  SCHEDULE_MINUTES: a shift fills a window L after it starts, so it is noticed at most
  L + SCHEDULE_MINUTES after. Only for metrics that need no ground truth (labels arrive late, so a
  performance rule's "latest lookback" has none). A sliding window is not looked at again: the
  next ones hold a late file's rows while it is within the lookback.

One alert per incident: a crossing in a window that starts less than QUIET_WINDOWS lookbacks after
the end of the rule's latest crossing window extends that incident's alert instead of raising a new
one, so a difference that flickers around the threshold is one alert, not one per crossing; a new
alert needs QUIET_WINDOWS lookbacks without a crossing (or the incident's alert resolved).

Each aligned run evaluates the windows completed since the last run (catching up at
most MAX_CATCH_UP of them); a rule whose metric needs ground truth keeps looking back over the
model's alerts_delay_seconds, because labels arrive late:

- a window is *eligible* once it is older than alerts_delay_seconds, or once the share of its
  inferences that have ground truth reaches alerts_delay_labels_ratio;
- an evaluated window is evaluated again when more of it is labelled, and raises an alert if it
  now crosses the threshold (never a second alert for the same window);
- rules of other metrics look at the window before the newest again, for files that landed after
  it was evaluated, and a window that held no data is not settled (its files may be late);
- a crossing within subsequent_alert_wait_time minutes of the rule's last alert is suppressed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sagewatch.resources import DECLARATION

MAX_CATCH_UP = 12
# the evaluator's schedule, as the stack declares it: a sliding window's step
SCHEDULE_MINUTES = next(s.rate_minutes for s in DECLARATION.schedules if s.name == "evaluate")
QUIET_WINDOWS = 24  # lookbacks without a crossing that end an incident (a day of an hourly rule)

Decision = Literal[
    "wait", "unchanged", "quiet", "fire", "suppressed", "fired_before", "empty", "uncertain", "continued"
]


@dataclass(frozen=True)
class TimeWindow:
    """An aligned window [start, end) of a streaming rule."""

    start: datetime
    end: datetime

    @property
    def key(self) -> str:
        """The window's key among a rule's evaluated windows: its start, ISO 8601."""
        return self.start.isoformat()


def window_end(now: datetime, lookback_minutes: int) -> datetime:
    """The end of the latest complete aligned window at `now`."""
    size = lookback_minutes * 60
    return datetime.fromtimestamp(int(now.timestamp()) // size * size, tz=UTC)


def windows_to_check(
    now: datetime, lookback_minutes: int, since: datetime | None, look_back_seconds: int = 0
) -> list[TimeWindow]:
    """Complete windows to evaluate now, oldest first.

    New ones: ending after `since` (the end of the last window evaluated), at most MAX_CATCH_UP,
    just the latest when nothing was evaluated before. For rules waiting for labels, also every
    window ending within `look_back_seconds` of now.
    """
    size = timedelta(minutes=lookback_minutes)
    last_end = window_end(now, lookback_minutes)
    first_new = last_end if since is None else max(since + size, last_end - size * (MAX_CATCH_UP - 1))
    first_end = (
        min(first_new, last_end - timedelta(seconds=look_back_seconds)) if look_back_seconds else first_new
    )
    first_end = window_end(first_end, lookback_minutes) if first_end != last_end else last_end
    windows = []
    end = last_end
    while end >= first_end:
        windows.append(TimeWindow(end - size, end))
        end -= size
    return list(reversed(windows))


def sliding_windows(now: datetime, lookback_minutes: int, since: datetime | None) -> list[TimeWindow]:
    """The lookbacks ending at each scheduled run since `since` (at most MAX_CATCH_UP), oldest first;
    just the latest when nothing was evaluated before."""
    step = timedelta(minutes=SCHEDULE_MINUTES)
    size = timedelta(minutes=lookback_minutes)
    last_end = window_end(now, SCHEDULE_MINUTES)
    first_end = last_end if since is None else max(since + step, last_end - step * (MAX_CATCH_UP - 1))
    ends = []
    end = last_end
    while end >= first_end:
        ends.append(end)
        end -= step
    return [TimeWindow(end - size, end) for end in reversed(ends)]


def continues_incident(
    window_start: datetime | None, incident_end: datetime | None, lookback_minutes: int
) -> bool:
    """Whether a crossing in a window starting at `window_start` belongs to the incident whose last
    crossing window ended at `incident_end`: it starts before QUIET_WINDOWS quiet lookbacks have
    passed since (batches are apart: never)."""
    if window_start is None or incident_end is None:
        return False
    return window_start < incident_end + timedelta(minutes=lookback_minutes * QUIET_WINDOWS)


def eligible(
    end: datetime, now: datetime, rows: int, labelled: int, delay_seconds: int, labels_ratio: float
) -> bool:
    """May a window of a metric needing ground truth be evaluated now?"""
    if now - end >= timedelta(seconds=delay_seconds):
        return True
    return rows > 0 and labelled / rows >= labels_ratio


def crosses(value: float | None, bound: str, threshold: float) -> bool:
    """Whether the value is past the threshold: above an upper bound, below a lower one (None never is)."""
    if value is None:
        return False
    return value > threshold if bound == "upper" else value < threshold


def decide(
    *,
    value: float | None,
    rows: int,
    labelled: int,
    previous: dict | None,
    bound: str,
    threshold: float,
    needs_truth: bool,
    is_eligible: bool,
    now: datetime,
    last_triggered: datetime | None,
    wait_minutes: int,
) -> Decision:
    """What a rule does with one window, given what it did there before."""
    if needs_truth and not is_eligible:
        return "wait"
    if previous is not None:
        if previous.get("fired"):
            return "fired_before"
        if previous.get("rows") == rows and previous.get("labelled") == labelled:
            return "unchanged"
    if rows == 0 or value is None:
        return "empty"
    if not crosses(value, bound, threshold):
        return "quiet"
    if last_triggered is not None and now - last_triggered < timedelta(minutes=wait_minutes):
        return "suppressed"
    return "fire"
