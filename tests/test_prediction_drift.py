"""Prediction drift: the champion's served predictions in the prediction log, tested against its own predictions
on its training holdout and reported beside the input drift.

Real components: a model trained by TrainModelOperator and registered on the MLflow server, prediction log files in the log's layout
(``{root}/{model}/dt=YYYY-MM-DD/{dag_id}__{run_id}__{task_id}.parquet``), written here with pandas, and
DetectDriftOperator run as a task would run it, with the run's data interval as the window.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops_provider.core.errors import ConfigurationError
from mlops_provider.operators.drift import DetectDriftOperator
from sample_data import churn_frame
from support.environment import environment, mlflow_connection
from support.task_instance import OutletEventsStandIn, TaskInstanceStandIn

UTC = timezone.utc
DAY = datetime(2026, 1, 5, tzinfo=UTC)  # the run's data interval: [DAY, NEXT)
NEXT = DAY + timedelta(days=1)
MODEL = f"prediction-drift-churn-{uuid.uuid4().hex[:8]}"
DAG_ID = "prediction_drift_tests"
RUN_ID = "scheduled__2026-01-05T00:00:00+00:00"


@dataclass
class Champion:
    name: str
    version: str
    model: Any
    holdout_rows: int


@pytest.fixture(scope="module")
def champion(tmp_path_factory, mlflow_server) -> Iterator[Champion]:
    """A logistic regression trained on seeded churn data, registered on the MLflow server and made @champion."""
    with environment(AIRFLOW_CONN_MLFLOW_DEFAULT=mlflow_connection(mlflow_server.url)):
        yield _champion(tmp_path_factory)


def _champion(tmp_path_factory) -> Champion:
    from mlops_provider.hooks.mlflow import MlflowHook
    from mlops_provider.operators.training import TrainModelOperator

    data = tmp_path_factory.mktemp("training") / "churn.parquet"
    churn_frame(3000, seed=10).to_parquet(data, index=False)
    trained = TrainModelOperator(
        task_id="train",
        dataset_uri=str(data),
        target_column="churned",
        id_columns=["customer_id"],
        model_name=MODEL,
        estimator="sklearn.linear_model.LogisticRegression",
        estimator_params={"max_iter": 300},
        reference_sample_rows=2000,
    ).execute({"ti": TaskInstanceStandIn(dag_id=DAG_ID, task_id="train")})
    hook = MlflowHook()
    hook.get_conn().set_registered_model_alias(MODEL, "champion", trained["version"])
    model = hook.load_sklearn_model(f"models:/{MODEL}/{trained['version']}")
    return Champion(MODEL, str(trained["version"]), model, holdout_rows=600)


def log_predictions(
    root: Path,
    champion: Champion,
    frame: pd.DataFrame,
    *,
    day: datetime = DAY,
    version: str | None = None,
    role: str = "served",
    run_id: str = RUN_ID,
    task_id: str = "score",
) -> Path:
    """What BatchPredictOperator logs for one run: the model's answers for ``frame``, spread over ``day`` (UTC)."""
    from mlops_provider.core.prediction import predict_frame

    scored = predict_frame(champion.model, frame, keep_columns=["customer_id"])
    seconds = np.sort(np.random.default_rng(len(frame)).integers(0, 86_400, len(frame)))
    rows = pd.DataFrame(
        {
            "customer_id": scored["customer_id"],
            "prediction_time": pd.Timestamp(day) + pd.to_timedelta(seconds, unit="s"),
            "model_name": champion.name,
            "model_version": version or champion.version,
            "role": role,
            "alias": "champion" if role == "served" else "",
            "prediction": scored["prediction"],
            **{c: scored[c] for c in scored.columns if c.startswith("probability_")},
        }
    )
    assert str(rows["prediction_time"].dtype) == "datetime64[ns, UTC]"
    run = run_id.replace(":", "_").replace("+", "_")
    path = root / champion.name / f"dt={day:%Y-%m-%d}" / f"{DAG_ID}__{run}__{task_id}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows.to_parquet(path, index=False)
    return path


def detect(tmp_path: Path, current: pd.DataFrame, **overrides: Any) -> DetectDriftOperator:
    current_uri = tmp_path / f"current-{uuid.uuid4().hex[:6]}.parquet"
    current.to_parquet(current_uri, index=False)
    settings: dict[str, Any] = {
        "task_id": "detect",
        "current_uri": str(current_uri),
        "model_name": MODEL,
        "on_drift": "continue",
        "reports_uri": str(tmp_path / "reports"),
        "log_to_mlflow": False,
        "prediction_log_uri": str(tmp_path / "prediction_log"),
        **overrides,
    }
    return DetectDriftOperator(**settings)


