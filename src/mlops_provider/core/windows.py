"""Half-open time windows: parse, default and slice the time ranges that materialisation and the monitors read.

Windows are half-open, like Airflow's data intervals: ``[start, end)`` holds the rows stamped at or after
``start`` and before ``end``; a row stamped exactly at ``end`` belongs to the next window. Consecutive
windows (a schedule's runs, the slices of a backfill) therefore tile time with no gap and no overlap.

Plain datetime arithmetic, no Feast: the operators import ``resolve_window`` at DAG parse time (outside
``core.features``, whose other modules a parse does not need).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from mlops_provider.core.errors import MaterializationWindowError


@dataclass(frozen=True)
class MaterializationWindow:
    """A half-open time range of event timestamps, ``[start, end)``: ``start`` included, ``end`` excluded
    (like Airflow's data intervals). ``start == end`` is the empty window."""

    start: datetime
    end: datetime

    @property
    def empty(self) -> bool:
        """True when no instant lies in the window (``start == end``)."""
        return self.end <= self.start

    def contains(self, moment: datetime) -> bool:
        """Whether a row stamped at ``moment`` (aware, or naive UTC) belongs to this window."""
        return self.start <= to_utc(moment, name="moment") < self.end

    def to_dict(self) -> dict[str, str]:
        return {"window_start": self.start.isoformat(), "window_end": self.end.isoformat()}

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


def to_utc(value: Any, *, name: str, allow_naive: bool = True) -> datetime:
    """A timezone-aware UTC ``datetime`` from a datetime, pendulum/pandas timestamp or ISO 8601 string.

    Naive values are taken as UTC (Airflow's data intervals are always aware), or refused with
    ``allow_naive=False``: what a user typed without a time zone is ambiguous.
    """
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise MaterializationWindowError(
                f"{name} is empty; give an ISO 8601 timestamp such as 2026-01-01T00:00:00Z."
            )
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        except ValueError:
            raise MaterializationWindowError(
                f"{name}={text!r} is not an ISO 8601 timestamp; use e.g. 2026-01-01T00:00:00+00:00 or a "
                "template such as '{{ data_interval_start }}'."
            ) from None
    elif hasattr(value, "to_pydatetime"):  # pandas.Timestamp
        value = value.to_pydatetime()
    if not isinstance(value, datetime):
        raise MaterializationWindowError(
            f"{name}={value!r} is a {type(value).__name__}, not a timestamp; pass a datetime or an ISO 8601 string."
        )
    if value.tzinfo is None:
        if not allow_naive:
            raise MaterializationWindowError(
                f"{name}={value.isoformat()!r} has no time zone, so which instant it means is a guess; add one, "
                f"e.g. {value.isoformat()}+00:00 for UTC."
            )
        return value.replace(tzinfo=timezone.utc)
    utc = value.astimezone(timezone.utc)
    # A plain datetime, not pendulum's subclass: pendulum's arithmetic (a start plus a share of the window)
    # gives naive results, which would print without their time zone.
    return datetime(utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond, timezone.utc)


def resolve_window(
    window_start: Any = None,
    window_end: Any = None,
    *,
    default_start: Any = None,
    default_end: Any = None,
    allow_naive: bool = True,
) -> MaterializationWindow:
    """The window to materialise, ``[start, end)``: explicit bounds when given, else the defaults (a task's
    data interval, which Airflow defines the same way). Explicit equal bounds give the empty window."""
    start_value = window_start if window_start not in (None, "") else default_start
    end_value = window_end if window_end not in (None, "") else default_end
    if start_value is None or end_value is None:
        missing = " and ".join(n for n, v in (("window_start", start_value), ("window_end", end_value)) if v is None)
        raise MaterializationWindowError(
            f"No {missing}: the run has no data interval (e.g. a manual run of an unscheduled DAG). Pass "
            "window_start and window_end, or schedule the DAG so that each run has a data interval."
        )
    start = to_utc(start_value, name="window_start")
    end = to_utc(end_value, name="window_end")
    if start == end and window_start in (None, "") and window_end in (None, ""):
        raise MaterializationWindowError(
            f"The run's data interval is empty ({start.isoformat()} .. {end.isoformat()}): Airflow 3 runs cron "
            "and timedelta schedules with trigger timetables, whose data interval is a single instant. Use a "
            "timetable with data intervals, e.g. schedule=CronDataIntervalTimetable('@daily', timezone='UTC') "
            "(or [scheduler] create_cron_data_intervals = True), or pass window_start and window_end, e.g. "
            "'{{ (logical_date - macros.timedelta(days=1)).isoformat() }}' and '{{ logical_date.isoformat() }}'."
        )
    if end < start:
        raise MaterializationWindowError(
            f"The window ends before it starts: window_end {end.isoformat()} < window_start {start.isoformat()}. "
            "Swap them, or check the templates that produce them."
        )
    if not allow_naive:  # after the order check, which says more about a window given the wrong way round
        to_utc(start_value, name="window_start", allow_naive=False)
        to_utc(end_value, name="window_end", allow_naive=False)
    return MaterializationWindow(start, end)


def split_window(
    window: MaterializationWindow,
    *,
    slices: int | None = None,
    slice_length: timedelta | None = None,
) -> list[MaterializationWindow]:
    """Cut ``window`` into consecutive slices: ``slices`` equal parts, or parts of ``slice_length`` (the last
    one shorter). The slices tile ``[start, end)`` exactly: each one ends where the next begins, and as
    windows are half-open a row stamped exactly on a boundary belongs to the later slice only (every row of
    the window to exactly one slice). Bounds are whole microseconds (``datetime`` precision)."""
    if (slices is None) == (slice_length is None):
        raise MaterializationWindowError("Give exactly one of slices (a count) or slice_length (a timedelta).")
    span = window.end - window.start
    if span <= timedelta(0):
        return [window]
    if slices is not None:
        if int(slices) < 1:
            raise MaterializationWindowError(f"slices={slices} must be at least 1.")
        count = int(slices)
        bounds = [window.start + span * i / count for i in range(count)] + [window.end]
    else:
        if not isinstance(slice_length, timedelta) or slice_length <= timedelta(0):
            raise MaterializationWindowError(f"slice_length={slice_length!r} must be a positive timedelta.")
        bounds = []
        cursor = window.start
        while cursor < window.end:
            bounds.append(cursor)
            cursor += slice_length
        bounds.append(window.end)
    return [MaterializationWindow(a, b) for a, b in zip(bounds, bounds[1:], strict=False)]
