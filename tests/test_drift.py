"""Drift detection: trustworthy alarms (false-alarm rate and power), bad inputs, and the Airflow wiring
(Asset event with the drifted columns, report link, reference from the champion in MLflow, the sensor)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest

from mlops_provider.core.drift import DriftSettings, detect_drift, render_html_report
from mlops_provider.core.errors import ConfigurationError, DriftInputError, EmptyDatasetError
from sample_data import churn_frame

TRIALS = 200
CATEGORIES = ["a", "b", "c", "d"]
SHARES = np.array([0.4, 0.3, 0.2, 0.1])


def numeric_pair(rng, n, shift=0.0):
    return pd.DataFrame({"x": rng.normal(0, 1, n)}), pd.DataFrame({"x": rng.normal(shift, 1, n)})


def categorical_pair(rng, n, share_shift=0.0):
    moved = SHARES + np.array([-share_shift, share_shift, 0, 0])
    return (
        pd.DataFrame({"c": rng.choice(CATEGORIES, n, p=SHARES)}),
        pd.DataFrame({"c": rng.choice(CATEGORIES, n, p=moved)}),
    )


def flag_rate(make_pair, n, seed, trials=TRIALS, **shift) -> float:
    rng = np.random.default_rng(seed)
    flags = [detect_drift(*make_pair(rng, n, *shift.values())).drift_detected for _ in range(trials)]
    return sum(flags) / trials


# Columns drift at p < 0.01, so identical distributions are flagged in about 1% of trials. "At most 5%" over
# 200 trials fails a calibrated test with probability 1e-5 and passes one that flags 10% with probability 0.008.
# At 50,000 rows a trial costs ten times more, so 100 trials: at most 5 flags fails a calibrated test with
# probability 0.0005, passes a 10% false-alarm rate with probability 0.06 and a 20% one (Evidently's
# goodness-of-fit chisquare at 500 rows, below) with probability 2e-5.
@pytest.mark.parametrize(("rows", "trials"), [(500, TRIALS), (50_000, 100)], ids=["500", "50000"])
@pytest.mark.parametrize("make_pair", [numeric_pair, categorical_pair], ids=["numerical", "categorical"])
def test_false_alarm_rate_is_within_five_percent(make_pair, rows, trials):
    assert flag_rate(make_pair, rows, seed=rows, trials=trials) <= 0.05


def test_power_numeric_mean_shift_of_half_a_standard_deviation():
    assert flag_rate(numeric_pair, 500, seed=11, shift=0.5) >= 0.95


def test_power_categorical_share_shift_of_twenty_points():
    assert flag_rate(categorical_pair, 500, seed=12, share_shift=0.2) >= 0.95


def test_evidently_goodness_of_fit_chisquare_would_raise_false_alarms():
    """Why the categorical default is not Evidently's ``chisquare``: on identical distributions it flags
    far more than its nominal rate, because it treats the reference shares as exact."""
    rng = np.random.default_rng(5)
    settings = DriftSettings(cat_method="chisquare", cat_threshold=0.05)
    flags = [detect_drift(*categorical_pair(rng, 500), settings).drift_detected for _ in range(TRIALS)]
    assert sum(flags) / TRIALS > 0.10


def test_verdict_names_the_drifted_columns_and_methods():
    result = detect_drift(
        churn_frame(3000, seed=1),
        churn_frame(3000, seed=2, drift=True),
        DriftSettings(exclude_columns=["customer_id", "churned"], categorical_columns=["plan"]),
    )
    assert result.drifted_columns == ["monthly_charges", "plan"]
    assert result.columns["monthly_charges"].method == "ks"
    assert result.columns["plan"].method == "chi2_homogeneity"
    assert result.columns["support_calls"].column_type == "numerical"  # integer with few values stays numerical
    assert "event_timestamp" not in result.columns
    assert result.drift_share == 0.4 and not result.drift_detected  # 2 of 5 columns: below drift_share=0.5
    assert "DRIFT" in result.summary()


def test_drift_share_decides_the_dataset_verdict():
    reference, current = churn_frame(3000, seed=1), churn_frame(3000, seed=2, drift=True)
    columns = ["tenure_months", "monthly_charges", "support_calls", "plan"]
    assert detect_drift(reference, current, DriftSettings(columns=columns, drift_share=0.5)).drift_detected
    assert not detect_drift(reference, current, DriftSettings(columns=columns, drift_share=0.75)).drift_detected


def test_per_column_override_and_integer_column_as_categorical():
    reference, current = churn_frame(2000, seed=1), churn_frame(2000, seed=2)
    result = detect_drift(
        reference,
        current,
        DriftSettings(
            columns=["support_calls", "monthly_charges"],
            categorical_columns=["support_calls"],
            per_column_method={"monthly_charges": "wasserstein"},
            per_column_threshold={"monthly_charges": 0.2},
        ),
    )
    assert result.columns["support_calls"].column_type == "categorical"
    assert result.columns["support_calls"].method == "chi2_homogeneity"
    assert result.columns["monthly_charges"].method == "wasserstein"
    assert result.columns["monthly_charges"].threshold == 0.2


def test_large_inputs_are_sampled_and_say_so():
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 30_000)})
    current = pd.DataFrame({"x": rng.normal(0.2, 1, 30_000)})
    result = detect_drift(reference, current, DriftSettings(max_rows=10_000))
    assert result.tested_rows == {"reference": 10_000, "current": 10_000, "sampled": True}
    assert result.drift_detected and result.current_rows == 30_000
    assert "tested on samples" in result.summary()


def test_html_report_is_evidently_with_the_same_methods():
    reference, current = churn_frame(3000, seed=1), churn_frame(3000, seed=2, drift=True)
    settings = DriftSettings(exclude_columns=["customer_id", "churned"], report_rows=1000)
    result = detect_drift(reference, current, settings)
    html = render_html_report(reference, current, result, settings)
    assert html.lstrip().lower().startswith("<!doctype html") or "<html" in html[:500].lower()
    assert "chi-square test of homogeneity" in html and "monthly_charges" in html
    assert len(html) < 5_000_000


def test_html_report_is_the_page_evidently_builds_without_the_widgets_it_skips(monkeypatch):
    """The report skips the per-column widgets Evidently builds but does not show: the page is unchanged."""
    import contextlib
    import re

    from mlops_provider.core import drift

    reference, current = churn_frame(2000, seed=1), churn_frame(2000, seed=2, drift=True)
    settings = DriftSettings(exclude_columns=["customer_id", "churned"], report_rows=1000)
    result = detect_drift(reference, current, settings)
    random_ids = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}")
    skipped = random_ids.sub("<id>", render_html_report(reference, current, result, settings))
    monkeypatch.setattr(drift, "_unshown_widgets_skipped", contextlib.nullcontext)
    built = random_ids.sub("<id>", render_html_report(reference, current, result, settings))
    assert skipped == built and "monthly_charges" in skipped


# -- bad input: clear errors, never a silent "no drift" ------------------------------------------


def test_column_missing_from_current_data():
    with pytest.raises(DriftInputError, match="'plan' is missing from the current data"):
        detect_drift(churn_frame(500), churn_frame(500).drop(columns="plan"), DriftSettings(columns=["plan"]))


def test_all_null_column():
    current = churn_frame(500)
    current["monthly_charges"] = np.nan
    with pytest.raises(DriftInputError, match="'monthly_charges' is entirely null in the current data"):
        detect_drift(churn_frame(500), current)


def test_mismatched_dtypes():
    current = churn_frame(500)
    current["monthly_charges"] = current["monthly_charges"].astype(str)
    with pytest.raises(DriftInputError, match="'monthly_charges' is numerical but the current data holds object"):
        detect_drift(churn_frame(500), current)


def test_empty_current_window():
    with pytest.raises(EmptyDatasetError, match="current data has no rows"):
        detect_drift(churn_frame(500), churn_frame(500).head(0))


def test_unknown_method():
    with pytest.raises(DriftInputError, match="'nonsense' for column 'monthly_charges'"):
        detect_drift(
            churn_frame(500), churn_frame(500), DriftSettings(columns=["monthly_charges"], num_method="nonsense")
        )


# A fresh interpreter: the report thread imports Evidently and is held inside that import (an import hook waits
# there) while the calling thread tests a column with one of Evidently's own methods, as the operator's two threads
# do. Without one import at a time, the column test met Evidently half imported and failed: an ImportError, or a
# valid method refused as "not an Evidently stattest".
_HALF_IMPORTED = """
import sys, threading
import numpy as np
held, release = threading.Event(), threading.Event()

