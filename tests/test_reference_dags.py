"""The reference DAGs in dags/: they import cleanly, their trigger form explains itself, and each one runs end to
end with ``dag.test()`` on generated data against the real MLflow server. Only the lifecycle test is marked
``airflow_db`` (run again on PostgreSQL): the system suite runs every DAG on PostgreSQL with Celery."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import pytest

from mlops_provider.core.registry import alias_version, read_history
from sample_data import write_labels, write_partitions

REPO = Path(__file__).resolve().parents[1]
REFERENCE_DAGS = {
    "mlops_lifecycle",
    "mlops_retrain_scheduled",
    "mlops_retrain_on_data_arrival",
    "mlops_drift_monitor",
    "mlops_retrain_on_drift",
    "mlops_feature_materialization",
    "mlops_performance_monitor",
    "mlops_retrain_on_performance",
    "mlops_progressive_rollout",
}
MONITORS = {"mlops_feature_materialization", "mlops_drift_monitor", "mlops_performance_monitor"}
# No lifecycle: it rolls out a version that training registered; run end to end in tests/test_rollout.py.
ROLLOUTS = {"mlops_progressive_rollout"}
LIFECYCLE_PARAMS = {
    "dataset_uri", "target_column", "feature_columns", "timestamp_column", "model_name", "estimator",
    "estimator_params", "primary_metric", "min_improvement", "expectation_suite", "require_approval", "feature_refs",
}  # fmt: skip


def load_dags() -> dict:
    """Parse dags/ the way the DAG processor does, with the environment as it is now."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(REPO / "dags"))
    assert bag.import_errors == {}, bag.import_errors
    return bag.dags


def end_of(day: str) -> datetime:
    """A manual run at the end of ``day``: Airflow gives it the last complete daily interval, that day."""
    return datetime.fromisoformat(day).replace(tzinfo=timezone.utc) + timedelta(days=1)


def states(run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def xcom(run, task_id: str, key: str = "return_value"):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(XComModel).filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id,
                                                 key=key).one_or_none()  # fmt: skip
        return XComModel.deserialize_value(row) if row is not None else None


def test_every_reference_dag_imports_and_the_trigger_form_explains_itself():
    dags = load_dags()
    assert REFERENCE_DAGS <= set(dags)
    params = dags["mlops_lifecycle"].params
    assert LIFECYCLE_PARAMS <= set(params.keys())
    for name in LIFECYCLE_PARAMS:
        param = params.get_param(name)
        assert param.schema.get("type") and param.description, f"param {name} lacks a type or a description"
    for dag_id in REFERENCE_DAGS - MONITORS - ROLLOUTS:
        tasks = {t.task_id for t in dags[dag_id].tasks}
        assert {"lifecycle.validate", "lifecycle.train", "lifecycle.gate", "lifecycle.promote"} <= tasks, dag_id
    assert "lifecycle.approve" in {t.task_id for t in dags["mlops_lifecycle"].tasks}


