"""Running a suite: the pre-flight check on the data, then one validation in a fresh ephemeral GX context.

``check_validation_input`` rejects data that cannot be validated meaningfully (no data files, zero rows with a
suite that says nothing about row counts, a suite column the data lacks without an ``expect_column_to_exist``
for it) before anything is written. ``run_validation`` runs the suite with a bounded result format and returns
a ``ValidationRun`` whose ``outcome`` is the small, JSON-ready verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from mlops_provider.core.datasets import FILE_COLUMNS_ATTR
from mlops_provider.core.errors import EmptyDatasetError, ExpectationSuiteError
from mlops_provider.core.validation._common import _import_gx
from mlops_provider.core.validation.results import DEFAULT_EXAMPLES, ValidationOutcome, summarise_result

if TYPE_CHECKING:
    import pandas as pd

    from mlops_provider.core.validation.suites import ExpectationSuiteSpec

_DATASOURCE_NAME = "mlops"
_ASSET_NAME = "dataset"


@dataclass
class ValidationRun:
    """A finished GX validation: the verdict plus what ``publish_data_docs`` needs to render it."""

    outcome: ValidationOutcome
    context: Any = field(repr=False)
    result: Any = field(repr=False)

    def assertions(self) -> list[dict[str, Any]]:
        """Every expectation evaluated, as ``{assertion, column, success}`` (OpenLineage's data quality
        assertions); ``column`` is None for a table-level expectation."""
        checked = []
        for item in self.result.results:
            configuration = item.expectation_config
            column = (configuration.kwargs or {}).get("column")
            checked.append({"assertion": configuration.type, "column": column, "success": bool(item.success)})
        return checked


def check_validation_input(frame: pd.DataFrame, suite: ExpectationSuiteSpec, dataset_uri: str) -> None:
    """Reject data the suite cannot meaningfully validate, before anything is written. ``frame`` may hold only
    the suite's columns (``read_dataset(columns=...)``): the dataset's own are then in its attrs."""
    present = {str(column) for column in frame.attrs.get(FILE_COLUMNS_ATTR, frame.columns)}
    if not present:
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


def run_validation(
    frame: pd.DataFrame,
    suite: ExpectationSuiteSpec,
    *,
    dataset_uri: str = "dataframe",
    run_name: str | None = None,
    examples: int = DEFAULT_EXAMPLES,
) -> ValidationRun:
    """Validate ``frame`` (not copied) against ``suite`` in a fresh ephemeral GX context.

    The returned run holds the verdict and GX's result, not the data: once the caller drops ``frame``, nothing
    of a size proportional to its rows is left (GX's own working set during the run is a filtered copy of the
    frame per map expectation, and a boolean mask per map expectation).
    """
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
    # The datasource's execution engine caches every metric it computed (a boolean mask of the whole column per
    # map expectation) and the batch (the frame). Data Docs render from the stored result alone, so drop the
    # datasource: what the run keeps no longer grows with rows, and the caller's `del frame` frees the data.
    del definition, batch_definition, asset, datasource
    context.data_sources.delete(_DATASOURCE_NAME)
    return ValidationRun(outcome=outcome, context=context, result=result)


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
