"""`make demo`: the reference DAGs end to end on the embedded default, nothing to start by hand.

Airflow runs each DAG with ``dag.test()`` on a SQLite metadata DB; MLflow is the embedded SQLite store; data
and reports are local files. Everything lives in ``$MLOPS_HOME/demo`` (replaced on each run), the summary in
``$MLOPS_HOME/demo-summary.json``. The story:

1. a week of churn data -> ``mlops_lifecycle`` -> a champion is promoted;
2. a corrupted partition lands -> ``mlops_retrain_on_data_arrival`` -> validation blocks it, nothing registered;
3. drifted partitions -> ``mlops_drift_monitor`` raises ``mlops://drift/<model>`` -> the scheduler's queue holds
   ``mlops_retrain_on_drift`` for that event -> it runs on the drifted week and its challenger meets the gate;
4. the churn rule changes (concept drift: the inputs do not) -> the champion's predictions of that day are
   logged, their labels arrive a day later -> ``mlops_performance_monitor`` finds the accuracy drop and raises
   ``mlops://performance/<model>`` -> ``mlops_retrain_on_performance`` retrains from that event.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUTER_HOME = Path(os.environ.get("MLOPS_HOME") or REPO / ".mlops").resolve()
HOME = OUTER_HOME / "demo"
MODEL = "customer_churn"
DAY_ONE = "2026-01-01"

os.environ.update(
    {
        "MLOPS_HOME": str(HOME),
        "AIRFLOW_HOME": str(HOME / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # As after unpausing them in the UI: a paused DAG is not queued by asset events.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME / 'airflow' / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("DEMO_LOG_LEVEL", "WARNING"),
        "AIRFLOW_CONN_FS_DEFAULT": json.dumps({"conn_type": "fs", "extra": {"path": "/"}}),
        "MLOPS_MODEL_NAME": MODEL,
        "MLOPS_LABELS_URI": str(HOME / "labels" / "churn"),
        "MLOPS_LABEL_DELAY_DAYS": "1",
        "GX_ANALYTICS_ENABLED": "false",
        "PYTHONWARNINGS": "ignore",
    }
)
for name in [
    n for n in os.environ if n.startswith(("AIRFLOW_CONN_MLFLOW", "MLFLOW_TRACKING", "MLOPS_DATA", "MLOPS_LANDING"))
]:
    del os.environ[name]  # the demo always runs on its own embedded stores
sys.path.insert(0, str(REPO / "include"))
sys.path.insert(0, str(REPO / "dags"))

from sample_data import write_labels, write_partitions  # noqa: E402

DATA = HOME / "data" / "churn"
LANDING = HOME / "landing" / "churn"


LOG = HOME / "demo.log"


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


@contextlib.contextmanager
def task_output_to_log():
    """Airflow prints every task's log (and the expected validation failure's traceback): keep them in a file."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(LOG, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def run_dag(bag, dag_id: str, **kwargs):
    with task_output_to_log():
        return bag.dags[dag_id].test(**kwargs)


