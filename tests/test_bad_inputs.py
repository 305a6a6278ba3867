"""A bad-input catalogue (issue #13, item 2): every operator and sensor, given bad input, raises an error whose
message names the input and the fix, and leaves no state behind.

One table, ``CASES``, and one parametrized test. Each case builds an operator or sensor with literal
arguments (nothing is rendered), calls ``execute`` (``poke`` for sensors) with a minimal context, and checks:

* the exception type;
* ``names``: a regex the message must match that names the input (the argument or the bad value);
* ``fix``: a regex the message must match that says what to do;
* no state left: a snapshot of everything a task could have written, taken before and after, is unchanged:
  MLflow (experiments and their run counts, registered models with their version counts, aliases and
  history tags, no ``*.mlops-lock`` model), the files under ``$MLOPS_HOME`` (reports) and under this module's
  data folder (outputs), the S3 bucket's objects, the Feast repository's registry and online rows, and the
  XComs and Asset events the task pushed.

Everything is real: the MLflow server of ``conftest.py``, moto S3, a Feast repository on SQLite. The models,
data and repository are prepared once for the module. ``docs/reliability.md`` lists the same table.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from airflow.sdk.exceptions import AirflowFailException

from mlops_provider.assets import drift_asset, performance_asset
from mlops_provider.core.errors import (
    ConfigurationError,
    DatasetError,
    DatasetNotFoundError,
    DataStateError,
    DriftInputError,
    EntityFrameError,
    EstimatorSpecError,
    ExpectationSuiteError,
    FeatureReferenceError,
    FeatureViewNotFoundError,
    LabelJoinError,
    MaterializationWindowError,
    MlopsError,
    TrainingDataError,
    UnsupportedFormatError,
)
from mlops_provider.operators.datasets import SelectPartitionsOperator
from mlops_provider.operators.drift import DetectDriftOperator, DriftEventOperator
from mlops_provider.operators.features import (
    FeastApplyOperator,
    GetHistoricalFeaturesOperator,
    MaterializeFeaturesOperator,
)
from mlops_provider.operators.performance import EvaluateLivePerformanceOperator, PerformanceEventOperator
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
from sample_data import churn_frame
from support import task_instance
from support.environment import environment
from support.task_instance import OutletEventsStandIn

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

CASES: list[Case] = [
    # -- ValidateDataOperator ---------------------------------------------------------------------------
    Case("validate-suite-not-json", "ValidateDataOperator", "expectation_suite: a file that is not JSON",
         lambda w: validate(w, expectation_suite=w.data["suite_not_json"]),
         ExpectationSuiteError, r"suite_not_json\.json", r"JSON",
         "ExpectationSuiteError: the file is not valid JSON, where it fails"),
    Case("validate-suite-unknown-expectation", "ValidateDataOperator",
         "expectation_suite: a misspelt expectation type",
         lambda w: validate(w, expectation_suite=w.data["suite_unknown_type"]),
         ExpectationSuiteError, r"expect_column_values_to_be_nul\b", r"did you mean",
         "ExpectationSuiteError: not a GX 1.x expectation type, did you mean ..."),
    Case("validate-unknown-column", "ValidateDataOperator", "expectations on a column the data lacks ('plann')",
         lambda w: validate(w, expectations=[{"type": "expect_column_values_to_not_be_null", "column": "plann"}]),
         ExpectationSuiteError, r"'plann'", FIX,
         "ExpectationSuiteError: the suite checks column 'plann', which the data lacks"),
    Case("validate-expectations-wrong-type", "ValidateDataOperator", "expectations=42 (a number, not a list)",
         lambda w: validate(w, expectations=42),
         (ConfigurationError, ExpectationSuiteError), r"expectations", r"list",
         "ExpectationSuiteError: inline expectations must be a list of expectation dicts"),
    Case("validate-s3-key-missing", "ValidateDataOperator", "dataset_uri: an s3:// key that does not exist",
         lambda w: validate(w, dataset_uri=w.s3("churn/dt=2030-01-01/part.parquet")),
         DatasetNotFoundError, r"dt=2030-01-01/part\.parquet", r"check",
         "DatasetNotFoundError: no object at that key; check the URI"),
    Case("validate-s3-without-connection", "ValidateDataOperator", "an s3:// dataset with aws_conn_id=None",
         lambda w: validate(w, dataset_uri=w.s3("churn.parquet"), aws_conn_id=None),
         (ConfigurationError, DatasetError), r"aws_conn_id", r"connection",
         "DatasetError: no AWS credentials for the s3:// URI; set aws_conn_id to an aws connection"),
    Case("validate-text-file", "ValidateDataOperator", "dataset_uri: a .txt file, neither parquet nor CSV",
         lambda w: validate(w, dataset_uri=w.data["notes_txt"]),
         UnsupportedFormatError, r"notes\.txt", r"(parquet|csv)",
         "UnsupportedFormatError: cannot tell the format; rename or pass dataset_format"),
    Case("validate-bad-on-failure", "ValidateDataOperator", "on_failure='explode'",
         lambda w: validate(w, on_failure="explode"),
         ConfigurationError, r"explode", r"fail.*skip.*warn",
         "ConfigurationError (at parse time): not one of fail, skip, warn"),
    Case("validate-baseline-without-sample", "ValidateDataOperator",
         "baseline_model: a champion with no training reference sample",
         lambda w: validate(w, baseline_model=OTHER),
         ConfigurationError, re.escape(OTHER), r"(retrain|expectation_suite)",
         "ConfigurationError: the champion has no reference sample; retrain it or give a suite"),
    # -- TrainModelOperator -----------------------------------------------------------------------------
    Case("train-feature-columns-dict", "TrainModelOperator", "feature_columns={'tenure_months': 1} (a dict)",
         lambda w: train(w, feature_columns={"tenure_months": 1}),
         ConfigurationError, r"feature_columns", r"list",
         "ConfigurationError: feature_columns is a dict; give a list of names"),
    Case("train-model-name-list", "TrainModelOperator", "model_name=['churn'] (a list)",
         lambda w: train(w, model_name=["churn"]),
         ConfigurationError, r"model_name", r"text",
         "ConfigurationError: model_name is a list; give text"),
    Case("train-estimator-params-list", "TrainModelOperator", "estimator_params=['max_iter', 10] (a list)",
         lambda w: train(w, estimator_params=["max_iter", 10]),
         ConfigurationError, r"estimator_params", r"dict",
         "ConfigurationError: estimator_params is not a dict; give a dict or its JSON"),
    Case("train-test-size-text", "TrainModelOperator", "test_size='0.2' (text)",
         lambda w: train(w, test_size="0.2"),
         ConfigurationError, r"test_size", r"(fraction|number)",
         "ConfigurationError (at parse time): test_size must be a fraction between 0 and 1"),
    Case("train-unknown-target", "TrainModelOperator", "target_column='churn' (not in the data)",
         lambda w: train(w, target_column="churn"),
         TrainingDataError, r"'churn'", FIX,
         "TrainingDataError: the target column is not in the data (lists the columns)"),
    Case("train-unknown-feature", "TrainModelOperator", "feature_columns with 'age' (not in the data)",
         lambda w: train(w, feature_columns=["tenure_months", "age"]),
         TrainingDataError, r"'age'", FIX,
         "TrainingDataError: feature_columns names 'age', which the data does not have"),
    Case("train-unknown-id-column", "TrainModelOperator", "id_columns=['cust_id'] (not in the data)",
         lambda w: train(w, id_columns=["cust_id"]),
         TrainingDataError, r"'cust_id'", FIX,
         "TrainingDataError: id_columns names 'cust_id', which the data does not have"),
    Case("train-unknown-timestamp-column", "TrainModelOperator", "timestamp_column='event_time' (not in the data)",
         lambda w: train(w, timestamp_column="event_time"),
         TrainingDataError, r"'event_time'", FIX,
         "TrainingDataError: timestamp_column names a column the data does not have"),
    Case("train-unknown-estimator-module", "TrainModelOperator", "estimator='nosuchpackage.models.Forest'",
         lambda w: train(w, estimator="nosuchpackage.models.Forest", estimator_params=None),
         EstimatorSpecError, r"nosuchpackage\.models", FIX,
         "EstimatorSpecError: the module cannot be imported"),
    Case("train-unknown-estimator-class", "TrainModelOperator", "estimator='sklearn.ensemble.RandomJungleClassifier'",
         lambda w: train(w, estimator="sklearn.ensemble.RandomJungleClassifier", estimator_params=None),
         EstimatorSpecError, r"RandomJungleClassifier", FIX,
         "EstimatorSpecError: sklearn.ensemble has no such class"),
    Case("train-unknown-estimator-param", "TrainModelOperator", "estimator_params={'n_trees': 10} for a random forest",
         lambda w: train(w, estimator="sklearn.ensemble.RandomForestClassifier", estimator_params={"n_trees": 10}),
         EstimatorSpecError, r"n_trees", FIX,
         "EstimatorSpecError: 'n_trees' is not a parameter of RandomForestClassifier"),
    Case("train-param-rejected", "TrainModelOperator", "estimator_params={'max_depth': -3}, which the forest rejects",
         lambda w: train(w, estimator="sklearn.ensemble.RandomForestClassifier", estimator_params={"max_depth": -3}),
         EstimatorSpecError, r"max_depth", FIX,
         "EstimatorSpecError: the estimator rejected max_depth=-3 (its own words)"),
    Case("train-unknown-problem-type", "TrainModelOperator", "problem_type='clasification'",
         lambda w: train(w, problem_type="clasification"),
         ConfigurationError, r"clasification", r"classification.*regression|regression.*classification",
         "ConfigurationError: not one of classification, regression"),
    Case("train-missing-connection", "TrainModelOperator", "mlflow_conn_id='nope' (not defined)",
         lambda w: train(w, mlflow_conn_id="nope"),
         ConfigurationError, r"'nope'", r"connection",
         "ConfigurationError: the connection is not defined; create it or leave mlflow_conn_id unset"),
    Case("train-wrong-credentials", "TrainModelOperator", "an mlflow connection with a wrong password",
         wrong_password,
         ConfigurationError, r"mlflow_wrong_password", r"(password|login|credential)",
         "ConfigurationError: the server refused the connection's credentials; fix login/password"),
    Case("train-name-with-space-and-slash", "TrainModelOperator", "model_name='churn model/v1'",
         lambda w: train(w, model_name="churn model/v1"),
         ConfigurationError, r"churn model/v1", NAME_RULES,
         "ConfigurationError before any fit or run: the name holds characters MLflow refuses"),
    Case("train-injection-name", "TrainModelOperator", f"model_name={INJECTION!r}",
         lambda w: train(w, model_name=INJECTION),
         ConfigurationError, r"DROP TABLE x", NAME_RULES,
         "ConfigurationError before any fit or run: the name holds quote/semicolon characters"),
    Case("train-traversal-name", "TrainModelOperator", "model_name='../../etc'",
         lambda w: train(w, model_name=TRAVERSAL),
         ConfigurationError, r"\.\./\.\./etc", NAME_RULES,
         "ConfigurationError before any fit or run: the name holds path characters"),
    Case("train-semicolon-csv", "TrainModelOperator", "dataset_uri: a CSV delimited by ';'",
         lambda w: train(w, dataset_uri=w.data["semicolon_csv"]),
         DatasetError, r"semicolon\.csv", DELIMITER,
         "UnsupportedFormatError: it reads as one column, fields separated by ';'; write it comma-separated"),
    Case("train-s3-key-missing", "TrainModelOperator", "dataset_uri: an s3:// key that does not exist",
         lambda w: train(w, dataset_uri=w.s3("churn/missing.parquet")),
         DatasetNotFoundError, r"churn/missing\.parquet", r"check",
         "DatasetNotFoundError: no object at that key; check the URI"),
    Case("train-fake-parquet", "TrainModelOperator", "dataset_uri: text in a file named .parquet",
         lambda w: train(w, dataset_uri=w.data["fake_parquet"]),
         DatasetError, r"fake\.parquet", FIX,
         "DatasetError: could not read it as parquet; check the file or the format"),
    # -- EvaluateChallengerOperator ---------------------------------------------------------------------
    Case("gate-threshold-unknown-key", "EvaluateChallengerOperator", "thresholds={'roc_auc': {'minimum': 0.7}}",
         lambda w: evaluate(w, thresholds={"roc_auc": {"minimum": 0.7}}),
         ConfigurationError, r"minimum", r"'min'",
         "ConfigurationError (at parse time): unknown key; use min, max, ..."),
    Case("gate-threshold-no-bound", "EvaluateChallengerOperator", "thresholds={'roc_auc': {'greater_is_better': True}}",
         lambda w: evaluate(w, thresholds={"roc_auc": {"greater_is_better": True}}),
         ConfigurationError, r"roc_auc", r"add min",
         "ConfigurationError (at parse time): sets no bound; add min, max or a change threshold"),
    Case("gate-threshold-not-a-number", "EvaluateChallengerOperator", "thresholds={'roc_auc': {'min': 'high'}}",
         lambda w: evaluate(w, thresholds={"roc_auc": {"min": "high"}}),
         ConfigurationError, r"'high'", r"number",
         "ConfigurationError (at parse time): must be a number"),
    Case("gate-threshold-out-of-range", "EvaluateChallengerOperator", "thresholds={'roc_auc': {'min': -0.5}}",
         lambda w: evaluate(w, thresholds={"roc_auc": {"min": -0.5}}),
         ConfigurationError, r"-0\.5", r"(between 0 and 1|\[0, 1\]|0 \.\. 1|range)",
         "ConfigurationError (at parse time): roc_auc lies in [0, 1]; -0.5 bounds nothing"),
    Case("gate-unknown-metric", "EvaluateChallengerOperator", "thresholds={'roc_aux': {'min': 0.7}}",
         lambda w: evaluate(w, thresholds={"roc_aux": {"min": 0.7}}),
         ConfigurationError, r"roc_aux", r"(use|one of).*roc_auc",
         "ConfigurationError: the gate names metric 'roc_aux'; the models report roc_auc, ..."),
    Case("gate-thresholds-malformed-text", "EvaluateChallengerOperator", "thresholds='{roc_auc: min 0.7}' (text)",
         lambda w: evaluate(w, thresholds="{roc_auc: min 0.7}"),
         ConfigurationError, r"thresholds", r"(JSON|dict)",
         "ConfigurationError: thresholds is neither JSON nor a Python literal; give a dict"),
    Case("gate-unknown-version", "EvaluateChallengerOperator", "version='999'",
         lambda w: evaluate(w, version="999"),
         ConfigurationError, r"'999'", FIX,
         "ConfigurationError: no version 999 (lists the newest); pass a version of this model"),
    Case("gate-unknown-model", "EvaluateChallengerOperator", "model_name: a model that is not registered",
         lambda w: evaluate(w, model_name=MISSING),
         ConfigurationError, re.escape(MISSING), MODEL_UNKNOWN,
         "ConfigurationError: not a registered model; check model_name and mlflow_conn_id"),
    Case("gate-min-improvement-text", "EvaluateChallengerOperator", "min_improvement='a lot'",
         lambda w: evaluate(w, thresholds=None, min_improvement="a lot"),
         ConfigurationError, r"min_improvement", r"number",
         "ConfigurationError: min_improvement is not a number"),
    Case("gate-unknown-primary-metric", "EvaluateChallengerOperator", "primary_metric='auc'",
         lambda w: evaluate(w, thresholds=None, primary_metric="auc"),
         ConfigurationError, r"'auc'", r"roc_auc",
         "ConfigurationError: the models report roc_auc, ...; use one of those"),
    Case("gate-evaluation-data-without-target", "EvaluateChallengerOperator",
         "evaluation_dataset_uri: data without the target column",
         lambda w: evaluate(w, evaluation_dataset_uri=w.data["no_target"]),
         ConfigurationError, r"'churned'", r"(target_column|it has)",
         "ConfigurationError: the evaluation data has no target column 'churned'"),
    Case("gate-missing-connection", "EvaluateChallengerOperator", "mlflow_conn_id='nope'",
         lambda w: evaluate(w, mlflow_conn_id="nope"),
         ConfigurationError, r"'nope'", r"connection",
         "ConfigurationError: the connection is not defined"),
    # -- PromoteModelOperator ---------------------------------------------------------------------------
    Case("promote-training-result-of-another-model", "PromoteModelOperator",
         "version: the whole training result of another model",
         lambda w: promote(w, version={"model_name": OTHER, "version": "1"}),
         ConfigurationError, re.escape(OTHER), r"version",
         "ConfigurationError: version is a dict (shown, naming the other model); give the version text"),
    Case("promote-version-only-another-model-has", "PromoteModelOperator",
         "version='3': the other model has it, this one does not",
         lambda w: promote(w, version="3"),
         ConfigurationError, r"'3'", FIX,
         "ConfigurationError: no version 3 (lists the newest); pass a version of this model"),
    Case("promote-model-uri-of-another-model", "PromoteModelOperator", "version='models:/<other>/1'",
         lambda w: promote(w, version=f"models:/{OTHER}/1"),
         ConfigurationError, re.escape(OTHER), r"version",
         "ConfigurationError: a version number is expected, and that URI names another model"),
    Case("promote-champion-failing-the-gate", "PromoteModelOperator",
         "version: the current champion, which fails thresholds roc_auc min 0.999",
         lambda w: promote(w, version="1", thresholds={"roc_auc": {"min": 0.999}}),
         (AirflowFailException, MlopsError), r"roc_auc", r"champion",
         "rejected (on_reject='fail'): v1 is champion but fails roc_auc min 0.999; nothing moves",
         xcoms_allowed=("gate_decision", "mlops_model_card")),  # the card records the rejection
    Case("promote-injection-name", "PromoteModelOperator", f"model_name={INJECTION!r}",
         lambda w: promote(w, model_name=INJECTION),
         ConfigurationError, r"DROP TABLE x", FIX,
         "ConfigurationError: not a valid registered model name; the allowed characters; no lock taken"),
    Case("promote-traversal-name", "PromoteModelOperator", "model_name='../../etc'",
         lambda w: promote(w, model_name=TRAVERSAL),
         ConfigurationError, r"\.\./\.\./etc", FIX,
         "ConfigurationError: not a valid registered model name; the allowed characters; no lock taken"),
    Case("promote-alias-list", "PromoteModelOperator", "alias=['champion'] (a list)",
         lambda w: promote(w, alias=["champion"]),
         ConfigurationError, r"alias", r"text",
         "ConfigurationError: alias is a list; give text"),
    Case("promote-missing-connection", "PromoteModelOperator", "mlflow_conn_id='nope'",
         lambda w: promote(w, mlflow_conn_id="nope"),
         ConfigurationError, r"'nope'", r"connection",
         "ConfigurationError: the connection is not defined"),
    # -- RollbackModelOperator --------------------------------------------------------------------------
    Case("rollback-missing-model", "RollbackModelOperator", "model_name: a model that is not registered",
         lambda w: rollback(w, model_name=MISSING),
         ConfigurationError, re.escape(MISSING), MODEL_UNKNOWN,
         "ConfigurationError: not a registered model; check model_name; no lock left behind"),
    Case("rollback-unknown-alias", "RollbackModelOperator", "alias='champ'",
         lambda w: rollback(w, alias="champ"),
         ConfigurationError, r"champ\b", FIX,
         "ConfigurationError: @champ points at no version; nothing to roll back"),
    Case("rollback-unknown-version", "RollbackModelOperator", "to_version='999'",
         lambda w: rollback(w, to_version="999"),
         ConfigurationError, r"999", FIX,
         "ConfigurationError: no version 999 (lists the newest); pass a version of this model"),
    Case("rollback-no-earlier-version", "RollbackModelOperator", "no to_version, and no earlier champion recorded",
         lambda w: rollback(w),
         ConfigurationError, r"champion", r"to_version",
         "ConfigurationError: no earlier version recorded; pass to_version"),
    Case("rollback-injection-name", "RollbackModelOperator", f"model_name={INJECTION!r}",
         lambda w: rollback(w, model_name=INJECTION),
         ConfigurationError, r"DROP TABLE x", FIX,
         "ConfigurationError: not a valid registered model name; the allowed characters; no lock taken"),
    # -- BatchPredictOperator ---------------------------------------------------------------------------
    Case("predict-missing-version", "BatchPredictOperator", "version='999'",
         lambda w: predict(w, "missing-version", version="999"),
         ConfigurationError, r"999", FIX,
         "ConfigurationError: no version 999 (lists the newest); pass a version of this model"),
    Case("predict-unknown-alias", "BatchPredictOperator", "alias='champ'",
         lambda w: predict(w, "unknown-alias", alias="champ"),
         ConfigurationError, r"champ\b", FIX,
         "ConfigurationError: @champ points at no version; promote or pass version"),
    Case("predict-unknown-model", "BatchPredictOperator", "model_name: a model that is not registered",
         lambda w: predict(w, "unknown-model", model_name=MISSING),
         ConfigurationError, re.escape(MISSING), MODEL_UNKNOWN,
         "ConfigurationError: not a registered model; check model_name and mlflow_conn_id"),
    Case("predict-data-without-a-feature", "BatchPredictOperator", "dataset_uri: data without tenure_months",
         lambda w: predict(w, "no-feature", dataset_uri=w.data["no_tenure"]),
         MlopsError, r"tenure_months", FIX,
         "ConfigurationError: the data lacks the model's input column tenure_months; lists what it has"),
    Case("predict-unknown-keep-column", "BatchPredictOperator", "keep_columns=['cust_id']",
         lambda w: predict(w, "keep-column", keep_columns=["cust_id"]),
         MlopsError, r"cust_id", FIX,
         "ConfigurationError: keep_columns names 'cust_id', which the data lacks; lists the columns"),
    Case("predict-text-file", "BatchPredictOperator", "dataset_uri: a .txt file",
         lambda w: predict(w, "text-file", dataset_uri=w.data["notes_txt"]),
         UnsupportedFormatError, r"notes\.txt", r"(parquet|csv)",
         "UnsupportedFormatError: cannot tell the format"),
    Case("predict-s3-key-missing", "BatchPredictOperator", "dataset_uri: an s3:// key that does not exist",
         lambda w: predict(w, "s3-missing", dataset_uri=w.s3("score/missing.parquet")),
         DatasetNotFoundError, r"score/missing\.parquet", r"check",
         "DatasetNotFoundError: no object at that key"),
    Case("predict-unsupported-output", "BatchPredictOperator", "output_uri='ftp://host/predictions.parquet'",
         lambda w: predict(w, "ftp", output_uri="ftp://host/predictions.parquet"),
         (UnsupportedFormatError, ConfigurationError), r"ftp://", r"(s3://|local)",
         "UnsupportedFormatError: only local paths and s3:// (before the model is loaded)"),
    # -- SelectPartitionsOperator -----------------------------------------------------------------------
    Case("partitions-since-not-a-date", "SelectPartitionsOperator", "since='yesterday'",
         lambda w: partitions(w, since="yesterday"),
         ConfigurationError, r"since='yesterday'", r"YYYY-MM-DD",
         "ConfigurationError: not a date; give YYYY-MM-DD"),
    Case("partitions-empty-window", "SelectPartitionsOperator", "since == until",
         lambda w: partitions(w, since="2026-01-02", until="2026-01-02"),
         ConfigurationError, r"2026-01-02", r"(before|empty)",
         "ConfigurationError: since is not before until; the window is empty"),
    Case("partitions-last-zero", "SelectPartitionsOperator", "last=0",
         lambda w: partitions(w, last=0),
         ConfigurationError, r"last", r"at least 1",
         "ConfigurationError: last must be at least 1"),
    Case("partitions-since-list", "SelectPartitionsOperator", "since=['2026-01-01'] (a list)",
         lambda w: partitions(w, since=["2026-01-01"]),
         ConfigurationError, r"since", r"(text|date)",
         "ConfigurationError: since is a list; give a date"),
    Case("partitions-missing-bucket", "SelectPartitionsOperator", "dataset_uri in an S3 bucket that does not exist",
         lambda w: partitions(w, dataset_uri=f"s3://no-such-bucket-{TAG}/events"),
         DatasetNotFoundError, rf"no-such-bucket-{TAG}", r"(check|bucket)",
         "DatasetNotFoundError: the bucket does not exist"),
    Case("partitions-bad-key", "SelectPartitionsOperator", "partition_key='dt=x'",
         lambda w: partitions(w, partition_key="dt=x"),
         ConfigurationError, r"dt=x", r"such as 'dt'",
         "ConfigurationError (at parse time): must be a folder key such as 'dt'"),
    # -- FeastApplyOperator -----------------------------------------------------------------------------
    Case("feast-apply-not-a-repo", "FeastApplyOperator", "repo_path: a folder without feature_store.yaml",
         lambda w: FeastApplyOperator(task_id="apply", repo_path=str(w.not_a_repo)),
         ConfigurationError, r"not_a_repo", r"feature_store\.yaml",
         "ConfigurationError: the folder has no feature_store.yaml"),
    Case("feast-apply-missing-connection", "FeastApplyOperator", "feast_conn_id='nope', no repo_path",
         lambda w: FeastApplyOperator(task_id="apply", feast_conn_id="nope"),
         ConfigurationError, r"'nope'", r"(connection|repo_path)",
         "ConfigurationError: the connection is not defined; create it or pass repo_path"),
    Case("feast-apply-broken-definitions", "FeastApplyOperator", "a repository whose definitions do not import",
         lambda w: FeastApplyOperator(task_id="apply", repo_path=str(w.broken_repo)),
         ConfigurationError, r"(feast_broken|customer_features\.py)", FIX,
         "ConfigurationError: the definitions did not import (file, line, error) and how to fix them; registry untouched"),
    Case("feast-apply-repo-path-number", "FeastApplyOperator", "repo_path=42",
         lambda w: FeastApplyOperator(task_id="apply", repo_path=42),
         ConfigurationError, r"repo_path", r"(folder|path|text)",
         "ConfigurationError: repo_path is a number; give the repository folder"),
    # -- MaterializeFeaturesOperator --------------------------------------------------------------------
    Case("materialize-unknown-view", "MaterializeFeaturesOperator", "feature_views=['customer_profil']",
         lambda w: materialize(w, feature_views=["customer_profil"]),
         FeatureViewNotFoundError, r"customer_profil\b", r"registered.*customer_profile",
         "FeatureViewNotFoundError: unknown view; lists the registered views"),
    Case("materialize-views-dict", "MaterializeFeaturesOperator", "feature_views={'customer_profile': True}",
         lambda w: materialize(w, feature_views={"customer_profile": True}),
         ConfigurationError, r"feature_views", r"list",
         "ConfigurationError: feature_views is a dict; give a list of names"),
    Case("materialize-empty-window", "MaterializeFeaturesOperator", "window_start == window_end",
         lambda w: materialize(w, window_start="2026-01-02T00:00:00+00:00", window_end="2026-01-02T00:00:00+00:00"),
         MaterializationWindowError, r"2026-01-02T00:00:00", r"empty",
         "MaterializationWindowError: the window [start, end) is empty"),
    Case("materialize-inverted-huge-window", "MaterializeFeaturesOperator", "window 2100-01-01 .. 1900-01-01",
         lambda w: materialize(w, window_start="2100-01-01T00:00:00+00:00", window_end="1900-01-01T00:00:00+00:00"),
         MaterializationWindowError, r"2100-01-01", r"swap",
         "MaterializationWindowError: the window ends before it starts; swap them"),
    Case("materialize-window-into-the-future", "MaterializeFeaturesOperator", "window_end=2100-01-01 (the future)",
         lambda w: materialize(w, window_start="2026-01-01T00:00:00+00:00", window_end="2100-01-01T00:00:00+00:00"),
         MaterializationWindowError, r"2100-01-01", r"future",
         "MaterializationWindowError: window_end is in the future; freshness would be recorded up to 2100"),
    Case("materialize-naive-datetime", "MaterializeFeaturesOperator", "window_start='2026-01-01T00:00:00' (no time zone)",
         lambda w: materialize(w, window_start="2026-01-01T00:00:00", window_end="2026-01-02T00:00:00+00:00"),
         MaterializationWindowError, r"window_start", TIMEZONE,
         "MaterializationWindowError: window_start has no time zone; add one, e.g. +00:00"),
    Case("materialize-unparseable-window", "MaterializeFeaturesOperator", "window_start='last tuesday'",
         lambda w: materialize(w, window_start="last tuesday", window_end="2026-01-02T00:00:00+00:00"),
         MaterializationWindowError, r"last tuesday", r"ISO 8601",
         "MaterializationWindowError: not an ISO 8601 timestamp"),
    Case("materialize-window-number", "MaterializeFeaturesOperator", "window_start=20260101 (a number)",
         lambda w: materialize(w, window_start=20260101, window_end="2026-01-02T00:00:00+00:00"),
         MaterializationWindowError, r"window_start", r"(datetime|ISO 8601)",
         "MaterializationWindowError: not a timestamp; pass a datetime or ISO 8601 text"),
    Case("materialize-injection-view-name", "MaterializeFeaturesOperator", "feature_views=['customer_profile; DROP TABLE x']",
         lambda w: materialize(w, feature_views=["customer_profile; DROP TABLE x"]),
         FeatureViewNotFoundError, r"DROP TABLE x", r"registered",
         "FeatureViewNotFoundError: unknown view; lists the registered views"),
    # -- GetHistoricalFeaturesOperator ------------------------------------------------------------------
    Case("training-set-unknown-feature", "GetHistoricalFeaturesOperator", "features=['customer_profile:age']",
         lambda w: historical(w, "unknown-feature", features=["customer_profile:age"]),
         FeatureReferenceError, r"'age'", FIX,
         "FeatureReferenceError: the view has no feature 'age'"),
    Case("training-set-unknown-service", "GetHistoricalFeaturesOperator", "features='churn_modle'",
         lambda w: historical(w, "unknown-service", features="churn_modle"),
         FeatureReferenceError, r"churn_modle", FIX,
         "FeatureReferenceError: neither a view:feature reference nor a feature service"),
    Case("training-set-unknown-timestamp", "GetHistoricalFeaturesOperator", "timestamp_column='label_time'",
         lambda w: historical(w, "unknown-timestamp", timestamp_column="label_time"),
         EntityFrameError, r"label_time", FIX,
         "EntityFrameError: the entity frame has no timestamp column 'label_time'"),
    Case("training-set-entities-missing", "GetHistoricalFeaturesOperator", "entity_uri: a path that does not exist",
         lambda w: historical(w, "entities-missing", entity_uri=w.out("no_labels.parquet")),
         DatasetNotFoundError, r"no_labels\.parquet", r"check",
         "DatasetNotFoundError: the path does not exist"),
    Case("training-set-features-number", "GetHistoricalFeaturesOperator", "features=42",
         lambda w: historical(w, "features-number", features=42),
         ConfigurationError, r"features", r"list",
         "ConfigurationError: features is a number; give a list or a feature service"),
    Case("training-set-semicolon-csv", "GetHistoricalFeaturesOperator", "entity_uri: a CSV delimited by ';'",
         lambda w: historical(w, "semicolon", entity_uri=w.data["semicolon_csv"]),
         (DatasetError, EntityFrameError), r"semicolon\.csv", DELIMITER,
         "UnsupportedFormatError: it reads as one column, fields separated by ';'; write it comma-separated"),
    # -- DetectDriftOperator ----------------------------------------------------------------------------
    Case("drift-unknown-model", "DetectDriftOperator", "model_name: a model that is not registered",
         lambda w: drift(w, model_name=MISSING),
         (DriftInputError, ConfigurationError), re.escape(MISSING), MODEL_UNKNOWN,
         "DriftInputError: no such registered model; check model_name or pass reference_uri"),
    Case("drift-per-column-method-misspelt", "DetectDriftOperator", "per_column_method={'monthly_charge': 'psi'}",
         lambda w: drift(w, per_column_method={"monthly_charge": "psi"}),
         DriftInputError, r"monthly_charge\b", FIX,
         "DriftInputError: per_column_method names a column neither side has"),
    Case("drift-negative-threshold", "DetectDriftOperator", "num_threshold=-0.01",
         lambda w: drift(w, num_threshold=-0.01),
         (DriftInputError, ConfigurationError), r"num_threshold", r"(positive|>= ?0|must be|between)",
         "DriftInputError: the threshold can never raise the alarm; give a positive one"),
    Case("drift-negative-column-threshold", "DetectDriftOperator", "per_column_threshold={'monthly_charges': -1}",
         lambda w: drift(w, per_column_threshold={"monthly_charges": -1}),
         (DriftInputError, ConfigurationError), r"monthly_charges", r"(positive|>= ?0|must be|between)",
         "DriftInputError: the threshold can never raise the alarm; give a positive one"),
    Case("drift-column-threshold-text", "DetectDriftOperator", "per_column_threshold={'monthly_charges': 'low'}",
         lambda w: drift(w, per_column_threshold={"monthly_charges": "low"}),
         (DriftInputError, ConfigurationError), r"monthly_charges", r"number",
         "ConfigurationError: the threshold is not a number"),
    Case("drift-unknown-column", "DetectDriftOperator", "columns=['tenure_monthz']",
         lambda w: drift(w, columns=["tenure_monthz"]),
         DriftInputError, r"tenure_monthz", FIX,
         "DriftInputError: the column is missing from the data"),
    Case("drift-exclude-misspelt", "DetectDriftOperator", "exclude_columns=['custmer_id', 'churned']",
         lambda w: drift(w, exclude_columns=["custmer_id", "churned"]),
         DriftInputError, r"custmer_id", FIX,
         "DriftInputError: exclude_columns names a column neither side has"),
    Case("drift-unknown-method", "DetectDriftOperator", "num_method='kss'",
         lambda w: drift(w, num_method="kss"),
         DriftInputError, r"'kss'", r"ks\b",
         "DriftInputError: not an Evidently stattest; use e.g. 'ks'"),
    Case("drift-share-out-of-range", "DetectDriftOperator", "drift_share=1.5",
         lambda w: drift(w, drift_share=1.5),
         DriftInputError, r"drift_share", r"\(0, 1\]",
         "DriftInputError: drift_share must be in (0, 1]"),
    Case("drift-s3-key-missing", "DetectDriftOperator", "current_uri: an s3:// key that does not exist",
         lambda w: drift(w, current_uri=w.s3("events/dt=2030-01-01/")),
         DatasetNotFoundError, r"dt=2030-01-01", r"check",
         "DatasetNotFoundError: nothing at that key"),
    Case("drift-model-without-sample", "DetectDriftOperator", "model_name: a champion with no reference sample",
         lambda w: drift(w, model_name=OTHER),
         DriftInputError, re.escape(OTHER), r"(retrain|reference_uri)",
         "DriftInputError: the champion has no reference sample; retrain or pass reference_uri"),
    Case("drift-columns-dict", "DetectDriftOperator", "columns={'plan': 1} (a dict)",
         lambda w: drift(w, columns={"plan": 1}),
         ConfigurationError, r"columns", r"list",
         "ConfigurationError: columns is a dict; give a list of names"),
    Case("drift-traversal-name", "DetectDriftOperator", "model_name='../../etc'",
         lambda w: drift(w, model_name=TRAVERSAL),
         (DriftInputError, ConfigurationError), r"\.\./\.\./etc", FIX,
         "ConfigurationError: not a valid registered model name; the allowed characters"),
    # -- DriftEventOperator -----------------------------------------------------------------------------
    Case("drift-event-none-recorded", "DriftEventOperator", "no drift event of the model recorded yet",
         lambda w: DriftEventOperator(task_id="event", model_name=MODEL),
         DataStateError, r"mlops://drift/", r"run the drift monitor",
         "DataStateError (retried): no drift event yet; run the drift monitor first",
         context=lambda w: {"inlet_events": {drift_asset(MODEL): []}}),
    Case("drift-event-no-inlet", "DriftEventOperator", "a manual run whose task does not declare the inlet",
         lambda w: DriftEventOperator(task_id="event", model_name=MODEL),
         ConfigurationError, r"mlops://drift/", r"inlets",
         "ConfigurationError: not triggered by the asset and no inlet; add inlets=[drift_asset(...)]"),
    Case("drift-event-model-name-list", "DriftEventOperator", "model_name=['churn'] (a list)",
         lambda w: DriftEventOperator(task_id="event", model_name=["churn"]),
         ConfigurationError, r"model_name", r"text",
         "ConfigurationError (at parse time): model_name is a list; give text"),
    Case("drift-event-empty-model-name", "DriftEventOperator", "model_name=''",
         lambda w: DriftEventOperator(task_id="event", model_name=""),
         ConfigurationError, r"model_name", r"(give|name)",
         "ConfigurationError (at parse time): model_name is empty"),
    # -- EvaluateLivePerformanceOperator ------------------------------------------------------------------
    Case("live-labels-duplicate-ids", "EvaluateLivePerformanceOperator", "labels with the same customer_id twice",
         lambda w: live(w, labels_uri=w.data["labels_duplicate"]),
         LabelJoinError, r"customer_id", r"(duplicate|once)",
         "LabelJoinError: duplicate ids in the labels (how many, a few shown); keep one label per id"),
    Case("live-labels-naive-timestamp", "EvaluateLivePerformanceOperator", "label_timestamp without a time zone",
         lambda w: live(w, labels_uri=w.data["labels_naive"]),
         LabelJoinError, r"label_timestamp", TIMEZONE,
         "LabelJoinError: label_timestamp has no time zone; store aware UTC times"),
    Case("live-labels-text-for-integer-classes", "EvaluateLivePerformanceOperator",
         "labels 'yes'/'no' for a model that predicts 0/1",
         lambda w: live(w, labels_uri=w.data["labels_text"]),
         LabelJoinError, r"churned", FIX,
         "LabelJoinError: the label values do not match the classes the model predicts (both shown)"),
    Case("live-labels-unknown-id-column", "EvaluateLivePerformanceOperator", "id_columns=['customer']",
         lambda w: live(w, id_columns=["customer"]),
         LabelJoinError, r"customer\b", FIX,
         "LabelJoinError: the labels lack the id column; lists the columns they have"),
    Case("live-unknown-model", "EvaluateLivePerformanceOperator", "model_name: a model that is not registered",
         lambda w: live(w, model_name=MISSING),
         ConfigurationError, re.escape(MISSING), MODEL_UNKNOWN,
         "ConfigurationError: no such registered model, before anything is read"),
    Case("live-no-prediction-log", "EvaluateLivePerformanceOperator", "prediction_log_uri: a folder with no log",
         lambda w: live(w, prediction_log_uri=w.out("no-log-here")),
         DatasetNotFoundError, r"no-log-here", r"BatchPredictOperator",
         "DatasetNotFoundError: no prediction log there; BatchPredictOperator(prediction_log_uri=...) writes it"),
    Case("live-naive-window", "EvaluateLivePerformanceOperator", "window_start='2026-01-02T00:00:00' (no time zone)",
         lambda w: live(w, window_start="2026-01-02T00:00:00"),
         MaterializationWindowError, r"window_start", TIMEZONE,
         "MaterializationWindowError: window_start has no time zone; add one"),
    Case("live-primary-metric-of-a-regressor", "EvaluateLivePerformanceOperator", "primary_metric='rmse' on a classifier",
         lambda w: live(w, primary_metric="rmse"),
         ConfigurationError, r"rmse", r"one of",
         "ConfigurationError: not a live metric of a classification model; lists the ones that are"),
    Case("live-threshold-out-of-range", "EvaluateLivePerformanceOperator", "thresholds={'accuracy': {'min': -0.5}}",
         lambda w: live(w, thresholds={"accuracy": {"min": -0.5}}),
         ConfigurationError, r"accuracy", r"range",
         "ConfigurationError (at parse time): the bound is outside the metric's range, so it passes every model"),
    Case("live-input-drift-garbage", "EvaluateLivePerformanceOperator", "input_drift='yes please'",
         lambda w: live(w, input_drift="yes please"),
         ConfigurationError, r"input_drift", r"drift_detected",
         "ConfigurationError: neither a bool nor a drift result; pass the drift task's XCom"),
    Case("live-too-few-labels", "EvaluateLivePerformanceOperator", "min_rows above the labelled rows",
         lambda w: live(w, min_rows=10_000),
         DataStateError, r"min_rows=10000", r"wait",
         "InsufficientEvidenceError (on_insufficient='fail'; the default skips): fewer labelled rows than min_rows"),
    Case("live-bad-on-degradation", "EvaluateLivePerformanceOperator", "on_degradation='page'",
         lambda w: live(w, on_degradation="page"),
         ConfigurationError, r"on_degradation", r"one of",
         "ConfigurationError (at parse time): not one of emit, fail, continue"),
    Case("performance-event-none-recorded", "PerformanceEventOperator", "no performance event of the model yet",
         lambda w: PerformanceEventOperator(task_id="event", model_name=MODEL),
         DataStateError, r"mlops://performance/", r"run EvaluateLivePerformanceOperator",
         "DataStateError (retried): no degradation recorded yet; run the performance monitor first",
         context=lambda w: {"inlet_events": {performance_asset(MODEL): []}}),
    Case("performance-event-injection-name", "PerformanceEventOperator", f"model_name={INJECTION!r}",
         lambda w: PerformanceEventOperator(task_id="event", model_name=INJECTION),
         ConfigurationError, re.escape(INJECTION), r"(letters|characters|use)",
         "ConfigurationError (at parse time): the name holds characters a model name cannot"),
    # -- PerformanceSensor --------------------------------------------------------------------------------
    Case("performance-sensor-min-rows-zero", "PerformanceSensor", "min_rows=0",
         lambda w: performance_sensor(w, min_rows=0),
         ConfigurationError, r"min_rows", r"e\.g\.",
         "ConfigurationError (at parse time): min_rows must be a positive number of rows", call="poke"),
    Case("performance-sensor-label-delay-text", "PerformanceSensor", "label_delay='three days'",
         lambda w: performance_sensor(w, label_delay="three days"),
         ConfigurationError, r"label_delay", r"timedelta",
         "ConfigurationError (at parse time): give a timedelta or a number of days", call="poke"),
    # -- the gate's live evidence -------------------------------------------------------------------------
    Case("promote-live-evidence-unpaired-metric", "PromoteModelOperator", "live_evidence={'metric': 'roc_auc'}",
         lambda w: promote(w, live_evidence={"metric": "roc_auc"}),
         ConfigurationError, r"roc_auc", r"one of",
         "ConfigurationError (at parse time): roc_auc cannot be compared row by row; lists the metrics that can"),
    Case("promote-live-evidence-unknown-key", "PromoteModelOperator", "live_evidence={'rows': 100}",
         lambda w: promote(w, live_evidence={"rows": 100}),
         ConfigurationError, r"rows", r"use",
         "ConfigurationError (at parse time): unknown key; lists the keys"),
    # -- ModelAliasSensor -------------------------------------------------------------------------------
    Case("alias-sensor-unknown-model", "ModelAliasSensor", "model_name: a model that is not registered",
         lambda w: alias_sensor(w, model_name=MISSING),
         ConfigurationError, re.escape(MISSING), MODEL_UNKNOWN,
         "ConfigurationError at the first poke: no such registered model (instead of waiting forever)",
         call="poke"),
    Case("alias-sensor-newer-than-text", "ModelAliasSensor", "newer_than='latest'",
         lambda w: alias_sensor(w, newer_than="latest"),
         ConfigurationError, r"newer_than", r"version",
         "ConfigurationError: newer_than must be a version number", call="poke"),
    Case("alias-sensor-missing-connection", "ModelAliasSensor", "mlflow_conn_id='nope'",
         lambda w: alias_sensor(w, mlflow_conn_id="nope"),
         ConfigurationError, r"'nope'", r"connection",
         "ConfigurationError: the connection is not defined", call="poke"),
    # -- DriftSensor ------------------------------------------------------------------------------------
    Case("drift-sensor-missing-bucket", "DriftSensor", "current_uri in an S3 bucket that does not exist",
         lambda w: drift_sensor(w, current_uri=f"s3://no-such-bucket-{TAG}/events/"),
         DatasetNotFoundError, rf"no-such-bucket-{TAG}", r"(check|bucket)",
         "DatasetNotFoundError: the bucket does not exist", call="poke"),
    Case("drift-sensor-per-column-method-misspelt", "DriftSensor", "per_column_method={'monthly_charge': 'psi'}",
         lambda w: drift_sensor(w, per_column_method={"monthly_charge": "psi"}),
         DriftInputError, r"monthly_charge\b", FIX,
         "DriftInputError: per_column_method names a column neither side has", call="poke"),
    Case("drift-sensor-s3-without-connection", "DriftSensor", "an s3:// current_uri with aws_conn_id=None",
         lambda w: drift_sensor(w, current_uri=w.s3("events/"), aws_conn_id=None),
         (ConfigurationError, DatasetError), r"aws_conn_id", r"connection",
         "ConfigurationError: s3:// needs credentials; set aws_conn_id", call="poke"),
    Case("drift-sensor-unknown-model", "DriftSensor", "model_name: a model that is not registered",
         lambda w: drift_sensor(w, model_name=MISSING),
         (DriftInputError, ConfigurationError), re.escape(MISSING), MODEL_UNKNOWN,
         "DriftInputError: no such registered model", call="poke"),
    # -- FeatureFreshnessSensor -------------------------------------------------------------------------
    Case("freshness-unknown-view", "FeatureFreshnessSensor", "feature_views=['customer_churn']",
         lambda w: freshness(w, feature_views=["customer_churn"]),
         FeatureViewNotFoundError, r"customer_churn", r"registered",
         "FeatureViewNotFoundError: unknown view; lists the registered views", call="poke"),
    Case("freshness-naive-datetime", "FeatureFreshnessSensor", "fresh_until='2026-01-02T00:00:00' (no time zone)",
         lambda w: freshness(w, fresh_until="2026-01-02T00:00:00"),
         MaterializationWindowError, r"fresh_until", TIMEZONE,
         "MaterializationWindowError: fresh_until has no time zone; add one", call="poke"),
    Case("freshness-covered-since-after", "FeatureFreshnessSensor", "covered_since after fresh_until",
         lambda w: freshness(w, fresh_until="2026-01-02T00:00:00+00:00", covered_since="2026-01-05T00:00:00+00:00"),
         MaterializationWindowError, r"covered_since", r"swap",
         "MaterializationWindowError: covered_since is after fresh_until; swap them", call="poke"),
    Case("freshness-unparseable", "FeatureFreshnessSensor", "fresh_until='tomorrow'",
         lambda w: freshness(w, fresh_until="tomorrow"),
         MaterializationWindowError, r"tomorrow", r"ISO 8601",
         "MaterializationWindowError: not an ISO 8601 timestamp", call="poke"),
    Case("freshness-missing-connection", "FeatureFreshnessSensor", "feast_conn_id='nope', no repo_path",
         lambda w: freshness(w, repo_path=None, feast_conn_id="nope"),
         ConfigurationError, r"'nope'", r"(connection|repo_path)",
         "ConfigurationError: the connection is not defined", call="poke"),
    Case("freshness-views-dict", "FeatureFreshnessSensor", "feature_views={'customer_profile': True}",
         lambda w: freshness(w, feature_views={"customer_profile": True}),
         ConfigurationError, r"feature_views", r"list",
         "ConfigurationError: feature_views is a dict; give a list of names", call="poke"),
]  # fmt: skip

OPERATORS = {
    "ValidateDataOperator", "TrainModelOperator", "EvaluateChallengerOperator", "PromoteModelOperator",
    "RollbackModelOperator", "BatchPredictOperator", "SelectPartitionsOperator", "FeastApplyOperator",
    "MaterializeFeaturesOperator", "GetHistoricalFeaturesOperator", "DetectDriftOperator", "DriftEventOperator",
    "ModelAliasSensor", "DriftSensor", "FeatureFreshnessSensor", "EvaluateLivePerformanceOperator",
    "PerformanceSensor", "PerformanceEventOperator",
}  # fmt: skip
# The catalogue itself, checked when the module is collected: every operator and sensor, at least 45 cases.
assert {case.operator for case in CASES} == OPERATORS, OPERATORS ^ {case.operator for case in CASES}
assert len(CASES) >= 45 and len({case.id for case in CASES}) == len(CASES), "case ids must be unique"


# -- module setup: services, data, models, feature repository ----------------------------------------------


def _write_data(root: Path) -> dict[str, str]:
    root.mkdir(parents=True, exist_ok=True)
    frame = churn_frame(600, seed=1)
    paths = {
        "churn": root / "churn.parquet",
        "no_target": root / "no_target.parquet",
        "no_tenure": root / "no_tenure.parquet",
        "semicolon_csv": root / "semicolon.csv",
        "notes_txt": root / "notes.txt",
        "fake_parquet": root / "fake.parquet",
        "suite_not_json": root / "suite_not_json.json",
        "suite_unknown_type": root / "suite_unknown_type.json",
    }
    frame.to_parquet(paths["churn"], index=False)
    frame.drop(columns=["churned"]).to_parquet(paths["no_target"], index=False)
    frame.drop(columns=["tenure_months"]).to_parquet(paths["no_tenure"], index=False)
    frame.to_csv(paths["semicolon_csv"], sep=";", index=False)
    paths["notes_txt"].write_text("Weekly churn notes: nothing unusual this week.\n")
    paths["fake_parquet"].write_text("customer_id,churned\n1,0\n")
    paths["suite_not_json"].write_text('{"name": "churn", "expectations": [\n  {"type": "expect_column_to_exist",,}\n')
    suite = {
        "name": "churn",
        "expectations": [{"type": "expect_column_values_to_be_nul", "kwargs": {"column": "plan"}}],
    }
    paths["suite_unknown_type"].write_text(json.dumps(suite))
    events = root / "events"
    for day in (1, 2):
        part = events / f"dt=2026-01-0{day}"
        part.mkdir(parents=True)
        churn_frame(400, seed=10 + day, day=f"2026-01-0{day}").to_parquet(part / "part-0.parquet", index=False)
    return {
        **{name: str(path) for name, path in paths.items()},
        "events": str(events),
        "events_day2": str(events / "dt=2026-01-02"),
        **_labels(root, frame),
    }


def _labels(root: Path, frame) -> dict[str, str]:
    """Label files for the prediction log that ``_prediction_log`` writes (customer ids 0..199)."""
    import pandas as pd

    labels = frame.head(200)[["customer_id", "churned"]].copy()
    labels["label_timestamp"] = pd.Timestamp("2026-01-05", tz="UTC")
    paths = {name: root / f"labels_{name}.parquet" for name in ("ok", "duplicate", "naive", "text")}
    labels.to_parquet(paths["ok"], index=False)
    pd.concat([labels, labels.head(3)]).to_parquet(paths["duplicate"], index=False)
    labels.assign(label_timestamp=labels["label_timestamp"].dt.tz_localize(None)).to_parquet(paths["naive"])
    labels.assign(churned=labels["churned"].map({0: "no", 1: "yes"})).to_parquet(paths["text"], index=False)
    return {f"labels_{name}": str(path) for name, path in paths.items()} | {"prediction_log": str(root / "log")}


def _prediction_log(client, data: dict[str, str]) -> None:
    """MODEL v1's predictions of 200 customers, stamped 2026-01-02T06:00Z, in the prediction log layout."""
    import pandas as pd

    from mlops_provider.core.performance.log import prediction_log_file, write_prediction_log

    del client
    frame = pd.read_parquet(data["churn"]).head(200)
    moment = pd.Timestamp("2026-01-02T06:00:00", tz="UTC")
    rows = pd.DataFrame({
        "customer_id": frame["customer_id"], "prediction_time": moment, "model_name": MODEL, "model_version": "1",
        "role": "served", "alias": "champion", "prediction": frame["churned"].to_numpy()[::-1],
        "probability_0": 0.6, "probability_1": 0.4,
    })  # fmt: skip
    uri = prediction_log_file(data["prediction_log"], MODEL, moment, dag_id="setup", run_id="setup", task_id="score")
    write_prediction_log(rows, uri)


