"""Wide drift: the column-block engine gives ``detect_drift``'s verdicts, a check split by columns merges to the
single check's verdict, ``columns_per_task`` is checked, the compact report lists drifted columns first, and
memory follows the block, not the table."""

from __future__ import annotations

import json
import tracemalloc
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mlops_provider.core import drift_wide
from mlops_provider.core.drift import DriftSettings, detect_drift
from mlops_provider.core.drift_report_wide import render_wide_report
from mlops_provider.core.drift_wide import (
    FrameSource,
    chunk_columns,
    detect_drift_wide,
    merge_parts,
    open_source,
    plan_columns,
    settings_for,
)
from mlops_provider.core.errors import ConfigurationError

pytestmark = pytest.mark.scale  # memory and size: make test runs it, make test-fast does not

COLUMNS = 300


def wide_frame(rows: int, seed: int, drifted: bool, columns: int = COLUMNS) -> pd.DataFrame:
    """Numeric, integer and categorical columns; on the drifted side every seventh column moves."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for i in range(columns):
        shift = 0.3 if drifted and i % 7 == 0 else 0.0
        if i % 4 == 3:
            p = np.array([0.4, 0.3, 0.2, 0.1]) + (np.array([-0.2, 0.2, 0, 0]) if shift else 0)
            data[f"c{i:03d}"] = rng.choice(["a", "b", "c", "d"], rows, p=p)
        elif i % 4 == 2:
            data[f"i{i:03d}"] = rng.poisson(3 + 3 * shift, rows)
        else:
            data[f"n{i:03d}"] = rng.normal(shift, 1, rows)
    frame = pd.DataFrame(data)
    frame.loc[::11, frame.columns[0]] = np.nan
    return frame


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    return wide_frame(2000, 1, False), wide_frame(2500, 2, True)


def assert_same(expected, actual) -> None:
    assert actual.drifted_columns == expected.drifted_columns
    assert actual.drift_share == expected.drift_share and actual.drift_detected == expected.drift_detected
    assert list(actual.columns) == list(expected.columns)
    for name, column in expected.columns.items():
        other = actual.columns[name]
        assert (other.column_type, other.method, other.threshold, other.drifted) == (
            column.column_type, column.method, column.threshold, column.drifted,
        ), name  # fmt: skip
        assert other.score == pytest.approx(column.score, rel=1e-9, abs=1e-300), name
    assert actual.tested_rows == expected.tested_rows and actual.settings == expected.settings


def test_block_engine_gives_detect_drifts_verdicts(frames, monkeypatch):
    reference, current = frames
    settings = DriftSettings(per_column_method={"n001": "wasserstein"}, per_column_threshold={"n001": 0.1})
    monkeypatch.setattr(drift_wide, "BLOCK_CELLS", 2500 * 17)  # many small blocks
    assert_same(
        detect_drift(reference, current, settings),
        detect_drift_wide(FrameSource(reference), FrameSource(current), settings).result,
    )


def test_sampled_rows_are_detect_drifts_sample(frames):
    reference, current = frames
    settings = DriftSettings(max_rows=1500, columns=list(reference.columns[:40]))
    expected = detect_drift(reference, current, settings)
    assert expected.tested_rows["sampled"]
    assert_same(expected, detect_drift_wide(FrameSource(reference), FrameSource(current), settings).result)


def test_parquet_source_reads_only_asked_columns_and_matches(frames, tmp_path):
    reference, current = frames
    (tmp_path / "cur").mkdir()
    reference.to_parquet(tmp_path / "ref.parquet")
    current.iloc[:1000].to_parquet(tmp_path / "cur" / "part-0.parquet")
    current.iloc[1000:].to_parquet(tmp_path / "cur" / "part-1.parquet")
    settings = DriftSettings()
    with ExitStack() as stack:
        ref = open_source(str(tmp_path / "ref.parquet"), stack=stack)
        cur = open_source(str(tmp_path / "cur"), stack=stack)
        assert (ref.rows, cur.rows) == (2000, 2500)
        assert cur.read(["n000", "c003"]).column_names == ["n000", "c003"]
        assert_same(detect_drift(reference, current, settings), detect_drift_wide(ref, cur, settings).result)


def test_split_and_merged_equals_single_check(frames):
    reference, current = frames
    settings = DriftSettings(drift_share=0.1)
    ref, cur = FrameSource(reference), FrameSource(current)
    single = detect_drift_wide(ref, cur, settings).result
    types = plan_columns(ref, cur, settings)
    parts = []
    for chunk in chunk_columns(list(types), 64):  # five parts, the last shorter
        part_settings = settings_for(settings, chunk)
        part = drift_wide.check_columns(ref, cur, plan_columns(ref, cur, part_settings), part_settings)
        parts.append(drift_wide.DriftPart.from_dict(json.loads(json.dumps(part.to_dict()))))  # as stored
    assert len(parts) == 5
    merged = merge_parts(parts, settings)
    assert_same(single, merged.result)
    assert merged.result.drift_detected and set(merged.sketches) == set(single.drifted_columns)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "columns_per_task=0 must be at least 1"),
        (-5, "columns_per_task=-5 must be at least 1"),
        ("many", "columns_per_task='many' is not a whole number"),
        (2.5, "columns_per_task=2.5 is not a whole number"),
        (None, "columns_per_task=None is empty"),
    ],
)
def test_bad_columns_per_task_is_named_with_its_fix(value, message):
    from mlops_provider.operators.drift_split import drift_task_group

    with pytest.raises(ConfigurationError, match=message) as caught:
        drift_task_group(columns_per_task=value, current_uri="x.parquet", model_name="m")
    assert "whole number of columns per mapped task" in str(caught.value)


def test_task_group_plans_maps_and_merges():
    from airflow.sdk import DAG

    from mlops_provider.assets import drift_alias
    from mlops_provider.operators.drift_split import drift_task_group

    with DAG("wide_drift", schedule=None):
        group = drift_task_group(
            columns_per_task="{{ params.per_task }}", current_uri="cur.parquet", model_name="m",
            max_active_tis_per_dagrun=2,
        )  # fmt: skip
    tasks = {task.task_id: task for task in group.children.values()}
    assert set(tasks) == {"detect_drift.plan", "detect_drift.check", "detect_drift.merge"}
    check, merge = tasks["detect_drift.check"], tasks["detect_drift.merge"]
    assert check.partial_kwargs["max_active_tis_per_dagrun"] == 2
    assert check.partial_kwargs["on_drift"] == "continue"
    assert [o.name for o in merge.outlets] == [drift_alias().name]  # one Asset event, from the merge only
    assert not tasks["detect_drift.plan"].outlets and not check.partial_kwargs.get("outlets")


def test_report_at_300_columns_lists_drifted_columns_first(frames):
    reference, current = frames
    wide = detect_drift_wide(FrameSource(reference), FrameSource(current), DriftSettings())
    html = render_wide_report(wide.result, wide.sketches)
    drifted, stable = (
        wide.result.drifted_columns,
        [c for c in wide.result.columns if not wide.result.columns[c].drifted],
    )
    assert drifted and stable
    heading = html.index("Columns without drift")
    assert all(html.index(f">{name}<") < heading for name in drifted)
    assert all(html.index(f">{name}<") > heading for name in stable)
    assert html.count("<svg") == len(drifted)  # a chart per drifted column, a table row for the rest
    assert len(html) < 40_000 + 3_000 * len(drifted)


def test_memory_follows_the_block_not_the_table(tmp_path, monkeypatch):
    """200 float columns x 20,000 rows are 32 MB a side; the check holds one block of 40 columns (6.4 MB a side)
    plus a column's copies, so it must stay well under one side's size."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows, columns = 20_000, 200
    rng = np.random.default_rng(0)
    for name, shift in (("ref", 0.0), ("cur", 0.1)):
        table = pa.table({f"n{i:03d}": rng.normal(shift if i < 20 else 0.0, 1, rows) for i in range(columns)})
        pq.write_table(table, tmp_path / f"{name}.parquet")
    side_bytes = rows * columns * 8
    monkeypatch.setattr(drift_wide, "BLOCK_CELLS", rows * 40)
    with ExitStack() as stack:
        ref = open_source(str(tmp_path / "ref.parquet"), stack=stack)
        cur = open_source(str(tmp_path / "cur.parquet"), stack=stack)
        tracemalloc.start()
        result = detect_drift_wide(ref, cur, DriftSettings()).result
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert {f"n{i:03d}" for i in range(20)} <= set(result.drifted_columns)  # the shifted ones (and ~1% alarms)
    assert peak < side_bytes / 2, f"peak {peak / 1e6:.1f} MB against {side_bytes / 1e6:.0f} MB a side"