def airflow_cli(*args: str) -> None:
    result = subprocess.run([str(Path(sys.executable).parent / "airflow"), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"airflow {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


def after_day(day: str) -> datetime:
    """A manual run at the end of ``day``: Airflow gives it the last complete daily interval, that day."""
    return datetime.fromisoformat(day).replace(tzinfo=timezone.utc) + timedelta(days=1)


def states(run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def xcom(run, task_id: str):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(XComModel).filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id,
                                                 key="return_value").one_or_none()  # fmt: skip
        return XComModel.deserialize_value(row) if row is not None else None


def versions(client) -> list[str]:
    return sorted((v.version for v in client.search_model_versions(f"name='{MODEL}'")), key=int)


def main() -> int:
    started = time.perf_counter()
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True)
    step("Setting up: a week of sample data, the Airflow metadata DB, the DAGs")
    write_partitions(DATA, start=DAY_ONE, days=7)
    airflow_cli("db", "migrate")

    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.asset import AssetDagRunQueue, AssetEvent
    from airflow.utils.session import create_session

    from mlops_provider.core.registry import alias_version, read_history
    from mlops_provider.hooks.mlflow import MlflowHook

    with task_output_to_log():
        bag = DagBag(str(REPO / "dags"))
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {bag.import_errors}")
    with task_output_to_log():
        client = MlflowHook().get_conn()
    summary: dict = {"mlflow_tracking_uri": MlflowHook().settings.tracking_uri, "reports": {}}

    step("1. mlops_lifecycle on the first week")
    # The sample's own columns: its customer id is no feature, and its newest rows make the holdout.
    sample = {"id_columns": ["customer_id"], "timestamp_column": "event_timestamp"}
    run = run_dag(bag, "mlops_lifecycle", run_conf={"dataset_uri": str(DATA), **sample})
    if str(run.state) != "success":
        raise SystemExit(f"mlops_lifecycle ended {run.state}: {states(run)}; task logs in {LOG}")
    gate = xcom(run, "lifecycle.promote") or {}
    champion = alias_version(client, MODEL, "champion")
    summary.update(champion_version=champion, metrics=gate.get("challenger_metrics"))
    summary["reports"]["validation"] = (xcom(run, "lifecycle.validate") or {}).get("report_uri")
    summary["reports"]["predictions"] = (xcom(run, "lifecycle.score") or {}).get("output_uri")
    print(f"   {MODEL} v{champion} is champion; holdout metrics {gate.get('challenger_metrics')}")

    step("2. A corrupted partition lands (nulls in monthly_charges): mlops_retrain_on_data_arrival")
    before = versions(client)
    write_partitions(LANDING, start="2026-01-08", days=1, corruption="nulls")
    run = run_dag(bag, "mlops_retrain_on_data_arrival", logical_date=after_day("2026-01-08"))
    task_states = states(run)
    validation = xcom(run, "lifecycle.validate")
    blocked = task_states.get("lifecycle.validate") == "failed" and versions(client) == before
    summary["corrupted_partition_blocked"] = blocked
    summary["reports"]["blocked_validation"] = _validation_report(run)
    print(f"   validate: {task_states.get('lifecycle.validate')}, train: {task_states.get('lifecycle.train')}, "
          f"versions before/after: {before}/{versions(client)}, blocked: {blocked}")  # fmt: skip
    del validation

    step("3. Drifted partitions (higher charges, more 'pro' plans): mlops_drift_monitor")
    write_partitions(DATA, start="2026-01-08", days=3, drift=True)
    run = run_dag(bag, "mlops_drift_monitor", logical_date=after_day("2026-01-08"))
    drift = xcom(run, "detect_drift") or {}
    summary["drift_detected"] = bool(drift.get("drift_detected"))
    summary["drifted_columns"] = drift.get("drifted_columns")
    summary["reports"]["drift"] = drift.get("report_uri")
    with create_session() as session:
        event_ids = [e.id for e in session.query(AssetEvent).all() if e.asset.uri.startswith("mlops://drift/")]
        queued = [q.target_dag_id for q in session.query(AssetDagRunQueue).all()]
    print(f"   drift detected: {summary['drift_detected']} in {drift.get('drifted_columns')}; asset events "
          f"{event_ids}; the scheduler's queue holds runs for {queued}")  # fmt: skip

    step("4. mlops_retrain_on_drift, from that asset event")
    run = run_dag(bag, "mlops_retrain_on_drift")
    answered = xcom(run, "drift_event") or {}
    summary["retrain_triggered_by_asset_event"] = (
        "mlops_retrain_on_drift" in queued and bool(event_ids) and answered.get("event_id") == event_ids[-1]
    )
    promote_state = states(run).get("lifecycle.promote")
    decision = xcom(run, "lifecycle.promote") or _gate_decision(run)
    summary["retrain_outcome"] = {
        "run_state": str(run.state),
        "trained_on": (xcom(run, "recent_partitions") or {}).get("partitions"),
        "challenger_version": (xcom(run, "lifecycle.train") or {}).get("version"),
        "promoted": promote_state == "success",
        "champion_version": alias_version(client, MODEL, "champion"),
        "reasons": (decision or {}).get("reasons"),
    }
    print(
        f"   retrain run {run.state}; challenger v{summary['retrain_outcome']['challenger_version']} "
        f"{'promoted' if promote_state == 'success' else 'rejected: ' + str(summary['retrain_outcome']['reasons'])}"
    )

    step("5. The churn rule changes on 2026-01-11 (the inputs do not); labels come late: mlops_performance_monitor")
    changed = write_partitions(DATA, start="2026-01-11", days=5, concept_drift=True)
    judged = changed[2]  # 2026-01-13: by then the new rule has three days of data to retrain on
    write_labels([judged], HOME / "labels" / "churn", delay_days=1)
    monitor = bag.dags["mlops_performance_monitor"]
    scorer = monitor.partial_subset(task_ids=["score_day"], include_downstream=False, include_upstream=False)
    with task_output_to_log():  # the judged day is scored (its predictions stamped at its end)
        scorer.test(logical_date=after_day("2026-01-13"))
    run = run_dag(bag, "mlops_performance_monitor", logical_date=after_day("2026-01-15"))
    live = xcom(run, "live_performance") or {}
    summary["performance"] = {k: live.get(k) for k in ("outcome", "kind", "statement")}
    summary["reports"]["live_performance"] = live.get("report_uri")
    with create_session() as session:
        perf_events = [e.id for e in session.query(AssetEvent).all() if e.asset.uri.startswith("mlops://performance/")]
    print(f"   {live.get('outcome')}: {live.get('kind')}\n   {live.get('statement')}")

    step("6. mlops_retrain_on_performance, from that asset event")
    run = run_dag(bag, "mlops_retrain_on_performance")
    answered = xcom(run, "performance_event") or {}
    summary["performance_retrain"] = {
        "triggered_by_asset_event": bool(perf_events) and answered.get("event_id") == perf_events[-1],
        "run_state": str(run.state),
        "challenger_version": (xcom(run, "lifecycle.train") or {}).get("version"),
        "promoted": states(run).get("lifecycle.promote") == "success",
        "champion_version": alias_version(client, MODEL, "champion"),
    }
    print(f"   retrain run {run.state}; {summary['performance_retrain']}")

    summary["promotion_history"] = [
        {k: h.get(k) for k in ("seq", "action", "from_version", "to_version")} for h in read_history(client, MODEL)
    ]
    summary["seconds"] = round(time.perf_counter() - started, 1)
    target = OUTER_HOME / "demo-summary.json"
    target.write_text(json.dumps(summary, indent=2, default=str))
    print_table(summary, target)
    ok = (
        summary["corrupted_partition_blocked"]
        and summary["drift_detected"]
        and summary["retrain_triggered_by_asset_event"]
        and summary["performance"]["outcome"] == "degraded"
        and summary["performance_retrain"]["triggered_by_asset_event"]
    )
    return 0 if ok and summary["champion_version"] else 1


def _validation_report(run) -> str | None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(XComModel).filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id="lifecycle.validate",
                                                 key="validation_result").one_or_none()  # fmt: skip
        return (XComModel.deserialize_value(row) or {}).get("report_uri") if row is not None else None


