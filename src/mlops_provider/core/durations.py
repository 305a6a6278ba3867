"""Durations given as arguments: one reading for soak times, label delays, slice lengths and poll intervals."""

from __future__ import annotations

import math
import numbers
from datetime import timedelta
from typing import Any

from mlops_provider.core.errors import ConfigurationError


def as_duration(
    value: Any, name: str, *, unit: str = "seconds", positive: bool = False, example: str = "timedelta(hours=6)"
) -> timedelta:
    """``value`` as a timedelta: a timedelta, a number of ``unit`` (``"seconds"``, ``"days"``...) or its text, or
    text pandas reads as a duration (``"6h"``, ``"1 day"``, ``"PT6H"``); at least zero, or above it with
    ``positive``. ``ConfigurationError`` naming ``name`` and the forms it takes otherwise."""
    given = value
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            value = _duration_text(text)
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
        value = timedelta(**{unit: float(value)})
    if not isinstance(value, timedelta):
        raise ConfigurationError(
            f"{name}={given!r} is not a duration; give a timedelta such as {example}, a number of {unit}, or text "
            "such as '6h' or '1 day'."
        )
    if value < timedelta(0) or (positive and value == timedelta(0)):
        problem, bound = ("not positive", "above 0") if positive else ("negative", "of 0 or more")
        raise ConfigurationError(f"{name}={given!r} is {problem}; give a duration {bound}.")
    return value


def _duration_text(text: str) -> timedelta | None:
    if not text:
        return None
    import pandas as pd

    try:
        parsed = pd.Timedelta(text)
    except ValueError:
        return None
    return None if pd.isna(parsed) else parsed.to_pytimedelta()
