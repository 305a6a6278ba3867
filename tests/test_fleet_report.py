"""The fleet report on a real MLflow server: a catalogue of three models, one fresh champion (trained, promoted,
watched by the live-performance monitor), one registered long ago by its schedule (``now`` is moved on instead of
sleeping) and one never trained."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from mlops_provider.core import tags
from sample_data import churn_frame
from support import task_instance
from support.environment import environment, mlflow_connection

TAG = uuid.uuid4().hex[:8]
FRESH = f"fleet-fresh-{TAG}"
OLD = f"fleet-old-{TAG}"
NEVER = f"fleet-never-{TAG}"
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "plan", "contract"]
ACTOR = {"dag_id": "fleet_tests", "run_id": "manual__x", "task_id": "promote"}
LATER = timedelta(days=3)  # @daily x 2 periods has passed for OLD; @weekly x 2 has not for FRESH


def _catalogue(path: Path) -> Path:
    models = {
        FRESH: {"dataset_uri": "/data/fresh", "target_column": "churned", "schedule": "@weekly",
                "owners": ["team-a"], "tags": ["tier-1"], "primary_metric": "accuracy"},
        OLD: {"dataset_uri": "/data/old", "target_column": "churned", "schedule": "@daily", "owners": ["team-b"]},
        NEVER: {"dataset_uri": "/data/never", "target_column": "churned", "schedule": "@daily"},
    }  # fmt: skip
    path.write_text(yaml.safe_dump({"models": models}, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory, mlflow_server):
    from mlflow.entities import Metric

    from mlops_provider.core.registry import move_alias
    from mlops_provider.core.training import TrainingConfig, train_and_register
    from mlops_provider.hooks.mlflow import MlflowHook

    root = tmp_path_factory.mktemp("fleet-report")
    catalogue = _catalogue(root / "catalogue.yaml")
    with environment(
        MLOPS_HOME=str(root / "home"),
        AIRFLOW_CONN_MLFLOW_DEFAULT=mlflow_connection(mlflow_server.url),
        MLOPS_MODEL_CATALOG=str(catalogue),
    ):
        hook = MlflowHook()
        client = hook.get_conn()
        # FRESH: trained, gated and promoted through move_alias, with two windows of live performance.
        config = TrainingConfig(target_column="churned", feature_columns=FEATURES,
                                estimator="sklearn.linear_model.LogisticRegression",
                                estimator_params={"max_iter": 300}, reference_sample_rows=50, plot_sample_rows=50)  # fmt: skip
        with hook.session() as session:
            trained = train_and_register(churn_frame(400, seed=1), config, session,
                                         experiment_id=hook.get_or_create_experiment(FRESH), model_name=FRESH,
                                         tags={}, dataset_uri="/data/fresh")  # fmt: skip
        fresh_version = str(trained.version)
        client.set_model_version_tag(FRESH, fresh_version, tags.GATE_DECISION, "promoted")
        move_alias(client, FRESH, "champion", fresh_version, expected_from=None, action="promote",
                   reason="passed the gate", actor=ACTOR)  # fmt: skip
        monitoring = hook.get_or_create_experiment(f"{FRESH}-monitoring")
        run = client.create_run(monitoring, tags={tags.MONITORING_OF: FRESH}, run_name="live-performance")
        day = int(datetime(2026, 1, 9, tzinfo=timezone.utc).timestamp())
        client.log_batch(run.info.run_id, metrics=[
            Metric(f"live.v{fresh_version}.accuracy", 0.81, day * 1000, day),
            Metric(f"live.v{fresh_version}.accuracy", 0.74, (day + 86400) * 1000, day + 86400),
            Metric(f"holdout.v{fresh_version}.accuracy", 0.8, (day + 86400) * 1000, day + 86400),
        ])  # fmt: skip
        # OLD: one version (nothing to load: the report reads the registry only), champion since its alias move;
        # a later move of another alias must not count as the champion's.
        client.create_registered_model(OLD)
        holder = client.create_run(hook.get_or_create_experiment(OLD))
        client.create_model_version(OLD, f"runs:/{holder.info.run_id}/model", run_id=holder.info.run_id)
        move_alias(client, OLD, "champion", "1", expected_from=None, action="promote", reason="first", actor=ACTOR)
        move_alias(client, OLD, "challenger", "1", expected_from=None, action="shadow", reason="x", actor=ACTOR)
        yield {"root": root, "catalogue": catalogue, "client": client, "hook": hook, "fresh_version": fresh_version,
               "url": mlflow_server.url}  # fmt: skip


def _report(world, now=None):
    from mlops_provider.fleet import load_catalogue
    from mlops_provider.fleet.report import fleet_report

    moment = now or datetime.now(timezone.utc) + LATER
    report = fleet_report(world["client"], load_catalogue(world["catalogue"]), now=moment,
                          ui_url=world["hook"].settings.base_ui_url)  # fmt: skip
    return report, {model["name"]: model for model in report["models"]}, moment


def test_champions_ages_flags_and_live_performance(world):
    from mlops_provider.core.registry import read_history

    report, models, now = _report(world)
    fresh, old, never = models[FRESH], models[OLD], models[NEVER]

    assert [m["name"] for m in report["models"]] == [FRESH, OLD, NEVER]  # catalogue order
    assert fresh["champion_version"] == world["fresh_version"] and old["champion_version"] == "1"
    assert never["champion_version"] is None and never["last_training"] is None
    assert fresh["flags"] == [] and old["flags"] == ["stale"] and never["flags"] == ["not_trained"]
    assert report["counts"] == {"models": 3, "with_champion": 2, "not_trained": 1, "no_champion": 0, "stale": 1,
                                "drift_unanswered": 0, "no_labels": 0, "approval_pending": 0,
                                "catalogue_errors": 0}  # fmt: skip

    # The champion's age runs from the history entry that moved champion, not from the newer challenger move.
    history = read_history(world["client"], OLD)
    assert [entry["alias"] for entry in history] == ["champion", "challenger"]
    moved = datetime.fromisoformat(history[0]["time"])
    assert old["champion_age_hours"] == round((now - moved).total_seconds() / 3600, 2)
    assert 72 <= old["champion_age_hours"] < 73

    assert fresh["last_gate_decision"] == "promoted" and old["last_gate_decision"] is None
    assert fresh["newest_version"] == world["fresh_version"]
    assert fresh["live"] == {"metric": "accuracy", "value": 0.74, "holdout": 0.8, "at": "2026-01-10T00:00:00+00:00",
                             "verdict": None}  # fmt: skip
    assert old["live"] is None and never["live"] is None
    assert fresh["owners"] == ["team-a"] and fresh["tags"] == ["tier-1"]
    assert fresh["links"] == {
        "mlflow_model": f"{world['url'].rstrip('/')}/#/models/{FRESH}",
        "dags": {"lifecycle": f"mlops_fleet_{FRESH}"},
        "drift_report": None,
        "live_report": None,
    }
    assert never["links"]["mlflow_model"] is None and never["links"]["dags"] == {"lifecycle": f"mlops_fleet_{NEVER}"}
    # Without Airflow's facts (the operator's report) approvals are unknown, not "none".
    assert fresh["pending_approvals"] is None and fresh["runs"] == {} and report["airflow_state"] is False


def test_staleness_follows_the_schedule_and_the_tolerance(world):
    from mlops_provider.fleet import load_catalogue
    from mlops_provider.fleet.report import fleet_report

    catalogue = load_catalogue(world["catalogue"])
    now = datetime.now(timezone.utc)
    assert fleet_report(world["client"], catalogue, now=now)["counts"]["stale"] == 0  # just registered
    weeks_later = fleet_report(world["client"], catalogue, now=now + timedelta(days=15))
    assert {m["name"]: m["flags"] for m in weeks_later["models"]} == {
        FRESH: ["stale"], OLD: ["stale"], NEVER: ["not_trained"]}  # fmt: skip
    tolerant = fleet_report(world["client"], catalogue, now=now + LATER, stale_after_periods=5)
    assert tolerant["counts"]["stale"] == 0


def test_the_page_has_a_row_per_model_with_its_flags(world):
    from mlops_provider.fleet.page import render_html

    report, _, _ = _report(world)
    page = render_html(report)
    assert page.count('<tr id="model-') == 3
    for name, flag in ((FRESH, None), (OLD, "stale"), (NEVER, "not_trained")):
        row = page.split(f'<tr id="model-{name}"', 1)[1].split("</tr>", 1)[0]
        if flag:
            assert row.startswith(' class="flagged"') and f'<span class="flag {flag}">{flag}</span>' in row
        else:
            assert 'class="flag ' not in row and '<span class="ok">ok</span>' in row


def test_the_operator_writes_the_page_behind_its_link_and_keeps_the_xcom_small(world):
    from mlops_provider.operators.fleet import FleetReportOperator

    ti = task_instance.TaskInstanceStandIn(dag_id="fleet_tests", task_id="fleet_report")
    operator = FleetReportOperator(task_id="fleet_report", reports_uri=str(world["root"] / "reports"))
    result = operator.execute({"ti": ti, "run_id": ti.run_id})  # the catalogue from MLOPS_MODEL_CATALOG

    assert result["catalogue"] == str(world["catalogue"])
    assert {m["name"]: m["flags"] for m in result["models"]} == {FRESH: [], OLD: [], NEVER: ["not_trained"]}
    page = Path(result["report_uri"])
    assert page.is_file() and page.parts[-5:] == ("fleet", "fleet_tests", "manual__2026-01-01T00_00_00_00_00",
                                                  "fleet_report", "fleet_report.html")  # fmt: skip
    assert ti.xcoms["mlops_fleet_report"] == f"file://{page}"
    html = page.read_text(encoding="utf-8")
    assert all(f'<tr id="model-{name}"' in html for name in (FRESH, OLD, NEVER))
    assert '<span class="flag not_trained">not_trained</span>' in html
    assert len(json.dumps(result)) < 3500
    assert all(len(json.dumps(model)) < 1024 for model in result["models"]), [
        len(json.dumps(m)) for m in result["models"]
    ]


def test_a_catalogue_that_cannot_be_read_fails_clearly(world, tmp_path):
    from mlops_provider.fleet import CatalogueError, load_catalogue
    from mlops_provider.fleet.report import fleet_report

    with pytest.raises(CatalogueError, match="does not exist"):
        fleet_report(world["client"], load_catalogue(tmp_path / "missing.yaml"))


def test_monitor_verdicts_flag_unanswered_drift_and_missing_labels(world):
    """The monitors' newest verdicts, recorded as DetectDriftOperator and EvaluateLivePerformanceOperator record
    them, show on the model's row; drift newer than the newest version and labels missing for three windows flag it."""
    from mlops_provider.core import monitoring

    client = world["client"]
    run_id = monitoring.find_monitoring_run(client, FRESH).info.run_id
    now = datetime.now(timezone.utc)
    drift = {"detected": True, "share": 0.5, "drifted_columns": 2, "tested_columns": 4,
             "checked_at": now.isoformat(timespec="milliseconds"), "report_uri": "file:///reports/drift.html"}  # fmt: skip
    live = {"outcome": "insufficient_evidence", "degraded": False, "windows_without_labels": 3,
            "window_end": "2026-01-12T00:00:00+00:00", "report_uri": None}  # fmt: skip
    try:
        monitoring.record_verdict(client, run_id, monitoring.DRIFT, drift)
        monitoring.record_verdict(client, run_id, monitoring.LIVE, live)
        _, models, _ = _report(world, now=now)
        fresh = models[FRESH]
        assert fresh["flags"] == ["drift_unanswered", "no_labels"]
        assert fresh["drift"] == drift and fresh["live"]["verdict"] == live
        assert fresh["links"]["drift_report"] == "file:///reports/drift.html"

        # A drift check from before the newest version was answered by it; two windows without labels are not three.
        earlier = (now - timedelta(days=30)).isoformat(timespec="seconds")
        monitoring.record_verdict(client, run_id, monitoring.DRIFT, {**drift, "checked_at": earlier})
        monitoring.record_verdict(client, run_id, monitoring.LIVE, {**live, "windows_without_labels": 2})
        _, models, _ = _report(world, now=now)
        assert models[FRESH]["flags"] == []
        from mlops_provider.fleet import load_catalogue
        from mlops_provider.fleet.report import fleet_report

        strict = fleet_report(client, load_catalogue(world["catalogue"]), now=now, no_labels_windows=2)
        assert {m["name"]: m["flags"] for m in strict["models"]}[FRESH] == ["no_labels"]
    finally:
        for kind in monitoring.VERDICT_KINDS:
            client.delete_tag(run_id, f"{tags.VERDICT_PREFIX}{kind}")