def run(operator: DetectDriftOperator, **context: Any) -> dict[str, Any]:
    context = {
        "ti": TaskInstanceStandIn(dag_id=DAG_ID, run_id=RUN_ID, task_id="detect"),
        "data_interval_start": DAY,
        "data_interval_end": NEXT,
        **context,
    }
    return operator.execute(context)


def report(result: dict[str, Any]) -> str:
    return Path(result["report_uri"]).read_text(encoding="utf-8")


# -- (a) the predictions behave as on the holdout: no prediction drift ----------------------------------------


def test_predictions_like_the_training_data_do_not_drift(champion, tmp_path):
    log = tmp_path / "prediction_log"
    todays = churn_frame(1500, seed=21, day=DAY.date())
    log_predictions(log, champion, todays)
    # Not today's served answers, so not tested: a shadow version scoring drifted rows in the window, and the
    # champion's drifted predictions of the next day, the first of them exactly at the window's end.
    drifted = churn_frame(1500, seed=31, drift=True, day=DAY.date())
    log_predictions(log, champion, drifted, version="99", role="shadow", task_id="score_shadow")
    tomorrow = log_predictions(log, champion, churn_frame(800, seed=32, drift=True), day=NEXT, run_id="next")
    rows = pd.read_parquet(tomorrow)
    rows.loc[0, "prediction_time"] = pd.Timestamp(NEXT)
    rows.to_parquet(tomorrow, index=False)

    result = run(detect(tmp_path, todays))

    predictions = result["prediction_drift"]
    assert predictions["drift_detected"] is False and predictions["drifted_columns"] == []
    assert predictions["version"] == champion.version and predictions["alias"] == "champion"
    assert predictions["current_rows"] == 1500, "only the champion's served rows of [start, end) are tested"
    assert predictions["reference_rows"] == champion.holdout_rows
    assert predictions["window_start"] == DAY.isoformat() and predictions["window_end"] == NEXT.isoformat()
    columns = predictions["columns"]
    assert set(columns) == {"prediction", "probability_0", "probability_1"}
    assert columns["prediction"]["method"] == "chi2_homogeneity"  # a classifier's classes: categorical
    assert columns["probability_1"]["method"] == "ks" and columns["probability_1"]["threshold"] == 0.01
    assert all(c["score"] > 0.01 for c in columns.values())
    assert result["drift_detected"] is False  # the input check, reported beside it

    html = report(result)
    assert "Prediction drift" in html and "Input drift" in html and "no prediction drift" in html


def test_prediction_classes_read_back_as_floats_are_the_same_classes(champion, tmp_path):
    """A log file whose classes came back as 1.0 / 0.0 (e.g. after a null) must not look like new classes."""
    todays = churn_frame(1500, seed=21, day=DAY.date())
    path = log_predictions(tmp_path / "prediction_log", champion, todays)
    rows = pd.read_parquet(path)
    rows["prediction"] = rows["prediction"].astype(float)
    rows.loc[0, "prediction"] = np.nan
    rows.to_parquet(path, index=False)

    predictions = run(detect(tmp_path, todays))["prediction_drift"]
    assert predictions["drift_detected"] is False and predictions["columns"]["prediction"]["score"] > 0.01


# -- (b) drifted inputs move the predicted probabilities: prediction drift --------------------------------------


def test_drifted_inputs_shift_the_predicted_probabilities(champion, tmp_path):
    """The log written by the scoring task itself: BatchPredictOperator's run for the interval before stamps its
    rows at that interval's end, the start of this window."""
    from mlops_provider.hooks.mlflow import MlflowHook
    from mlops_provider.operators.prediction import BatchPredictOperator

    todays = churn_frame(1500, seed=22, drift=True, day=DAY.date())
    todays.to_parquet(tmp_path / "to_score.parquet", index=False)
    scored = BatchPredictOperator(
        task_id="score", model_name=MODEL, dataset_uri=str(tmp_path / "to_score.parquet"),
        output_uri=str(tmp_path / "scored.parquet"), id_columns=["customer_id"],
        prediction_log_uri=str(tmp_path / "prediction_log"),
    ).execute({
        "ti": TaskInstanceStandIn(dag_id="scoring", run_id="scheduled__2026-01-04T00:00:00+00:00", task_id="score"),
        "data_interval_start": DAY - timedelta(days=1), "data_interval_end": DAY,
    })  # fmt: skip
    assert Path(scored["prediction_log_uri"]).parent.name == f"dt={DAY:%Y-%m-%d}"
    events = OutletEventsStandIn()

    result = run(detect(tmp_path, todays, on_drift="emit", drift_share=0.4, log_to_mlflow=True), outlet_events=events)
    html = report(result)  # before the next run of the same task replaces it
    inputs_only = run(detect(tmp_path, todays, on_drift="continue", drift_share=0.4, prediction_log_uri=None))

    predictions = result["prediction_drift"]
    assert predictions["drift_detected"] is True
    assert "probability_1" in predictions["drifted_columns"]
    assert predictions["columns"]["probability_1"]["score"] < 0.01
    # Reported beside the input verdict, never mixed into it.
    assert inputs_only["prediction_drift"] is None
    for key in ("drift_detected", "drift_share", "drifted_columns", "columns"):
        assert result[key] == inputs_only[key]
    assert result["drifted_columns"] == ["monthly_charges", "plan"]

    [(uri, extra)] = events.emitted()
    assert uri == f"mlops://drift/{MODEL}"
    assert extra["prediction_drift"]["drift_detected"] is True
    assert "probability_1" in extra["prediction_drift"]["drifted_columns"]
    assert "columns" not in extra["prediction_drift"], "the event carries the verdict, not every score"

    assert "Prediction drift" in html and "DRIFT DETECTED" in html and "probability_1" in html

    client = MlflowHook().get_conn()
    run_id = client.get_model_version(MODEL, champion.version).run_id
    folder = next(a.path for a in client.list_artifacts(run_id, "drift"))
    stored = json.loads(
        Path(client.download_artifacts(run_id, f"{folder}/drift_result.json", str(tmp_path))).read_text()
    )
    assert stored["prediction_drift"]["drift_detected"] is True