def _s3_bucket(churn_path: str) -> str:
    client = _s3_client()
    name = f"mlops-bad-inputs-{TAG}"
    client.create_bucket(Bucket=name)
    client.upload_file(churn_path, name, "churn.parquet")
    client.upload_file(churn_path, name, "events/dt=2026-01-01/part-0.parquet")
    return name


def _models(client, hook, churn_path: str) -> None:
    """MODEL v1 (@champion, recorded in the history) and v2; OTHER v1..v3 (@champion v1) without training tags."""
    import pandas as pd

    from mlops_provider.core.registry import move_alias
    from mlops_provider.core.training import TrainingConfig, train_and_register

    frame = pd.read_parquet(churn_path)
    experiment_id = hook.get_or_create_experiment(MODEL)
    with hook.session() as session_client:
        for features in (FEATURES, FEATURES[:3]):
            config = TrainingConfig(
                target_column="churned", feature_columns=features, estimator="sklearn.linear_model.LogisticRegression",
                estimator_params={"max_iter": 300}, reference_sample_rows=300,
            )  # fmt: skip
            train_and_register(frame, config, session_client, experiment_id=experiment_id, model_name=MODEL,
                               tags={}, dataset_uri=churn_path)  # fmt: skip
    actor = {"dag_id": "setup", "run_id": "setup", "task_id": "setup"}
    move_alias(client, MODEL, "champion", "1", expected_from=None, action="promote", reason="setup", actor=actor)
    first = client.get_model_version(MODEL, "1")
    logged_model = first.model_id or first.source.removeprefix("models:/")
    client.create_registered_model(OTHER)
    for _ in range(3):
        client.create_model_version(OTHER, first.source, run_id=first.run_id, model_id=logged_model)
    client.set_registered_model_alias(OTHER, "champion", "1")
    hook.get_or_create_experiment(TRAIN)  # exists, so a run left behind by a case is counted


