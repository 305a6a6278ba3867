"""A baseline expectation suite inferred from reference data (GX 1.x dropped its data assistants).

The reference may be one partition, a folder of partitions (``dt=2026-01-01/``, ...), a list of partition URIs or
a year of rows in one file; the suite must accept clean data of any partition size (a day, a week, a month).
The rules, with their defaults in ``InferenceSettings``:

- every reference column must exist (``expect_column_to_exist``); new columns are allowed;
- each column keeps its type family (``expect_column_values_to_be_in_type_list``: integers stay integers,
  floats accept floats and integers, booleans stay booleans, text stays ``str``; naive and time-zone-aware
  datetimes use ``expect_column_values_to_be_of_type`` with ``datetime64`` (naive, any unit) / ``Timestamp``
  (time-zone-aware, any zone) because GX's type-list check cannot express them);
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
- time is never pinned, since new partitions are later than the reference by design: datetime columns (naive
  or time-zone-aware) and text columns holding dates (``2026-01-01``, ``2026-01``, ``2026-W02``, ``20260101``,
  ISO date-times) get no range and no value set;
- partition columns (the ``key=value`` folder names ``read_dataset`` turned into columns, listed in
  ``frame.attrs["mlops_partition_columns"]``) describe where rows are stored, not the data: they get no
  expectation at all; they count the reference's partitions;
- the row count (``expect_table_row_count_to_be_between``) is bounded per partition, and the bounds are scaled
  by the number of partitions in the validated data (``fit_row_count``):

  * ``rows_per_partition=(min, max)`` given: those bounds (the user's cadence);
  * else, a partitioned reference: ``[max(1, smallest / row_count_factor), largest * row_count_factor]`` from
    the sizes of its partitions (``row_count_factor`` 10);
  * else (one file, a folder without partition folders, or ``row_count_factor=None``): at least one row,
    since the size of one partition is unknown.

Each expectation's ``meta["inferred"]`` says where its bound came from; the suite's
``meta["mlops_inference"]`` records the reference, its partitions and the columns deliberately left unpinned.

``InferenceSettings`` and the ``DEFAULT_*`` values need neither GX nor pandas: operators build them at DAG
parse time.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from mlops_provider.core.datasets import partition_columns
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

# ``meta`` key of a row-count expectation whose bounds hold per partition: ``{"min_value", "max_value",
# "partition_columns", "source"}``; ``fit_row_count`` scales them to the partitions of the validated data.
ROWS_PER_PARTITION_META = "mlops_rows_per_partition"
_ROW_COUNT = "expect_table_row_count_to_be_between"

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
_TIME_KINDS = ("datetime", "datetime_tz")
# Text that names a day, month, ISO week or instant: partition keys and dates kept as text move forward in time.
_DATE_TEXT = re.compile(
    r"(?:\d{4}-(?:0[1-9]|1[0-2])(?:-(?:0[1-9]|[12]\d|3[01])"
    r"(?:[ T]\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?)?"
    r"|\d{4}-W(?:0[1-9]|[1-4]\d|5[0-3])"
    r"|(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))"
)
# Rows whose value types are collected at once when telling text from mixed object columns.
_TEXT_CHECK_ROWS = 1_000_000
_TIME_NOTE = "moves forward with every new partition, so no range or value set is taken from the reference"


@dataclass(frozen=True)
class InferenceSettings:
    """How a baseline suite is inferred from reference data (see the module docstring for the rules).

    ``rows_per_partition``: ``(min, max)`` rows of one partition (``max`` may be ``None``), the cadence the user
    knows; it replaces the bounds taken from the reference's partition sizes.
    """

    range_tolerance: float = DEFAULT_RANGE_TOLERANCE
    max_categories: int = DEFAULT_MAX_CATEGORIES
    min_category_rows: int = DEFAULT_MIN_CATEGORY_ROWS
    row_count_factor: float | None = DEFAULT_ROW_COUNT_FACTOR
    rows_per_partition: tuple[int, int | None] | None = None

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
        if self.rows_per_partition is not None:
            object.__setattr__(self, "rows_per_partition", _rows_pair(self.rows_per_partition))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rows_pair(value: Any) -> tuple[int, int | None]:
    def whole(number: Any) -> bool:
        return isinstance(number, int) and not isinstance(number, bool) and number >= 0

    if isinstance(value, (list, tuple)) and len(value) == 2 and whole(value[0]):
        low, high = value
        if high is None or (whole(high) and high >= low):
            return int(low), None if high is None else int(high)
    raise ConfigurationError(
        f"rows_per_partition={value!r} is not a (min, max) pair of row counts with 0 <= min <= max (max may be "
        "None); give the rows one partition of your data holds, e.g. (800, 1200) for a day."
    )


def infer_suite(
    reference: pd.DataFrame,
    settings: InferenceSettings | None = None,
    *,
    name: str = "inferred_suite",
    reference_uri: str = "reference data",
) -> ExpectationSuiteSpec:
    """A baseline suite that the reference data (and new data like it) meets; rules in the module docstring.

    Partition columns are read from ``reference.attrs`` (``read_dataset`` records them); pass a frame read
    with ``read_dataset`` to keep them.
    """
    settings = settings or InferenceSettings()
    if len(reference.columns) == 0 or len(reference) == 0:
        raise EmptyDatasetError(
            f"Cannot infer an expectation suite from {reference_uri!r}: it has no rows. Point infer_from at a "
            "reference dataset with typical data (e.g. a recent good partition)."
        )
    rows = len(reference)
    partitions = [column for column in partition_columns(reference) if column in reference.columns]
    sizes = reference.groupby(partitions, dropna=False, observed=True, sort=False).size() if partitions else None
    row_count, partitions_meta = _row_count_expectation(rows, partitions, sizes, settings)
    expectations = [row_count]
    not_pinned: dict[str, str] = {}
    for column in reference.columns:
        if column in partitions:
            not_pinned[str(column)] = "partition column (a folder name): says where rows are stored, not checked"
            continue
        expectations.extend(_infer_column(reference[column], str(column), rows, settings, not_pinned))
    spec = ExpectationSuiteSpec(
        name=name,
        expectations=expectations,
        source=f"inferred from {reference_uri}",
        meta={
            "mlops_inference": {
                "reference_uri": reference_uri,
                "reference_rows": rows,
                "reference_partitions": partitions_meta,
                "not_pinned": not_pinned,
                "inferred_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "settings": settings.to_dict(),
            }
        },
        notes=(
            f"Baseline inferred from {reference_uri} ({rows:,} rows"
            + (f" in {len(sizes):,} partitions by {', '.join(partitions)}" if sizes is not None else "")
            + ") by airflow-provider-mlops. Each expectation's meta says where its bound came from. Review the "
            "bounds and value sets, then commit this file and pass it as expectation_suite."
        ),
    )
    spec.to_gx()
    return spec


def _row_count_expectation(
    rows: int, partitions: list[str], sizes: pd.Series | None, settings: InferenceSettings
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The row-count expectation (bounds per partition where they are known) and the reference's partitions."""
    partitions_meta = None
    low: int
    high: int | None
    if sizes is not None:
        count, smallest, largest = len(sizes), int(sizes.min()), int(sizes.max())
        partitions_meta = {"columns": partitions, "count": count, "min_rows": smallest, "max_rows": largest}
    if settings.rows_per_partition is not None:
        low, high = settings.rows_per_partition
        why = f"given by the user: {_rows_range(low, high)} rows per partition (rows_per_partition)"
        source = "setting"
    elif partitions_meta is not None and settings.row_count_factor is not None:
        factor = settings.row_count_factor
        low, high = max(1, math.floor(smallest / factor)), math.ceil(largest * factor)
        why = (
            f"from {count:,} reference partitions ({', '.join(partitions)}) of "
            f"{_rows_range(smallest, largest)} rows: smallest / {factor:g} to largest * {factor:g} "
            f"(row_count_factor) = {_rows_range(low, high)} rows per partition"
        )
        source = "reference"
    else:
        if settings.row_count_factor is None:
            why = "at least one row (row_count_factor=None: no bound from the reference's size)"
        else:
            why = (
                f"at least one row: the reference ({rows:,} rows) has no partition folders, so the size of one "
                "partition is unknown; give rows_per_partition=(min, max) to bound it"
            )
        return _expectation(_ROW_COUNT, {"min_value": 1, "max_value": None}, why), partitions_meta
    per_partition = {"min_value": low, "max_value": high, "partition_columns": partitions, "source": source}
    why += ", times the number of partitions in the validated data"
    expectation = _expectation(
        _ROW_COUNT, {"min_value": low, "max_value": high}, why, **{ROWS_PER_PARTITION_META: per_partition}
    )
    return expectation, partitions_meta


