"""A baseline expectation suite inferred from reference data (GX 1.x dropped its data assistants).

The rules, with their defaults in ``InferenceSettings``:

- every reference column must exist (``expect_column_to_exist``); new columns are allowed;
- each column keeps its type family (``expect_column_values_to_be_in_type_list``: integers stay integers,
  floats accept floats and integers, booleans stay booleans, text stays ``str``; naive and time-zone-aware
  datetimes use ``expect_column_values_to_be_of_type`` with ``datetime64`` / ``Timestamp`` because GX's
  type-list check cannot express them);
- a column without nulls in the reference must have none (``expect_column_values_to_not_be_null``);
- a text, categorical or integer column with at most ``max_categories`` (20) distinct values, each seen in at
  least ``min_category_rows`` (5) reference rows, keeps that value set (``expect_column_values_to_be_in_set``);
  a value seen fewer times suggests an open-ended column, so no set is inferred for it. Integers whose values
  form an unbroken run of more than two (counts, scales: 0..7 support calls) get a range instead, since the
  next value up is plausible; flags (0/1) and codes with gaps (10, 20, 40) keep their set;
- other numeric columns stay within the reference range widened by ``range_tolerance`` (0.2, i.e. 20% of
  ``max - min``) on each side (``expect_column_values_to_be_between``); integer bounds are rounded outwards,
  and a column never negative in the reference keeps a lower bound of at least 0. A constant column is
  widened by ``range_tolerance`` times its absolute value (at least ``range_tolerance``). Identifiers get no
  range, since new data brings new ids: integer columns named ``id``, ``key``, ``*_id``, ``*_key``, ``*Id``,
  or whose reference values are all distinct;
- datetime columns get no range (new partitions are later than the reference by design);
- the row count lies within ``[max(1, N / row_count_factor), N * row_count_factor]`` for ``N`` reference
  rows (``row_count_factor`` 10); ``row_count_factor=None`` only requires at least one row.

``InferenceSettings`` and the ``DEFAULT_*`` values need neither GX nor pandas: operators build them at DAG
parse time.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from mlops_provider.core.errors import ConfigurationError, EmptyDatasetError
from mlops_provider.core.validation._common import _json_safe, _short
from mlops_provider.core.validation.suites import ExpectationSuiteSpec

if TYPE_CHECKING:
    import pandas as pd

# Inference defaults (documented in docs/operators/validation.md and the module docstring).
DEFAULT_RANGE_TOLERANCE = 0.2
DEFAULT_MAX_CATEGORIES = 20
DEFAULT_MIN_CATEGORY_ROWS = 5
DEFAULT_ROW_COUNT_FACTOR = 10.0

INTEGER_TYPES = [
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "Int8Dtype", "Int16Dtype", "Int32Dtype", "Int64Dtype", "UInt8Dtype", "UInt16Dtype", "UInt32Dtype", "UInt64Dtype",
]  # fmt: skip
FLOAT_TYPES = ["float16", "float32", "float64", "Float32Dtype", "Float64Dtype", *INTEGER_TYPES]
BOOLEAN_TYPES = ["bool", "BooleanDtype"]
TEXT_TYPES = ["str", "StringDtype"]
# The type expectation inferred per column kind. GX's type-list check compares pandas dtypes, which cannot
# name datetimes of any unit or time zone, nor categoricals; its of-type check compares the dtype's scalar
# type, which can.
_TYPE_CHECKS: dict[str, tuple[str, dict[str, Any]]] = {
    "integer": ("expect_column_values_to_be_in_type_list", {"type_list": INTEGER_TYPES}),
    "float": ("expect_column_values_to_be_in_type_list", {"type_list": FLOAT_TYPES}),
    "boolean": ("expect_column_values_to_be_in_type_list", {"type_list": BOOLEAN_TYPES}),
    "text": ("expect_column_values_to_be_in_type_list", {"type_list": TEXT_TYPES}),
    "datetime": ("expect_column_values_to_be_of_type", {"type_": "datetime64"}),
    "datetime_tz": ("expect_column_values_to_be_of_type", {"type_": "Timestamp"}),
    "categorical": ("expect_column_values_to_be_of_type", {"type_": "CategoricalDtypeType"}),
}


@dataclass(frozen=True)
class InferenceSettings:
    """How a baseline suite is inferred from reference data (see the module docstring for the rules)."""

    range_tolerance: float = DEFAULT_RANGE_TOLERANCE
    max_categories: int = DEFAULT_MAX_CATEGORIES
    min_category_rows: int = DEFAULT_MIN_CATEGORY_ROWS
    row_count_factor: float | None = DEFAULT_ROW_COUNT_FACTOR

    def __post_init__(self) -> None:
        if not isinstance(self.range_tolerance, (int, float)) or not 0 <= self.range_tolerance < 100:
            raise ConfigurationError(
                f"range_tolerance={self.range_tolerance!r} is not a number >= 0; give the share of the observed "
                f"range added on each side (default {DEFAULT_RANGE_TOLERANCE})."
            )
        if not isinstance(self.max_categories, int) or self.max_categories < 0:
            raise ConfigurationError(
                f"max_categories={self.max_categories!r} is not an integer >= 0; give the largest number of "
                f"distinct values that makes a column categorical (default {DEFAULT_MAX_CATEGORIES}, 0 disables)."
            )
        if not isinstance(self.min_category_rows, int) or self.min_category_rows < 1:
            raise ConfigurationError(
                f"min_category_rows={self.min_category_rows!r} is not an integer >= 1 "
                f"(default {DEFAULT_MIN_CATEGORY_ROWS})."
            )
        if self.row_count_factor is not None and (
            not isinstance(self.row_count_factor, (int, float)) or self.row_count_factor < 1
        ):
            raise ConfigurationError(
                f"row_count_factor={self.row_count_factor!r} must be a number >= 1 (default "
                f"{DEFAULT_ROW_COUNT_FACTOR:g}), or None to only require at least one row."
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def infer_suite(
    reference: pd.DataFrame,
    settings: InferenceSettings | None = None,
    *,
    name: str = "inferred_suite",
    reference_uri: str = "reference data",
) -> ExpectationSuiteSpec:
    """A baseline suite that the reference data (and new data like it) meets; rules in the module docstring."""
    settings = settings or InferenceSettings()
    if len(reference.columns) == 0 or len(reference) == 0:
        raise EmptyDatasetError(
            f"Cannot infer an expectation suite from {reference_uri!r}: it has no rows. Point infer_from at a "
            "reference dataset with typical data (e.g. a recent good partition)."
        )
    rows = len(reference)
    expectations = [_row_count_expectation(rows, settings)]
    for column in reference.columns:
        expectations.extend(_infer_column(reference[column], str(column), settings))
    spec = ExpectationSuiteSpec(
        name=name,
        expectations=expectations,
        source=f"inferred from {reference_uri}",
        meta={
            "mlops_inference": {
                "reference_uri": reference_uri,
                "reference_rows": rows,
                "inferred_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "settings": settings.to_dict(),
            }
        },
        notes=(
            f"Baseline inferred from {reference_uri} ({rows:,} rows) by airflow-provider-mlops. Review the "
            "bounds and value sets, then commit this file and pass it as expectation_suite."
        ),
    )
    spec.to_gx()
    return spec


def _row_count_expectation(rows: int, settings: InferenceSettings) -> dict[str, Any]:
    if settings.row_count_factor is None:
        kwargs: dict[str, Any] = {"min_value": 1, "max_value": None}
        why = "at least one row"
    else:
        factor = settings.row_count_factor
        kwargs = {"min_value": max(1, math.floor(rows / factor)), "max_value": math.ceil(rows * factor)}
        why = f"reference has {rows:,} rows; bounds are rows / {factor:g} and rows * {factor:g}"
    return _expectation("expect_table_row_count_to_be_between", kwargs, why)


def _expectation(kind: str, kwargs: dict[str, Any], why: str) -> dict[str, Any]:
    return {"type": kind, "kwargs": _json_safe(kwargs), "meta": {"inferred": why}}


def _column_kind(series: pd.Series) -> str:
    from pandas.api import types

    dtype = series.dtype
    if isinstance(dtype, types.CategoricalDtype):
        return "categorical"
    if types.is_bool_dtype(dtype):
        return "boolean"
    if types.is_integer_dtype(dtype):
        return "integer"
    if types.is_float_dtype(dtype):
        return "float"
    if isinstance(dtype, types.DatetimeTZDtype):
        return "datetime_tz"
    if types.is_datetime64_dtype(dtype):
        return "datetime"
    if types.is_string_dtype(dtype) or types.is_object_dtype(dtype):
        non_null = series.dropna()
        if len(non_null) and non_null.map(type).eq(str).all():
            return "text"
        return "object"
    return "other"


def _infer_column(series: pd.Series, column: str, settings: InferenceSettings) -> list[dict[str, Any]]:
    kind = _column_kind(series)
    found = [_expectation("expect_column_to_exist", {"column": column}, "present in the reference")]
    type_check = _TYPE_CHECKS.get(kind)
    if type_check:
        found.append(
            _expectation(type_check[0], {"column": column, **type_check[1]}, f"reference dtype {series.dtype}")
        )
    non_null = series.dropna()
    if len(non_null) == len(series):
        found.append(
            _expectation("expect_column_values_to_not_be_null", {"column": column}, "no nulls in the reference")
        )
    if non_null.empty:
        return found
    value_set = _inferred_value_set(non_null, kind, settings)
    if value_set is not None:
        found.append(
            _expectation(
                "expect_column_values_to_be_in_set",
                {"column": column, "value_set": value_set},
                f"{len(value_set)} distinct values, each in >= {settings.min_category_rows} reference rows",
            )
        )
    elif kind == "float" or (kind == "integer" and not _looks_like_identifier(non_null, column)):
        found.append(_range_expectation(non_null, column, kind, settings))
    return found


def _looks_like_identifier(non_null: pd.Series, column: str) -> bool:
    """Ids and counters: new data brings new values, so a range learnt from the reference would block it."""
    lowered = column.lower()
    if lowered in ("id", "key") or lowered.endswith(("_id", "_key")) or column.endswith("Id"):
        return True
    return bool(non_null.is_unique) and len(non_null) > 1


def _inferred_value_set(non_null: pd.Series, kind: str, settings: InferenceSettings) -> list[Any] | None:
    if kind not in ("text", "categorical", "integer") or settings.max_categories == 0:
        return None
    distinct = non_null.nunique()
    if distinct > settings.max_categories:
        return None
    if kind == "integer" and distinct > 2 and int(non_null.max()) - int(non_null.min()) + 1 == distinct:
        return None  # a count or a scale (0..7 support calls): the next value up is plausible, so a range fits
    counts = non_null.value_counts()
    if counts.min() < settings.min_category_rows:
        return None
    return sorted((_json_safe(value) for value in counts.index), key=lambda v: (type(v).__name__, v))


def _range_expectation(non_null: pd.Series, column: str, kind: str, settings: InferenceSettings) -> dict[str, Any]:
    low, high = float(non_null.min()), float(non_null.max())
    span = high - low
    margin = settings.range_tolerance * (span if span > 0 else max(abs(high), 1.0))
    min_value, max_value = low - margin, high + margin
    if low >= 0:
        min_value = max(min_value, 0.0)
    if kind == "integer":
        min_value, max_value = math.floor(min_value), math.ceil(max_value)
    else:
        min_value, max_value = _round_outwards(min_value, max_value)
    why = f"reference range [{_short(low)}, {_short(high)}] widened by {settings.range_tolerance:g} of its span"
    return _expectation(
        "expect_column_values_to_be_between", {"column": column, "min_value": min_value, "max_value": max_value}, why
    )


def _round_outwards(low: float, high: float) -> tuple[float, float]:
    """Readable bounds: 6 significant digits, rounded away from the data."""

    def digits(value: float) -> int:
        return 6 - int(math.floor(math.log10(abs(value)))) - 1 if value else 6

    rounded_low = math.floor(low * 10 ** digits(low)) / 10 ** digits(low)
    rounded_high = math.ceil(high * 10 ** digits(high)) / 10 ** digits(high)
    return rounded_low, rounded_high
