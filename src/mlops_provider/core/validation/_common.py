"""Helpers shared by the validation modules: JSON-safe values, short renderings, importing GX quietly.

No GX or pandas at import time.
"""

from __future__ import annotations

import json
import logging
import math
import os
from datetime import date, datetime
from typing import Any

_MAX_SHOWN_CHARS = 120


def _import_gx() -> Any:
    # GX reads the switch when it is imported and again per context; analytics stays off either way.
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    import great_expectations as gx

    # GX logs every (empty) datasource load of each new context at INFO; the task log should show the verdict.
    logging.getLogger("great_expectations.datasource.fluent.config").setLevel(logging.WARNING)

    return gx


def _json_safe(value: Any) -> Any:
    """Plain JSON values from numpy/pandas scalars, timestamps and containers (NaN becomes None)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return _json_safe(item())
        except (TypeError, ValueError):
            pass
    isoformat = getattr(value, "isoformat", None)  # pandas Timestamp (NaT has isoformat too)
    if callable(isoformat):
        text = isoformat()
        return None if text == "NaT" else text
    return str(value)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= _MAX_SHOWN_CHARS else text[: _MAX_SHOWN_CHARS - 3] + "..."
