"""Window arithmetic as tables: ``to_utc``, ``resolve_window``, ``split_window`` and ``merge_intervals``.

Naive datetimes and ISO strings without an offset are taken as UTC (Airflow's data intervals are always
aware); every result is aware and in UTC.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pendulum
import pytest

from mlops_provider.core.errors import MaterializationWindowError, MlopsError
from mlops_provider.core.features import (
    MaterializationWindow,
    merge_intervals,
    resolve_window,
    split_window,
    to_utc,
)

UTC = timezone.utc
PLUS2 = timezone(timedelta(hours=2))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- to_utc -------------------------------------------------------------------------------------------------

TO_UTC_CASES = [
    ("iso-z", "2026-01-01T00:00:00Z", utc(2026, 1, 1)),
    ("iso-z-fraction", "2026-01-01T00:00:00.250Z", utc(2026, 1, 1, 0, 0, 0, 250000)),
    ("iso-utc-offset", "2026-01-01T00:00:00+00:00", utc(2026, 1, 1)),
    ("iso-other-offset-converted", "2026-01-01T02:00:00+02:00", utc(2026, 1, 1)),
    ("iso-negative-offset-crosses-day", "2025-12-31T19:00:00-05:00", utc(2026, 1, 1)),
    ("iso-naive-taken-as-utc", "2026-01-01T12:30:00", utc(2026, 1, 1, 12, 30)),
    ("iso-date-only-is-midnight-utc", "2026-01-01", utc(2026, 1, 1)),
    ("iso-space-separator", "2026-01-01 06:00:00+00:00", utc(2026, 1, 1, 6)),
    ("iso-surrounding-whitespace", "  2026-01-01T00:00:00Z\n", utc(2026, 1, 1)),
    ("datetime-naive-taken-as-utc", datetime(2026, 1, 1, 12, 30), utc(2026, 1, 1, 12, 30)),
    ("datetime-utc", utc(2026, 1, 1), utc(2026, 1, 1)),
    ("datetime-other-tz-converted", datetime(2026, 1, 1, 2, tzinfo=PLUS2), utc(2026, 1, 1)),
    ("pendulum-europe-paris", pendulum.datetime(2026, 1, 1, tz="Europe/Paris"), utc(2025, 12, 31, 23)),
    ("pendulum-utc", pendulum.datetime(2026, 7, 1, 6, tz="UTC"), utc(2026, 7, 1, 6)),
]


@pytest.mark.parametrize(("value", "expected"), [pytest.param(*case[1:], id=case[0]) for case in TO_UTC_CASES])
def test_to_utc(value, expected):
    result = to_utc(value, name="window_start")
    assert result == expected
    assert result.utcoffset() == timedelta(0)
    # the wall clock in UTC, not only the same instant
    assert result.replace(tzinfo=None) == expected.replace(tzinfo=None)


def test_to_utc_pandas_timestamps():
    pd = pytest.importorskip("pandas")
    assert to_utc(pd.Timestamp("2026-01-01T00:00:00"), name="t") == utc(2026, 1, 1)
    paris = to_utc(pd.Timestamp("2026-01-01T00:00:00", tz="Europe/Paris"), name="t")
    assert paris == utc(2025, 12, 31, 23)
    assert type(paris) is datetime and paris.utcoffset() == timedelta(0)


TO_UTC_ERRORS = [
    ("empty", "", r"^window_start is empty; give an ISO 8601 timestamp"),
    ("blank", "   ", r"^window_start is empty"),
    ("words", "yesterday", r"^window_start='yesterday' is not an ISO 8601 timestamp"),
    ("unrendered-template", "{{ data_interval_start }}", r"is not an ISO 8601 timestamp"),
    ("bad-month", "2026-13-01T00:00:00Z", r"^window_start='2026-13-01T00:00:00Z' is not an ISO 8601 timestamp"),
    ("int", 1767225600, r"^window_start=1767225600 is a int, not a timestamp"),
    ("float", 1.5, r"is a float, not a timestamp"),
    ("date", date(2026, 1, 1), r"^window_start=datetime\.date\(2026, 1, 1\) is a date, not a timestamp"),
    ("none", None, r"^window_start=None is a NoneType, not a timestamp"),
]


@pytest.mark.parametrize(("value", "message"), [pytest.param(*case[1:], id=case[0]) for case in TO_UTC_ERRORS])
def test_to_utc_rejects(value, message):
    with pytest.raises(MaterializationWindowError, match=message):
        to_utc(value, name="window_start")


def test_to_utc_names_the_argument():
    with pytest.raises(MaterializationWindowError, match=r"^fresh_until='soon'"):
        to_utc("soon", name="fresh_until")


def test_window_errors_are_mlops_value_errors():
    with pytest.raises(MlopsError):
        to_utc("x", name="t")
    with pytest.raises(ValueError):
        to_utc("x", name="t")


# -- resolve_window -----------------------------------------------------------------------------------------

INTERVAL = {"default_start": utc(2026, 1, 1), "default_end": utc(2026, 1, 2)}

RESOLVE_CASES = [
    ("explicit-strings", ("2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"), {}, (utc(2026, 3, 1), utc(2026, 3, 2))),
    (
        "explicit-naive-strings-utc",
        ("2026-03-01T00:00:00", "2026-03-01T06:00:00"),
        {},
        (utc(2026, 3, 1), utc(2026, 3, 1, 6)),
    ),
    (
        "explicit-offsets-converted",
        ("2026-03-01T02:00:00+02:00", "2026-03-01T03:00:00+02:00"),
        {},
        (utc(2026, 3, 1), utc(2026, 3, 1, 1)),
    ),
    ("explicit-datetimes", (datetime(2026, 3, 1), utc(2026, 3, 2)), {}, (utc(2026, 3, 1), utc(2026, 3, 2))),
    (
        "explicit-wins-over-interval",
        ("2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"),
        INTERVAL,
        (utc(2026, 3, 1), utc(2026, 3, 2)),
    ),
    ("data-interval-default", (None, None), INTERVAL, (utc(2026, 1, 1), utc(2026, 1, 2))),
    ("empty-strings-mean-default", ("", ""), INTERVAL, (utc(2026, 1, 1), utc(2026, 1, 2))),
    ("start-explicit-end-default", ("2026-01-01T12:00:00Z", None), INTERVAL, (utc(2026, 1, 1, 12), utc(2026, 1, 2))),
    ("end-explicit-start-default", ("", "2026-01-01T06:00:00Z"), INTERVAL, (utc(2026, 1, 1), utc(2026, 1, 1, 6))),
    (
        "pendulum-interval",
        (None, None),
        {
            "default_start": pendulum.datetime(2026, 1, 1, tz="Europe/Paris"),
            "default_end": pendulum.datetime(2026, 1, 2, tz="Europe/Paris"),
        },
        (utc(2025, 12, 31, 23), utc(2026, 1, 1, 23)),
    ),
    (
        "explicit-equal-bounds-allowed",
        ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
        {},
        (utc(2026, 1, 1), utc(2026, 1, 1)),
    ),
    ("one-explicit-equal-bound-allowed", ("2026-01-02T00:00:00Z", None), INTERVAL, (utc(2026, 1, 2), utc(2026, 1, 2))),
]


@pytest.mark.parametrize(("bounds", "defaults", "expected"), [pytest.param(*c[1:], id=c[0]) for c in RESOLVE_CASES])
def test_resolve_window(bounds, defaults, expected):
    window = resolve_window(*bounds, **defaults)
    assert (window.start, window.end) == expected
    assert window.start.utcoffset() == window.end.utcoffset() == timedelta(0)
    assert window.to_dict() == {"window_start": expected[0].isoformat(), "window_end": expected[1].isoformat()}


RESOLVE_ERRORS = [
    ("nothing", (None, None), {}, r"^No window_start and window_end: the run has no data interval"),
    ("empty-strings-no-default", ("", ""), {}, r"^No window_start and window_end:"),
    ("no-start", (None, "2026-01-02T00:00:00Z"), {}, r"^No window_start: "),
    ("no-end", ("2026-01-01T00:00:00Z", None), {"default_start": utc(2026, 1, 1)}, r"^No window_end: "),
    (
        "end-before-start",
        ("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z"),
        {},
        r"window_end 2026-01-01T00:00:00\+00:00 < window_start 2026-01-02T00:00:00\+00:00",
    ),
    (
        "end-before-start-by-offset",
        ("2026-01-01T01:00:00+00:00", "2026-01-01T02:00:00+02:00"),
        {},
        r"window_end 2026-01-01T00:00:00\+00:00 < window_start 2026-01-01T01:00:00\+00:00",
    ),
    (
        "end-before-start-from-defaults",
        (None, None),
        {"default_start": utc(2026, 1, 2), "default_end": utc(2026, 1, 1)},
        r"The window ends before it starts",
    ),
    (
        "empty-data-interval",
        (None, None),
        {"default_start": utc(2026, 1, 1), "default_end": utc(2026, 1, 1)},
        r"^The run's data interval is empty \(2026-01-01T00:00:00\+00:00 \.\. 2026-01-01T00:00:00\+00:00\)",
    ),
    ("bad-start-string", ("last week", "2026-01-01T00:00:00Z"), {}, r"^window_start='last week' is not an ISO 8601"),
    ("bad-end-type", ("2026-01-01T00:00:00Z", 20260102), {}, r"^window_end=20260102 is a int, not a timestamp"),
    ("blank-default", (None, None), {"default_start": " ", "default_end": utc(2026, 1, 2)}, r"^window_start is empty"),
]


@pytest.mark.parametrize(("bounds", "defaults", "message"), [pytest.param(*c[1:], id=c[0]) for c in RESOLVE_ERRORS])
def test_resolve_window_rejects(bounds, defaults, message):
    with pytest.raises(MaterializationWindowError, match=message):
        resolve_window(*bounds, **defaults)


# -- split_window -------------------------------------------------------------------------------------------

DAY = MaterializationWindow(utc(2026, 1, 1), utc(2026, 1, 2))
TEN_SECONDS = MaterializationWindow(utc(2026, 1, 1), utc(2026, 1, 1, 0, 0, 10))
H = timedelta(hours=1)

SPLIT_CASES = [
    ("one-slice", DAY, {"slices": 1}, [(0, 24)]),
    ("four-slices", DAY, {"slices": 4}, [(0, 6), (6, 12), (12, 18), (18, 24)]),
    ("three-slices", DAY, {"slices": 3}, [(0, 8), (8, 16), (16, 24)]),
    ("slice-count-as-rendered-string", DAY, {"slices": "2"}, [(0, 12), (12, 24)]),
    ("length-divides-exactly", DAY, {"slice_length": 6 * H}, [(0, 6), (6, 12), (12, 18), (18, 24)]),
    ("length-last-piece-shorter", DAY, {"slice_length": 10 * H}, [(0, 10), (10, 20), (20, 24)]),
    ("length-equal-to-window", DAY, {"slice_length": 24 * H}, [(0, 24)]),
    ("length-longer-than-window", DAY, {"slice_length": 48 * H}, [(0, 24)]),
    (
        "more-slices-than-hours",
        MaterializationWindow(utc(2026, 1, 1), utc(2026, 1, 1, 2)),
        {"slices": 4},
        [(0, 0.5), (0.5, 1), (1, 1.5), (1.5, 2)],
    ),
]


def hours(window: MaterializationWindow, origin: datetime) -> tuple[float, float]:
    return ((window.start - origin) / H, (window.end - origin) / H)


@pytest.mark.parametrize(("window", "arguments", "expected"), [pytest.param(*c[1:], id=c[0]) for c in SPLIT_CASES])
def test_split_window(window, arguments, expected):
    pieces = split_window(window, **arguments)
    assert [hours(piece, window.start) for piece in pieces] == expected
    assert_contiguous_cover(window, pieces)


@pytest.mark.parametrize("count", [3, 7])
def test_split_into_uneven_microseconds_stays_contiguous(count):
    """10 s / 3 is not a whole number of microseconds: the bounds round, the pieces still tile the window."""
    pieces = split_window(TEN_SECONDS, slices=count)
    assert len(pieces) == count
    assert_contiguous_cover(TEN_SECONDS, pieces)
    lengths = {piece.end - piece.start for piece in pieces}
    assert max(lengths) - min(lengths) <= timedelta(microseconds=1)


def test_split_by_length_of_ten_seconds_into_three_second_pieces():
    pieces = split_window(TEN_SECONDS, slice_length=timedelta(seconds=3))
    assert [(p.end - p.start).total_seconds() for p in pieces] == [3, 3, 3, 1]
    assert_contiguous_cover(TEN_SECONDS, pieces)


@pytest.mark.parametrize("arguments", [{"slices": 5}, {"slice_length": H}], ids=["slices", "slice_length"])
def test_split_empty_window_is_itself(arguments):
    instant = MaterializationWindow(utc(2026, 1, 1), utc(2026, 1, 1))
    assert split_window(instant, **arguments) == [instant]


SPLIT_ERRORS = [
    ("neither", {}, r"^Give exactly one of slices \(a count\) or slice_length \(a timedelta\)\.$"),
    ("both", {"slices": 2, "slice_length": H}, r"^Give exactly one of slices"),
    ("zero-slices", {"slices": 0}, r"^slices=0 must be at least 1\.$"),
    ("negative-slices", {"slices": -3}, r"^slices=-3 must be at least 1\.$"),
    ("zero-length", {"slice_length": timedelta(0)}, r"^slice_length=datetime\.timedelta\(0\) must be a positive"),
    ("negative-length", {"slice_length": -H}, r"^slice_length=datetime\.timedelta\(days=-1, seconds=82800\) must be"),
    ("length-as-seconds", {"slice_length": 3600}, r"^slice_length=3600 must be a positive timedelta\.$"),
    ("length-as-string", {"slice_length": "1h"}, r"^slice_length='1h' must be a positive timedelta\.$"),
]


@pytest.mark.parametrize("arguments, message", [pytest.param(*c[1:], id=c[0]) for c in SPLIT_ERRORS])
def test_split_window_rejects(arguments, message):
    with pytest.raises(MaterializationWindowError, match=message):
        split_window(DAY, **arguments)


def assert_contiguous_cover(window: MaterializationWindow, pieces: list[MaterializationWindow]) -> None:
    assert pieces, "no pieces"
    assert pieces[0].start == window.start
    assert pieces[-1].end == window.end
    for before, after in zip(pieces, pieces[1:], strict=False):
        assert before.end == after.start, f"gap or overlap between {before} and {after}"
    assert all(piece.start < piece.end for piece in pieces)
    assert sum((piece.end - piece.start for piece in pieces), timedelta(0)) == window.end - window.start


# -- merge_intervals ----------------------------------------------------------------------------------------

MERGE_CASES = [
    ("none", [], []),
    ("one", [(0, 6)], [(0, 6)]),
    ("disjoint-sorted", [(12, 18), (0, 6)], [(0, 6), (12, 18)]),
    ("touching-slices-merge", [(0, 6), (6, 12), (12, 18)], [(0, 18)]),
    ("touching-unsorted", [(12, 18), (0, 6), (6, 12)], [(0, 18)]),
    ("overlapping", [(0, 8), (6, 12)], [(0, 12)]),
    ("contained", [(0, 24), (6, 12)], [(0, 24)]),
    ("contained-first-by-start", [(6, 12), (0, 24), (30, 36)], [(0, 24), (30, 36)]),
    ("gap-of-one-hour-kept", [(0, 6), (7, 12)], [(0, 6), (7, 12)]),
    ("duplicates", [(0, 6), (0, 6)], [(0, 6)]),
    ("same-start-longer-wins", [(0, 6), (0, 9)], [(0, 9)]),
    ("instant-inside", [(0, 6), (3, 3)], [(0, 6)]),
]
ORIGIN = utc(2026, 1, 1)


def at(hour: float) -> datetime:
    return ORIGIN + hour * H


@pytest.mark.parametrize(("intervals", "expected"), [pytest.param(*c[1:], id=c[0]) for c in MERGE_CASES])
def test_merge_intervals(intervals, expected):
    merged = merge_intervals([(at(a), at(b)) for a, b in intervals])
    assert merged == [(at(a), at(b)) for a, b in expected]


def test_merge_intervals_converts_naive_strings_and_offsets_to_utc():
    merged = merge_intervals(
        [
            ("2026-01-01T02:00:00+02:00", "2026-01-01T06:00:00"),  # 00:00Z .. 06:00 (naive: UTC)
            (datetime(2026, 1, 1, 6), datetime(2026, 1, 1, 14, tzinfo=PLUS2)),  # 06:00Z .. 12:00Z: touches
            (pendulum.datetime(2026, 1, 2, tz="UTC"), "2026-01-02T01:00:00Z"),
        ]
    )
    assert merged == [(utc(2026, 1, 1), utc(2026, 1, 1, 12)), (utc(2026, 1, 2), utc(2026, 1, 2, 1))]
    assert all(bound.utcoffset() == timedelta(0) for span in merged for bound in span)


def test_merge_intervals_rejects_bad_bounds():
    with pytest.raises(MaterializationWindowError, match=r"^interval end='later' is not an ISO 8601 timestamp"):
        merge_intervals([(utc(2026, 1, 1), "later")])
