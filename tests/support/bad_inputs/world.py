"""What the bad-input cases run against: the names the module prepares, the world it hands each case, the case
record and the builders that make each operator from good defaults and one bad override."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from mlops_provider.operators.datasets import SelectPartitionsOperator
from mlops_provider.operators.drift import DetectDriftOperator
from mlops_provider.operators.features import (
    GetHistoricalFeaturesOperator,
    MaterializeFeaturesOperator,
)
from mlops_provider.operators.performance import EvaluateLivePerformanceOperator
from mlops_provider.operators.prediction import BatchPredictOperator
from mlops_provider.operators.registry import (
    EvaluateChallengerOperator,
    PromoteModelOperator,
    RollbackModelOperator,
)
from mlops_provider.operators.training import TrainModelOperator
from mlops_provider.operators.validation import ValidateDataOperator
from mlops_provider.sensors.drift import DriftSensor
from mlops_provider.sensors.features import FeatureFreshnessSensor
from mlops_provider.sensors.performance import PerformanceSensor
from mlops_provider.sensors.registry import ModelAliasSensor
from support import task_instance

UTC = timezone.utc
DAY1 = datetime(2026, 1, 1, tzinfo=UTC)
DAY2 = datetime(2026, 1, 2, tzinfo=UTC)
TAG = uuid.uuid4().hex[:8]
MODEL = f"bad-inputs-churn-{TAG}"  # v1 @champion (promoted through move_alias), v2 a challenger
OTHER = f"bad-inputs-other-{TAG}"  # three versions made from MODEL's v1 artifacts, without training tags
TRAIN = f"bad-inputs-train-{TAG}"  # the model every TrainModelOperator case names (its experiment exists)
MISSING = f"no-such-model-{TAG}"
INJECTION = "churn'; DROP TABLE x;--"
TRAVERSAL = "../../etc"
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "plan", "contract"]
EXCLUDE = ["customer_id", "churned"]
GATE = {"roc_auc": {"min": 0.5}}

# What a message offers as a fix, when a case does not ask for specific words: an instruction, or the valid
# choices listed ("it has [...]", "registered: [...]").
FIX = (
    r"\b(give|pass|use|set|check|add|remove|fix|create|choose|rename|promote|retrain|swap|did you mean|one of|"
    r"must be|leave|point|define|write|list|register|quote|exclude|make|apply|expected|should|instead|e\.g\.)\b"
    r"|\bit (has|accepts)\b|\b(columns|registered|available|newest|known|feature services|feature views)\b[^.;]*[:\[]"
)


# -- the world the cases run in -------------------------------------------------------------------------


@dataclass
class World:
    """Everything the module prepared: data files, the bucket, the models, the Feast repository."""

    root: Path
    data: dict[str, str]
    bucket: str
    client: Any
    feast_repo: Path
    broken_repo: Path
    not_a_repo: Path
    define_connection: Callable[..., str] | None = None
    auth_server_url: str = ""

    def s3(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def out(self, name: str) -> str:
        return str(self.root / "out" / name)


TaskInstanceStandIn = partial(task_instance.TaskInstanceStandIn, dag_id="bad_inputs")


@dataclass
class DagRunStandIn:
    triggering_user_name: str | None = None
    run_id: str = ""


# -- one case -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    operator: str  # the class under test, for the table in docs/reliability.md
    input: str  # the bad input, in words
    build: Callable[[World], Any]
    error: type | tuple[type, ...]
    names: str  # regex: the message names the input (argument or value)
    fix: str  # regex: the message says what to do
    gist: str  # what the user should see, in words (docs/reliability.md)
    call: str = "execute"
    context: Callable[[World], dict] | None = None
    xcoms_allowed: tuple[str, ...] = ()  # XComs that record a decision by design (not bad-input leftovers)

    def param(self):
        return pytest.param(self, id=self.id)


def train(w: World, **overrides) -> TrainModelOperator:
    settings = {
        "task_id": "train",
        "dataset_uri": w.data["churn"],
        "target_column": "churned",
        "model_name": TRAIN,
        "id_columns": ["customer_id"],
        "estimator": "sklearn.linear_model.LogisticRegression",
        "estimator_params": {"max_iter": 300},
        "skip_if_unchanged": False,
        **overrides,
    }
    return TrainModelOperator(**settings)


def validate(w: World, **overrides) -> ValidateDataOperator:
    settings = {"task_id": "validate", "dataset_uri": w.data["churn"], **overrides}
    if not {"expectation_suite", "expectations", "infer_from", "baseline_model"} & set(overrides):
        settings["expectations"] = [{"type": "expect_column_values_to_not_be_null", "column": "plan"}]
    return ValidateDataOperator(**settings)


def evaluate(w: World, **overrides) -> EvaluateChallengerOperator:
    settings = {"task_id": "gate", "model_name": MODEL, "version": "2", "thresholds": GATE, "on_reject": "fail",
                "lock_timeout": 10.0, **overrides}  # fmt: skip
    return EvaluateChallengerOperator(**settings)


def promote(w: World, **overrides) -> PromoteModelOperator:
    settings = {"task_id": "promote", "model_name": MODEL, "version": "2", "thresholds": GATE, "on_reject": "fail",
                "lock_timeout": 10.0, **overrides}  # fmt: skip
    return PromoteModelOperator(**settings)


def rollback(w: World, **overrides) -> RollbackModelOperator:
    return RollbackModelOperator(**{"task_id": "rollback", "model_name": MODEL, "lock_timeout": 10.0, **overrides})


def predict(w: World, case: str, **overrides) -> BatchPredictOperator:
    settings = {"task_id": "score", "model_name": MODEL, "dataset_uri": w.data["churn"],
                "output_uri": w.out(f"predictions-{case}.parquet"), **overrides}  # fmt: skip
    return BatchPredictOperator(**settings)


def partitions(w: World, **overrides) -> SelectPartitionsOperator:
    return SelectPartitionsOperator(**{"task_id": "select", "dataset_uri": w.data["events"], "on_empty": "fail",
                                       **overrides})  # fmt: skip


def materialize(w: World, **overrides) -> MaterializeFeaturesOperator:
    return MaterializeFeaturesOperator(**{"task_id": "materialize", "repo_path": str(w.feast_repo), **overrides})


def historical(w: World, case: str, **overrides) -> GetHistoricalFeaturesOperator:
    settings = {"task_id": "training_set", "repo_path": str(w.feast_repo), "entity_uri": w.data["labels"],
                "features": "churn_model", "output_uri": w.out(f"training-{case}.parquet"), **overrides}  # fmt: skip
    return GetHistoricalFeaturesOperator(**settings)


def drift(w: World, **overrides) -> DetectDriftOperator:
    settings = {"task_id": "drift", "current_uri": w.data["events_day2"], "model_name": MODEL,
                "exclude_columns": EXCLUDE, "on_drift": "continue", **overrides}  # fmt: skip
    return DetectDriftOperator(**settings)


def drift_sensor(w: World, **overrides) -> DriftSensor:
    settings = {"task_id": "wait_for_drift", "current_uri": w.data["events"], "model_name": MODEL,
                "exclude_columns": EXCLUDE, "on_drift": "continue", **overrides}  # fmt: skip
    return DriftSensor(**settings)


def alias_sensor(w: World, **overrides) -> ModelAliasSensor:
    settings = {"task_id": "wait_for_champion", "model_name": MODEL, "newer_than": "1", "deferrable": False,
                "timeout": 60, **overrides}  # fmt: skip
    return ModelAliasSensor(**settings)


LIVE_WINDOW = {"window_start": "2026-01-02T00:00:00+00:00", "window_end": "2026-01-03T00:00:00+00:00"}


def live(w: World, **overrides) -> EvaluateLivePerformanceOperator:
    settings = {"task_id": "live_performance", "model_name": MODEL, "labels_uri": w.data["labels_ok"],
                "label_column": "churned", "id_columns": ["customer_id"], "label_timestamp_column": "label_timestamp",
                "prediction_log_uri": w.data["prediction_log"], "min_rows": 10, "on_insufficient": "fail",
                **LIVE_WINDOW, **overrides}  # fmt: skip
    return EvaluateLivePerformanceOperator(**settings)


def performance_sensor(w: World, **overrides) -> PerformanceSensor:
    settings = {"task_id": "wait_for_labels", "model_name": MODEL, "labels_uri": w.data["labels_ok"],
                "label_column": "churned", "id_columns": ["customer_id"], "label_timestamp_column": "label_timestamp",
                "prediction_log_uri": w.data["prediction_log"], "timeout": 60, **LIVE_WINDOW, **overrides}  # fmt: skip
    return PerformanceSensor(**settings)


def freshness(w: World, **overrides) -> FeatureFreshnessSensor:
    settings = {"task_id": "fresh", "repo_path": str(w.feast_repo), "feature_views": ["customer_profile"],
                "timeout": 60, **overrides}  # fmt: skip
    return FeatureFreshnessSensor(**settings)


def wrong_password(w: World) -> TrainModelOperator:
    url = urlsplit(w.auth_server_url)
    conn_id = w.define_connection(
        "mlflow_wrong_password", conn_type="mlflow", host=url.hostname, port=url.port, login="admin",
        password="not-the-password",
    )  # fmt: skip
    return train(w, mlflow_conn_id=conn_id)


NAME_RULES = r"(allowed|characters|letters|may only|must not contain|not a valid|invalid)"
MODEL_UNKNOWN = (
    r"(not (a )?registered|does not exist|no registered model|unknown model|check (the )?model_?name|no such model)"
)
TIMEZONE = r"(time ?zone|tzinfo|UTC|\+00:00|offset)"
DELIMITER = r"(delimit|separator|semicolon|sep=|';')"
