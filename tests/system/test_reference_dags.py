"""The reference DAGs on the production shape, driven the way people drive them: the REST API and the scheduler.

The scenarios share one stack and run in the order ``conftest.SYSTEM_TEST_ORDER`` gives. The backfill, a
REST-triggered lifecycle run and the landing sensor start together (the ``scenarios`` fixture); the drift loop
and the UI test run while the backfill is under way, so the Celery worker's slots stay busy. The first
backfill week promotes the reference model's first champion, which the drift loop compares against.
Each scheduled DAG is unpaused only for its scenario and paused again afterwards: with ``catchup=False`` the
scheduler adds one run for the latest interval when a DAG is unpaused, and the landing and drift scenarios
use exactly that run (the weekly DAG's own run finds no partitions for last week and is skipped).
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from .api import AirflowApi
from .conftest import ARRIVAL, LIFECYCLE, MONITOR, ON_DRIFT, SCHEDULED
from .stack import ADMIN, APPROVER

pytestmark = pytest.mark.system

LIFECYCLE_TASKS = ("lifecycle.validate", "lifecycle.train", "lifecycle.gate", "lifecycle.promote", "lifecycle.score")


def _states(api: AirflowApi, dag_id: str, run_id: str) -> dict[str, str]:
    return {ti["task_id"]: ti["state"] for ti in api.task_instances(dag_id, run_id)}


def _versions_by_run(stack, model_name: str) -> dict[str, list]:
    by_run: dict[str, list] = {}
    for version in stack.mlflow().search_model_versions(f"name='{model_name}'"):
        by_run.setdefault(version.tags.get("airflow.run_id", "?"), []).append(version)
    return by_run


def _champion(stack, model_name: str):
    """The ``champion`` version of the model, or None when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return stack.mlflow().get_model_version_by_alias(model_name, "champion")
    except MlflowException:
        return None


def _assert_gate_decided(api: AirflowApi, dag_id: str, run_id: str, model_name: str) -> None:
    """The gate ran and explained its verdict; a rejected challenger skips the gate (the run stays green)."""
    gate = api.task_instance(dag_id, run_id, "lifecycle.gate")
    assert gate["state"] in ("success", "skipped"), gate
    log = api.task_log(dag_id, run_id, "lifecycle.gate", gate["try_number"])
    verdict = "PROMOTE" if gate["state"] == "success" else "REJECT"
    assert f"Gate for {model_name}" in log and verdict in log, log[-3000:]


def _upload_partition(stack, tmp_path, prefix: str, day: str, **kwargs) -> str:
    from sample_data import write_partitions

    local = tmp_path / uuid.uuid4().hex[:6]
    (path,) = write_partitions(local, start=day, days=1, rows_per_day=1000, **kwargs)
    key = f"{prefix}/dt={day}/part-00000.parquet"
    stack.s3().upload_file(str(path), stack.bucket, key)
    return f"s3://{stack.bucket}/{key}"


def test_lifecycle_triggered_through_rest_api_sets_the_champion(scenarios):
    """``POST /api/v2/dags/mlops_lifecycle/dagRuns`` with conf (sent by the ``scenarios`` fixture)."""
    stack, api = scenarios.stack, scenarios.stack.api
    run, model = scenarios.rest_run, scenarios.rest_model
    assert run["conf"]["model_name"] == model and run["run_type"] == "manual"
    assert run["conf"]["estimator_params"] == {"max_iter": 50}
    api.wait_for_run(LIFECYCLE, run["dag_run_id"], timeout=420)
    print(f"\n{LIFECYCLE} via REST: {time.monotonic() - scenarios.started:.0f}s after the trigger")

    states = _states(api, LIFECYCLE, run["dag_run_id"])
    for task_id in LIFECYCLE_TASKS:
        assert states[task_id] == "success", states
    trained = api.xcom(LIFECYCLE, run["dag_run_id"], "lifecycle.train")
    assert trained["model_name"] == model and trained["outcome"] == "trained", trained

    champion = stack.mlflow().get_model_version_by_alias(model, "champion")
    assert champion.version == str(trained["version"])
    assert champion.tags["airflow.run_id"] == run["dag_run_id"]
    assert champion.tags["airflow.dag_id"] == LIFECYCLE
    # The model's files went through the MLflow server to S3; the predictions to the S3 work area.
    s3 = stack.s3()
    artifacts = s3.list_objects_v2(Bucket=stack.bucket, Prefix="mlflow/").get("Contents", [])
    assert any(trained["run_id"] in obj["Key"] for obj in artifacts), "no model artifact of the run on S3"
    predictions = s3.list_objects_v2(Bucket=stack.bucket, Prefix=f"work/predictions/{LIFECYCLE}/").get("Contents", [])
    assert predictions, "the score task wrote no predictions under s3://<bucket>/work/predictions/"