def test_airflow_facts_decide_staleness_and_show_waiting_approvals(world):
    """With what Airflow knows (the fleet page's view), staleness runs from the newest successful training run,
    and a promotion waiting for a human flags the model and links to its required action."""
    from mlops_provider.fleet import load_catalogue
    from mlops_provider.fleet.page import render_html
    from mlops_provider.fleet.report import fleet_report

    now = datetime.now(timezone.utc)
    waiting = {"subject": f"Promote {FRESH} version 2 to @champion?", "since": now.isoformat(timespec="seconds"),
               "dag_id": f"mlops_fleet_{FRESH}", "run_id": "manual__1", "task_id": "lifecycle.approve"}  # fmt: skip
    state = {
        FRESH: {"runs": {f"mlops_fleet_{FRESH}": {"run_id": "manual__1", "state": "running", "start": "x", "end": None}},
                "last_success": (now - timedelta(days=20)).isoformat(), "pending_approvals": [waiting]},
        OLD: {"runs": {}, "last_success": None, "pending_approvals": []},
    }  # fmt: skip
    report = fleet_report(world["client"], load_catalogue(world["catalogue"]), now=now, airflow_state=state)
    models = {m["name"]: m for m in report["models"]}
    # FRESH registered a version just now, but its last successful run of a training DAG is 20 days old (@weekly).
    assert models[FRESH]["flags"] == ["stale", "approval_pending"]
    assert models[FRESH]["pending_approvals"] == [waiting]
    assert models[OLD]["flags"] == [] and models[OLD]["pending_approvals"] == []  # no run yet: the version counts
    assert models[NEVER]["pending_approvals"] == [] and report["counts"]["approval_pending"] == 1

    page = render_html(report, airflow_url="")
    row = page.split(f'<tr id="model-{FRESH}"', 1)[1].split("</tr>", 1)[0]
    assert f'href="/dags/mlops_fleet_{FRESH}/runs/manual__1/tasks/lifecycle.approve/required_actions"' in row
    assert f'href="/dags/mlops_fleet_{FRESH}"' in row and '<span class="flag approval_pending">' in row