def _feature_repos(root: Path) -> tuple[Path, Path]:
    from feast import FeatureStore

    from mlops_provider.core.features import apply_repository
    from support.feature_repo import make_feature_repo

    repo = make_feature_repo(root / "feast", customers=20, days=2)
    apply_repository(FeatureStore(repo_path=str(repo)), repo)
    broken = make_feature_repo(root / "feast_broken", customers=5, days=1)
    definitions = broken / "customer_features.py"
    definitions.write_text(definitions.read_text() + "\ncustomer_typo = Entiti(name='customer_typo')\n")
    return repo, broken


@pytest.fixture(scope="module")
def world(mlflow_server, mlflow_auth_server, moto_server, tmp_path_factory):
    from mlops_provider.hooks.mlflow import MlflowHook

    url = urlsplit(mlflow_server.url)
    connection = json.dumps({"conn_type": "mlflow", "host": url.hostname, "port": url.port})
    # A refused request fails in seconds, not minutes (MLFLOW_HTTP_REQUEST_MAX_RETRIES).
    with environment(AIRFLOW_CONN_MLFLOW_DEFAULT=connection, MLFLOW_HTTP_REQUEST_MAX_RETRIES="1"):
        root = tmp_path_factory.mktemp("bad-inputs")
        data = _write_data(root / "data")
        (root / "out").mkdir()
        (root / "not_a_repo").mkdir()
        hook = MlflowHook()
        client = hook.get_conn()
        _models(client, hook, data["churn"])
        _prediction_log(client, data)
        feast_repo, broken_repo = _feature_repos(root)
        data["labels"] = str(feast_repo / "data" / "churn_labels.parquet")
        yield World(
            root=root, data=data, bucket=_s3_bucket(data["churn"]), client=client, feast_repo=feast_repo,
            broken_repo=broken_repo, not_a_repo=root / "not_a_repo", auth_server_url=mlflow_auth_server.url,
        )  # fmt: skip