def test_promotion_waits_for_a_human_approval_from_a_named_approver(scenarios):
    """``require_approval`` with ``approvers``: the run waits in Airflow's Required actions; the admin, who is not
    a named approver, is refused by the API; the approver's answer promotes, recorded with the approver's name."""
    stack, api = scenarios.stack, scenarios.stack.api
    model = f"churn_approval_{uuid.uuid4().hex[:6]}"
    approver = APPROVER["username"]
    run = api.trigger(LIFECYCLE, conf={"model_name": model, "require_approval": True, "approvers": [approver]},
                      note="system test: human approval")  # fmt: skip
    run_id = run["dag_run_id"]
    api.wait_for_task(LIFECYCLE, run_id, "lifecycle.approve", {"awaiting_input"}, timeout=420)
    assert _champion(stack, model) is None  # the gate passed, but nothing moves before the answer
    path = f"/api/v2/dags/{LIFECYCLE}/dagRuns/{run_id}/taskInstances/lifecycle.approve/-1/hitlDetails"
    request = api.get(path)
    assert request["options"] == ["Approve", "Reject"]
    assert f"Promote {model} version 1 to @champion?" == request["subject"]
    assert "| roc_auc |" in request["body"] and "cold start" in request["body"], request["body"]
    assert [user["id"] for user in request["assigned_users"]] == [approver]
    approve = {"chosen_options": ["Approve"], "params_input": {}}
    refused = api.request("PATCH", path, json=approve, expected=(403,))
    assert f"User={ADMIN['username']}" in str(refused) and "is not a respondent" in str(refused), refused
    assert api.get(path)["response_received"] is False
    approver_api = stack.api_as(APPROVER)
    try:
        answer = approver_api.request("PATCH", path, json=approve)
    finally:
        approver_api.close()
    api.wait_for_run(LIFECYCLE, run_id, timeout=300)

    assert _champion(stack, model).version == "1"
    from mlops_provider.core.registry import read_history

    (move,) = read_history(stack.mlflow(), model)
    assert move["by"]["task_id"] == "lifecycle.promote"
    assert move["by"]["approved_by"] == answer["responded_by"]["name"] == approver


def test_landing_upload_resumes_deferred_sensor_in_triggerer(scenarios, tmp_path):
    stack, api = scenarios.stack, scenarios.stack.api
    try:
        run = api.wait_for_runs(ARRIVAL, lambda rs: len(rs) >= 1, run_type="scheduled", timeout=90)[0]
        run_id, day = run["dag_run_id"], run["data_interval_start"][:10]
        deferred = api.wait_for_task(ARRIVAL, run_id, "wait_for_partition", {"deferred"}, timeout=180)
        assert deferred["state"] == "deferred"
        started = time.monotonic()
        _upload_partition(stack, tmp_path, "landing/churn", day)
        api.wait_for_run(ARRIVAL, run_id, timeout=300)
        print(f"\n{ARRIVAL}: upload -> success {time.monotonic() - started:.0f}s")
    finally:
        api.set_paused(ARRIVAL, True)

    sensor = api.task_instance(ARRIVAL, run_id, "wait_for_partition")
    assert sensor["state"] == "success" and sensor["try_number"] == 1  # resumed, not retried
    log = api.task_log(ARRIVAL, run_id, "wait_for_partition", 1)
    assert "Pausing task as DEFERRED" in log, log
    assert "Trigger fired event" in log or "trigger completed" in log.lower(), log
    states = _states(api, ARRIVAL, run_id)
    assert states["lifecycle.validate"] == "success" and states["lifecycle.train"] == "success", states
    trained = api.xcom(ARRIVAL, run_id, "lifecycle.train")
    assert trained["model_name"] == stack.model_name and trained["version"], trained
    _assert_gate_decided(api, ARRIVAL, run_id, stack.model_name)