@pytest.fixture
def reference_env(mlflow_server, monkeypatch, tmp_path):
    """Reference DAG settings for one test: its own data folders and registered model on the MLflow server."""
    url = urlsplit(mlflow_server.url)
    model = f"churn-{uuid.uuid4().hex[:8]}"
    env = {
        "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "mlflow", "host": url.hostname, "port": url.port}),
        "AIRFLOW_CONN_FS_DEFAULT": json.dumps({"conn_type": "fs", "extra": {"path": "/"}}),
        "MLOPS_DATA_URI": str(tmp_path / "data"),
        "MLOPS_LANDING_URI": str(tmp_path / "landing"),
        "MLOPS_WORK_URI": str(tmp_path / "work"),
        "MLOPS_MODEL_NAME": model,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from mlops_provider.hooks.mlflow import MlflowHook

    return {"model": model, "data": tmp_path / "data", "landing": tmp_path / "landing", "tmp": tmp_path,
            "client": MlflowHook().get_conn()}  # fmt: skip


def versions(client, model: str) -> list:
    return sorted(client.search_model_versions(f"name='{model}'"), key=lambda v: int(v.version))


@pytest.mark.airflow_db
def test_lifecycle_promotes_then_skips_unchanged_data_and_scores(airflow_db, reference_env):
    env = reference_env
    write_partitions(env["data"], start="2026-01-01", days=5, rows_per_day=800)
    dag = load_dags()["mlops_lifecycle"]

    first = dag.test(run_conf={"dataset_uri": str(env["data"]), "model_name": env["model"]})
    assert str(first.state) == "success", states(first)
    assert alias_version(env["client"], env["model"], "champion") == "1"
    validation = xcom(first, "lifecycle.validate")
    assert validation["success"] and "cold-start baseline" in validation["suite_source"]
    assert xcom(first, "lifecycle.features")["output_uri"] == str(env["data"])  # no feature_refs: no Feast
    gate = xcom(first, "lifecycle.gate")
    assert gate["gate_passed"] and not gate["promoted"] and gate["champion_version"] is None
    assert xcom(first, "lifecycle.approve")["responded_by_user"] is None  # require_approval defaults to False
    scores = pd.read_parquet(xcom(first, "lifecycle.score")["output_uri"])
    assert len(scores) == 4000 and set(scores["model_version"]) == {"1"}
    history = read_history(env["client"], env["model"])
    assert [(h["action"], h["to_version"], h["by"]["task_id"]) for h in history] == [
        ("promote", "1", "lifecycle.promote")
    ]

    # The same data again: nothing is trained, the champion stays, and the suite now comes from its training sample.
    again = dag.test(run_conf={"dataset_uri": str(env["data"]), "model_name": env["model"]})
    assert str(again.state) == "success", states(again)
    assert xcom(again, "lifecycle.train")["skipped"] is True
    assert [v.version for v in versions(env["client"], env["model"])] == ["1"]
    assert f"{env['model']} v1 @champion" in xcom(again, "lifecycle.validate")["suite_source"]


def house_prices(rows: int, seed: int) -> pd.DataFrame:
    """A regression dataset that shares nothing with the sample: other columns, no ids, no timestamp, no
    partitions, and column names that look like template markers."""
    import numpy as np

    rng = np.random.default_rng(seed)
    sqft = rng.uniform(40, 250, rows)
    rooms = rng.integers(1, 7, rows)
    city = rng.choice(["Lyon", "Porto", "Graz"], rows)
    frame = pd.DataFrame({"sqft": sqft, "rooms": rooms, "city": city,
                          "null_ratio": rng.uniform(0, 1, rows), "True count": rng.integers(0, 3, rows)})  # fmt: skip
    frame["amount, in EUR"] = (
        3_000 * sqft + 15_000 * rooms + np.where(city == "Graz", 40_000, 0) + rng.normal(0, 20_000, rows)
    )
    return frame


@pytest.mark.airflow_db
def test_lifecycle_runs_on_another_dataset_named_only_by_its_uri_target_and_model(airflow_db, reference_env):
    env = reference_env
    data = env["tmp"] / "houses.parquet"
    house_prices(1500, seed=3).to_parquet(data, index=False)
    model = f"houses-{uuid.uuid4().hex[:8]}"
    dag = load_dags()["mlops_lifecycle"]

    run = dag.test(run_conf={"dataset_uri": str(data), "target_column": "amount, in EUR", "model_name": model})
    assert str(run.state) == "success", states(run)
    assert alias_version(env["client"], model, "champion") == "1"
    trained = xcom(run, "lifecycle.train")
    assert trained["outcome"] == "trained" and "rmse" in trained["metrics"]  # the gate chose rmse for regression
    assert set(xcom(run, "lifecycle.gate")["challenger_metrics"]) >= {"rmse", "r2"}

    # Names holding a comma, "null", "None" or "true" reach the operators as they are, as a native list.
    features = ["sqft", "rooms", "null_ratio", "True count"]
    again = dag.test(run_conf={"dataset_uri": str(data), "target_column": "amount, in EUR", "model_name": model,
                               "feature_columns": features, "estimator_params": {"max_iter": 60}})  # fmt: skip
    assert str(again.state) == "success", states(again)
    version = env["client"].get_model_version(model, xcom(again, "lifecycle.train")["version"])
    assert json.loads(version.tags["mlops.training_config"])["feature_columns"] == features
    assert json.loads(version.tags["mlops.training_config"])["target_column"] == "amount, in EUR"


def test_lifecycle_rejects_bad_params_with_a_clear_error(airflow_db, reference_env):
    from airflow.sdk.definitions.param import ParamValidationError

    dag = load_dags()["mlops_lifecycle"]
    with pytest.raises(ParamValidationError, match="min_improvement"):
        dag.test(run_conf={"min_improvement": "a lot"})
    with pytest.raises(ParamValidationError, match="primary_metric"):
        dag.test(run_conf={"primary_metric": "speed"})


def test_lifecycle_refuses_unknown_conf_keys_and_gate_metrics_before_training(airflow_db, reference_env):
    env = reference_env
    write_partitions(env["data"], start="2026-01-01", days=2, rows_per_day=300)
    dag = load_dags()["mlops_lifecycle"]

    typo = dag.test(run_conf={"dataset_uri": str(env["data"]), "model_name": env["model"], "target": "churned"})
    assert states(typo)["check_conf"] == "failed" and states(typo)["lifecycle.train"] == "upstream_failed"

    # rmse is no metric of a classifier: refused in train, before a run or a version exists.
    wrong = dag.test(run_conf={"dataset_uri": str(env["data"]), "model_name": env["model"], "primary_metric": "rmse"})
    assert states(wrong)["lifecycle.train"] == "failed"
    assert versions(env["client"], env["model"]) == []
    experiment = env["client"].get_experiment_by_name("mlops_lifecycle")
    runs = (
        env["client"].search_runs([experiment.experiment_id], f"tags.`airflow.run_id` = '{wrong.run_id}'")
        if experiment
        else []
    )
    assert runs == []


def test_scheduled_retrain_runs_three_weeks_in_order(airflow_db, reference_env):
    env = reference_env
    write_partitions(env["data"], start="2026-01-04", days=21, rows_per_day=500)
    dag = load_dags()["mlops_retrain_scheduled"]
    runs = [dag.test(logical_date=datetime(2026, 1, 11 + 7 * week, tzinfo=timezone.utc)) for week in range(3)]
    for run in runs:
        assert str(run.state) == "success", states(run)
    weeks = [xcom(run, "interval_partitions")["partitions"] for run in runs]
    assert [w[0] for w in weeks] == ["2026-01-04", "2026-01-11", "2026-01-18"]
    assert all(len(w) == 7 for w in weeks)
    registered = versions(env["client"], env["model"])
    assert [v.tags["airflow.run_id"] for v in registered] == [run.run_id for run in runs]
    # Each week's gate compared with the week before's champion; the history says who moved the alias.
    history = read_history(env["client"], env["model"])
    assert history[0]["from_version"] is None and history[0]["to_version"] == "1"
    assert {h["by"]["dag_id"] for h in history} == {"mlops_retrain_scheduled"}


def test_data_arrival_blocks_corrupt_partition_and_trains_on_a_good_one(airflow_db, reference_env):
    env = reference_env
    write_partitions(env["landing"], start="2026-01-01", days=1, rows_per_day=1500)
    write_partitions(env["landing"], start="2026-01-02", days=1, rows_per_day=1500, corruption="out_of_range")
    dag = load_dags()["mlops_retrain_on_data_arrival"]

    good = dag.test(logical_date=end_of("2026-01-01"))
    assert str(good.state) == "success", states(good)
    assert alias_version(env["client"], env["model"], "champion") == "1"

    bad = dag.test(logical_date=end_of("2026-01-02"))
    assert states(bad)["lifecycle.validate"] == "failed"
    assert states(bad)["lifecycle.train"] == "upstream_failed"
    failed = xcom(bad, "lifecycle.validate", key="validation_result")
    assert any(f["column"] == "tenure_months" for f in failed["failed"])
    assert [v.version for v in versions(env["client"], env["model"])] == ["1"]


def test_drift_monitor_raises_the_asset_and_retrain_on_drift_answers_it(airflow_db, reference_env):
    from airflow.models.asset import AssetDagRunQueue, AssetEvent
    from airflow.utils.session import create_session

    env = reference_env
    write_partitions(env["data"], start="2026-01-01", days=7, rows_per_day=800)
    dags = load_dags()
    sample = {"id_columns": ["customer_id", "dt"], "timestamp_column": "event_timestamp"}  # as the retrain DAG's
    assert str(dags["mlops_lifecycle"].test(run_conf={"dataset_uri": str(env["data"]), **sample}).state) == "success"
    # dag.test() stored every DAG of the bundle, as the DAG processor would; unpaused, the retrain DAG listens.
    from airflow.models.dag import DagModel

    with create_session() as session:
        session.query(DagModel).filter(DagModel.dag_id == "mlops_retrain_on_drift").update({"is_paused": False})

    quiet = dags["mlops_drift_monitor"].test(logical_date=end_of("2026-01-07"))
    assert xcom(quiet, "detect_drift")["drift_detected"] is False

    # Drift takes a few charges past the training range and the lifecycle's validation margin (a fifth of the
    # span); the retraining that answers the drift must not be stopped by them.
    trained = pd.read_parquet(env["data"], columns=["monthly_charges"])["monthly_charges"]
    past_the_range = round(trained.max() + (trained.max() - trained.min()) / 2, 2)
    (drifted_day,) = write_partitions(env["data"], start="2026-01-08", days=1, rows_per_day=800, drift=True)
    day = pd.read_parquet(drifted_day)
    day.loc[day.index[:3], "monthly_charges"] = past_the_range
    day.to_parquet(drifted_day, index=False)
    drifted = dags["mlops_drift_monitor"].test(logical_date=end_of("2026-01-08"))
    verdict = xcom(drifted, "detect_drift")
    assert verdict["drift_detected"] and "monthly_charges" in verdict["drifted_columns"]
    with create_session() as session:
        events = [e for e in session.query(AssetEvent).all() if e.asset.uri == f"mlops://drift/{env['model']}"]
        queued = {q.target_dag_id for q in session.query(AssetDagRunQueue).all()}
    assert len(events) == 1 and events[0].extra["current_uri"].endswith("dt=2026-01-08")
    assert "mlops_retrain_on_drift" in queued

    retrain = dags["mlops_retrain_on_drift"].test()
    assert xcom(retrain, "drift_event")["event_id"] == events[0].id
    assert xcom(retrain, "recent_partitions")["partitions"][-1] == "2026-01-08"
    assert states(retrain)["lifecycle.validate"] == "success", states(retrain)
    assert states(retrain)["lifecycle.gate"] in ("success", "skipped")
    decision = env["client"].get_model_version(env["model"], xcom(retrain, "lifecycle.train")["version"])
    assert decision.tags["mlops.gate.decision"] in ("promoted", "rejected")


@pytest.mark.airflow_db
def test_performance_monitor_calls_concept_drift_and_retrain_on_performance_answers_it(
    airflow_db, reference_env, monkeypatch
):
    from airflow.models.asset import AssetDagRunQueue, AssetEvent
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    from mlops_provider.operators.prediction import BatchPredictOperator

    env = reference_env
    monkeypatch.setenv("MLOPS_LABELS_URI", str(env["tmp"] / "labels"))
    monkeypatch.setenv("MLOPS_LABEL_DELAY_DAYS", "1")
    write_partitions(env["data"], start="2026-01-01", days=7, rows_per_day=800)
    dags = load_dags()
    sample = {"id_columns": ["customer_id", "dt"], "timestamp_column": "event_timestamp"}
    assert str(dags["mlops_lifecycle"].test(run_conf={"dataset_uri": str(env["data"]), **sample}).state) == "success"
    with create_session() as session:
        session.query(DagModel).filter(DagModel.dag_id == "mlops_retrain_on_performance").update({"is_paused": False})

    # The churn rule changes on 2026-01-08 (the inputs do not). That day was scored (its predictions stamped at
    # its end) by the monitor run of [01-08, 01-09); its labels arrive a day later.
    changed = write_partitions(env["data"], start="2026-01-08", days=3, rows_per_day=800, concept_drift=True)
    write_labels(changed[:1], env["tmp"] / "labels", delay_days=1)
    start = datetime(2026, 1, 8, tzinfo=timezone.utc)
    ti = type("TaskInstance", (), {"dag_id": "mlops_performance_monitor", "run_id": "scheduled__2026-01-08",
                                   "task_id": "score_day", "map_index": -1, "try_number": 1})()  # fmt: skip
    BatchPredictOperator(
        task_id="score_day", model_name=env["model"], dataset_uri=str(env["data"] / "dt=2026-01-08"),
        output_uri=str(env["tmp"] / "scores.parquet"), id_columns=["customer_id", "dt"],
    ).execute({"ti": ti, "run_id": ti.run_id, "data_interval_start": start,
               "data_interval_end": start + timedelta(days=1)})  # fmt: skip

    # The run of [01-10, 01-11) judges the predictions made in [01-09, 01-10): those of 01-08.
    monitor = dags["mlops_performance_monitor"].test(logical_date=end_of("2026-01-10"))
    assert states(monitor)["live_performance"] == "success", states(monitor)
    verdict = xcom(monitor, "live_performance")
    assert verdict["outcome"] == "degraded", verdict["statement"]
    assert verdict["kind"] == "performance drop without input drift (concept drift)", verdict["statement"]
    assert xcom(monitor, "input_drift")["drift_detected"] is False
    with create_session() as session:
        events = [e for e in session.query(AssetEvent).all() if e.asset.uri == f"mlops://performance/{env['model']}"]
        queued = {q.target_dag_id for q in session.query(AssetDagRunQueue).all()}
    assert len(events) == 1 and events[0].extra["metric"] == "accuracy" and events[0].extra["labelled_rows"] == 800
    assert "mlops_retrain_on_performance" in queued

    retrain = dags["mlops_retrain_on_performance"].test()
    answered = xcom(retrain, "performance_event")
    assert answered["event_id"] == events[0].id and answered["until"] == "2026-01-09"
    assert xcom(retrain, "recent_partitions")["partitions"][-1] == "2026-01-08"  # up to the degraded day
    assert states(retrain)["lifecycle.gate"] in ("success", "skipped")
    decision = env["client"].get_model_version(env["model"], xcom(retrain, "lifecycle.train")["version"])
    assert decision.tags["mlops.gate.decision"] in ("promoted", "rejected")


def test_feature_materialization_puts_the_hours_rows_online(airflow_db, reference_env, monkeypatch):
    import shutil
    import subprocess
    import sys

    repo = reference_env["tmp"] / "feature_repo"
    shutil.copytree(REPO / "include" / "feature_repo", repo, ignore=shutil.ignore_patterns("data"))
    subprocess.run([sys.executable, str(REPO / "include" / "feature_repo" / "generate_data.py"), "--out",
                    str(repo / "data"), "--customers", "300", "--days", "2", "--start", "2026-01-01"],
                   check=True, capture_output=True)  # fmt: skip
    monkeypatch.setenv("MLOPS_FEAST_REPO", str(repo))
    dag = load_dags()["mlops_feature_materialization"]
    run = dag.test(logical_date=datetime(2026, 1, 2, 1, tzinfo=timezone.utc))
    assert str(run.state) == "success", states(run)
    written = xcom(run, "materialize")
    assert written["window_start"].startswith("2026-01-02T00:00") and written["window_end"].startswith(
        "2026-01-02T01:00"
    )