def _rows_range(low: int, high: int | None) -> str:
    return f"{low:,}–{high:,}" if high is not None else f"at least {low:,}"


def fit_row_count(suite: ExpectationSuiteSpec, frame: pd.DataFrame) -> tuple[ExpectationSuiteSpec, list[str]]:
    """The suite with its per-partition row-count bounds scaled to the partitions ``frame`` holds, and notes.

    A row-count expectation whose meta carries ``mlops_rows_per_partition`` (inferred suites, and committed
    copies of them) holds per partition. The validated data's partitions are counted by the reference's
    partition columns (``dt``: 7 days of ``dt=...`` folders are 7 partitions), else, for bounds the user gave, by
    its own partition columns, else it is one partition. When the bounds came from the reference's partitions
    and the data lacks those columns, the number of partitions is unknown and only "not empty" is checked.
    Other suites are returned unchanged.
    """
    expectations: list[dict[str, Any]] = []
    notes: list[str] = []
    for expectation in suite.expectations:
        per_partition = (expectation.get("meta") or {}).get(ROWS_PER_PARTITION_META)
        if expectation["type"] != _ROW_COUNT or not isinstance(per_partition, dict):
            expectations.append(expectation)
            continue
        bounds, note = _scaled_row_count(per_partition, frame)
        meta = {**expectation["meta"], "applied": note}
        expectations.append({**expectation, "kwargs": {**expectation["kwargs"], **bounds}, "meta": meta})
        notes.append(note)
    if not notes:
        return suite, []
    return replace(suite, expectations=expectations), notes


