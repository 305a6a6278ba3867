"""A drift check split by columns on the production shape (issue #17): ``drift_task_group`` on S3 data, its
mapped checks run by the Celery worker side by side, merged into the verdict, report and single Asset event that
the same check in one task gives."""

from __future__ import annotations

import io
import uuid
from datetime import datetime

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


def _overlap(a: dict, b: dict) -> bool:
    start = max(datetime.fromisoformat(a["start_date"]), datetime.fromisoformat(b["start_date"]))
    end = min(datetime.fromisoformat(a["end_date"]), datetime.fromisoformat(b["end_date"]))
    return start < end


def test_split_drift_check_runs_its_column_chunks_side_by_side_on_celery_and_merges_to_one_verdict(stack):
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
    # The worker's slots ran chunks at the same time: the split spreads one check over several task processes.
    assert any(_overlap(a, b) for i, a in enumerate(checks) for b in checks[i + 1 :]), [
        (ti["map_index"], ti["start_date"], ti["end_date"]) for ti in checks
    ]

    merged = api.xcom(DAG_ID, run_id, "split.merge")
    single = api.xcom(DAG_ID, run_id, "single")
    assert merged["drifted_columns"] == single["drifted_columns"] != []
    assert merged["drift_detected"] is single["drift_detected"] is True
    assert merged["drift_share"] == single["drift_share"] and merged["tasks"] == 4
    assert merged["report_uri"] != single["report_uri"]

    events = [e for e in api.asset_events() if e["uri"] == f"mlops://drift/{split_model}"]
    assert len(events) == 1, "the merge alone emits, once for the whole check"
    assert events[0]["extra"]["drifted_columns"] == merged["drifted_columns"]