# -- (c) nothing to compare: said, never a failure --------------------------------------------------------------


def two_days_before(root: Path, champion: Champion) -> None:
    log_predictions(root, champion, churn_frame(1500, seed=23), day=DAY - timedelta(days=2), run_id="earlier")


def shadow_only(root: Path, champion: Champion) -> None:
    log_predictions(root, champion, churn_frame(1500, seed=24), version="99", role="shadow")


def too_few(root: Path, champion: Champion) -> None:
    log_predictions(root, champion, churn_frame(40, seed=25))


SKIPS = {
    "no log rows in the window": (two_days_before, r"^no prediction was logged in the window$"),
    "no log of the model at all": (lambda root, champion: None, r"No prediction log at .*BatchPredictOperator"),
    "only a shadow version logged": (
        shadow_only,
        r"none of the 1500 predictions logged in the window was served by version 1 \(@champion\); "
        r"the log holds version 99 shadow \(1500 rows\)",
    ),
    "too few served predictions": (
        too_few,
        r"^insufficient evidence: 40 served predictions .* prediction_min_rows=100",
    ),
}


@pytest.mark.parametrize("case", list(SKIPS), ids=list(SKIPS))
def test_no_predictions_to_compare_is_said_not_failed(champion, tmp_path, case):
    write, reason = SKIPS[case]
    write(tmp_path / "prediction_log", champion)

    result = run(detect(tmp_path, churn_frame(1500, seed=21, day=DAY.date())))

    predictions = result["prediction_drift"]
    assert "drift_detected" not in predictions, "no verdict when nothing was tested"
    assert predictions["skipped"] and re.search(reason, predictions["skipped"])
    assert result["drift_detected"] is False and result["columns"], "the input check ran and answered"
    assert "not tested" in report(result)


def test_default_root_is_under_mlops_home(champion, tmp_path):
    import os

    log_predictions(Path(os.environ["MLOPS_HOME"]) / "prediction_log", champion, churn_frame(1500, seed=26))

    predictions = run(detect(tmp_path, churn_frame(1500, seed=21), prediction_log_uri=True))["prediction_drift"]
    assert predictions["current_rows"] == 1500 and predictions["drift_detected"] is False


def test_explicit_window_overrides_the_data_interval(champion, tmp_path):
    two_days_before(tmp_path / "prediction_log", champion)
    earlier = DAY - timedelta(days=2)
    operator = detect(
        tmp_path,
        churn_frame(1500, seed=21),
        prediction_window_start=earlier.isoformat(),
        prediction_window_end="{{ data_interval_start }}",
    )
    operator.prediction_window_end = (earlier + timedelta(days=1)).isoformat()  # as the template renders

    predictions = run(operator)["prediction_drift"]
    assert predictions["current_rows"] == 1500 and predictions["window_start"] == earlier.isoformat()


# -- (d) bad input: errors that name the argument and the fix --------------------------------------------------


def test_prediction_drift_without_model_name_is_refused_when_parsed():
    with pytest.raises(ConfigurationError, match=r"prediction_log_uri turns prediction drift on.*give model_name"):
        DetectDriftOperator(
            task_id="detect", current_uri="x.parquet", reference_uri="r.parquet", on_drift="continue",
            prediction_log_uri=True,
        )  # fmt: skip