def test_backfill_of_scheduled_retraining_runs_three_weeks_in_order(scenarios):
    stack, api = scenarios.stack, scenarios.stack.api
    assert len(scenarios.planned) == 3, scenarios.planned
    assert scenarios.backfill["dag_id"] == SCHEDULED and scenarios.backfill["max_active_runs"] == 1
    runs = api.wait_for_runs(
        SCHEDULED,
        lambda rs: len(rs) == 3 and all(r["state"] == "success" for r in rs),
        run_type="backfill",
        order_by="logical_date",
        timeout=600,
    )
    api.set_paused(SCHEDULED, True)
    print(f"\n{SCHEDULED} backfill of 3 weeks: {time.monotonic() - scenarios.started:.0f}s")

    assert [r["logical_date"][:10] for r in runs] == [d[:10] for d in scenarios.planned]
    for earlier, later in zip(runs, runs[1:], strict=False):  # one at a time, oldest week first
        assert earlier["end_date"] <= later["start_date"], (earlier, later)
    by_run = _versions_by_run(stack, stack.model_name)
    numbers = []
    for run in runs:
        versions = by_run.get(run["dag_run_id"], [])
        assert len(versions) == 1, f"{run['dag_run_id']} registered {len(versions)} versions"
        trained = api.xcom(SCHEDULED, run["dag_run_id"], "lifecycle.train")
        assert trained["version"] == versions[0].version
        assert trained["outcome"] == "trained", trained
        numbers.append(int(versions[0].version))
        week = api.xcom(SCHEDULED, run["dag_run_id"], "interval_partitions")
        assert week["dataset_uri"].count("dt=") == 7, week  # the week's seven daily partitions
    assert numbers == sorted(numbers)
    assert _champion(stack, stack.model_name) is not None


def test_drift_loop_is_closed_by_the_scheduler(scenarios, tmp_path):
    stack, api = scenarios.stack, scenarios.stack.api
    # The backfill's first week (or the landed day) promotes the first champion of the reference model.
    deadline = time.monotonic() + 300
    while _champion(stack, stack.model_name) is None:
        if time.monotonic() > deadline:  # nothing promoted one: make one the usual way
            run = api.trigger(LIFECYCLE, note="system test: a champion for the drift loop")
            api.wait_for_run(LIFECYCLE, run["dag_run_id"], timeout=300)
            break
        time.sleep(3)
    assert _champion(stack, stack.model_name) is not None
    # The scheduler picks the latest daily interval when the monitor is unpaused: drifted data for the days
    # around now covers it even across midnight.
    today = datetime.now(timezone.utc).date()
    for offset in (-2, -1, 0):
        _upload_partition(stack, tmp_path, "data/churn", (today + timedelta(days=offset)).isoformat(), drift=True)

    api.set_paused(ON_DRIFT, False)
    api.set_paused(MONITOR, False)
    try:
        started = time.monotonic()
        monitor = api.wait_for_runs(MONITOR, lambda rs: len(rs) >= 1, run_type="scheduled", timeout=90)[0]
        api.wait_for_run(MONITOR, monitor["dag_run_id"], timeout=240)
        verdict = api.xcom(MONITOR, monitor["dag_run_id"], "detect_drift")
        assert verdict["drift_detected"] is True, verdict
        assert "monthly_charges" in verdict["drifted_columns"] or "plan" in verdict["drifted_columns"], verdict

        retrain = api.wait_for_runs(ON_DRIFT, lambda rs: len(rs) >= 1, timeout=120)[0]
        assert retrain["run_type"] == "asset_triggered", retrain
        api.wait_for_run(ON_DRIFT, retrain["dag_run_id"], timeout=360)
        print(f"\ndrift loop: monitor + retrain {time.monotonic() - started:.0f}s")
    finally:
        api.set_paused(MONITOR, True)
        api.set_paused(ON_DRIFT, True)

    event = api.xcom(ON_DRIFT, retrain["dag_run_id"], "drift_event")
    assert event["triggered_by_event"] is True
    assert event["run_id"] == monitor["dag_run_id"] and event["day"] == monitor["data_interval_start"][:10]
    trained = api.xcom(ON_DRIFT, retrain["dag_run_id"], "lifecycle.train")
    assert trained["model_name"] == stack.model_name and trained["version"], trained
    _assert_gate_decided(api, ON_DRIFT, retrain["dag_run_id"], stack.model_name)