def test_operator_runs_the_block_engine_and_writes_the_compact_report(frames, tmp_path):
    from mlops_provider.operators.drift import DetectDriftOperator

    reference, current = frames
    reference.to_parquet(tmp_path / "ref.parquet")
    current.to_parquet(tmp_path / "cur.parquet")
    operator = DetectDriftOperator(
        task_id="detect", current_uri=str(tmp_path / "cur.parquet"), reference_uri=str(tmp_path / "ref.parquet"),
        on_drift="continue", log_to_mlflow=False, reports_uri=str(tmp_path / "reports"),
    )  # fmt: skip
    ti = SimpleNamespace(
        dag_id="d", run_id="r", task_id="detect", map_index=-1, try_number=1, xcom_push=lambda **_: None
    )
    result = operator.execute({"ti": ti})
    expected = detect_drift(reference, current, DriftSettings())
    assert result["drifted_columns"] == expected.drifted_columns and len(result["columns"]) == COLUMNS
    html = Path(result["report_uri"]).read_text()
    assert "Columns without drift" in html


def test_wide_check_never_imports_evidently(frames, tmp_path):
    """Above ``WIDE_COLUMNS`` the page is the compact one: the task does not spend seconds importing Evidently."""
    import subprocess
    import sys

    reference, current = frames
    reference.to_parquet(tmp_path / "ref.parquet")
    current.to_parquet(tmp_path / "cur.parquet")
    script = f"""
import json, sys
from types import SimpleNamespace
from mlops_provider.operators.drift import DetectDriftOperator
operator = DetectDriftOperator(task_id="detect", current_uri={str(tmp_path / "cur.parquet")!r},
    reference_uri={str(tmp_path / "ref.parquet")!r}, on_drift="continue", log_to_mlflow=False,
    reports_uri={str(tmp_path / "reports")!r})
ti = SimpleNamespace(dag_id="d", run_id="r", task_id="detect", map_index=-1, try_number=1, xcom_push=lambda **_: 0)
result = operator.execute({{"ti": ti}})
print(json.dumps({{"columns": len(result["columns"]), "evidently": "evidently" in sys.modules}}))
"""
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    assert json.loads(child.stdout.strip().splitlines()[-1]) == {"columns": COLUMNS, "evidently": False}


