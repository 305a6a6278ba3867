"""Live performance end to end, on a real MLflow server: predictions logged by BatchPredictOperator (served and
shadow), labels arriving three days later, EvaluateLivePerformanceOperator judging each day, and the gate
promoting (or not) on the shadow evidence.

The story, on the seeded churn sample (``include/sample_data.py``):

* a champion trained on a week of data, and a worse challenger (trained on shuffled labels) in shadow;
* three stable days: no alarm; the worse challenger, once evidence exists, is refused on live evidence
  (before that, the gate waits);
* three days of concept drift (same inputs, another churn rule): the champion's accuracy drops with no input
  drift; each window is called "concept drift" and raises ``mlops://performance/<model>``;
* a challenger trained on the new rule, in shadow on those days, is promoted on live evidence.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path

import pandas as pd
import pytest

from mlops_provider.core import tags
from sample_data import write_labels, write_partitions
from support import task_instance
from support.environment import environment, mlflow_connection
from support.task_instance import OutletEventsStandIn

UTC = timezone.utc
MODEL = f"live-churn-{uuid.uuid4().hex[:8]}"
IDS = ["customer_id", "dt"]
ROWS_PER_DAY = 1000
STABLE_DAYS = ["2026-01-08", "2026-01-09", "2026-01-10"]
DRIFT_DAYS = ["2026-01-11", "2026-01-12", "2026-01-13"]
LIVE_EVIDENCE = {"metric": "accuracy", "min_rows": 1500, "min_windows": 2}
LOOSE_GATE = {"accuracy": {"min": 0.5}}  # the holdout gate lets the challengers through: live evidence decides

TaskInstanceStandIn = partial(task_instance.TaskInstanceStandIn, dag_id="live_tests")


def context(task_id: str, day: str | None = None, *, run: str | None = None) -> dict:
    ti = TaskInstanceStandIn(task_id=task_id, run_id=run or f"scheduled__{day or 'x'}T00:00:00+00:00")
    values = {"ti": ti, "run_id": ti.run_id, "outlet_events": OutletEventsStandIn()}
    if day:
        start = datetime.fromisoformat(day).replace(tzinfo=UTC)
        values.update(data_interval_start=start, data_interval_end=start + timedelta(days=1))
    return values


def end_of(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(days=1)


class World:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data" / "churn"
        self.labels = root / "labels" / "churn"
        self.log_root = root / "prediction_log"
        self.partitions: list[Path] = []

    def train(self, dataset_uri: str, task_id: str) -> str:
        from mlops_provider.operators.training import TrainModelOperator

        result = TrainModelOperator(
            task_id=task_id, dataset_uri=dataset_uri, target_column="churned", model_name=MODEL,
            id_columns=IDS, timestamp_column="event_timestamp", skip_if_unchanged=False,
            estimator="sklearn.ensemble.HistGradientBoostingClassifier", estimator_params={"max_iter": 60},
        ).execute(context(task_id, run=f"manual__{task_id}"))  # fmt: skip
        return result["version"]

    def promote(self, version: str, run: str, **overrides):
        from mlops_provider.operators.registry import PromoteModelOperator

        operator = PromoteModelOperator(task_id="promote", model_name=MODEL, version=version, **overrides)
        ctx = context("promote", run=run)
        try:
            return operator.execute(ctx), ctx
        except Exception as error:  # noqa: BLE001 - a skip carries the decision; the test reads it
            return error, ctx

    def score(self, day: str) -> dict:
        from mlops_provider.operators.prediction import BatchPredictOperator

        return BatchPredictOperator(
            task_id="score", model_name=MODEL, dataset_uri=str(self.data / f"dt={day}"),
            output_uri=str(self.root / "scores" / f"{day}.parquet"), id_columns=IDS,
            prediction_log_uri=str(self.log_root), shadow_aliases=["challenger"],
        ).execute(context("score", day))  # fmt: skip

    def evaluate(self, day: str, *, with_drift: bool = True, **overrides) -> tuple[dict, dict]:
        """The predictions of ``day`` (stamped at its end), judged with the input drift of that day."""
        from mlops_provider.operators.drift import DetectDriftOperator
        from mlops_provider.operators.performance import EvaluateLivePerformanceOperator

        drift = None
        if with_drift:
            drift = DetectDriftOperator(
                task_id="input_drift", current_uri=str(self.data / f"dt={day}"), model_name=MODEL,
                exclude_columns=[*IDS, "event_timestamp", "churned"], drift_share=0.25, on_drift="continue",
                log_to_mlflow=False,
            ).execute(context("input_drift", day))  # fmt: skip
        settings = {
            "task_id": "live_performance", "model_name": MODEL, "labels_uri": str(self.labels),
            "label_column": "churned", "id_columns": IDS, "label_timestamp_column": "label_timestamp",
            "prediction_log_uri": str(self.log_root), "window_start": end_of(day).isoformat(),
            "window_end": (end_of(day) + timedelta(days=1)).isoformat(), "input_drift": drift, **overrides,
        }  # fmt: skip
        ctx = context("live_performance", day)
        return EvaluateLivePerformanceOperator(**settings).execute(ctx), ctx

    def land(self, days: list[str], **kwargs) -> None:
        written = write_partitions(self.data, start=days[0], days=len(days), rows_per_day=ROWS_PER_DAY, **kwargs)
        self.partitions += written
        write_labels(written, self.labels, delay_days=3)


@pytest.fixture(scope="module")
def world(tmp_path_factory, mlflow_server):
    root = tmp_path_factory.mktemp("live-performance")
    connection = mlflow_connection(mlflow_server.url)
    with environment(MLOPS_HOME=str(root / "home"), AIRFLOW_CONN_MLFLOW_DEFAULT=connection):
        yield World(root)


def client():
    from mlops_provider.hooks.mlflow import MlflowHook

    return MlflowHook().get_conn()


def test_stable_then_concept_drift_and_shadow_challengers_decided_on_live_evidence(world):
    from airflow.sdk.exceptions import AirflowSkipException

    # A champion on a week of data; a worse challenger (shuffled labels) in shadow.
    world.partitions += write_partitions(world.data, start="2026-01-01", days=7, rows_per_day=ROWS_PER_DAY)
    champion = world.train(str(world.data), "train_champion")
    result, _ = world.promote(champion, "manual__first", thresholds=LOOSE_GATE)
    assert result["promoted"], result
    shuffled = pd.read_parquet(world.data).sample(frac=1.0, random_state=0)
    shuffled["churned"] = shuffled["churned"].sample(frac=1.0, random_state=1).to_numpy()
    worse_file = world.root / "shuffled.parquet"
    shuffled.to_parquet(worse_file, index=False)
    worse = world.train(str(worse_file), "train_worse")
    client().set_registered_model_alias(MODEL, "challenger", worse)

    # Without evidence the gate waits: recorded, nothing moves, the task skips (the run stays green).
    waited, ctx = world.promote(worse, "manual__too_early", thresholds=LOOSE_GATE, live_evidence=LIVE_EVIDENCE)
    assert isinstance(waited, AirflowSkipException) and "waits for live evidence" in str(waited), waited
    assert ctx["ti"].xcoms["gate_decision"]["waiting"] is True
    assert client().get_model_version(MODEL, worse).tags[tags.GATE_DECISION] == "waiting"

    # Three stable days: predictions logged, labels three days later, no alarm.
    world.land(STABLE_DAYS)
    for day in STABLE_DAYS:
        scored = world.score(day)
        assert scored["model_version"] == champion and scored["shadow_versions"] == [worse], scored
    stable = []
    for day in STABLE_DAYS:
        verdict, ctx = world.evaluate(day)
        stable.append(verdict)
        assert (verdict["outcome"], verdict["kind"]) == ("stable", "stable"), verdict["statement"]
        assert not ctx["outlet_events"], ctx["outlet_events"]
        assert verdict["versions"][champion]["rows"] == ROWS_PER_DAY
        assert verdict["versions"][worse]["role"] == "shadow"
    assert "no drop beyond noise" in stable[0]["statement"]

    # The worse challenger has its evidence now: refused on live evidence, the champion stays.
    refused, ctx = world.promote(worse, "manual__worse", thresholds=LOOSE_GATE, live_evidence=LIVE_EVIDENCE)
    assert isinstance(refused, AirflowSkipException), refused
    decision = ctx["ti"].xcoms["gate_decision"]
    assert not decision["promoted"] and not decision["waiting"], decision
    assert decision["live_evidence"]["outcome"] == "reject" and decision["live_evidence"]["rows"] == 3 * ROWS_PER_DAY
    assert decision["live_evidence"]["improvement"] < 0, decision["live_evidence"]
    assert client().get_model_version_by_alias(MODEL, "champion").version == champion

    # A challenger trained on the new rule, in shadow while the rule changes under the champion.
    better_data = world.root / "new_rule"
    write_partitions(better_data, start="2026-02-01", days=6, rows_per_day=ROWS_PER_DAY, concept_drift=True)
    better = world.train(str(better_data), "train_better")
    client().set_registered_model_alias(MODEL, "challenger", better)
    world.land(DRIFT_DAYS, concept_drift=True)
    for day in DRIFT_DAYS:
        assert world.score(day)["shadow_versions"] == [better]
    for day in DRIFT_DAYS:
        verdict, ctx = world.evaluate(day)
        assert verdict["outcome"] == "degraded", verdict["statement"]
        assert verdict["kind"] == "performance drop without input drift (concept drift)", verdict["statement"]
        (uri, extra), *more = [e for events in ctx["outlet_events"].values() for e in events]
        assert not more and uri == f"mlops://performance/{MODEL}"
        assert extra["metric"] == "accuracy" and extra["live"] < extra["holdout"] and extra["p_value"] < 0.01, extra
        assert extra["labelled_rows"] == ROWS_PER_DAY and extra["window_end"] == verdict["window_end"]
        recorded = _live_verdict()  # the newest verdict, where the fleet page reads it
        assert (
            recorded["outcome"] == "degraded" and recorded["degraded"] and recorded["window_end"] == extra["window_end"]
        )
        assert recorded["value"] == extra["live"] and recorded["baseline"] == extra["holdout"]
        assert recorded["windows_without_labels"] == 0 and recorded["report_uri"] == f"file://{verdict['report_uri']}"

    promoted, _ = world.promote(better, "manual__better", thresholds=LOOSE_GATE, live_evidence=LIVE_EVIDENCE)
    assert isinstance(promoted, dict) and promoted["promoted"], promoted
    assert promoted["live_evidence"]["outcome"] == "promote" and promoted["live_evidence"]["improvement"] > 0
    assert client().get_model_version_by_alias(MODEL, "champion").version == better

    # The monitoring run holds one point per window for the champion; the report shows the history.
    from mlflow import MlflowClient

    mlflow = client()
    (run,) = mlflow.search_runs(
        [mlflow.get_experiment_by_name(f"{MODEL}-monitoring").experiment_id],
        filter_string=f"tags.`{tags.MONITORING_OF}` = '{MODEL}'",
    )
    history = MlflowClient.get_metric_history(mlflow, run.info.run_id, f"live.v{champion}.accuracy")
    assert len(history) == len(STABLE_DAYS + DRIFT_DAYS)
    report = Path(verdict["report_uri"]).read_text()
    assert report.count("<svg") >= 2 and "concept drift" in report


def test_a_rerun_of_a_window_records_nothing_twice(world):
    """Depends on the story above (same module): rerun the last window's evaluation."""
    from mlflow import MlflowClient

    mlflow = client()
    (run,) = mlflow.search_runs(
        [mlflow.get_experiment_by_name(f"{MODEL}-monitoring").experiment_id],
        filter_string=f"tags.`{tags.MONITORING_OF}` = '{MODEL}'",
    )
    key = next(k for k in run.data.metrics if k.startswith("live.v") and k.endswith(".accuracy"))
    before = len(MlflowClient.get_metric_history(mlflow, run.info.run_id, key))
    evidence_tags = {
        v.version: sorted(k for k in v.tags if k.startswith(tags.LIVE_EVIDENCE_PREFIX))
        for v in mlflow.search_model_versions(f"name = '{MODEL}'")
    }
    world.evaluate(DRIFT_DAYS[-1])
    assert len(MlflowClient.get_metric_history(mlflow, run.info.run_id, key)) == before
    assert evidence_tags == {
        v.version: sorted(k for k in v.tags if k.startswith(tags.LIVE_EVIDENCE_PREFIX))
        for v in mlflow.search_model_versions(f"name = '{MODEL}'")
    }