def _scaled_row_count(per_partition: dict[str, Any], frame: pd.DataFrame) -> tuple[dict[str, Any], str]:
    low = int(per_partition.get("min_value") or 0)
    high = None if per_partition.get("max_value") is None else int(per_partition["max_value"])
    recorded = [str(column) for column in per_partition.get("partition_columns") or []]
    if recorded and all(column in frame.columns for column in recorded):
        columns = recorded
    elif recorded and per_partition.get("source") != "setting":
        return {"min_value": 1, "max_value": None}, (
            f"the validated data has no {', '.join(recorded)} column, so how many of the reference's partitions "
            "it holds is unknown: only 'at least one row' is checked"
        )
    else:
        columns = [column for column in partition_columns(frame) if column in frame.columns]
    count = _distinct_rows(frame, columns) if columns else 1
    count = max(count, 1)  # an empty partition is still one partition, and fails the lower bound
    scaled_low, scaled_high = low * count, None if high is None else high * count
    where = f"{count:,} partition{'s' if count != 1 else ''} ({', '.join(columns)})" if columns else "1 partition"
    return {"min_value": scaled_low, "max_value": scaled_high}, (
        f"{where} in the validated data x {_rows_range(low, high)} rows each = "
        f"{_rows_range(scaled_low, scaled_high)} rows"
    )