def test_prometheus_metrics_carry_the_report(world):
    """The report in Prometheus' text format, read back with prometheus_client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    from mlops_provider.fleet.metrics import render_metrics

    report, models, now = _report(world)
    families = {family.name: family for family in text_string_to_metric_families(render_metrics(report).decode())}
    values = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families.values()
        for sample in family.samples
    }
    assert values[("mlops_model_champion_version", (("model", FRESH),))] == float(world["fresh_version"])
    assert values[("mlops_model_champion_age_seconds", (("model", OLD),))] == pytest.approx(
        models[OLD]["champion_age_hours"] * 3600, abs=1
    )
    assert values[("mlops_model_live_metric", (("metric", "accuracy"), ("model", FRESH)))] == 0.74
    assert values[("mlops_model_live_baseline", (("metric", "accuracy"), ("model", FRESH)))] == 0.8
    assert values[("mlops_model_last_gate_outcome", (("decision", "promoted"), ("model", FRESH)))] == 1.0
    assert values[("mlops_model_flag", (("flag", "stale"), ("model", OLD)))] == 1.0
    assert values[("mlops_model_flag", (("flag", "stale"), ("model", FRESH)))] == 0.0
    assert values[("mlops_model_flag", (("flag", "not_trained"), ("model", NEVER)))] == 1.0
    assert values[("mlops_fleet_models", ())] == 3.0
    # A model never trained has no champion, age or training time: absent, not zero.
    assert not [key for key in values if key[0].startswith("mlops_model_champion") and ("model", NEVER) in key[1]]
    since = values[("mlops_model_seconds_since_last_training", (("model", OLD),))]
    assert since == pytest.approx((now - datetime.fromisoformat(models[OLD]["last_training"])).total_seconds(), abs=1)
    # Without Airflow's facts, approvals are unknown: no pending_approvals sample at all.
    assert "mlops_model_pending_approvals" not in {key[0] for key in values}
