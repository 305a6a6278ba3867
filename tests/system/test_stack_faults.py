"""Faults of the production shape itself, on the running stack: processes killed by pid and restarted as a
supervisor (systemd, Kubernetes) would restart them, while the provider's tasks run.

* the Celery worker killed with SIGKILL (it and every task process under it) while ``TrainModelOperator``
  logs its run, and while ``MaterializeFeaturesOperator`` writes the online store: the scheduler notices the
  dead try by its missing heartbeat, the restarted worker runs the retry, and the end state is that of an
  undisturbed run: one registered version for the run, every online row once with the window's newest value;
* the triggerer killed while a ``ModelAliasSensor`` and an ``S3KeySensor`` are deferred, what they wait
  for happening while it is down: the restarted triggerer takes their triggers over, each wait resumes in
  its first try and fires once;
* PostgreSQL, which holds Airflow's metadata database (and MLflow's), restarted in the middle of a
  training run: every component that dies of it is restarted, the run finishes, and clearing its task (a
  rerun) registers nothing new.

The fault DAGs are in ``dags/system_faults.py``. These tests run after the reference scenarios (see
``conftest.SYSTEM_TEST_ORDER``) and wait until no other run is active, so a kill disturbs only its own run.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from mlops_provider.core.tags import ABANDONED
from support import services

from .api import AirflowApi

pytestmark = pytest.mark.system

TRAIN, MATERIALIZE, WAIT = "system_fault_train", "system_fault_materialize", "system_fault_wait"
VIEWS = {
    "customer_profile": ["tenure_months", "monthly_charges", "support_calls", "plan", "contract"],
    "customer_activity": ["sessions_7d", "sessions_30d", "minutes_7d", "data_gb_7d", "days_since_last_login"],
}
CUSTOMERS = 100_000  # large enough that the writes last seconds, so the kill lands in the middle of them
WINDOW = ("2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00")


def _wait_until_idle(api: AirflowApi, timeout: float = 600) -> None:
    """No run of any DAG is queued or running: a kill then disturbs only the test's own run."""
    deadline = time.monotonic() + timeout
    while True:
        busy = [(r["dag_id"], r["dag_run_id"]) for r in api.all_runs() if r["state"] in ("queued", "running")]
        if not busy:
            return
        assert time.monotonic() < deadline, f"runs still active after {timeout:.0f}s: {busy}"
        time.sleep(2)


def _ready(api: AirflowApi, dag_id: str) -> None:
    api.wait_for_dag(dag_id, timeout=180)
    api.set_paused(dag_id, False)
    _wait_until_idle(api)


def _poll(condition, *, timeout: float, interval: float = 0.2, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f}s"
        time.sleep(interval)


def _versions(stack, model_name: str) -> list:
    return list(stack.mlflow().search_model_versions(f"name = '{model_name}'"))


def _runs_of(stack, model_name: str, run_id: str) -> list:
    client = stack.mlflow()
    experiment = client.get_experiment_by_name(model_name)
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], filter_string=f"tags.`airflow.run_id` = '{run_id}'")


def _try_states(api: AirflowApi, dag_id: str, run_id: str, task_id: str) -> list[str]:
    return [t["state"] for t in api.tries(dag_id, run_id, task_id)]


def _kill_worker_mid_task(stack, dag_id: str, run_id: str, task_id: str, started_writing) -> float:
    """SIGKILL the Celery worker (and the task under it) once ``started_writing()`` holds while the task
    runs, restart it; returns the seconds from the kill until the run finished."""
    api = stack.api
    api.wait_for_task(dag_id, run_id, task_id, {"running"}, timeout=300)
    _poll(started_writing, timeout=240, interval=0.1, what=f"{task_id} started writing")
    assert api.task_instance(dag_id, run_id, task_id)["state"] == "running", "the task ended before the kill"
    killed = stack.kill("celery-worker")
    killed_at = time.monotonic()
    assert len(killed) > 2, f"the worker had no task processes under it: {killed}"
    stack.restart("celery-worker")
    api.wait_for_run(dag_id, run_id, timeout=420)
    return time.monotonic() - killed_at