# -- the state snapshot -----------------------------------------------------------------------------------


def _mlflow_state(client) -> dict:
    from mlflow.entities import ViewType

    from mlops_provider.core.registry import LOCK_SUFFIX
    from mlops_provider.core.tags import HISTORY_PREFIX

    experiments = client.search_experiments(view_type=ViewType.ALL, max_results=1000)
    runs: dict[str, int] = {e.experiment_id: 0 for e in experiments}
    for run in client.search_runs(list(runs), run_view_type=ViewType.ALL, max_results=50_000):
        runs[run.info.experiment_id] += 1
    versions: dict[str, int] = {}
    for version in client.search_model_versions(max_results=10_000):
        versions[version.name] = versions.get(version.name, 0) + 1
    models = {}
    for model in client.search_registered_models(max_results=1000):
        models[model.name] = {
            "versions": versions.get(model.name, 0),
            "aliases": dict(sorted((model.aliases or {}).items())),
            "history": sorted(k for k in (model.tags or {}) if k.startswith(HISTORY_PREFIX)),
        }
    return {
        "runs per experiment": {e.name: runs[e.experiment_id] for e in experiments},
        "registered models": models,
        "locks": sorted(name for name in models if name.endswith(LOCK_SUFFIX)),
    }


def _files(root: Path, skip: set[Path]) -> list[tuple[str, int]]:
    if not root.exists():
        return []
    return sorted(
        (str(path.relative_to(root)), path.stat().st_size)
        for path in root.rglob("*")
        if path.is_file() and path not in skip and "__pycache__" not in path.parts
    )