class HoldTheReportThread:
    def find_spec(self, name, path=None, target=None):
        if name == sys.argv[1] and threading.current_thread().name == "report":
            held.set()
            release.wait(1.0)
        return None

sys.meta_path.insert(0, HoldTheReportThread())
from mlops_provider.core.drift import import_report_libraries, stattest_column

report = threading.Thread(target=import_report_libraries, name="report", daemon=True)
report.start()
assert held.wait(60), f"the report thread never imported {sys.argv[1]}: Evidently's modules have moved"
rng = np.random.default_rng(0)
column = stattest_column("x", "numerical", "wasserstein", 0.1, rng.normal(size=500), rng.normal(size=500))
release.set()
report.join()
print(column.method)
"""


@pytest.mark.slow  # a fresh interpreter imports Evidently
def test_a_column_test_waits_for_evidently_being_imported_by_the_report_thread():
    import subprocess
    import sys

    # Held as the stattest registry fills (held at evidently.legacy.core instead, the ImportError showed).
    held_at = "evidently.legacy.calculations.stattests.anderson_darling_stattest"
    done = subprocess.run([sys.executable, "-c", _HALF_IMPORTED, held_at], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["wasserstein"]


def test_operator_needs_a_reference_or_a_model():
    from mlops_provider.operators.drift import DetectDriftOperator

    with pytest.raises(ConfigurationError, match="Give reference_uri, or model_name"):
        DetectDriftOperator(task_id="d", current_uri="x.parquet")
    with pytest.raises(ConfigurationError, match="on_drift='emit'"):
        DetectDriftOperator(task_id="d", current_uri="x.parquet", reference_uri="r.parquet")
    with pytest.raises(ConfigurationError, match="on_empty"):
        DetectDriftOperator(task_id="d", current_uri="x", model_name="m", on_empty="ignore")


def test_no_champion_and_no_reference(mlflow_server, connection_env, tmp_path):
    from mlops_provider.operators.drift import DetectDriftOperator

    url = urlsplit(mlflow_server.url)
    connection_env("mlflow_default", conn_type="mlflow", host=url.hostname, port=url.port)
    churn_frame(200).to_parquet(tmp_path / "current.parquet")
    operator = DetectDriftOperator(
        task_id="d", current_uri=str(tmp_path / "current.parquet"), model_name="never-trained"
    )
    with pytest.raises(DriftInputError, match="'never-trained' has no 'champion' alias and no reference_uri"):
        operator.run_drift_check({"ti": None}, operator.current_uri)


# -- the Airflow wiring ---------------------------------------------------------------------------


def register_champion_with_reference(client, model_name: str, reference: pd.DataFrame, workdir: Path) -> str:
    """What TrainModelOperator leaves behind: a version under @champion tagged with its reference sample."""
    experiment_id = client.create_experiment(f"{model_name}-training")
    run = client.create_run(experiment_id)
    sample = workdir / "reference_sample.parquet"
    reference.to_parquet(sample, index=False)
    client.log_artifact(run.info.run_id, str(sample), artifact_path="reference")
    client.set_terminated(run.info.run_id)
    client.create_registered_model(model_name)
    version = client.create_model_version(
        model_name,
        source=f"runs:/{run.info.run_id}/reference",
        run_id=run.info.run_id,
        tags={"mlops.reference_sample_uri": f"runs:/{run.info.run_id}/reference/reference_sample.parquet"},
    )
    client.set_registered_model_alias(model_name, "champion", version.version)
    return run.info.run_id


@pytest.mark.airflow_db
def test_drift_dag_emits_asset_event_with_drifted_columns(airflow_db, mlflow_server, connection_env, tmp_path):
    import uuid

    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    from dags.mlops_test_drift import dag
    from mlops_provider.hooks.mlflow import MlflowHook

    url = urlsplit(mlflow_server.url)
    connection_env("mlflow_default", conn_type="mlflow", host=url.hostname, port=url.port)
    model_name = f"churn-{uuid.uuid4().hex[:8]}"
    client = MlflowHook().get_conn()
    reference = churn_frame(3000, seed=1)
    training_run_id = register_champion_with_reference(client, model_name, reference, tmp_path)

    churn_frame(3000, seed=2, drift=True).to_parquet(tmp_path / "drifted.parquet")
    churn_frame(3000, seed=3).to_parquet(tmp_path / "stable.parquet")
    reference.to_parquet(tmp_path / "reference.parquet")
    landing = tmp_path / "landing"
    for day, drifted in (("dt=2026-01-01", False), ("dt=2026-01-02", True)):
        (landing / day).mkdir(parents=True)
        churn_frame(2000, seed=4, drift=drifted).to_parquet(landing / day / "part-0.parquet")
    (landing / "_SUCCESS").touch()

    dag_run = dag.test(
        run_conf={
            "model_name": model_name,
            "drifted_uri": str(tmp_path / "drifted.parquet"),
            "stable_uri": str(tmp_path / "stable.parquet"),
            "reference_uri": str(tmp_path / "reference.parquet"),
            "landing_uri": str(landing),
        }
    )
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states == {"detect_against_champion": "success", "detect_stable": "success", "wait_for_drift": "success"}

    tis = {ti.task_id: ti for ti in dag_run.get_task_instances()}
    drifted = tis["detect_against_champion"].xcom_pull(task_ids="detect_against_champion")
    assert drifted["drift_detected"] and drifted["drifted_columns"] == ["monthly_charges", "plan"]
    assert drifted["reference"]["version"] == "1" and drifted["reference"]["uri"].startswith("runs:/")
    assert Path(drifted["report_uri"]).is_file() and str(dag_run.run_id).split("__")[0] in drifted["report_uri"]
    link = tis["detect_against_champion"].xcom_pull(task_ids="detect_against_champion", key="mlops_drift_report")
    assert link == "file://" + drifted["report_uri"]
    stable = tis["detect_stable"].xcom_pull(task_ids="detect_stable")
    assert not stable["drift_detected"] and stable["drifted_columns"] == []
    sensed = tis["wait_for_drift"].xcom_pull(task_ids="wait_for_drift")
    assert sensed["current"]["uri"].endswith("dt=2026-01-02") and sensed["drift_detected"]

    with create_session() as session:
        events = [e for e in session.query(AssetEvent).all() if e.asset.uri == f"mlops://drift/{model_name}"]
        assert len(events) == 1, "only the drifted check emits; the stable check and the sensor do not"
        assert events[0].extra["drifted_columns"] == ["monthly_charges", "plan"]
        assert events[0].extra["model_name"] == model_name

    artifacts = [a.path for a in client.list_artifacts(training_run_id, "drift")]
    assert len(artifacts) == 1
    stored = {a.path.rsplit("/", 1)[-1] for a in client.list_artifacts(training_run_id, artifacts[0])}
    assert stored == {"drift_report.html", "drift_result.json"}
    verdict = json.loads(
        Path(client.download_artifacts(training_run_id, f"{artifacts[0]}/drift_result.json", str(tmp_path))).read_text()
    )
    assert verdict["drifted_columns"] == ["monthly_charges", "plan"]
    # The newest verdict on the model's monitoring run, where the fleet page reads it (the other checks do not log).
    from mlops_provider.core import monitoring

    recorded = monitoring.read_verdicts(monitoring.find_monitoring_run(client, model_name))[monitoring.DRIFT]
    assert recorded["detected"] is True and recorded["drifted_columns"] == 2
    assert recorded["report_uri"] == link and recorded["dag_id"] == dag_run.dag_id
