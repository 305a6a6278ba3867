"""Expectation suites: the ``ExpectationSuiteSpec`` and the ways to get one from JSON, or to store one.

* ``load_suite(uri)``: a GX 1.x suite JSON file (local path, ``file://`` or ``s3://``). GX 0.x files load too
  (``expectation_type`` is read as ``type``, ``expectation_suite_name`` as ``name``).
* ``suite_from_expectations([...])``: a list of expectation dicts, either GX's form
  ``{"type": ..., "kwargs": {...}}`` or the flat form ``{"type": ..., "column": ..., ...}``.
* ``parse_suite(document)``: either of the above from an already decoded JSON document.
* ``write_suite(spec, uri)``: the suite's GX JSON, for review, commit and reuse.

Every suite is checked against GX's expectation registry before any data is touched.
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_provider.core.datasets import parse_uri
from mlops_provider.core.errors import DatasetNotFoundError, ExpectationSuiteError
from mlops_provider.core.reports import write_report
from mlops_provider.core.storage import get_bytes
from mlops_provider.core.validation._common import _import_gx, _json_safe

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
# Expectations whose verdict depends on every column the table has, not only on the ones they name.
_WHOLE_TABLE_EXPECTATIONS = {
    "expect_table_columns_to_match_set",
    "expect_table_columns_to_match_ordered_list",
    "expect_table_column_count_to_equal",
    "expect_table_column_count_to_be_between",
}
_EXPECTATION_FIELDS = ("type", "kwargs", "meta", "notes", "id", "severity", "description", "rendered_content")


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

    def columns_read(self) -> list[str] | None:
        """The columns validating this suite reads, or None when it needs every column: an expectation judges
        the table's set of columns, filters rows by a condition (``row_condition`` may name any column), or names
        no column and is not a row count (a custom or other table-level expectation)."""
        columns: list[str] = []
        for expectation in self.expectations:
            kind, named = expectation["type"], _columns_of(expectation)
            if kind in _WHOLE_TABLE_EXPECTATIONS or expectation["kwargs"].get("row_condition"):
                return None
            if not named and kind not in _ROW_COUNT_EXPECTATIONS:
                return None
            columns.extend(named)
        return list(dict.fromkeys(columns)) or None

    def checks_row_count(self) -> bool:
        return any(t in _ROW_COUNT_EXPECTATIONS for t in self.types)

    def to_gx(self) -> Any:
        """A ``great_expectations.ExpectationSuite`` (raises ExpectationSuiteError for anything GX rejects)."""
        gx = _import_gx()
        expectations = [_build_expectation(e, i, self) for i, e in enumerate(self.expectations, 1)]
        return gx.ExpectationSuite(name=self.name, expectations=expectations, meta=_json_safe(self.meta))


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
        raise ExpectationSuiteError(f"Expectation suite {uri!r} is a folder; give the path of one GX suite JSON file.")
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
        raise ExpectationSuiteError(f'{where} is {item!r}, not an object like {{"type": ..., "kwargs": {{...}}}}.')
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
            raise ExpectationSuiteError(f"{where} ({kind}) has unknown fields {unknown}; arguments go inside 'kwargs'.")
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
        raise ExpectationSuiteError(
            f"{where} has invalid arguments: {_pydantic_message(error)}. Fix its kwargs."
        ) from error


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


def write_suite(suite: ExpectationSuiteSpec, uri: str, *, s3_client: Any = None) -> str:
    """Store the suite's GX JSON at ``uri`` (next to the report) for review, commit and reuse."""
    return write_report(uri, suite.to_json(), s3_client=s3_client)


def _gx_version() -> str:
    try:
        from importlib.metadata import version

        return version("great_expectations")
    except Exception:  # metadata missing in odd installs; the version is informative only
        return "1.x"
