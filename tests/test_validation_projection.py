"""Validation reads only the columns its suite checks: ``read_dataset(columns=...)`` on parquet, CSV and
partition folders, and ``ValidateDataOperator`` giving the verdict of a full read from a projected one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_provider.core import validation
from mlops_provider.core.datasets import FILE_COLUMNS_ATTR, read_dataset, write_dataset
from mlops_provider.core.errors import ExpectationSuiteError
from support.task_instance import TaskInstanceStandIn
from support.validation_data import CORRUPTIONS, churn_partition

EXTRA = 30  # columns no suite here checks


def wide(rows: int, seed: int, day: str) -> pd.DataFrame:
    frame = churn_partition(rows, seed=seed, day=day)
    rng = np.random.default_rng(seed)
    for i in range(EXTRA):
        frame[f"extra_{i:02d}"] = rng.normal(size=rows)
    return frame


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Three daily partitions (``dt=...`` folders) of the churn table and 30 more columns; the third has plans
    no suite allows."""
    root = tmp_path_factory.mktemp("wide")
    for day in (1, 2, 3):
        frame = wide(1500, day, f"2026-03-0{day}")
        if day == 3:
            frame = CORRUPTIONS["unseen_category"][0](frame)
        write_dataset(frame, str(root / f"dt=2026-03-0{day}" / "part-00000.parquet"))
    return root


def test_read_dataset_reads_the_columns_asked_for_and_names_every_column(dataset, tmp_path):
    everything = read_dataset(str(dataset))
    projected = read_dataset(str(dataset), columns=["plan", "tenure_months", "not_there"])
    assert list(projected.columns) == ["tenure_months", "plan", "dt"]  # file order; partition folders always
    pd.testing.assert_frame_equal(projected, everything[["tenure_months", "plan", "dt"]])
    assert projected.attrs[FILE_COLUMNS_ATTR] == list(everything.columns)
    assert FILE_COLUMNS_ATTR not in everything.attrs

    csv = tmp_path / "table.csv"
    everything.drop(columns="dt").head(200).to_csv(csv, index=False)
    from_csv = read_dataset(str(csv), columns=["monthly_charges", "extra_03"])
    assert list(from_csv.columns) == ["monthly_charges", "extra_03"]
    assert from_csv["extra_03"].tolist() == pytest.approx(everything["extra_03"].head(200).tolist())
    assert from_csv.attrs[FILE_COLUMNS_ATTR] == [c for c in everything.columns if c != "dt"]


def run(tmp_path: Path, **kwargs) -> tuple[dict, list[str]]:
    """The operator's result (never failing the task) and the columns it read."""
    from mlops_provider.operators.validation import ValidateDataOperator

    operator = ValidateDataOperator(task_id="validate", reports_uri=str(tmp_path / "reports"), on_failure="warn",
                                    **kwargs)  # fmt: skip
    result = operator.execute({"ti": TaskInstanceStandIn(task_id="validate"), "run_id": "manual__projection"})
    [(_, schema)] = operator.dataset_hook.schemas.items()
    return result, [name for name, _ in schema]


CHECKS = [
    {"type": "expect_column_values_to_be_in_set", "column": "plan", "value_set": ["basic", "plus", "pro"]},
    {"type": "expect_column_values_to_be_between", "column": "tenure_months", "min_value": 0, "max_value": 72},
    {"type": "expect_table_row_count_to_be_between", "min_value": 1000},
]


def test_the_verdict_from_the_suites_columns_is_the_verdict_of_a_full_read(dataset, tmp_path):
    result, read = run(tmp_path, dataset_uri=str(dataset), expectations=CHECKS)
    assert read == ["tenure_months", "plan", "dt"]

    suite = validation.suite_from_expectations(CHECKS)
    full = read_dataset(str(dataset))
    direct = validation.run_validation(full, suite, dataset_uri=str(dataset)).outcome.to_dict()
    assert result["success"] is direct["success"] is False
    assert result["evaluated"] == direct["evaluated"] == 3 and result["failed"] == direct["failed"]
    assert result["rows"] == direct["rows"] == len(full)


@pytest.mark.parametrize(
    "whole_table",
    [
        {"type": "expect_table_column_count_to_equal", "value": 37},
        {"type": "expect_table_columns_to_match_set", "column_set": ["plan"], "exact_match": False},
        {
            "type": "expect_column_values_to_not_be_null",
            "column": "plan",
            "row_condition": "extra_00>0",
            "condition_parser": "pandas",
        },  # fmt: skip
    ],
    ids=["column-count", "column-set", "row-condition"],
)
def test_a_suite_that_judges_the_whole_table_reads_every_column(dataset, tmp_path, whole_table):
    result, read = run(tmp_path, dataset_uri=str(dataset), expectations=[CHECKS[0], whole_table])
    assert len(read) == 6 + EXTRA + 1
    assert result["evaluated"] == 2


def test_a_column_the_data_lacks_is_named_with_every_column_the_data_has(dataset, tmp_path):
    checks = [{"type": "expect_column_values_to_not_be_null", "column": "planned"}]
    with pytest.raises(ExpectationSuiteError) as error:
        run(tmp_path, dataset_uri=str(dataset), expectations=checks)
    message = str(error.value)
    assert "checks columns that dataset" in message and "'planned'" in message
    assert "'plan'" in message and "'extra_29'" in message, "the data's columns, not only those read"
    assert not (tmp_path / "reports").exists()