def test_too_few_labels_is_insufficient_evidence_not_a_pass(world):
    from airflow.sdk.exceptions import AirflowSkipException

    with pytest.raises(AirflowSkipException, match="insufficient evidence"):
        world.evaluate(STABLE_DAYS[0], min_rows=10 * ROWS_PER_DAY)
    verdict, _ = world.evaluate(STABLE_DAYS[0], min_rows=10 * ROWS_PER_DAY, on_insufficient="succeed")
    assert verdict["outcome"] == "insufficient_evidence" and not verdict["degraded"]
    assert f"fewer than min_rows={10 * ROWS_PER_DAY}" in verdict["statement"]
    # A window with no prediction at all: said, not passed.
    assert _live_verdict()["windows_without_labels"] == 1  # the skipped try and its rerun: one window
    verdict, _ = world.evaluate("2026-03-01", with_drift=False, on_insufficient="succeed")
    assert verdict["outcome"] == "insufficient_evidence"
    assert "no prediction was logged in the window" in verdict["statement"]
    recorded = _live_verdict()
    assert recorded["outcome"] == "insufficient_evidence" and recorded["windows_without_labels"] == 2
    assert recorded["window_end"] == verdict["window_end"] and recorded["report_uri"] is None


def _live_verdict() -> dict:
    from mlops_provider.core import monitoring

    return monitoring.read_verdicts(monitoring.find_monitoring_run(client(), MODEL))[monitoring.LIVE]