def test_model_name_that_renders_empty_is_refused_before_any_data_is_read(tmp_path):
    operator = DetectDriftOperator(
        task_id="detect", current_uri=str(tmp_path / "missing.parquet"), reference_uri="r.parquet",
        model_name="{{ params.model_name }}", on_drift="continue", prediction_log_uri=True,
    )  # fmt: skip
    operator.model_name = ""  # as the template renders
    with pytest.raises(ConfigurationError, match=r"prediction_log_uri turns prediction drift on.*give model_name"):
        run(operator)


def test_window_without_a_time_zone_is_refused_when_parsed():
    with pytest.raises(
        ConfigurationError,
        match=r"prediction_window_start='2026-01-05T00:00:00' has no time zone.*add one, e\.g\. "
        r"2026-01-05T00:00:00\+00:00 for UTC",
    ):
        DetectDriftOperator(
            task_id="detect", current_uri="x.parquet", model_name=MODEL, prediction_log_uri=True,
            prediction_window_start="2026-01-05T00:00:00", prediction_window_end="2026-01-06T00:00:00+00:00",
        )  # fmt: skip


def test_window_that_renders_without_a_time_zone_is_refused_before_any_data_is_read(tmp_path):
    operator = DetectDriftOperator(
        task_id="detect", current_uri=str(tmp_path / "missing.parquet"), model_name=MODEL, prediction_log_uri=True,
        prediction_window_end="{{ params.until }}",
    )  # fmt: skip
    operator.prediction_window_end = datetime(2026, 1, 6)  # as the template renders: naive
    with pytest.raises(ConfigurationError, match=r"prediction_window_end='2026-01-06T00:00:00' has no time zone"):
        run(operator)


def test_run_without_data_interval_needs_a_window(tmp_path):
    operator = DetectDriftOperator(
        task_id="detect", current_uri=str(tmp_path / "missing.parquet"), model_name=MODEL, prediction_log_uri=True
    )
    with pytest.raises(
        ConfigurationError, match=r"No prediction_window_start and prediction_window_end: the run has no data interval"
    ):
        run(operator, data_interval_start=None, data_interval_end=None)


def test_window_that_ends_before_it_starts(tmp_path):
    operator = DetectDriftOperator(
        task_id="detect", current_uri=str(tmp_path / "missing.parquet"), model_name=MODEL, prediction_log_uri=True,
        prediction_window_start=NEXT, prediction_window_end=DAY,
    )  # fmt: skip
    with pytest.raises(ConfigurationError, match=r"prediction window ends before it starts.*Swap them"):
        run(operator)


def test_log_root_that_names_a_file(tmp_path):
    operator = DetectDriftOperator(
        task_id="detect", current_uri=str(tmp_path / "missing.parquet"), model_name=MODEL,
        prediction_log_uri=str(tmp_path / "log.parquet"),
    )  # fmt: skip
    with pytest.raises(ConfigurationError, match=r"prediction_log_uri=.*names a file; give the log's root folder"):
        run(operator)


def test_prediction_log_uri_of_the_wrong_type():
    with pytest.raises(ConfigurationError, match=r"prediction_log_uri=\['a'\] is a list; give True"):
        DetectDriftOperator(task_id="detect", current_uri="x", model_name=MODEL, prediction_log_uri=["a"])


# -- a regressor: its prediction is a number ----------------------------------------------------------------------


def test_a_regressors_predictions_are_tested_as_numbers(tmp_path):
    """The core check on its own: a regressor, its holdout, and a log of longer deliveries (farther away)."""
    from sklearn.linear_model import LinearRegression

    from mlops_provider.core.drift import DriftSettings
    from mlops_provider.core.prediction_drift import check_prediction_drift
    from support.training_data import DELIVERY_TARGET, delivery_frame

    features = ["distance_km", "items"]
    train = delivery_frame(2500, seed=1).dropna(subset=features)
    model = LinearRegression().fit(train[features], train[DELIVERY_TARGET])
    holdout = delivery_frame(600, seed=2).dropna(subset=features)
    farther = delivery_frame(1200, seed=3, day="2026-01-05").dropna(subset=features)
    farther["distance_km"] *= 1.3
    regressor = Champion("delivery-minutes", "4", model, holdout_rows=len(holdout))
    log_predictions(tmp_path / "log", regressor, farther.rename(columns={"order_id": "customer_id"}))

    outcome = check_prediction_drift(
        model_name="delivery-minutes", version="4", alias="champion", window_start=DAY, window_end=NEXT,
        settings=DriftSettings(), load_model=lambda: model, load_holdout=lambda: (holdout, "holdout.parquet"),
        task_type="regression", log_root=str(tmp_path / "log"),
    )  # fmt: skip

    assert outcome.to_dict()["drifted_columns"] == ["prediction"]
    assert outcome.drift is not None and outcome.drift.columns["prediction"].column_type == "numerical"
    assert outcome.drift.columns["prediction"].method == "ks"
    assert "DRIFT DETECTED" in outcome.summary() and f"({len(farther)} rows)" in outcome.summary()
