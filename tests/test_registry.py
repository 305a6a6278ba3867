"""Registry guarantees on the real MLflow server: the promotion lock, compare-and-set alias moves, the
history, rollback, the alias Asset event and the deferrable alias sensor."""

from __future__ import annotations

import threading
import time
import uuid
from urllib.parse import urlsplit

import pytest

from mlops_provider.core.errors import ConfigurationError
from mlops_provider.core.registry import (
    PromotionConflictError,
    PromotionLock,
    alias_version,
    evaluate_gate,
    move_alias,
    read_history,
    validate_thresholds,
)
from mlops_provider.hooks.mlflow import MlflowHook

ACTOR = {"dag_id": "manual", "run_id": "test", "task_id": "t"}


@pytest.fixture
def client(mlflow_server, connection_env):
    url = urlsplit(mlflow_server.url)
    connection_env("mlflow_default", conn_type="mlflow", host=url.hostname, port=url.port)
    return MlflowHook().get_conn()


@pytest.fixture
def model_with_versions(client):
    """A registered model with three versions (no alias yet)."""
    name = f"registry-{uuid.uuid4().hex[:8]}"
    experiment_id = client.create_experiment(name)
    client.create_registered_model(name)
    for _ in range(3):
        run = client.create_run(experiment_id)
        client.set_terminated(run.info.run_id)
        client.create_model_version(name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    return name


# -- the gate -------------------------------------------------------------------------------------------


def test_gate_needs_thresholds():
    with pytest.raises(ConfigurationError, match="a gate that passes every challenger is a bug"):
        validate_thresholds({})
    with pytest.raises(ConfigurationError, match="unknown keys \\['minimum'\\]"):
        validate_thresholds({"f1_macro": {"minimum": 0.7}})


def test_gate_value_and_change_thresholds():
    thresholds = {"f1_macro": {"min": 0.7, "min_absolute_change": 0.01}, "log_loss": {"max": 0.6}}
    better = evaluate_gate({"f1_macro": 0.82, "log_loss": 0.4}, {"f1_macro": 0.80, "log_loss": 0.45}, thresholds)
    assert better.promote and not better.reasons
    marginal = evaluate_gate({"f1_macro": 0.805, "log_loss": 0.4}, {"f1_macro": 0.80, "log_loss": 0.45}, thresholds)
    assert not marginal.promote and marginal.reasons == ["f1_macro min_absolute_change 0.01 not met (0.005)"]
    cold = evaluate_gate({"f1_macro": 0.75, "log_loss": 0.5}, None, thresholds)
    assert cold.promote and cold.cold_start
    assert "skipped: no champion" in cold.summary()
    too_weak = evaluate_gate({"f1_macro": 0.65, "log_loss": 0.5}, None, thresholds)
    assert not too_weak.promote and "f1_macro min 0.7 not met" in too_weak.reasons[0]


def test_gate_knows_error_metrics_are_better_lower():
    decision = evaluate_gate({"rmse": 9.0}, {"rmse": 10.0}, {"rmse": {"min_relative_change": 0.05}})
    assert decision.promote and decision.checks[0].actual == pytest.approx(0.1)
    worse = evaluate_gate({"rmse": 11.0}, {"rmse": 10.0}, {"rmse": {"min_absolute_change": 0.0}})
    assert not worse.promote


def test_gate_names_unknown_metric():
    with pytest.raises(ConfigurationError, match="names metric 'auc' but the challenger was scored on"):
        evaluate_gate({"roc_auc": 0.9}, None, {"auc": {"min": 0.5}})


# -- the lock and compare-and-set -----------------------------------------------------------------------


def test_lock_serialises_eight_concurrent_holders(client, model_with_versions):
    inside, overlaps, entered = [0], [], []
    guard = threading.Lock()

    def critical_section(worker: int) -> None:
        with PromotionLock(client, model_with_versions, owner=f"worker-{worker}", poll=0.05, timeout=120):
            with guard:
                inside[0] += 1
                overlaps.append(inside[0])
            entered.append(worker)
            time.sleep(0.1)
            with guard:
                inside[0] -= 1

    threads = [threading.Thread(target=critical_section, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(entered) == list(range(8))
    assert max(overlaps) == 1
    # released: the lock model is gone
    assert not [m for m in client.search_registered_models() if m.name == f"{model_with_versions}.mlops-lock"]


def test_stale_lock_is_broken_and_live_lock_times_out(client, model_with_versions):
    client.create_registered_model(f"{model_with_versions}.mlops-lock", tags={"mlops.lock_owner": "dead worker"})
    with pytest.raises(PromotionConflictError, match="held by dead worker"):
        PromotionLock(client, model_with_versions, owner="me", timeout=0.5).acquire()
    time.sleep(1.1)
    with PromotionLock(client, model_with_versions, owner="me", timeout=5, stale_after=1.0) as lock:
        assert lock.held


def test_move_alias_is_compare_and_set_and_keeps_history(client, model_with_versions):
    name = model_with_versions
    move_alias(client, name, "champion", "1", expected_from=None, action="promote", reason="first", actor=ACTOR)
    move_alias(client, name, "champion", "2", expected_from="1", action="promote", reason="better", actor=ACTOR)
    with pytest.raises(PromotionConflictError, match="points at version 2, not 1"):
        move_alias(client, name, "champion", "3", expected_from="1", action="promote", reason="stale", actor=ACTOR)
    assert alias_version(client, name, "champion") == "2"
    assert alias_version(client, name, "previous_champion") == "1"
    history = read_history(client, name)
    assert [(h["seq"], h["from_version"], h["to_version"], h["reason"]) for h in history] == [
        (1, None, "1", "first"),
        (2, "1", "2", "better"),
    ]


# -- Airflow: rollback and the alias sensor --------------------------------------------------------------


def alias_events(model_name: str) -> list:
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        return [
            (e.extra["action"], e.extra["version"])
            for e in session.query(AssetEvent).all()
            if e.asset.uri.rstrip("/") == f"mlflow://{model_name}@champion"  # Airflow appends "/" to an empty path
        ]


@pytest.mark.airflow_db
def test_rollback_restores_previous_champion_once(airflow_db, client, model_with_versions):
    from dags.mlops_test_registry import rollback_dag

    name = model_with_versions
    move_alias(client, name, "champion", "1", expected_from=None, action="promote", reason="first", actor=ACTOR)
    move_alias(client, name, "champion", "3", expected_from="1", action="promote", reason="better", actor=ACTOR)

    dag_run = rollback_dag.test(run_conf={"model_name": name})
    assert dag_run.state == "success"
    assert alias_version(client, name, "champion") == "1"
    assert alias_version(client, name, "previous_champion") == "3"
    last = read_history(client, name)[-1]
    assert (last["action"], last["from_version"], last["to_version"]) == ("rollback", "3", "1")
    assert last["by"]["dag_id"] == "mlops_test_rollback" and last["by"]["run_id"] == dag_run.run_id
    assert alias_events(name) == [("rollback", "1")]

    bad = rollback_dag.test(run_conf={"model_name": name, "to_version": "1"})
    assert bad.state == "failed"  # already points at 1: a clear error, nothing moved
    assert len(read_history(client, name)) == 3


@pytest.mark.airflow_db
def test_alias_sensor_defers_and_fires_on_a_real_alias_move(airflow_db, client, model_with_versions):
    from dags.mlops_test_registry import alias_sensor_dag

    name = model_with_versions
    move_alias(client, name, "champion", "1", expected_from=None, action="promote", reason="first", actor=ACTOR)

    def promote_later() -> None:
        time.sleep(8)
        move_alias(client, name, "champion", "2", expected_from="1", action="promote", reason="later", actor=ACTOR)

    mover = threading.Thread(target=promote_later)
    mover.start()
    dag_run = alias_sensor_dag.test(run_conf={"model_name": name})
    mover.join()
    assert dag_run.state == "success"
    ti = dag_run.get_task_instances()[0]
    assert ti.xcom_pull(task_ids="wait_for_new_champion") == {
        "model_name": name, "alias": "champion", "version": "2", "model_uri": f"models:/{name}/2",
    }  # fmt: skip