def _gate_decision(run) -> dict | None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        for task_id in ("lifecycle.promote", "lifecycle.gate"):
            row = session.query(XComModel).filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id,
                                                     key="gate_decision").one_or_none()  # fmt: skip
            if row is not None:
                return XComModel.deserialize_value(row)
    return None


def print_table(summary: dict, target: Path) -> None:
    outcome = summary["retrain_outcome"]
    rows = [
        ("first champion", f"{MODEL} v{summary['champion_version']}"),
        ("holdout metrics", ", ".join(f"{k}={v:.3f}" for k, v in (summary["metrics"] or {}).items())),
        ("corrupted partition blocked", summary["corrupted_partition_blocked"]),
        ("drift detected", f"{summary['drift_detected']} ({', '.join(summary['drifted_columns'] or [])})"),
        ("retrain run from the asset event", summary["retrain_triggered_by_asset_event"]),
        (
            "retrain outcome",
            f"v{outcome['challenger_version']} "
            + ("promoted" if outcome["promoted"] else f"rejected: {'; '.join(outcome['reasons'] or [])}"),
        ),  # fmt: skip
        ("live performance (2026-01-13)", f"{summary['performance']['outcome']}: {summary['performance']['kind']}"),
        (
            "retrain on performance",
            f"v{summary['performance_retrain']['challenger_version']} "
            + ("promoted" if summary["performance_retrain"]["promoted"] else "rejected"),
        ),
        ("champion now", f"v{summary['performance_retrain']['champion_version']}"),
        ("took", f"{summary['seconds']} s"),
    ]
    width = max(len(k) for k, _ in rows)
    print("\n" + "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows))
    print("\nWhere to look:")
    for name, uri in summary["reports"].items():
        print(f"  {name:18} {uri}")
    print(f"  {'MLflow UI':18} .venv/bin/mlflow ui --backend-store-uri {summary['mlflow_tracking_uri']}")
    print(f"  {'task logs':18} {LOG}")
    print(f"  {'summary':18} {target}")


if __name__ == "__main__":
    sys.exit(main())
