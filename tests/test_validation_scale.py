"""Validation as data grows: what the provider holds beyond the data and GX's own working set, and that its
verdict is GX's.

GX's working set on a pandas frame (1.x, measured with tracemalloc in ``test_run_holds_data_plus_gx_working_set``):
each map expectation (not-null, between, in-set, type-list) filters the whole frame to the column's non-null
rows (``df[df[column].notnull()]``, a copy of every column, freed after the metric; two such metrics can be
alive at once) and caches a boolean mask of one byte per row. So during a run GX allocates up to two copies of
the frame plus ``rows`` bytes per map expectation; the provider may add only small, row-independent state.
"""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pandas as pd
import pytest

from mlops_provider.core import validation
from mlops_provider.core.datasets import PARTITION_COLUMNS_ATTR

pytestmark = pytest.mark.scale  # memory and size: make test runs it, make test-fast does not

CATEGORIES = ["alpha", "beta", "gamma", "delta", "epsilon"]
ROWS = 60_000


def make_frame(rows: int, seed: int = 0, bad_values: bool = True) -> pd.DataFrame:
    """The benchmark's kinds of columns (float, integer, text), fewer of them: GX's cost per expectation is
    mostly fixed, and tracemalloc slows it down."""
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {f"f{i:02d}": rng.normal(100 + i, 10, rows) for i in range(4)}
    columns.update({f"i{i:02d}": rng.integers(0, 1000, rows) for i in range(1)})
    columns.update({f"s{i:02d}": rng.choice(CATEGORIES, rows).astype(object) for i in range(2)})
    frame = pd.DataFrame(columns)
    if bad_values:
        bad = rng.choice(rows, rows // 200, replace=False)
        frame.loc[bad, "f00"] = -1e6
        frame.loc[bad[: len(bad) // 2], "f01"] = np.nan
        frame.loc[bad[::3], "s00"] = "unknown"
    return frame


@pytest.fixture(scope="module")
def suite() -> validation.ExpectationSuiteSpec:
    return validation.infer_suite(make_frame(20_000, seed=1, bad_values=False), reference_uri="reference")


def map_expectations(suite: validation.ExpectationSuiteSpec) -> int:
    return sum(1 for kind in suite.types if kind.startswith("expect_column_values_"))


def traced(function):
    """(result, peak bytes allocated during the call, bytes still allocated after it)."""
    gc.collect()
    tracemalloc.start()
    try:
        result = function()
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return result, peak, kept


def test_run_holds_data_plus_gx_working_set(suite):
    frame = make_frame(ROWS)
    data = int(frame.memory_usage(deep=False).sum())
    validation.run_validation(make_frame(1000), suite)  # GX's imports and registries are not the data's

    def core() -> validation.ValidationRun:
        checked, _ = validation.fit_row_count(suite, frame)
        validation.check_validation_input(frame, checked, "frame")
        return validation.run_validation(frame, checked, dataset_uri="frame")

    run, peak, kept = traced(core)
    small = make_frame(1000)
    _, fixed, _ = traced(lambda: validation.run_validation(small, suite))
    # GX's row-independent state (``fixed``: the same run on 1,000 rows); two filtered copies of the frame
    # (the condition metric and the unexpected-values metric each filter, and both can be alive); one cached
    # mask per map expectation; a quarter of the data for pandas' temporaries (isna masks, index arrays).
    bound = fixed + 2 * data + map_expectations(suite) * ROWS + data // 4
    assert peak <= bound, f"peak {peak / 2**20:.1f} MB > bound {bound / 2**20:.1f} MB (data {data / 2**20:.1f} MB)"
    # The run keeps the verdict and GX's result, not GX's cached masks nor the batch.
    assert kept < 2 * 2**20, f"{kept / 2**20:.1f} MB kept after the run"
    assert not run.outcome.success and run.outcome.rows == ROWS


def test_after_gx_does_not_grow_with_rows(suite, tmp_path):
    """What follows the run (summary, assertions, Data Docs) costs the same for 4x the rows."""
    costs = []
    for rows in (ROWS // 4, ROWS):
        frame = make_frame(rows)
        run = validation.run_validation(frame, suite, dataset_uri="frame")
        del frame
        gc.collect()

        def after(run=run, rows=rows) -> None:
            run.outcome.summary()
            run.assertions()
            validation.publish_data_docs(run, str(tmp_path / f"docs{rows}"))

        _, peak, _ = traced(after)
        costs.append(peak)
    assert costs[1] < costs[0] * 1.5 + 2**20, [f"{cost / 2**20:.2f} MB" for cost in costs]


def test_inference_holds_at_most_a_few_columns():
    reference = make_frame(ROWS, bad_values=False)
    column = ROWS * 8
    validation.infer_suite(reference.head(1000))  # GX's import (the suite is checked by GX) is not the data's
    _, peak, _ = traced(lambda: validation.infer_suite(reference))
    # Column by column: a text column's value types, null mask, factorised codes, value counts and distinct
    # values cost about 8 times its pointer array, and are freed before the next column; never a frame copy.
    assert peak <= 10 * column, f"{peak / 2**20:.1f} MB for {column / 2**20:.1f} MB columns"


def test_partition_count_without_copying_columns():
    frame = pd.DataFrame(
        {"dt": ["a", "a", "b", None, None], "hour": [1, 2, 1, None, None], "x": range(5)},
    )
    frame.attrs[PARTITION_COLUMNS_ATTR] = ["dt", "hour"]
    spec = validation.suite_from_expectations(
        [{"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1, "max_value": 2}}]
    )
    spec.expectations[0]["meta"] = {
        validation.ROWS_PER_PARTITION_META: {"min_value": 1, "max_value": 2, "partition_columns": ["dt", "hour"]}
    }
    fitted, _ = validation.fit_row_count(spec, frame)
    assert fitted.expectations[0]["kwargs"]["max_value"] == 2 * len(frame[["dt", "hour"]].drop_duplicates()) == 8
    spec.expectations[0]["meta"][validation.ROWS_PER_PARTITION_META]["partition_columns"] = ["dt"]
    fitted, _ = validation.fit_row_count(spec, frame)
    assert fitted.expectations[0]["kwargs"]["max_value"] == 2 * len(frame[["dt"]].drop_duplicates()) == 6


def test_task_result_equals_gx_direct(tmp_path, monkeypatch):
    import great_expectations as gx

    from mlops_provider.hooks.datasets import DatasetHook
    from mlops_provider.operators.validation import ValidateDataOperator
    from support.task_instance import TaskInstanceStandIn

    data, reference = tmp_path / "data.parquet", tmp_path / "reference.parquet"
    make_frame(ROWS // 2).to_parquet(data, index=False)
    make_frame(20_000, seed=1, bad_values=False).to_parquet(reference, index=False)
    steps: list[str] = []
    read, infer = DatasetHook.read, validation.infer_suite
    monkeypatch.setattr(
        DatasetHook, "read", lambda self, uri, **kw: steps.append(f"read {uri}") or read(self, uri, **kw)
    )
    monkeypatch.setattr(validation, "infer_suite", lambda *a, **kw: steps.append("infer") or infer(*a, **kw))
    operator = ValidateDataOperator(
        task_id="validate", dataset_uri=str(data), infer_from=str(reference), reports_uri=str(tmp_path / "r"),
        on_failure="warn",
    )  # fmt: skip
    result = operator.execute({"ti": TaskInstanceStandIn(task_id="validate")})
    # The reference is inferred from (and dropped) before the data is read.
    assert steps == [f"read {reference}", "infer", f"read {data}"]

    suite = validation.load_suite(result["suite_uri"])
    context = gx.get_context(mode="ephemeral")
    batch = (
        context.data_sources.add_pandas("direct")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("all")
        .get_batch(batch_parameters={"dataframe": pd.read_parquet(data)})
    )
    direct = batch.validate(context.suites.add(gx.ExpectationSuite(name="direct", expectations=suite.expectations)))
    direct_failed = {
        (r.expectation_config.type, r.expectation_config.kwargs.get("column"), r.result.get("unexpected_count"))
        for r in direct.results
        if not r.success
    }
    task_failed = {(f["expectation"], f["column"], f["unexpected_count"]) for f in result["failed"]}
    assert task_failed == direct_failed and len(task_failed) == 3, task_failed
    assert result["success"] is direct.success is False
    assert result["evaluated"] == len(direct.results) and result["rows"] == ROWS // 2
