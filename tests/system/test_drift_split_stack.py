"""A drift check split by columns on the production shape (issue #17): ``drift_task_group`` on S3 data, its
mapped checks run by the Celery worker as tasks of their own, merged into the verdict, report and single Asset
event that the same check in one task gives."""

from __future__ import annotations

import io
import uuid

import pytest
from tests.test_drift_wide import wide_frame

from .stack import Stack

pytestmark = pytest.mark.system

DAG_ID = "system_drift_split"
COLUMNS = 40  # 10 columns per mapped check: 4 checks


def _upload(stack: Stack, key: str, frame) -> str:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    stack.s3().put_object(Bucket=stack.bucket, Key=key, Body=buffer.getvalue())
    return f"s3://{stack.bucket}/{key}"


def test_split_drift_check_runs_its_column_chunks_as_celery_tasks_and_merges_to_one_verdict(stack):
    api = stack.api
    api.wait_for_dag(DAG_ID)
    api.set_paused(DAG_ID, False)
    prefix = f"drift-split/{uuid.uuid4().hex[:8]}"
    reference = _upload(stack, f"{prefix}/reference.parquet", wide_frame(4000, 31, False, COLUMNS))
    current = _upload(stack, f"{prefix}/current.parquet", wide_frame(4000, 32, True, COLUMNS))
    split_model, single_model = f"split-{uuid.uuid4().hex[:8]}", f"single-{uuid.uuid4().hex[:8]}"
    for name in (split_model, single_model):
        stack.mlflow().create_registered_model(name)

    conf = {"split_model": split_model, "single_model": single_model, "reference_uri": reference,
            "current_uri": current}  # fmt: skip
    run_id = api.trigger(DAG_ID, conf=conf)["dag_run_id"]
    api.wait_for_run(DAG_ID, run_id, timeout=300)

    tis = api.task_instances(DAG_ID, run_id)
    checks = sorted((ti for ti in tis if ti["task_id"] == "split.check"), key=lambda ti: ti["map_index"])
    assert [ti["map_index"] for ti in checks] == [0, 1, 2, 3]
    assert {ti["state"] for ti in tis} == {"success"}
    # Each chunk was a task of its own, run by the Celery worker in a process of its own: what lets several
    # workers (or one worker's slots) share the check. Whether two chunks overlap in time depends on what else
    # the worker is running, so it is not asserted.
    assert all(ti["hostname"] for ti in checks) and len({ti["pid"] for ti in checks}) == 4, checks

    merged = api.xcom(DAG_ID, run_id, "split.merge")
    single = api.xcom(DAG_ID, run_id, "single")
    assert merged["drifted_columns"] == single["drifted_columns"] != []
    assert merged["drift_detected"] is single["drift_detected"] is True
    assert merged["drift_share"] == single["drift_share"] and merged["tasks"] == 4
    assert merged["report_uri"] != single["report_uri"]

    events = [e for e in api.asset_events() if e["uri"] == f"mlops://drift/{split_model}"]
    assert len(events) == 1, "the merge alone emits, once for the whole check"
    assert events[0]["extra"]["drifted_columns"] == merged["drifted_columns"]