def _online_rows(repo: Path) -> dict[str, int]:
    database = repo / "data" / "online_store.db"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        tables = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {table: connection.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0] for table in tables}


def _s3_client():
    import boto3

    connection = json.loads(os.environ["AIRFLOW_CONN_AWS_DEFAULT"])  # set by the moto_server fixture
    return boto3.client(
        "s3", endpoint_url=connection["extra"]["endpoint_url"], aws_access_key_id=connection["login"],
        aws_secret_access_key=connection["password"], region_name="us-east-1",
    )  # fmt: skip


def _bucket(w: World) -> list[tuple[str, int]]:
    client = _s3_client()
    return sorted((o["Key"], o["Size"]) for o in client.list_objects_v2(Bucket=w.bucket).get("Contents", []))


def snapshot(w: World) -> dict:
    """Everything a task could have left behind, cheaply: a few list calls, file names and row counts."""
    registry = w.feast_repo / "data" / "registry.db"
    online = w.feast_repo / "data" / "online_store.db"
    return {
        **_mlflow_state(w.client),
        "files under $MLOPS_HOME": _files(Path(os.environ["MLOPS_HOME"]), set()),
        "files under the module's folder": _files(w.root, {registry, online}),
        "S3 objects": _bucket(w),
        "Feast registry": hashlib.sha256(registry.read_bytes()).hexdigest(),
        "Feast online rows": _online_rows(w.feast_repo),
    }