def _distinct_rows(frame: pd.DataFrame, columns: list[str]) -> int:
    """``len(frame[columns].drop_duplicates())`` (missing values count as one value) without copying the columns."""
    if len(columns) == 1:
        return int(frame[columns[0]].nunique(dropna=False))
    return int(frame.groupby(columns, dropna=False, observed=True, sort=False).ngroups)


def _expectation(kind: str, kwargs: dict[str, Any], why: str, **meta: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": _json_safe(kwargs), "meta": _json_safe({"inferred": why, **meta})}


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
        return "text" if _all_text(series) else "object"
    return "other"


def _all_text(series: pd.Series) -> bool:
    """At least one value, and every non-missing value a ``str``; checked in slices so that the per-value
    types never take more than ``_TEXT_CHECK_ROWS`` rows of memory."""
    seen = False
    for start in range(0, len(series), _TEXT_CHECK_ROWS):
        part = series.iloc[start : start + _TEXT_CHECK_ROWS].dropna()
        if len(part):
            if not part.map(type).eq(str).all():
                return False
            seen = True
    return seen


def _infer_column(
    series: pd.Series, column: str, rows: int, settings: InferenceSettings, not_pinned: dict[str, str]
) -> list[dict[str, Any]]:
    kind = _column_kind(series)
    found = [_expectation("expect_column_to_exist", {"column": column}, "present in the reference")]
    # dropna copies the column even when nothing is missing; the column itself serves then.
    non_null = series.dropna() if series.hasnans else series
    holds_time = kind in _TIME_KINDS or (kind in ("text", "categorical") and _holds_dates(non_null))
    type_check = _TYPE_CHECKS.get(kind)
    if type_check:
        why = f"reference dtype {series.dtype}"
        if holds_time:
            why += f" ({'dates as text' if kind not in _TIME_KINDS else 'a time'}; {_TIME_NOTE})"
        found.append(_expectation(type_check[0], {"column": column, **type_check[1]}, why))
    if len(non_null) == len(series):
        found.append(
            _expectation(
                "expect_column_values_to_not_be_null", {"column": column}, f"no nulls in {rows:,} reference rows"
            )
        )
    if holds_time:
        not_pinned[column] = f"{'dates as text' if kind not in _TIME_KINDS else f'{series.dtype}'}: {_TIME_NOTE}"
        return found
    if non_null.empty:
        return found
    value_set = _inferred_value_set(non_null, kind, settings)
    if value_set is not None:
        found.append(
            _expectation(
                "expect_column_values_to_be_in_set",
                {"column": column, "value_set": value_set},
                f"{len(value_set)} distinct values in {rows:,} reference rows, each in >= "
                f"{settings.min_category_rows} of them (min_category_rows)",
            )
        )
    elif kind == "float" or (kind == "integer" and not _looks_like_identifier(non_null, column)):
        found.append(_range_expectation(non_null, column, kind, settings))
    elif kind == "integer":
        not_pinned[column] = "identifier: new data brings new values, so no range is taken from the reference"
    return found


def _holds_dates(non_null: pd.Series) -> bool:
    """Text naming days, months, weeks or instants (``2026-01-01``, ``20260101``): a key that moves forward."""
    if non_null.empty:
        return False
    distinct = non_null.drop_duplicates()
    if len(distinct) > 1000:
        distinct = distinct.sample(1000, random_state=0)
    return all(isinstance(value, str) and _DATE_TEXT.fullmatch(value) for value in distinct)


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
    floored = low >= 0 and min_value < 0
    if low >= 0:
        min_value = max(min_value, 0.0)
    if kind == "integer":
        min_value, max_value = math.floor(min_value), math.ceil(max_value)
    else:
        min_value, max_value = _round_outwards(min_value, max_value)
    widened = f"{settings.range_tolerance:g} of its span" if span > 0 else f"{settings.range_tolerance:g} of its value"
    why = (
        f"reference range [{_short(low)}, {_short(high)}] over {len(non_null):,} non-null rows, widened on each "
        f"side by {widened} (range_tolerance)" + ("; floored at 0: never negative in the reference" if floored else "")
    )
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
