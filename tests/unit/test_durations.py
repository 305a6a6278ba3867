"""One reading of durations for every operator argument that takes one (soak times, label delays, slices)."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from mlops_provider.core.durations import as_duration
from mlops_provider.core.errors import ConfigurationError


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (timedelta(hours=6), "seconds", timedelta(hours=6)),
        (90, "seconds", timedelta(seconds=90)),
        (" 90 ", "seconds", timedelta(seconds=90)),
        (30, "days", timedelta(days=30)),
        ("30", "days", timedelta(days=30)),
        (0.5, "days", timedelta(hours=12)),
        ("6h", "days", timedelta(hours=6)),
        ("1 day", "seconds", timedelta(days=1)),
        ("PT6H", "seconds", timedelta(hours=6)),
        (0, "seconds", timedelta(0)),
    ],
)
def test_a_duration_is_a_timedelta_a_number_of_units_or_text(value, unit, expected):
    assert as_duration(value, "soak_time", unit=unit) == expected


@pytest.mark.parametrize(
    ("value", "positive", "message"),
    [
        ("a day", False, r"soak_time='a day' is not a duration; give a timedelta such as .*, a number of seconds"),
        (True, False, "soak_time=True is not a duration"),
        (math.nan, False, "soak_time=nan is not a duration"),
        ([1], False, r"soak_time=\[1\] is not a duration"),
        ("", False, "soak_time='' is not a duration"),
        (-1, False, "soak_time=-1 is negative; give a duration of 0 or more"),
        (timedelta(hours=-1), False, "is negative"),
        (0, True, "soak_time=0 is not positive; give a duration above 0"),
        ("0s", True, "is not positive"),
    ],
)
def test_a_bad_duration_names_the_argument_and_the_forms_it_takes(value, positive, message):
    with pytest.raises(ConfigurationError, match=message):
        as_duration(value, "soak_time", positive=positive)