def test_worker_killed_while_training_logs_then_the_retry_registers_one_version(stack):
    api = stack.api
    _ready(api, TRAIN)
    model = f"churn_worker_kill_{uuid.uuid4().hex[:6]}"
    run_id = api.trigger(TRAIN, conf={"model_name": model}, note="fault test: worker killed")["dag_run_id"]

    def logging_run():  # the first try's MLflow run exists and no version does yet: it is logging the model
        runs = _runs_of(stack, model, run_id)
        return runs if runs and not _versions(stack, model) else None

    _kill_worker_mid_task(stack, TRAIN, run_id, "train", logging_run)
    tries = _try_states(api, TRAIN, run_id, "train")
    assert tries == ["failed", "success"], tries  # the dead try, found by its missing heartbeat; the retry

    (version,) = _versions(stack, model)  # an undisturbed run registers exactly one version, and so did this
    assert version.tags["airflow.run_id"] == run_id and version.tags["airflow.try_number"] == "2", version.tags
    trained = api.xcom(TRAIN, run_id, "train")
    assert (trained["outcome"], trained["version"]) == ("trained", version.version), trained
    runs = {run.info.run_id: run for run in _runs_of(stack, model, run_id)}
    (dead,) = [run for run_key, run in runs.items() if run_key != trained["run_id"]]  # the killed try's run
    assert dead.info.status == "FAILED" and ABANDONED in dead.data.tags, (dead.info, dead.data.tags)


def _online_row_counts(database: Path, project: str) -> dict[str, int]:
    counts = {}
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=0.5) as connection:
            for view in VIEWS:
                counts[view] = connection.execute(f'SELECT COUNT(*) FROM "{project}_{view}"').fetchone()[0]
    except sqlite3.Error:  # not created yet, or locked by the writer at this instant
        return {}
    return counts


