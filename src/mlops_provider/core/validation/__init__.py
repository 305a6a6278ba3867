"""Data validation on Great Expectations 1.x: suites from JSON, inline lists or reference data; results a person
can read.

Three ways to get an expectation suite, all ending in an ``ExpectationSuiteSpec`` (the suite in GX 1.x's own
JSON form, checked against GX's expectation registry before any data is touched):

* ``load_suite(uri)``: a GX 1.x suite JSON file (local path, ``file://`` or ``s3://``);
* ``suite_from_expectations([...])``: a list of expectation dicts given inline;
* ``infer_suite(reference_frame)``: a baseline built from reference data (one partition, a folder of
  partitions or a year in one file); ``fit_row_count(suite, frame)`` scales its per-partition row-count bounds
  to the partitions of the data being validated.

Then ``check_validation_input`` rejects data that cannot be validated meaningfully before anything is written,
``run_validation`` runs the suite through an ephemeral GX context and returns a ``ValidationRun`` whose
``outcome`` is the small, JSON-ready verdict, and ``publish_data_docs`` renders GX Data Docs to a fixed report
location.

The modules, one concern each:

* ``suites``: ``ExpectationSuiteSpec``, loading and parsing suite JSON, inline expectations, ``write_suite``;
* ``inference``: ``InferenceSettings``, its ``DEFAULT_*`` values, the rules of ``infer_suite`` (listed in
  that module's docstring) and ``fit_row_count``;
* ``run``: ``check_validation_input``, ``run_validation`` and ``ValidationRun``;
* ``results``: ``ValidationOutcome``, ``FailedExpectation`` and ``summarise_result``;
* ``docs``: ``publish_data_docs``.

No Airflow here; Great Expectations and pandas are imported only inside the functions that need them, so this
package is cheap to import at DAG parse time.
"""

from __future__ import annotations

from mlops_provider.core.validation.docs import DOCS_INDEX, publish_data_docs
from mlops_provider.core.validation.inference import (
    BOOLEAN_TYPES,
    DEFAULT_MAX_CATEGORIES,
    DEFAULT_MIN_CATEGORY_ROWS,
    DEFAULT_RANGE_TOLERANCE,
    DEFAULT_ROW_COUNT_FACTOR,
    FLOAT_TYPES,
    INTEGER_TYPES,
    ROWS_PER_PARTITION_META,
    TEXT_TYPES,
    InferenceSettings,
    fit_row_count,
    infer_suite,
)
from mlops_provider.core.validation.results import (
    DEFAULT_EXAMPLES,
    FailedExpectation,
    ValidationOutcome,
    summarise_result,
)
from mlops_provider.core.validation.run import ValidationRun, check_validation_input, run_validation
from mlops_provider.core.validation.suites import (
    ExpectationSuiteSpec,
    load_suite,
    parse_suite,
    suite_from_expectations,
    write_suite,
)

__all__ = [
    "BOOLEAN_TYPES",
    "DEFAULT_EXAMPLES",
    "DEFAULT_MAX_CATEGORIES",
    "DEFAULT_MIN_CATEGORY_ROWS",
    "DEFAULT_RANGE_TOLERANCE",
    "DEFAULT_ROW_COUNT_FACTOR",
    "DOCS_INDEX",
    "FLOAT_TYPES",
    "INTEGER_TYPES",
    "ROWS_PER_PARTITION_META",
    "TEXT_TYPES",
    "ExpectationSuiteSpec",
    "FailedExpectation",
    "InferenceSettings",
    "ValidationOutcome",
    "ValidationRun",
    "check_validation_input",
    "fit_row_count",
    "infer_suite",
    "load_suite",
    "parse_suite",
    "publish_data_docs",
    "run_validation",
    "suite_from_expectations",
    "summarise_result",
    "write_suite",
]
