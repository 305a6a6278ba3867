"""The harness itself, proven with the probe DAGs in ``tests/system/dags`` (no reference DAG needed):
a REST-triggered run executes on the Celery worker, logs to the MLflow server whose artifacts land on
S3, a deferrable sensor waits in the triggerer until a key appears on S3, and a failed run is reported
with its task's log."""

from __future__ import annotations

import time
import uuid

import pytest

from .api import RunDidNotFinish
from .dags.system_probe import FAILURE_MARKER

pytestmark = pytest.mark.system


def test_components_report_healthy(stack):
    health = stack.api.health()
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[component]["status"] == "healthy", health
    assert "Loaded executor: :CeleryExecutor:" in stack.processes["scheduler"].log_path.read_text(errors="replace")
    assert all(p.popen.poll() is None for p in stack.processes.values()), stack.diagnostics()


def test_probe_runs_on_celery_logs_to_mlflow_on_s3_and_defers_in_triggerer(stack):
    api = stack.api
    api.wait_for_dag("system_probe")
    api.set_paused("system_probe", False)
    key_prefix = f"probe/{uuid.uuid4().hex[:8]}"
    run = api.trigger("system_probe", conf={"landing_key": f"s3://{stack.bucket}/{key_prefix}/*.ready"})
    run_id = run["dag_run_id"]

    # The sensor defers: it waits in the triggerer, not in a worker slot.
    deferred = api.wait_for_task("system_probe", run_id, "wait_for_key", {"deferred"}, timeout=240)
    assert deferred["state"] == "deferred"
    time.sleep(3)  # let the trigger poll once and find nothing
    stack.s3().put_object(Bucket=stack.bucket, Key=f"{key_prefix}/part-0.ready", Body=b"ok")
    api.wait_for_run("system_probe", run_id, timeout=120)

    tis = {ti["task_id"]: ti for ti in api.task_instances("system_probe", run_id)}
    assert tis["wait_for_key"]["state"] == "success"
    assert tis["log_to_mlflow"]["hostname"], tis["log_to_mlflow"]
    # The Celery worker (not the scheduler) executed the task: its log names the run.
    worker_log = stack.processes["celery-worker"].log_path.read_text(errors="replace")
    assert "Executing workload in Celery" in worker_log and f"run_id={run_id}" in worker_log
    sensor_log = api.task_log("system_probe", run_id, "wait_for_key", tis["wait_for_key"]["try_number"])
    assert "trigger" in sensor_log.lower(), sensor_log

    # The MLflow run was logged through the mlflow_default connection; its artifact is on S3.
    result = api.xcom("system_probe", run_id, "log_to_mlflow")
    mlflow_run = stack.mlflow().get_run(result["mlflow_run_id"])
    assert mlflow_run.data.metrics["answer"] == 42
    assert mlflow_run.data.tags["airflow.run_id"] == run_id
    keys = [o["Key"] for o in stack.s3().list_objects_v2(Bucket=stack.bucket, Prefix="mlflow/")["Contents"]]
    assert any(k.endswith(f"{result['mlflow_run_id']}/artifacts/probe.txt") for k in keys), keys


def test_failed_run_is_reported_with_the_task_log(stack):
    api = stack.api
    api.wait_for_dag("system_probe_failure")
    api.set_paused("system_probe_failure", False)
    run_id = api.trigger("system_probe_failure")["dag_run_id"]
    with pytest.raises(RunDidNotFinish) as failure:
        api.wait_for_run("system_probe_failure", run_id, timeout=180)
    report = str(failure.value)
    assert "ended 'failed'" in report
    assert "read_input=failed" in report
    assert "----- log of read_input" in report
    assert FAILURE_MARKER in report and "ValueError" in report, report