def test_worker_killed_while_materialising_then_the_retry_leaves_the_online_rows_of_an_undisturbed_run(stack):
    import pandas as pd
    from feast import FeatureStore

    from support.feature_repo import make_feature_repo, online_values

    api = stack.api
    _ready(api, MATERIALIZE)
    project = f"faults_{uuid.uuid4().hex[:8]}"
    repo = make_feature_repo(stack.root / project, project=project, customers=CUSTOMERS, days=2, seed=3)
    conf = {"repo_path": str(repo), "window_start": WINDOW[0], "window_end": WINDOW[1]}
    run_id = api.trigger(MATERIALIZE, conf=conf, note="fault test: worker killed")["dag_run_id"]
    database = repo / "data" / "online_store.db"

    def first_view_written():  # one view's rows are in, the other's are on their way
        counts = _online_row_counts(database, project)
        return counts if any(counts.values()) else None

    _kill_worker_mid_task(stack, MATERIALIZE, run_id, "materialize", first_view_written)
    assert _try_states(api, MATERIALIZE, run_id, "materialize") == ["failed", "success"]

    # Every customer's every feature once (nothing doubled, nothing lost), with the newest value of the window.
    counts = _online_row_counts(database, project)
    assert counts == {view: CUSTOMERS * len(features) for view, features in VIEWS.items()}, counts
    store = FeatureStore(repo_path=str(repo))
    start, end = (pd.Timestamp(moment) for moment in WINDOW)
    sample = list(range(1, CUSTOMERS + 1, CUSTOMERS // 200))
    for view, features in VIEWS.items():
        frame = pd.read_parquet(repo / "data" / f"{view}.parquet")
        window = frame[(frame["event_timestamp"] >= start) & (frame["event_timestamp"] < end)]
        newest = window.sort_values("event_timestamp").groupby("customer_id").tail(1).set_index("customer_id")
        for feature in features:
            expected = {int(c): newest.at[c, feature] for c in sample}
            assert online_values(store, view, feature, sample) == pytest.approx(expected), (view, feature)


def test_triggerer_killed_while_sensors_wait_then_each_wait_resumes_and_fires_once(stack, tmp_path):
    api, client = stack.api, stack.mlflow()
    _ready(api, WAIT)
    model = f"churn_wait_{uuid.uuid4().hex[:6]}"
    client.create_registered_model(model)
    source = client.create_run(client.create_experiment(model))
    version = client.create_model_version(model, f"runs:/{source.info.run_id}/model", source.info.run_id)
    key = f"landing/faults/{uuid.uuid4().hex[:8]}/_SUCCESS"
    conf = {"model_name": model, "landing_key": f"s3://{stack.bucket}/{key}"}
    run_id = api.trigger(WAIT, conf=conf, note="fault test: triggerer killed")["dag_run_id"]
    for sensor in ("wait_for_champion", "wait_for_key"):
        api.wait_for_task(WAIT, run_id, sensor, {"deferred"}, timeout=240)
    time.sleep(3)  # the triggerer has picked both triggers up and is polling

    stack.kill("triggerer")
    # What the sensors wait for happens while no triggerer runs.
    client.set_registered_model_alias(model, "champion", version.version)
    stack.s3().put_object(Bucket=stack.bucket, Key=key, Body=b"")
    time.sleep(5)
    assert {t["state"] for t in api.task_instances(WAIT, run_id) if t["task_id"].startswith("wait")} == {"deferred"}
    restarted = time.monotonic()
    stack.restart("triggerer")
    api.wait_for_run(WAIT, run_id, timeout=300)
    print(f"\ntriggerer restart: both waits resumed {time.monotonic() - restarted:.0f}s after the restart")

    for task_id in ("wait_for_champion", "wait_for_key", "after_champion", "after_key"):
        assert _try_states(api, WAIT, run_id, task_id) == ["success"], task_id  # resumed once, never retried
    released = api.xcom(WAIT, run_id, "after_champion")
    assert released["sensor_result"]["version"] == version.version, released
    log = api.task_log(WAIT, run_id, "wait_for_champion", 1)
    assert log.count("now points at version") == 1, log[-3000:]


def test_metadata_database_restarted_during_a_run_then_it_finishes_and_a_rerun_registers_nothing(stack):
    api = stack.api
    _ready(api, TRAIN)
    model = f"churn_db_restart_{uuid.uuid4().hex[:6]}"
    run_id = api.trigger(TRAIN, conf={"model_name": model}, note="fault test: database restarted")["dag_run_id"]
    api.wait_for_task(TRAIN, run_id, "train", {"running"}, timeout=300)
    time.sleep(2)  # training: reading the data, fitting
    restart_began = datetime.now(timezone.utc)
    took = services.restart_postgres()

    restarted: list[str] = []
    deadline = time.monotonic() + 420
    while True:  # a supervisor's loop: whatever died of the restart is started again
        restarted += stack.restart_exited()
        try:
            state = api.run(TRAIN, run_id)["state"]
        except Exception:  # the api-server itself may be reconnecting
            state = "unknown"
        if state in ("success", "failed"):
            break
        assert time.monotonic() < deadline, f"the run is still {state!r} 7 minutes after the restart"
        time.sleep(2)
    tries = _try_states(api, TRAIN, run_id, "train")
    print(f"\nPostgreSQL restart: {took:.1f}s; components restarted: {restarted or 'none'}; run {state}, tries {tries}")
    first = api.tries(TRAIN, run_id, "train")[0]
    assert datetime.fromisoformat(first["start_date"]) < restart_began, first  # the restart hit a running try
    if state == "failed":  # failed cleanly: the operator's retry path, then the user's clear
        api.clear(TRAIN, run_id, ["train"])
        api.wait_for_run(TRAIN, run_id, timeout=300)
    (version,) = _versions(stack, model)
    assert version.tags["airflow.run_id"] == run_id

    api.clear(TRAIN, run_id, ["train"])  # a rerun of the finished run
    api.wait_for_run(TRAIN, run_id, timeout=300)
    rerun = api.xcom(TRAIN, run_id, "train")
    assert (rerun["outcome"], rerun["version"]) == ("reused", version.version), rerun
    assert len(_versions(stack, model)) == 1