def test_split_operators_store_parts_and_merge_one_verdict(frames, tmp_path):
    """The mapped check and the merge, run as Airflow would run them (XComs passed by hand)."""
    from mlops_provider.operators.drift_split import DriftColumnsOperator, MergeDriftOperator, PlanDriftColumnsOperator

    reference, current = frames
    reference.to_parquet(tmp_path / "ref.parquet")
    current.to_parquet(tmp_path / "cur.parquet")
    common = {"current_uri": str(tmp_path / "cur.parquet"), "reports_uri": str(tmp_path / "reports")}
    pushed: dict[str, object] = {}

    def context(task_id: str, map_index: int = -1) -> dict:
        push = lambda key, value: pushed.__setitem__(key, value)  # noqa: E731
        ti = SimpleNamespace(dag_id="d", run_id="r", task_id=task_id, map_index=map_index, try_number=1, xcom_push=push)
        return {"ti": ti}

    chunks = PlanDriftColumnsOperator(task_id="g.plan", columns_per_task=120,
                                      reference_uri=str(tmp_path / "ref.parquet"), **common).execute(context("g.plan"))  # fmt: skip
    plan = pushed["plan"]
    assert plan["tasks"] == len(chunks) == 3 and pushed["reference_uri"] == str(tmp_path / "ref.parquet")
    outputs = []
    for index, chunk in enumerate(chunks):
        check = DriftColumnsOperator(task_id="g.check", columns=chunk, reference_uri=pushed["reference_uri"],
                                     on_drift="continue", log_to_mlflow=False, **common)  # fmt: skip
        outputs.append(check.execute(context("g.check", index)))
        outputs[-1] = check.execute(context("g.check", index))  # a retry overwrites its own part
    assert len({o["part_uri"] for o in outputs}) == 3
    merge = MergeDriftOperator(task_id="g.merge", parts=outputs, plan=plan, reference_uri=str(tmp_path / "ref.parquet"),
                               on_drift="continue", log_to_mlflow=False, **common)  # fmt: skip
    merged = merge.execute(context("g.merge"))
    expected = detect_drift(reference, current, DriftSettings())
    assert merged["drifted_columns"] == expected.drifted_columns and merged["tasks"] == 3
    assert merged["drift_share"] == expected.drift_share and merged["drift_detected"] == expected.drift_detected
    assert Path(merged["report_uri"]).is_file()
