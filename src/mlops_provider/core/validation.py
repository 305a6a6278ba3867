"""Data validation on Great Expectations 1.x: suites from JSON, inline lists or reference data; results a person
can read.

Three ways to get an expectation suite, all ending in an ``ExpectationSuiteSpec`` (the suite in GX 1.x's own
JSON form, checked against GX's expectation registry before any data is touched):

* ``load_suite(uri)``: a GX 1.x suite JSON file (local path, ``file://`` or ``s3://``). GX 0.x files load too
  (``expectation_type`` is read as ``type``, ``expectation_suite_name`` as ``name``).
* ``suite_from_expectations([...])``: a list of expectation dicts, either GX's form
  ``{"type": ..., "kwargs": {...}}`` or the flat form ``{"type": ..., "column": ..., ...}``.
* ``infer_suite(reference_frame)``: a baseline built from reference data (GX 1.x dropped its data assistants).
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

``check_validation_input`` rejects data that cannot be validated meaningfully (no data files, zero rows with a
suite that says nothing about row counts, a suite column the data lacks without an ``expect_column_to_exist``
for it) before anything is written. ``run_validation`` runs the suite through an ephemeral GX context with a
bounded result format and returns a ``ValidationRun`` whose ``outcome`` is the small, JSON-ready verdict;
``publish_data_docs`` renders GX Data Docs into a temporary folder and copies them to a fixed report location.

No Airflow here; Great Expectations and pandas are imported only inside the functions that need them.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_provider.core.datasets import parse_uri
from mlops_provider.core.errors import (
    ConfigurationError,
    DatasetNotFoundError,
    EmptyDatasetError,
    ExpectationSuiteError,
)
from mlops_provider.core.reports import write_report
from mlops_provider.core.storage import get_bytes

if TYPE_CHECKING:
    import pandas as pd

# Inference defaults (documented in docs/operators/validation.md and the module docstring).
DEFAULT_RANGE_TOLERANCE = 0.2
DEFAULT_MAX_CATEGORIES = 20
DEFAULT_MIN_CATEGORY_ROWS = 5
DEFAULT_ROW_COUNT_FACTOR = 10.0
# Example values kept per failed expectation: enough to recognise the problem, small enough for XCom and for
# GX not to collect long unexpected-value lists on a million rows.
DEFAULT_EXAMPLES = 5

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

# Expectations that assert a column exists: a missing column is then a validation failure, not a bad suite.
_EXISTENCE_EXPECTATIONS = {
    "expect_column_to_exist": ("column",),
    "expect_table_columns_to_match_set": ("column_set",),
    "expect_table_columns_to_match_ordered_list": ("column_list",),
}
_ROW_COUNT_EXPECTATIONS = {
    "expect_table_row_count_to_be_between",
    "expect_table_row_count_to_equal",
    "expect_table_row_count_to_equal_other_table",
}
_COLUMN_KWARGS = ("column", "column_A", "column_B")
_EXPECTATION_FIELDS = ("type", "kwargs", "meta", "notes", "id", "severity", "description", "rendered_content")
_DATASOURCE_NAME = "mlops"
_ASSET_NAME = "dataset"
_DOCS_SITE_NAME = "mlops_report"
DOCS_INDEX = "index.html"
_MAX_SHOWN_CHARS = 120
_MAX_SHOWN_ITEMS = 12


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


@dataclass
class ExpectationSuiteSpec:
    """An expectation suite in GX 1.x's JSON form, plus where it came from.

    ``expectations`` hold ``{"type", "kwargs", ...}`` dicts whose types and arguments GX accepted.
    """

    name: str
    expectations: list[dict[str, Any]]
    source: str
    meta: dict[str, Any] = field(default_factory=dict)
    notes: str | list[str] | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """The suite as GX 1.x serialises it (``ExpectationSuite.to_json_dict``), ready to commit and reload."""
        from mlops_provider import __version__

        meta = {"great_expectations_version": _gx_version(), **self.meta}
        meta.setdefault("mlops", {})
        meta["mlops"] = {**meta["mlops"], "provider_version": __version__, "source": self.source}
        return {
            "name": self.name,
            "id": None,
            "expectations": [dict(expectation) for expectation in self.expectations],
            "meta": _json_safe(meta),
            "notes": self.notes,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_json_dict(), indent=2, sort_keys=False) + "\n"

    @property
    def types(self) -> list[str]:
        return [expectation["type"] for expectation in self.expectations]

    def column_references(self) -> dict[str, list[str]]:
        """Every column the suite reads, with the expectation types that read it."""
        references: dict[str, list[str]] = {}
        for expectation in self.expectations:
            for column in _columns_of(expectation):
                references.setdefault(column, []).append(expectation["type"])
        return references

    def asserted_columns(self) -> set[str]:
        """Columns whose absence the suite itself reports (``expect_column_to_exist`` and table column sets)."""
        asserted: set[str] = set()
        for expectation in self.expectations:
            for argument in _EXISTENCE_EXPECTATIONS.get(expectation["type"], ()):
                value = expectation["kwargs"].get(argument)
                asserted.update([value] if isinstance(value, str) else list(value or []))
        return asserted

    def checks_row_count(self) -> bool:
        return any(t in _ROW_COUNT_EXPECTATIONS for t in self.types)

    def to_gx(self) -> Any:
        """A ``great_expectations.ExpectationSuite`` (raises ExpectationSuiteError for anything GX rejects)."""
        gx = _import_gx()
        expectations = [_build_expectation(e, i, self) for i, e in enumerate(self.expectations, 1)]
        return gx.ExpectationSuite(name=self.name, expectations=expectations, meta=_json_safe(self.meta))


@dataclass
class FailedExpectation:
    """One unmet expectation, described for a person on call (and small enough for XCom)."""

    expectation: str
    column: str | None
    arguments: dict[str, Any]
    observed_value: Any = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    element_count: int | None = None
    examples: list[Any] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        where = self.column if self.column is not None else "(table)"
        arguments = ", ".join(f"{k}={_short(v)}" for k, v in self.arguments.items())
        text = f"{where}: {self.expectation}({arguments})"
        details = []
        if self.error:
            details.append(f"could not be evaluated: {self.error}")
        if self.observed_value is not None:
            details.append(f"observed {_short(self.observed_value)}")
        if self.unexpected_count is not None:
            percent = f" ({self.unexpected_percent:.2f}%)" if self.unexpected_percent is not None else ""
            of_rows = f" of {self.element_count:,}" if self.element_count is not None else ""
            details.append(f"{self.unexpected_count:,}{of_rows} rows unexpected{percent}")
        if self.examples:
            details.append("examples: " + ", ".join(_short(v) for v in self.examples))
        return text + (" -> " + "; ".join(details) if details else " -> failed")


@dataclass
class ValidationOutcome:
    """The verdict of one validation: small, JSON-ready, with one readable summary."""

    success: bool
    evaluated: int
    successful: int
    failed: list[FailedExpectation]
    suite_name: str
    suite_source: str
    dataset_uri: str
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "evaluated": self.evaluated,
            "successful": self.successful,
            "failed": [failure.to_dict() for failure in self.failed],
            "suite_name": self.suite_name,
            "suite_source": self.suite_source,
            "dataset_uri": self.dataset_uri,
            "rows": self.rows,
        }

    def summary(self) -> str:
        verdict = "PASSED" if self.success else "FAILED"
        head = (
            f"Validation of {self.dataset_uri} ({self.rows:,} rows) against suite {self.suite_name!r} "
            f"({self.suite_source}) {verdict}: {self.successful} of {self.evaluated} expectations met"
        )
        if self.success:
            return head + "."
        lines = [head + f", {len(self.failed)} failed:"]
        lines.extend(f"  - {failure.describe()}" for failure in self.failed)
        return "\n".join(lines)


@dataclass
class ValidationRun:
    """A finished GX validation: the verdict plus what ``publish_data_docs`` needs to render it."""

    outcome: ValidationOutcome
    context: Any = field(repr=False)
    result: Any = field(repr=False)


# --------------------------------------------------------------------------------------------- suite loading


def load_suite(
    uri: str, *, s3_client: Any = None, search_paths: list[str] | tuple[str, ...] = ()
) -> ExpectationSuiteSpec:
    """Read a GX suite JSON file; relative paths are also looked up in ``search_paths`` (e.g. the DAG folder)."""
    location = parse_uri(uri)
    path = location.path
    if location.scheme == "file" and not os.path.isabs(path) and not os.path.exists(path):
        for folder in search_paths:
            candidate = os.path.join(folder, path)
            if os.path.exists(candidate):
                path = candidate
                break
    if location.scheme == "s3" and s3_client is None:
        raise ExpectationSuiteError(
            f"Expectation suite {uri!r} is on S3 but no S3 client was given; set aws_conn_id on the task."
        )
    if location.scheme == "file" and os.path.isdir(path):
        raise ExpectationSuiteError(
            f"Expectation suite {uri!r} is a folder; give the path of one GX suite JSON file."
        )
    try:
        payload = get_bytes(location, path, s3_client)
    except DatasetNotFoundError as error:
        looked = f" (also looked in {', '.join(map(str, search_paths))})" if search_paths else ""
        raise ExpectationSuiteError(
            f"Expectation suite file {uri!r} does not exist{looked}. Check the path, or use infer_from=<reference "
            "data URI> to build a suite from reference data."
        ) from error
    except Exception as error:  # OSError locally, botocore's ClientError on S3
        raise ExpectationSuiteError(
            f"Could not read expectation suite file {uri!r} ({type(error).__name__}: {error}); check the file's "
            "permissions or, for s3://, the aws connection's access to the bucket."
        ) from error
    try:
        document = json.loads(payload.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ExpectationSuiteError(
            f"Expectation suite file {uri!r} is not valid JSON ({error}). Fix the file; it must hold a GX 1.x "
            'suite: {"name": ..., "expectations": [{"type": ..., "kwargs": {...}}]}.'
        ) from error
    default_name = Path(path).name.removesuffix(".json") or "suite"
    return parse_suite(document, source=uri, default_name=default_name)


def parse_suite(document: Any, *, source: str, default_name: str = "suite") -> ExpectationSuiteSpec:
    """A suite from its JSON document (a GX suite dict, or a bare list of expectations), checked with GX."""
    if isinstance(document, list):
        document = {"expectations": document}
    if not isinstance(document, dict):
        raise ExpectationSuiteError(
            f"Expectation suite {source!r} holds a JSON {type(document).__name__}, not a suite; expected "
            '{"name": ..., "expectations": [{"type": ..., "kwargs": {...}}]}.'
        )
    expectations = document.get("expectations")
    if not isinstance(expectations, list):
        raise ExpectationSuiteError(
            f"Expectation suite {source!r} has no 'expectations' list; expected "
            '{"name": ..., "expectations": [{"type": ..., "kwargs": {...}}]}.'
        )
    name = document.get("name") or document.get("expectation_suite_name") or default_name
    if not isinstance(name, str):
        raise ExpectationSuiteError(f"Expectation suite {source!r} has a non-text name {name!r}; give a string.")
    meta = document.get("meta") or {}
    if not isinstance(meta, dict):
        raise ExpectationSuiteError(f"Expectation suite {source!r} has 'meta' {meta!r}; it must be an object.")
    meta = {k: v for k, v in meta.items() if k not in ("great_expectations_version", "mlops")}
    spec = ExpectationSuiteSpec(
        name=name,
        expectations=[_normalise_expectation(item, index, source) for index, item in enumerate(expectations, 1)],
        source=source,
        meta=meta,
        notes=document.get("notes"),
    )
    if not spec.expectations:
        raise ExpectationSuiteError(
            f"Expectation suite {source!r} has no expectations, so it would pass any data; add expectations "
            "or use infer_from=<reference data URI>."
        )
    spec.to_gx()  # every type and argument checked by GX now, before any data is read
    return spec


def suite_from_expectations(expectations: Any, *, name: str = "inline_suite") -> ExpectationSuiteSpec:
    """A suite from expectation dicts given inline (or their JSON text, as a rendered template gives it)."""
    if isinstance(expectations, str):
        try:
            expectations = json.loads(expectations)
        except json.JSONDecodeError as error:
            raise ExpectationSuiteError(
                f"Inline expectations are text that is not JSON ({error}): {expectations[:200]!r}. Give a list of "
                '{"type": ..., "kwargs": {...}} dicts.'
            ) from error
    if isinstance(expectations, dict) and "expectations" in expectations:
        return parse_suite(expectations, source="inline", default_name=name)
    if not isinstance(expectations, (list, tuple)):
        raise ExpectationSuiteError(
            f"Inline expectations must be a list of expectation dicts, not {type(expectations).__name__}."
        )
    return parse_suite({"name": name, "expectations": list(expectations)}, source="inline", default_name=name)


def _normalise_expectation(item: Any, index: int, source: str) -> dict[str, Any]:
    where = f"expectation #{index} of suite {source!r}"
    if not isinstance(item, dict):
        raise ExpectationSuiteError(f"{where} is {item!r}, not an object like {{\"type\": ..., \"kwargs\": {{...}}}}.")
    item = dict(item)
    if "expectation_type" in item and "type" not in item:  # GX 0.x files
        item["type"] = item.pop("expectation_type")
    kind = item.get("type")
    if not isinstance(kind, str) or not kind:
        raise ExpectationSuiteError(f"{where} has no 'type' (e.g. \"expect_column_values_to_not_be_null\").")
    if "kwargs" in item:
        kwargs = item["kwargs"]
        if not isinstance(kwargs, dict):
            raise ExpectationSuiteError(f"{where} ({kind}) has 'kwargs' {kwargs!r}; it must be an object.")
        unknown = sorted(set(item) - set(_EXPECTATION_FIELDS))
        if unknown:
            raise ExpectationSuiteError(
                f"{where} ({kind}) has unknown fields {unknown}; arguments go inside 'kwargs'."
            )
        normalised = {k: item[k] for k in _EXPECTATION_FIELDS if item.get(k) is not None and k != "rendered_content"}
        normalised["kwargs"] = dict(kwargs)
    else:  # flat form: {"type": ..., "column": ..., "min_value": ...}
        normalised = {k: item.pop(k) for k in ("type", "meta", "notes", "id", "severity", "description") if k in item}
        normalised["kwargs"] = item
    normalised.setdefault("meta", {})
    return normalised


def _build_expectation(expectation: dict[str, Any], index: int, spec: ExpectationSuiteSpec) -> Any:
    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.registry import (
        get_expectation_impl,
        list_registered_expectation_implementations,
    )

    kind = expectation["type"]
    where = f"expectation #{index} ({kind}) of suite {spec.name!r} ({spec.source})"
    try:
        implementation = get_expectation_impl(kind)
    except ExpectationNotFoundError as error:
        close = difflib.get_close_matches(kind, list_registered_expectation_implementations(), n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise ExpectationSuiteError(
            f"{where}: {kind!r} is not a Great Expectations 1.x expectation type.{hint} See "
            "https://greatexpectations.io/expectations/ for the names."
        ) from error
    fields = {k: v for k, v in expectation.items() if k not in ("type", "kwargs", "id")}
    try:
        return implementation(**expectation["kwargs"], **fields)
    except Exception as error:  # pydantic.ValidationError, TypeError for wrong argument names
        raise ExpectationSuiteError(f"{where} has invalid arguments: {_pydantic_message(error)}. Fix its kwargs.") from error


def _pydantic_message(error: Exception) -> str:
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return str(error)
    parts = []
    for item in errors():
        location = ".".join(str(part) for part in item.get("loc", ()) if part != "__root__")
        parts.append(f"{location}: {item.get('msg')}" if location else str(item.get("msg")))
    # pydantic lists one error per accepted type of a union field; keep the first of each field.
    seen: dict[str, str] = {}
    for part in parts:
        seen.setdefault(part.split(":", 1)[0] if ":" in part else part, part)
    return "; ".join(seen.values())


def _columns_of(expectation: dict[str, Any]) -> list[str]:
    kwargs = expectation.get("kwargs", {})
    columns = [kwargs[name] for name in _COLUMN_KWARGS if isinstance(kwargs.get(name), str)]
    if expectation["type"] != "expect_table_columns_to_match_ordered_list":
        columns.extend(c for c in kwargs.get("column_list") or [] if isinstance(c, str))
    return columns


# --------------------------------------------------------------------------------------------- suite inference


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
    if types.is_string_dtype(dtype) or dtype == object:
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
        found.append(_expectation(type_check[0], {"column": column, **type_check[1]}, f"reference dtype {series.dtype}"))
    non_null = series.dropna()
    if len(non_null) == len(series):
        found.append(_expectation("expect_column_values_to_not_be_null", {"column": column}, "no nulls in the reference"))
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


# --------------------------------------------------------------------------------------------- pre-flight checks


def check_validation_input(frame: pd.DataFrame, suite: ExpectationSuiteSpec, dataset_uri: str) -> None:
    """Reject data the suite cannot meaningfully validate, before anything is written."""
    if len(frame.columns) == 0:
        raise EmptyDatasetError(
            f"Dataset {dataset_uri!r} contains no data files (only empty or hidden files); there is nothing to "
            "validate. Check that the upstream job wrote this partition."
        )
    if len(frame) == 0 and not suite.checks_row_count():
        raise EmptyDatasetError(
            f"Dataset {dataset_uri!r} has no rows and suite {suite.name!r} ({suite.source}) has no row-count "
            "expectation, so every expectation would pass vacuously. Add expect_table_row_count_to_be_between "
            "with min_value=1 to the suite (an empty partition then fails validation and follows on_failure), "
            "or check the upstream job."
        )
    present = {str(column) for column in frame.columns}
    asserted = suite.asserted_columns()
    missing = {
        column: types
        for column, types in suite.column_references().items()
        if column not in present and column not in asserted
    }
    if missing:
        described = "; ".join(f"{column!r} (used by {', '.join(sorted(set(t)))})" for column, t in missing.items())
        raise ExpectationSuiteError(
            f"Suite {suite.name!r} ({suite.source}) checks columns that dataset {dataset_uri!r} does not have: "
            f"{described}. The data has {sorted(present)}. Fix the column names in the suite, or add "
            "expect_column_to_exist for each so that a missing column is reported as a validation failure."
        )


# --------------------------------------------------------------------------------------------- running GX


def run_validation(
    frame: pd.DataFrame,
    suite: ExpectationSuiteSpec,
    *,
    dataset_uri: str = "dataframe",
    run_name: str | None = None,
    examples: int = DEFAULT_EXAMPLES,
) -> ValidationRun:
    """Validate ``frame`` (not copied) against ``suite`` in a fresh ephemeral GX context."""
    gx = _import_gx()
    from great_expectations.core.run_identifier import RunIdentifier

    context = _ephemeral_context()
    # add_or_update: safe if this ever runs twice against one context (retries reuse nothing, but stay idempotent).
    datasource = context.data_sources.add_or_update_pandas(name=_DATASOURCE_NAME)
    asset = datasource.add_dataframe_asset(name=_ASSET_NAME)
    batch_definition = asset.add_batch_definition_whole_dataframe(name="whole_dataframe")
    gx_suite = context.suites.add_or_update(suite.to_gx())
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=f"{suite.name}__validation", data=batch_definition, suite=gx_suite)
    )
    result = definition.run(
        batch_parameters={"dataframe": frame},
        # BASIC with a bounded example list: no value counts, no index lists, nothing proportional to the
        # number of bad rows leaves GX.
        result_format={"result_format": "BASIC", "partial_unexpected_count": max(int(examples), 1)},
        run_id=RunIdentifier(run_name=run_name or "mlops", run_time=datetime.now(timezone.utc)),
    )
    outcome = summarise_result(result, suite=suite, dataset_uri=dataset_uri, rows=len(frame), examples=examples)
    return ValidationRun(outcome=outcome, context=context, result=result)


def summarise_result(
    result: Any, *, suite: ExpectationSuiteSpec, dataset_uri: str, rows: int, examples: int = DEFAULT_EXAMPLES
) -> ValidationOutcome:
    """The verdict of a GX ``ExpectationSuiteValidationResult`` as a ``ValidationOutcome``."""
    failed = [_describe_failure(item, examples) for item in result.results if not item.success]
    missing = {f.column for f in failed if f.expectation == "expect_column_to_exist"}
    for failure in failed:
        if failure.column in missing and failure.expectation != "expect_column_to_exist" and failure.error:
            failure.error = f"column {failure.column!r} is missing"  # GX's own message can be an IndexError
    failed.sort(key=_failure_order)
    statistics = result.statistics
    return ValidationOutcome(
        success=bool(result.success),
        evaluated=int(statistics.get("evaluated_expectations", len(result.results))),
        successful=int(statistics.get("successful_expectations", len(result.results) - len(failed))),
        failed=failed,
        suite_name=suite.name,
        suite_source=suite.source,
        dataset_uri=dataset_uri,
        rows=rows,
    )


def _failure_order(failure: FailedExpectation) -> tuple[int, str, str]:
    """Table-level failures, then missing columns, then value failures, then what could not be evaluated."""
    if failure.column is None:
        rank = 0
    elif failure.expectation == "expect_column_to_exist":
        rank = 1
    else:
        rank = 3 if failure.error else 2
    return rank, failure.column or "", failure.expectation


def _describe_failure(item: Any, examples: int) -> FailedExpectation:
    configuration = item.expectation_config
    kwargs = dict(configuration.kwargs)
    column = kwargs.pop("column", None)
    if column is None and ("column_A" in kwargs or "column_list" in kwargs):
        names = [kwargs.get("column_A"), kwargs.get("column_B")] if "column_A" in kwargs else kwargs["column_list"]
        column = ", ".join(str(name) for name in names if name is not None)
    kwargs = {k: v for k, v in kwargs.items() if v is not None and k not in ("batch_id", "result_format")}
    outcome = item.result or {}
    observed = outcome.get("observed_value")
    if observed is None and configuration.type == "expect_column_to_exist":
        observed = "column missing"
    return FailedExpectation(
        expectation=configuration.type,
        column=column,
        arguments=_json_safe(_truncate_arguments(kwargs)),
        observed_value=_json_safe(observed),
        unexpected_count=_json_safe(outcome.get("unexpected_count")),
        unexpected_percent=_round_percent(outcome.get("unexpected_percent")),
        element_count=_json_safe(outcome.get("element_count")),
        examples=_json_safe(list(outcome.get("partial_unexpected_list") or [])[:examples]),
        error=_exception_message(item.exception_info),
    )


def _truncate_arguments(kwargs: dict[str, Any]) -> dict[str, Any]:
    shortened = {}
    for key, value in kwargs.items():
        if isinstance(value, (list, tuple, set)) and len(value) > _MAX_SHOWN_ITEMS:
            value = [*list(value)[:_MAX_SHOWN_ITEMS], f"... {len(value) - _MAX_SHOWN_ITEMS} more"]
        shortened[key] = value
    return shortened


def _round_percent(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else round(value, 4)


def _exception_message(info: Any) -> str | None:
    """GX puts either one exception dict or a dict of them (keyed by metric) in ``exception_info``."""
    if not info:
        return None
    entries = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    for entry in entries:
        if entry.get("raised_exception") or entry.get("exception_message"):
            message = str(entry.get("exception_message") or "").strip().splitlines()
            return (message[-1] if message else "an exception was raised")[:300]
    return None


def _ephemeral_context() -> Any:
    gx = _import_gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        # No default Data Docs site: GX would otherwise point one at a fresh temp folder per context.
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites={},
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _import_gx() -> Any:
    # GX reads the switch when it is imported and again per context; analytics stays off either way.
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    import great_expectations as gx

    # GX logs every (empty) datasource load of each new context at INFO; the task log should show the verdict.
    logging.getLogger("great_expectations.datasource.fluent.config").setLevel(logging.WARNING)

    return gx


def _gx_version() -> str:
    try:
        from importlib.metadata import version

        return version("great_expectations")
    except Exception:  # metadata missing in odd installs; the version is informative only
        return "1.x"


# --------------------------------------------------------------------------------------------- reports


def publish_data_docs(run: ValidationRun, docs_uri: str, *, s3_client: Any = None) -> str:
    """Render the run's Data Docs and store them under ``docs_uri`` (a folder URI); return the page's URI.

    GX builds the site in a temporary folder (removed afterwards), which is then copied file by file to
    ``docs_uri``, replacing what an earlier try left there. The returned URI is the validation result page;
    ``<docs_uri>/index.html`` lists it.
    """
    root = docs_uri.rstrip("/")
    with tempfile.TemporaryDirectory(prefix="mlops-gx-docs-") as folder:
        site = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": folder},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
        sites = run.context.list_data_docs_sites()
        if _DOCS_SITE_NAME in sites:
            run.context.update_data_docs_site(_DOCS_SITE_NAME, site)
        else:
            run.context.add_data_docs_site(_DOCS_SITE_NAME, site)
        try:
            run.context.build_data_docs(site_names=[_DOCS_SITE_NAME])
        finally:
            run.context.delete_data_docs_site(_DOCS_SITE_NAME)
        files = sorted(p.relative_to(folder).as_posix() for p in Path(folder).rglob("*") if p.is_file())
        pages = [name for name in files if name.startswith("validations/") and name.endswith(".html")]
        if DOCS_INDEX not in files or len(pages) != 1:
            raise RuntimeError(f"Great Expectations built an unexpected Data Docs site: {files[:20]}")
        for name in files:
            write_report(f"{root}/{name}", (Path(folder) / name).read_bytes(), s3_client=s3_client)
    _remove_stale_files(root, set(files), s3_client)
    return f"{root}/{pages[0]}"


def _remove_stale_files(root: str, keep: set[str], s3_client: Any) -> None:
    """Delete files an earlier try left under ``root`` that this try did not write."""
    location = parse_uri(root)
    if location.scheme == "s3":
        prefix = location.path.rstrip("/") + "/"
        stale: list[dict[str, str]] = []
        for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=prefix):
            stale.extend(
                {"Key": item["Key"]} for item in page.get("Contents", []) if item["Key"][len(prefix) :] not in keep
            )
        for start in range(0, len(stale), 1000):
            s3_client.delete_objects(Bucket=location.bucket, Delete={"Objects": stale[start : start + 1000]})
        return
    base = Path(location.path)
    for path in sorted(base.rglob("*"), reverse=True):  # children before their folders
        relative = path.relative_to(base).as_posix()
        if path.is_file() and relative not in keep:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def write_suite(suite: ExpectationSuiteSpec, uri: str, *, s3_client: Any = None) -> str:
    """Store the suite's GX JSON at ``uri`` (next to the report) for review, commit and reuse."""
    return write_report(uri, suite.to_json(), s3_client=s3_client)


# --------------------------------------------------------------------------------------------- helpers


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