def differences(before: dict, after: dict) -> list[str]:
    found = []
    for key in before:
        if before[key] != after[key]:
            if isinstance(before[key], dict):
                changed = {k: (before[key].get(k), after[key].get(k)) for k in before[key].keys() | after[key].keys()
                           if before[key].get(k) != after[key].get(k)}  # fmt: skip
                found.append(f"{key}: {changed}")
            elif isinstance(before[key], list):
                found.append(f"{key}: added {sorted(set(after[key]) - set(before[key]))}, "
                             f"removed {sorted(set(before[key]) - set(after[key]))}")  # fmt: skip
            else:
                found.append(f"{key}: changed")
    return found


# -- the test -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", [case.param() for case in CASES])
def test_bad_input_is_refused_clearly_and_leaves_no_state(case: Case, world: World, connection_env):
    world.define_connection = connection_env
    ti = TaskInstanceStandIn(run_id=f"manual__bad_inputs_{case.id}")
    outlets = OutletEventsStandIn()
    context = {
        "ti": ti, "run_id": ti.run_id, "dag_run": DagRunStandIn(run_id=ti.run_id), "outlet_events": outlets,
        "data_interval_start": DAY1, "data_interval_end": DAY2, "logical_date": DAY2,
        "triggering_asset_events": {},
    }  # fmt: skip
    if case.context:
        context.update(case.context(world))
    before = snapshot(world)

    raised: Exception | None = None
    try:
        task = case.build(world)
        getattr(task, case.call)(context)
    except Exception as error:  # every kind is judged below, with the message and the state
        raised = error

    problems = []
    if raised is None:
        problems.append(f"nothing was raised: {case.call}() returned")
    else:
        message = str(raised)
        shown = f"{type(raised).__name__}: {message[:600]}"
        print(f"{case.id} -> {shown}")
        if not isinstance(raised, case.error):
            problems.append(f"raised {type(raised).__module__}.{shown}; expected {_names(case.error)}")
        if not re.search(case.names, message, re.IGNORECASE | re.DOTALL):
            problems.append(f"the message does not name the input (/{case.names}/): {shown}")
        if not re.search(case.fix, message, re.IGNORECASE | re.DOTALL):
            problems.append(f"the message does not say the fix (/{case.fix[:60]}/): {shown}")
    left = differences(before, snapshot(world))
    pushed = sorted(set(ti.xcoms) - set(case.xcoms_allowed))
    if pushed:
        left.append(f"XComs pushed: {pushed}")
    if outlets.emitted():
        left.append(f"Asset events raised: {outlets.emitted()}")
    problems += [f"state left behind: {item}" for item in left]
    assert not problems, "\n".join(problems)


def _names(error: type | tuple[type, ...]) -> str:
    return " or ".join(e.__name__ for e in (error if isinstance(error, tuple) else (error,)))
