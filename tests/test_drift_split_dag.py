"""A drift check split by columns, run by Airflow as mapped tasks: one task per chunk of columns, merged into the
verdict, the report and the single Asset event that the same check in one task gives."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from tests.test_drift_wide import wide_frame

pytestmark = pytest.mark.airflow_db

COLUMNS = 14  # 4 columns per task: 4 mapped checks, the last with 2 columns


def test_mapped_column_checks_merge_into_the_single_tasks_verdict(airflow_db, tmp_path):
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    from dags.mlops_test_drift_split import dag
    from mlops_provider.hooks.mlflow import MlflowHook

    wide_frame(1500, 21, False, COLUMNS).to_parquet(tmp_path / "reference.parquet", index=False)
    wide_frame(1500, 22, True, COLUMNS).to_parquet(tmp_path / "current.parquet", index=False)
    split_model, single_model = f"split-{uuid.uuid4().hex[:8]}", f"single-{uuid.uuid4().hex[:8]}"
    client = MlflowHook().get_conn()  # the embedded default store
    for name in (split_model, single_model):
        client.create_registered_model(name)

    dag_run = dag.test(
        run_conf={
            "split_model": split_model,
            "single_model": single_model,
            "reference_uri": str(tmp_path / "reference.parquet"),
            "current_uri": str(tmp_path / "current.parquet"),
        }
    )
    tis = dag_run.get_task_instances()
    checks = sorted(ti.map_index for ti in tis if ti.task_id == "split.check")
    assert checks == [0, 1, 2, 3], "one mapped check per chunk of 4 columns"
    assert {ti.state for ti in tis} == {"success"}, {(ti.task_id, ti.map_index): ti.state for ti in tis}

    by_id = {ti.task_id: ti for ti in tis if ti.map_index < 0}
    merged = by_id["split.merge"].xcom_pull(task_ids="split.merge")
    single = by_id["single"].xcom_pull(task_ids="single")
    assert merged["drifted_columns"] == single["drifted_columns"] != []
    assert merged["drift_detected"] is single["drift_detected"] is True
    assert merged["drift_share"] == single["drift_share"]
    assert merged["tasks"] == 4
    report = Path(merged["report_uri"])
    assert report.is_file() and report != Path(single["report_uri"])
    html = report.read_text()
    assert all(column in html for column in merged["drifted_columns"])

    with create_session() as session:
        events = [e for e in session.query(AssetEvent).all() if e.asset.uri == f"mlops://drift/{split_model}"]
    assert len(events) == 1, "the merge alone emits, once for the whole check"
    assert events[0].extra["drifted_columns"] == merged["drifted_columns"]
