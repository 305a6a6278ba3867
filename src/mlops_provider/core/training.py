"""Training with a full MLflow record: split, estimator, automatic preprocessing, metrics, plots, registration.

The work is done in three steps so that nothing reaches MLflow before the inputs are known to be good:

1. ``prepare_training(frame, config)`` checks the data and the configuration and builds the (unfitted)
   model: columns, task type, target, row count for the split, the estimator import path and its parameters.
   Every bad input raises ``TrainingDataError`` or ``EstimatorSpecError`` here. It also computes what
   "unchanged" is judged on: the data fingerprint, the estimator spec and the training configuration.
2. ``fit_model(prepared)`` fits on the training share, computes holdout metrics, draws the plots and picks
   the reference sample, all in memory. A fit that fails still leaves no trace in MLflow.
3. ``log_and_register(client, fitted, ...)`` creates the MLflow run, logs params, metrics, artifacts and the
   model, registers it as a new version of ``model_name`` with the same tags as the run, and only then
   marks the run FINISHED. If this step dies half-way (a killed worker), the run stays RUNNING without a
   version; ``abandon_unfinished_runs`` marks such runs FAILED before the next try logs a fresh run.

``find_task_version`` (a retry finds the version its task already registered) and
``differences_from_champion`` (skip when data, spec and provider version equal the champion's) are the two
checks an operator makes before training.

Reproducibility: rows are put into a canonical order by content before splitting (see
``core.fingerprint``), the split is seeded with ``random_state``, and every ``random_state`` parameter the
estimator leaves unset gets the same seed. Same data (in any row order, at any path), same spec, same seed:
the same model and identical metrics.

This module imports pandas and numpy at import time; scikit-learn, MLflow and matplotlib are imported by the
functions that need them.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import inspect
import json
import logging
import math
import sys
import tempfile
import threading
import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_provider import __version__ as PROVIDER_VERSION
from mlops_provider.core import tags as tag_names
from mlops_provider.core.errors import ConfigurationError, EstimatorSpecError, TrainingDataError
from mlops_provider.core.fingerprint import canonical_json, data_fingerprint, tag_value

log = logging.getLogger(__name__)

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASK_TYPES = (CLASSIFICATION, REGRESSION)
DEFAULT_ESTIMATORS = {
    CLASSIFICATION: "sklearn.ensemble.HistGradientBoostingClassifier",
    REGRESSION: "sklearn.ensemble.HistGradientBoostingRegressor",
}
DEFAULT_TEST_SIZE = 0.2
DEFAULT_RANDOM_STATE = 42
DEFAULT_REFERENCE_SAMPLE_ROWS = 50_000
DEFAULT_PLOT_SAMPLE_ROWS = 5_000
# An integer target with at most this many distinct values is taken for class labels when neither the
# estimator nor problem_type says which task it is.
MAX_CLASSES_FOR_INTEGER_TARGET = 20
MAX_CONFUSION_MATRIX_CLASSES = 50
# Below these, a "model" would be noise and its metrics meaningless: an empty or nearly empty data window
# must fail loudly rather than register a version.
MIN_TRAIN_ROWS = 10
MIN_TEST_ROWS = 2  # R2 and ROC AUC need at least two holdout rows
SIGNATURE_SAMPLE_ROWS = 200
INPUT_EXAMPLE_ROWS = 5

MODEL_ARTIFACT_NAME = "model"
REFERENCE_SAMPLE_PATH = "reference/reference_sample.parquet"
HOLDOUT_PATH = "holdout/holdout.parquet"
MAX_HOLDOUT_ROWS = 1_000_000  # above this the stored holdout is a seeded sample (metrics use the full holdout)
CONFUSION_MATRIX_PATH = "plots/confusion_matrix.png"
RESIDUALS_PATH = "plots/residuals.png"
FEATURE_IMPORTANCES_PATH = "feature_importances.csv"
FEATURE_IMPORTANCES_PLOT_PATH = "plots/feature_importances.png"
SUMMARY_PATH = "training_summary.json"

TAG_DATASET_URI = "mlops.dataset_uri"
TAG_DATA_FINGERPRINT = "mlops.data_fingerprint"
TAG_ESTIMATOR_SPEC = "mlops.estimator_spec"
TAG_TRAINING_CONFIG = "mlops.training_config"
TAG_PROVIDER_VERSION = "mlops.provider_version"
TAG_REFERENCE_SAMPLE = tag_names.REFERENCE_SAMPLE
TAG_HOLDOUT = tag_names.HOLDOUT
TAG_TARGET_COLUMN = tag_names.TARGET_COLUMN
TAG_TASK_TYPE = tag_names.TASK_TYPE
TAG_ABANDONED = "mlops.abandoned"
# What must match the champion for training to be skipped, with the words the log uses for each.
UNCHANGED_KEYS = {
    TAG_DATA_FINGERPRINT: "data fingerprint",
    TAG_ESTIMATOR_SPEC: "estimator spec",
    TAG_TRAINING_CONFIG: "training configuration",
    TAG_PROVIDER_VERSION: "provider version",
}

# Modules whose classes a model may hold for its requirements to be known without MLflow's inference,
# which loads the model in a subprocess (~8 s) and lists every package that happens to be imported.
_KNOWN_MODEL_MODULES = {"sklearn", "numpy", "scipy", "builtins", "collections", "functools", "operator"}
_PINNED_DISTRIBUTIONS = ("numpy", "pandas", "scikit-learn", "scipy")
_MAX_PARAM_CHARS = 6000
_MAX_PARAMS = 500
# OpenMP threads per calling thread for the model's predictions after the fit (holdout scoring beside the
# main thread; the few-row predictions of the signature and of MLflow's input-example check on it). With
# three threads busy on the cores, OpenMP teams of two spend most of their time waiting for a descheduled
# member: predicting 5 rows with 63 trees took 0.25-0.3 s instead of 5 ms here.
_AFTER_FIT_OPENMP_THREADS = 1
# The interpreter's switch interval while the holdout is scored beside the main thread. A prediction releases
# the interpreter lock for each tree and takes it back after; while the main thread runs Python (logging the
# model), each take waits up to the switch interval (5 ms by default): scoring 40,000 rows with 63 trees took
# 0.8 s instead of 0.11 s beside a busy main thread, 0.18 s with 0.5 ms.
_SCORING_SWITCH_INTERVAL = 0.0005


@dataclass(frozen=True)
class TrainingConfig:
    """What to train: the columns, the estimator and the split. See ``docs/operators/training.md``."""

    target_column: str
    feature_columns: list[str] | None = None
    id_columns: list[str] = field(default_factory=list)
    timestamp_column: str | None = None
    estimator: str | None = None
    estimator_params: dict[str, Any] = field(default_factory=dict)
    problem_type: str | None = None  # requested task type; None: from the estimator, else the target
    test_size: float = DEFAULT_TEST_SIZE
    random_state: int = DEFAULT_RANDOM_STATE
    reference_sample_rows: int = DEFAULT_REFERENCE_SAMPLE_ROWS
    plot_sample_rows: int = DEFAULT_PLOT_SAMPLE_ROWS
    pip_requirements: list[str] | None = None

    def validate(self) -> None:
        if not isinstance(self.target_column, str) or not self.target_column.strip():
            raise ConfigurationError("target_column is empty; name the column the model should predict.")
        if self.problem_type not in (None, *TASK_TYPES):
            raise ConfigurationError(
                f"problem_type={self.problem_type!r} is not one of {TASK_TYPES}; leave it unset to infer it from "
                "the estimator and the target."
            )
        if isinstance(self.test_size, bool) or not isinstance(self.test_size, (int, float)) or not (
            0 < self.test_size < 1
        ):
            raise ConfigurationError(
                f"test_size={self.test_size!r} must be a fraction between 0 and 1 (e.g. 0.2 holds out 20%)."
            )
        if isinstance(self.random_state, bool) or not isinstance(self.random_state, int):
            raise ConfigurationError(f"random_state={self.random_state!r} must be an integer seed.")
        for name in ("reference_sample_rows", "plot_sample_rows"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name}={value!r} must be a positive number of rows.")
        if not isinstance(self.estimator_params, dict):
            raise ConfigurationError(
                f"estimator_params must be a dict of keyword arguments, not {type(self.estimator_params).__name__}."
            )
        if self.feature_columns is not None and not self.feature_columns:
            raise ConfigurationError("feature_columns is an empty list; name the features, or leave it unset.")


@dataclass(frozen=True)
class EstimatorSpec:
    """An estimator as configured: its import path, the parameters given to it and what the path names."""

    import_path: str
    params: dict[str, Any]
    kind: str  # "estimator" (preprocessing is added) or "pipeline_factory" (used as returned)

    def tag(self) -> str:
        return tag_value({"estimator": self.import_path, "params": self.params})


@dataclass
class PreparedTraining:
    """Validated inputs and the unfitted model; nothing has been logged yet."""

    config: TrainingConfig
    task_type: str
    features: list[str]
    numeric_columns: list[str]
    categorical_columns: list[str]
    x_train: pd.DataFrame
    x_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    split: dict[str, Any]
    data_fingerprint: str
    estimator: EstimatorSpec
    model: Any
    seeded_params: list[str]
    training_config: str
    rows: int

    def unchanged_tags(self) -> dict[str, str]:
        """The tag values a champion must carry for this training to be skipped."""
        return {
            TAG_DATA_FINGERPRINT: self.data_fingerprint,
            TAG_ESTIMATOR_SPEC: self.estimator.tag(),
            TAG_TRAINING_CONFIG: self.training_config,
            TAG_PROVIDER_VERSION: PROVIDER_VERSION,
        }


@dataclass
class FittedModel:
    """A fitted model with its holdout metrics and the files to log; still nothing in MLflow."""

    prepared: PreparedTraining
    model: Any
    evaluation: Future  # -> holdout metrics (the plots and the summary follow in the same job)
    notes: list[str]
    artifacts_dir: tempfile.TemporaryDirectory
    serialization_format: str
    skops_trusted_types: list[str] | None
    pip_requirements: list[str] | None
    input_example: pd.DataFrame
    signature: Any
    fit_seconds: float
    background: ThreadPoolExecutor
    pending: list[Future]

    @property
    def artifacts_path(self) -> Path:
        return Path(self.artifacts_dir.name)

    @property
    def metrics(self) -> dict[str, float]:
        """The holdout metrics (waits for the evaluation running beside the main thread)."""
        return self.evaluation.result()

    def wait_for_artifacts(self) -> Path:
        """The artifacts folder once the background work (reference sample, plots, summary) is done; raises
        what that work raised."""
        _finish_background(self.background, self.pending, raise_errors=True)
        return self.artifacts_path

    def close(self) -> None:
        """Stop the background work and delete the artifacts folder (safe to call more than once)."""
        _finish_background(self.background, self.pending, raise_errors=False)
        self.artifacts_dir.cleanup()


@dataclass(frozen=True)
class TrainingResult:
    """What a training task returns (XCom): small, JSON-serialisable."""

    model_name: str
    version: str
    run_id: str
    model_uri: str
    metrics: dict[str, float]
    data_fingerprint: str
    skipped: bool
    experiment_id: str
    outcome: str  # "trained", "reused" (registered by an earlier try of the same task), "skipped"
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- step 1: check the inputs and build the unfitted model ---------------------------------------


def prepare_training(frame: pd.DataFrame, config: TrainingConfig) -> PreparedTraining:
    """Check ``frame`` against ``config`` and build everything training needs; raises on bad input."""
    config.validate()
    target = config.target_column
    columns = [str(c) for c in frame.columns]
    if target not in columns:
        raise TrainingDataError(
            f"The target column {target!r} is not in the data (columns: {_listing(columns)}); "
            "set target_column to one of them."
        )
    for name, wanted in (("id_columns", config.id_columns), ("timestamp_column", [config.timestamp_column])):
        missing = [c for c in wanted if c and c not in columns]
        if missing:
            raise TrainingDataError(
                f"{name} names {_listing(missing)}, which the data does not have (columns: {_listing(columns)})."
            )
    features = _feature_columns(frame, config)
    numeric, categorical = _split_feature_types(frame, features)

    y = frame[target]
    nulls = int(y.isna().sum())
    if nulls:
        raise TrainingDataError(
            f"The target column {target!r} has {nulls} missing value(s) in {len(frame)} rows; a model cannot "
            "learn from unlabelled rows. Drop or fill them upstream (e.g. in the task that builds the dataset)."
        )

    estimator_path = config.estimator or None
    model_object, spec = (None, None)
    if estimator_path:
        model_object, spec = build_estimator(estimator_path, config.estimator_params)
    task_type = resolve_task_type(config.problem_type, model_object, y, target)
    if model_object is None:
        model_object, spec = build_estimator(DEFAULT_ESTIMATORS[task_type], config.estimator_params)
    _check_target(y, task_type, target)
    seeded = seed_estimator(model_object, config.random_state)
    validate_estimator_params(model_object, spec)

    used = list(dict.fromkeys(features + [target] + ([config.timestamp_column] if config.timestamp_column else [])))
    fingerprint = data_fingerprint(frame, used)
    # The split is decided on the rows in canonical (content) order; only the columns it needs are reordered,
    # and the feature rows are taken once per side.
    order = fingerprint.order
    split_columns = [target] + ([config.timestamp_column] if config.timestamp_column else [])
    ordered = frame[split_columns].iloc[order].reset_index(drop=True)
    train_index, test_index, split = _split_rows(ordered, config, task_type)
    train_rows, test_rows = order[train_index], order[test_index]
    features_frame = _normalise_missing(frame[features], categorical)
    if spec.kind == "estimator":
        model = _auto_pipeline(model_object, numeric, categorical)
    else:
        model = model_object
    training_config = tag_value(
        {
            "task_type": task_type,
            "target_column": target,
            "feature_columns": features,
            "timestamp_column": config.timestamp_column,
            "test_size": config.test_size,
            "random_state": config.random_state,
            "preprocessing": "auto" if spec.kind == "estimator" else "pipeline_factory",
            "code": _code_versions(spec),
        }
    )
    return PreparedTraining(
        config=config,
        task_type=task_type,
        features=features,
        numeric_columns=numeric,
        categorical_columns=categorical,
        x_train=features_frame.iloc[train_rows],
        x_test=features_frame.iloc[test_rows],
        y_train=frame[target].iloc[train_rows],
        y_test=frame[target].iloc[test_rows],
        split=split,
        data_fingerprint=fingerprint.value,
        estimator=spec,
        model=model,
        seeded_params=seeded,
        training_config=training_config,
        rows=len(frame),
    )


def _feature_columns(frame: pd.DataFrame, config: TrainingConfig) -> list[str]:
    target = config.target_column
    columns = [str(c) for c in frame.columns]
    if config.feature_columns is not None:
        features = [str(c) for c in config.feature_columns]
        missing = [c for c in features if c not in columns]
        if missing:
            raise TrainingDataError(
                f"feature_columns names {_listing(missing)}, which the data does not have "
                f"(columns: {_listing(columns)})."
            )
        if target in features:
            raise TrainingDataError(
                f"The target column {target!r} is also listed in feature_columns; remove it from the features."
            )
        duplicates = sorted({c for c in features if features.count(c) > 1})
        if duplicates:
            raise TrainingDataError(f"feature_columns lists {_listing(duplicates)} more than once.")
        dated = [c for c in features if _is_datetime(frame[c])]
        if dated:
            raise TrainingDataError(
                f"The feature column(s) {_listing(dated)} hold dates/times, which the model cannot use as they "
                "are; derive numeric features from them (e.g. age in days) or leave them out."
            )
        return features
    excluded = {target, *config.id_columns, *([config.timestamp_column] if config.timestamp_column else [])}
    features = [c for c in columns if c not in excluded and not _is_datetime(frame[c])]
    if not features:
        raise TrainingDataError(
            f"No feature columns are left after excluding the target, id and timestamp columns "
            f"(columns: {_listing(columns)}); set feature_columns."
        )
    return features


def _split_feature_types(frame: pd.DataFrame, features: list[str]) -> tuple[list[str], list[str]]:
    numeric = [
        c
        for c in features
        if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    ]
    categorical = [c for c in features if c not in numeric]
    return numeric, categorical


def _is_datetime(series: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series)


def _normalise_missing(x: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    """Missing categorical values as NaN (parquet gives ``None``), which the imputer recognises."""
    replaced = {}
    for column in categorical:
        values = x[column]
        if isinstance(values.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(values):
            continue
        missing = values.isna()
        if missing.any():
            replaced[column] = values.astype(object).mask(missing, np.nan)
    return x.assign(**replaced) if replaced else x


def resolve_task_type(task_type: str | None, estimator: Any, y: pd.Series, target: str) -> str:
    """The task given, else the estimator's kind, else what the target looks like."""
    from sklearn.base import is_classifier, is_regressor

    kind = None
    if estimator is not None:
        kind = CLASSIFICATION if is_classifier(estimator) else REGRESSION if is_regressor(estimator) else None
    if task_type:
        if kind and kind != task_type:
            raise EstimatorSpecError(
                f"problem_type={task_type!r} but the estimator {type(estimator).__name__} is a "
                f"{'classifier' if kind == CLASSIFICATION else 'regressor'}; choose a "
                f"{'regressor' if task_type == REGRESSION else 'classifier'} or change problem_type."
            )
        return task_type
    if kind:
        return kind
    if estimator is not None:
        raise EstimatorSpecError(
            f"{type(estimator).__name__} is neither a classifier nor a regressor (scikit-learn's estimator "
            "type); give problem_type explicitly, or use a classifier or regressor."
        )
    return infer_task_type(y)


def infer_task_type(y: pd.Series) -> str:
    """Classification for text, category, bool and integer targets with few distinct values."""
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return CLASSIFICATION
    if pd.api.types.is_integer_dtype(y) and y.nunique() <= MAX_CLASSES_FOR_INTEGER_TARGET:
        return CLASSIFICATION
    return REGRESSION


def _check_target(y: pd.Series, task_type: str, target: str) -> None:
    if task_type == REGRESSION:
        if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
            example = _plain(y.dropna().iloc[0]) if len(y.dropna()) else None
            raise TrainingDataError(
                f"The target column {target!r} holds {y.dtype} values (e.g. {example!r}), but regression needs a "
                "numeric target. Use a classifier (or problem_type='classification'), or convert the target to "
                "numbers upstream."
            )
        return
    classes = y.value_counts()
    if len(classes) < 2:
        raise TrainingDataError(
            f"The target column {target!r} has a single class ({_plain(classes.index[0])!r}) in all {len(y)} rows; "
            "a classifier needs at least two classes. Check the data window (it may hold only one outcome) "
            "or the target column."
        )
    if pd.api.types.is_float_dtype(y) and not np.all(np.mod(y.to_numpy(dtype=float), 1) == 0):
        raise TrainingDataError(
            f"The target column {target!r} holds continuous numbers, but the task is classification; use a "
            "regressor (or problem_type='regression')."
        )


def _split_rows(frame: pd.DataFrame, config: TrainingConfig, task_type: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """Train and test row positions: the most recent share by time, else a seeded (stratified) random split."""
    rows = len(frame)
    target = frame[config.target_column]
    test_rows = math.ceil(rows * config.test_size)
    train_rows = rows - test_rows
    classes = target.value_counts() if task_type == CLASSIFICATION else None
    stratified = classes is not None and not config.timestamp_column
    need_test = max(MIN_TEST_ROWS, len(classes) if stratified else 0)
    need_train = max(MIN_TRAIN_ROWS, len(classes) if classes is not None else 0)
    if test_rows < need_test or train_rows < need_train:
        raise TrainingDataError(
            f"The data has {rows} rows: with test_size={config.test_size} that leaves {train_rows} to train on "
            f"and {test_rows} to evaluate on, but this split needs at least {need_train} and {need_test}. "
            "Provide more rows (a longer data window) or adjust test_size."
        )
    if config.timestamp_column:
        stamps = _timestamps(frame[config.timestamp_column], config.timestamp_column)
        order = np.argsort(stamps.to_numpy(), kind="stable")  # ties keep the canonical (content) order
        train_index, test_index = order[:train_rows], order[train_rows:]
        if classes is not None and target.iloc[train_index].nunique() < 2:
            raise TrainingDataError(
                f"The oldest {train_rows} rows (by {config.timestamp_column!r}) hold a single class of "
                f"{config.target_column!r}; a time split cannot train a classifier on them. Use a longer window "
                "or leave timestamp_column unset for a stratified random split."
            )
        return (
            np.sort(train_index),
            np.sort(test_index),
            {
                "method": "time",
                "timestamp_column": config.timestamp_column,
                "train_until": str(stamps.iloc[train_index].max()),
                "test_from": str(stamps.iloc[test_index].min()),
                "train_rows": int(train_rows),
                "test_rows": int(test_rows),
            },
        )
    if stratified:
        rare = classes[classes < 2]
        if len(rare):
            raise TrainingDataError(
                f"The class(es) {_listing([str(c) for c in rare.index])} of {config.target_column!r} occur in a "
                "single row; a stratified split needs at least two rows per class. Provide more data or drop "
                "those rows."
            )
    if stratified:
        train_index, test_index = stratified_split(target.to_numpy(), test_rows, config.random_state)
    else:
        from sklearn.model_selection import train_test_split

        train_index, test_index = train_test_split(
            np.arange(rows), test_size=test_rows, random_state=config.random_state
        )
    return (
        train_index,
        test_index,
        {
            "method": "stratified" if stratified else "random",
            "random_state": config.random_state,
            "train_rows": int(train_rows),
            "test_rows": int(test_rows),
        },
    )


def stratified_split(y: np.ndarray, test_rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test positions of a seeded split that keeps the class shares of ``y``: the same rows in the
    same order as ``train_test_split(np.arange(len(y)), test_size=test_rows, random_state=seed, stratify=y)``
    (scikit-learn's ``StratifiedShuffleSplit``) at a fraction of the cost (5-15 ms instead of 40-70 ms for
    200,000 rows): the classes are found by hashing rather than sorting, and the rows are gathered in arrays
    rather than per-row Python lists. Every class needs at least two rows (checked by the caller)."""
    try:
        from sklearn.utils.extmath import _approximate_mode  # how scikit-learn shares the rows out per class
    except ImportError:  # moved in another scikit-learn: use the public function
        from sklearn.model_selection import train_test_split

        train, test = train_test_split(np.arange(len(y)), test_size=test_rows, random_state=seed, stratify=y)
        return train, test
    # np.unique(y, return_inverse=True, return_counts=True) as scikit-learn calls it, by hashing: numpy's
    # argsort behind it took 28 ms on this 0/1 churn target (and 96 ms on 200,000 strings) against 2-5 ms.
    y_indices, classes = pd.factorize(y, sort=True)
    class_counts = np.bincount(y_indices, minlength=len(classes))
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
    rng = np.random.RandomState(seed)
    train_counts = _approximate_mode(class_counts, len(y) - test_rows, rng)
    test_counts = _approximate_mode(class_counts - train_counts, test_rows, rng)
    train_parts, test_parts = [], []
    for i in range(len(classes)):
        shuffled = class_indices[i].take(rng.permutation(class_counts[i]), mode="clip")
        train_parts.append(shuffled[: train_counts[i]])
        test_parts.append(shuffled[train_counts[i] : train_counts[i] + test_counts[i]])
    return rng.permutation(np.concatenate(train_parts)), rng.permutation(np.concatenate(test_parts))


def _timestamps(values: pd.Series, name: str) -> pd.Series:
    try:
        stamps = values if pd.api.types.is_datetime64_any_dtype(values) else pd.to_datetime(values, utc=True)
    except (ValueError, TypeError) as error:
        raise TrainingDataError(
            f"The timestamp column {name!r} cannot be read as dates/times ({error}); fix the column or leave "
            "timestamp_column unset for a random split."
        ) from None
    missing = int(stamps.isna().sum())
    if missing:
        raise TrainingDataError(
            f"The timestamp column {name!r} has {missing} missing value(s); a time split needs every row dated."
        )
    return stamps


# -- the estimator ----------------------------------------------------------------------------------


def resolve_import_path(path: str) -> Any:
    """The object at ``package.module.Name`` (or ``package.module:name``)."""
    if not isinstance(path, str) or not path.strip():
        raise EstimatorSpecError("estimator is empty; give an import path such as 'sklearn.linear_model.Ridge'.")
    path = path.strip()
    module_name, _, attribute = path.partition(":") if ":" in path else path.rpartition(".")
    if not module_name or not attribute:
        raise EstimatorSpecError(
            f"estimator={path!r} is not an import path; use 'package.module.ClassName', e.g. "
            "'sklearn.ensemble.HistGradientBoostingClassifier'."
        )
    try:
        target = importlib.import_module(module_name)
    except ImportError as error:
        raise EstimatorSpecError(
            f"estimator={path!r}: the module {module_name!r} cannot be imported ({error}). Check the spelling "
            "and that its package is installed where the task runs."
        ) from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise EstimatorSpecError(
                f"estimator={path!r}: {module_name!r} has no attribute {attribute!r}. Check the class name "
                "(it is case-sensitive)."
            ) from None
    return target


def build_estimator(path: str, params: dict[str, Any]) -> tuple[Any, EstimatorSpec]:
    """Instantiate the estimator class, or call the pipeline factory, with ``params``."""
    target = resolve_import_path(path)
    params = dict(params or {})
    if inspect.isclass(target):
        if not (hasattr(target, "fit") and hasattr(target, "get_params")):
            raise EstimatorSpecError(
                f"estimator={path!r} is a class but not a scikit-learn estimator (it has no fit/get_params)."
            )
        accepted = _accepted_keywords(target)
        unknown = sorted(set(params) - accepted) if accepted is not None else []
        if unknown:
            raise EstimatorSpecError(
                f"estimator_params {_listing(unknown)} are not parameters of {path}; it accepts "
                f"{_listing(sorted(accepted))}."
            )
        try:
            estimator = target(**params)
        except Exception as error:
            raise EstimatorSpecError(f"{path} rejected estimator_params {params}: {error}") from None
        return estimator, EstimatorSpec(path, params, "estimator")
    if not callable(target):
        raise EstimatorSpecError(
            f"estimator={path!r} is neither an estimator class nor a function returning a pipeline."
        )
    try:
        estimator = target(**params)
    except TypeError as error:
        raise EstimatorSpecError(
            f"The pipeline factory {path} rejected estimator_params {params}: {error}. estimator_params are "
            "passed to it as keyword arguments."
        ) from None
    if not (hasattr(estimator, "fit") and hasattr(estimator, "predict") and hasattr(estimator, "get_params")):
        raise EstimatorSpecError(
            f"The pipeline factory {path} returned {type(estimator).__name__}, not a scikit-learn estimator or "
            "Pipeline (fit, predict, get_params)."
        )
    return estimator, EstimatorSpec(path, params, "pipeline_factory")


def _accepted_keywords(cls: type) -> set[str] | None:
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _nested_estimators(estimator: Any) -> list[Any]:
    found = [estimator]
    for value in estimator.get_params(deep=True).values():
        if hasattr(value, "get_params") and hasattr(value, "fit") and not inspect.isclass(value):
            found.append(value)
    return found


def seed_estimator(estimator: Any, seed: int) -> list[str]:
    """Give every ``random_state`` the estimator leaves unset the training seed; returns the names set."""
    params = estimator.get_params(deep=True)
    unset = {
        name: seed
        for name, value in params.items()
        if (name == "random_state" or name.endswith("__random_state")) and value is None
    }
    if unset:
        estimator.set_params(**unset)
    return sorted(unset)


def validate_estimator_params(estimator: Any, spec: EstimatorSpec) -> None:
    """Check parameter values now (scikit-learn otherwise checks them only inside ``fit``)."""
    for part in _nested_estimators(estimator):
        validate = getattr(part, "_validate_params", None)
        if validate is None:
            continue
        try:
            validate()
        except Exception as error:  # sklearn's InvalidParameterError is a ValueError and a TypeError
            raise EstimatorSpecError(
                f"{spec.import_path} rejected estimator_params {spec.params}: {error}"
            ) from None


def _auto_pipeline(estimator: Any, numeric: list[str], categorical: list[str]) -> Any:
    """Impute + scale numerics, impute + one-hot categoricals (unknown categories ignored), then the model."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.utils import get_tags

    accepts_sparse = bool(getattr(get_tags(estimator).input_tags, "sparse", False))
    transformers = []
    if numeric:
        transformers.append(
            (
                "numeric",
                Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                numeric,
            )
        )
    if categorical:
        transformers.append(
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("one_hot", OneHotEncoder(handle_unknown="ignore", sparse_output=accepts_sparse)),
                    ]
                ),
                categorical,
            )
        )
    preprocess = ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.3 if accepts_sparse else 0)
    return Pipeline([("preprocess", preprocess), ("model", estimator)])


def _code_versions(spec: EstimatorSpec) -> dict[str, str]:
    """Library versions that shape the model, and for a pipeline factory a hash of its module's source."""
    versions = {"scikit-learn": _distribution_version("scikit-learn")}
    root = spec.import_path.replace(":", ".").split(".")[0]
    if root not in ("sklearn",):
        try:
            versions[root] = _distribution_version(root)
        except importlib.metadata.PackageNotFoundError:
            pass
    if spec.kind == "pipeline_factory":
        module = inspect.getmodule(resolve_import_path(spec.import_path))
        try:
            versions["factory_source_sha256"] = hashlib.sha256(inspect.getsource(module).encode()).hexdigest()
        except (OSError, TypeError):
            versions["factory_source_sha256"] = "unavailable"
    return versions


# -- step 2: fit, evaluate, draw ----------------------------------------------------------------------


def fit_model(prepared: PreparedTraining) -> FittedModel:
    """Fit on the training share, evaluate on the holdout and build every artifact in a temporary folder;
    logs nothing. Call ``close()`` on the result when done with it (``log_and_register`` does).

    Work that does not need the main thread runs beside it, so that tracking costs little wall time on large
    data. The reference sample and the holdout are written while the model fits (the fit leaves a core idle
    part of the time: measured, the fit is no slower). After the fit, the main thread passes the holdout
    through the pipeline's preprocessing (see ``_final_step_and_input``), then a background thread scores it
    with the last step, computes the metrics and draws the plots while the main thread scans the model for
    serialisation and ``log_and_register`` logs it. OpenMP code after the fit runs on one thread per caller
    (see ``_AFTER_FIT_OPENMP_THREADS``).
    """
    model = prepared.model
    artifacts = tempfile.TemporaryDirectory(prefix="mlops-training-")
    root = Path(artifacts.name)
    (root / "plots").mkdir()
    (root / "reference").mkdir()
    (root / "holdout").mkdir()
    background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mlops-training")
    pending: list[Future] = []
    notes: list[str] = []
    try:
        pending.append(background.submit(_write_reference_sample_and_holdout, prepared, root))
        started = time.perf_counter()
        try:
            model.fit(prepared.x_train, prepared.y_train)
        except Exception as error:
            raise EstimatorSpecError(
                f"Fitting {prepared.estimator.import_path} on {len(prepared.x_train)} rows failed: "
                f"{type(error).__name__}: {error}. Check estimator_params and the feature columns."
            ) from error
        fit_seconds = time.perf_counter() - started

        if _AFTER_FIT_OPENMP_THREADS is not None:
            _threadpool_controller()  # once per process, before two threads want it
        evaluation: Future = Future()  # resolved with the metrics as soon as they exist, before the plots
        scorer, x_scored = _final_step_and_input(model, prepared.x_test)
        pending.append(
            background.submit(_evaluate_and_draw, model, scorer, x_scored, prepared, notes, root, evaluation)
        )
        with _openmp_threads(_AFTER_FIT_OPENMP_THREADS):
            serialization_format, trusted, requirements = _serialization_plan(model, prepared.config.pip_requirements)
            example, signature = _example_and_signature(model, prepared)
    except BaseException:
        _finish_background(background, pending, raise_errors=False)
        artifacts.cleanup()
        raise
    return FittedModel(
        prepared=prepared,
        model=model,
        evaluation=evaluation,
        notes=notes,
        artifacts_dir=artifacts,
        serialization_format=serialization_format,
        skops_trusted_types=trusted,
        pip_requirements=requirements,
        input_example=example,
        signature=signature,
        fit_seconds=fit_seconds,
        background=background,
        pending=pending,
    )


def _finish_background(background: ThreadPoolExecutor, pending: list[Future], *, raise_errors: bool) -> None:
    try:
        for future in pending:
            if raise_errors:
                future.result()
            else:
                wait([future])
    finally:
        background.shutdown(wait=True)


def _write_reference_sample_and_holdout(prepared: PreparedTraining, root: Path) -> None:
    """The reference sample (training features, bounded) for drift checks, and the holdout (features and
    target, bounded) a promotion gate scores the challenger and the champion on."""
    seed = prepared.config.random_state
    reference = prepared.x_train
    if len(reference) > prepared.config.reference_sample_rows:
        reference = reference.sample(prepared.config.reference_sample_rows, random_state=seed)
    reference.to_parquet(root / REFERENCE_SAMPLE_PATH, index=False)
    holdout = prepared.x_test.assign(**{prepared.config.target_column: prepared.y_test})
    if len(holdout) > MAX_HOLDOUT_ROWS:
        holdout = holdout.sample(MAX_HOLDOUT_ROWS, random_state=seed)
    holdout.to_parquet(root / HOLDOUT_PATH, index=False)


def _final_step_and_input(model: Any, x: pd.DataFrame) -> tuple[Any, Any]:
    """A pipeline's last step and ``x`` passed through the steps before it (what ``Pipeline.predict_proba``
    does), else the model and ``x``.

    ``fit_model`` transforms the holdout on the main thread and leaves only the last step's prediction to the
    background thread: preprocessing is Python and numpy work that holds the interpreter lock, so beside the
    main thread's logging (which holds it too) it would gain nothing and slow both down, whereas tree and
    linear-model predictions run without the lock. A holdout that the preprocessing cannot transform fails
    here, before anything is logged."""
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline) and len(model.steps) > 1:
        return model[-1], model[:-1].transform(x)
    return model, x


def _evaluate_and_draw(
    model: Any, scorer: Any, x_scored: Any, prepared: PreparedTraining, notes: list[str], root: Path,
    evaluation: Future,
) -> None:
    """Holdout metrics (handed over through ``evaluation`` at once), then the confusion matrix or residual
    plot, feature importances and the summary. ``scorer`` predicts ``x_scored``: the model and the holdout
    features, or the model's last step and the features as the steps before it transformed them."""
    try:
        with _openmp_threads(_AFTER_FIT_OPENMP_THREADS), _switch_interval_at_most(_SCORING_SWITCH_INTERVAL):
            if prepared.task_type == CLASSIFICATION:
                metrics, predictions = _classification_metrics(scorer, x_scored, prepared.y_test, notes)
            else:
                metrics, predictions = _regression_metrics(scorer, x_scored, prepared.y_test)
    except BaseException as error:
        evaluation.set_exception(error)
        raise
    evaluation.set_result(metrics)
    if prepared.task_type == CLASSIFICATION:
        _plot_confusion_matrix(prepared.y_test, predictions, list(model.classes_), root, notes)
    else:
        _plot_residuals(prepared, predictions, root)
    _feature_importances(model, prepared, root, notes)
    summary = {
        "task_type": prepared.task_type,
        "rows": prepared.rows,
        "split": prepared.split,
        "features": {"numeric": prepared.numeric_columns, "categorical": prepared.categorical_columns},
        "target": prepared.config.target_column,
        "data_fingerprint": prepared.data_fingerprint,
        "metrics": metrics,
        "reference_sample_rows": min(len(prepared.x_train), prepared.config.reference_sample_rows),
        "notes": notes,
    }
    if prepared.task_type == CLASSIFICATION:
        summary["class_counts"] = {str(k): int(v) for k, v in prepared.y_train.value_counts().items()}
    (root / SUMMARY_PATH).write_text(json.dumps(summary, indent=2, default=str))


@contextmanager
def _openmp_threads(limit: int | None):
    """Limit the OpenMP threads of the calling thread only (OpenMP keeps the setting per thread)."""
    if limit is None:
        yield
        return
    with _threadpool_controller().limit(limits=limit, user_api="openmp"):
        yield


_switch_interval_lock = threading.Lock()
_switch_interval_users = 0
_switch_interval_saved = 0.005


@contextmanager
def _switch_interval_at_most(interval: float | None):
    """Lower the interpreter's switch interval (process-wide) to ``interval`` while the block runs; the
    interval in force before the first of overlapping blocks comes back when the last one ends."""
    global _switch_interval_users, _switch_interval_saved
    if interval is None:
        yield
        return
    with _switch_interval_lock:
        if _switch_interval_users == 0:
            _switch_interval_saved = sys.getswitchinterval()
            sys.setswitchinterval(min(interval, _switch_interval_saved))
        _switch_interval_users += 1
    try:
        yield
    finally:
        with _switch_interval_lock:
            _switch_interval_users -= 1
            if _switch_interval_users == 0:
                sys.setswitchinterval(_switch_interval_saved)


@functools.lru_cache(maxsize=1)
def _threadpool_controller() -> Any:
    """threadpoolctl's view of the loaded thread pools; built once per process (it scans every loaded
    library, ~10-25 ms), when the estimator's OpenMP runtime is loaded."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _classification_metrics(
    model: Any, x: Any, y: pd.Series, notes: list[str]
) -> tuple[dict[str, float], np.ndarray]:
    from sklearn.metrics import log_loss, roc_auc_score

    y_true = y.to_numpy()
    if not hasattr(model, "predict_proba"):
        predictions = model.predict(x)
        notes.append("roc_auc and log_loss not computed: the model has no predict_proba.")
        return _label_metrics(y_true, predictions), predictions
    probabilities = model.predict_proba(x)
    classes = list(model.classes_)
    predictions = _predictions_from_probabilities(model, x, probabilities)
    metrics = _label_metrics(y_true, predictions)
    present = set(pd.unique(y_true))
    if present <= set(classes):
        metrics["log_loss"] = float(log_loss(y_true, probabilities, labels=classes))
    else:
        notes.append("log_loss not computed: the holdout holds classes the training share does not.")
    try:
        if len(classes) == 2 and len(present) == 2:
            metrics["roc_auc"] = float(roc_auc_score(y_true == classes[1], probabilities[:, 1]))
        elif len(classes) > 2 and present == set(classes):
            metrics["roc_auc"] = float(roc_auc_score(y_true, probabilities, multi_class="ovr", labels=classes))
        else:
            notes.append("roc_auc not computed: the holdout does not contain every class.")
    except ValueError as error:
        notes.append(f"roc_auc not computed: {error}")
    return metrics, predictions


def _label_metrics(y_true: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": float(accuracy_score(y_true, predictions)),
        "f1_macro": float(f1_score(y_true, predictions, average="macro")),
    }


def _predictions_from_probabilities(model: Any, x: Any, probabilities: np.ndarray) -> np.ndarray:
    """The most probable class per row, which is what ``predict`` returns for most classifiers; a slice is
    checked against ``predict`` and the full ``predict`` runs where the two disagree (e.g. SVC)."""
    derived = np.asarray(model.classes_)[np.argmax(probabilities, axis=1)]
    check = slice(0, min(x.shape[0], 512))
    if np.array_equal(np.asarray(model.predict(x[check])), derived[check]):  # rows of a frame or an array
        return derived
    return np.asarray(model.predict(x))


def _regression_metrics(model: Any, x: Any, y: pd.Series) -> tuple[dict[str, float], np.ndarray]:
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

    y_true = y.to_numpy(dtype=float)
    predictions = np.asarray(model.predict(x), dtype=float)
    return (
        {
            "rmse": float(root_mean_squared_error(y_true, predictions)),
            "mae": float(mean_absolute_error(y_true, predictions)),
            "r2": float(r2_score(y_true, predictions)),
        },
        predictions,
    )


def _figure(width: float = 6.0, height: float = 4.5) -> Any:
    """A figure on the Agg canvas, without pyplot: no global backend switch, safe in any worker thread."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=80)
    FigureCanvasAgg(figure)
    return figure


# Width of one character of a tick label (10 pt text), in inches; for margins sized from the labels.
_CHAR_INCHES = 0.085
_MAX_LABEL_CHARS = 40


def _set_margins(figure: Any, *, left_chars: int, bottom_chars: int = 0, y_label: bool = True) -> None:
    """Fixed margins that leave room for the axis labels and for tick labels of the given lengths (in
    characters; ``bottom_chars`` for rotated x tick labels). Sized up front instead of ``tight_layout``,
    which draws the whole figure once more to measure the text."""
    width, height = figure.get_size_inches()
    left = min(0.45 * width, (0.55 if y_label else 0.25) + _CHAR_INCHES * left_chars)
    bottom = min(0.45 * height, 0.6 + 0.7 * _CHAR_INCHES * bottom_chars)
    figure.subplots_adjust(left=left / width, right=1 - 0.25 / width, bottom=bottom / height, top=1 - 0.4 / height)


def _label(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _MAX_LABEL_CHARS else text[: _MAX_LABEL_CHARS - 1] + "\u2026"


def confusion_counts(y_true: Any, predictions: Any, classes: list) -> np.ndarray:
    """``sklearn.metrics.confusion_matrix(y_true, predictions, labels=classes)`` (rows: actual, columns:
    predicted; rows whose label is not in ``classes`` left out) by hashing and counting, without that
    function's input checks, which take most of its time."""
    index = pd.Index(classes)
    actual, predicted = index.get_indexer(np.asarray(y_true)), index.get_indexer(np.asarray(predictions))
    known = (actual >= 0) & (predicted >= 0)
    n = len(classes)
    return np.bincount(actual[known] * n + predicted[known], minlength=n * n).reshape(n, n)


def _plot_confusion_matrix(y_true: pd.Series, predictions: np.ndarray, classes: list, root: Path, notes: list) -> None:
    if len(classes) > MAX_CONFUSION_MATRIX_CLASSES:
        notes.append(f"confusion matrix not drawn: {len(classes)} classes (more than {MAX_CONFUSION_MATRIX_CLASSES}).")
        return
    matrix = confusion_counts(y_true, predictions, classes)
    size = max(4.5, 0.45 * len(classes) + 2)
    figure = _figure(size + 1, size)
    axes = figure.add_subplot()
    axes.imshow(matrix, cmap="Blues")
    labels = [_label(c) for c in classes]
    rotated = len(classes) > 5
    axes.set_xticks(range(len(classes)), labels, rotation=45 if rotated else 0, ha="right" if rotated else "center")
    axes.set_yticks(range(len(classes)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual")
    axes.set_title(f"Confusion matrix (holdout, {int(matrix.sum())} rows)")
    longest = max(len(label) for label in labels)
    _set_margins(figure, left_chars=longest, bottom_chars=longest if rotated else 0)
    if len(classes) <= 20:
        threshold = matrix.max() / 2 if matrix.size else 0
        for (row, column), count in np.ndenumerate(matrix):
            axes.text(column, row, str(count), ha="center", va="center",
                      color="white" if count > threshold else "black")
    figure.savefig(root / CONFUSION_MATRIX_PATH, format="png")


def _plot_residuals(prepared: PreparedTraining, predictions: np.ndarray, root: Path) -> None:
    y_true = prepared.y_test.to_numpy(dtype=float)
    shown = np.arange(len(y_true))
    limit = prepared.config.plot_sample_rows
    if len(shown) > limit:  # bounded: drawing cost must not grow with the data
        shown = np.sort(np.random.default_rng(prepared.config.random_state).choice(shown, limit, replace=False))
    residuals = y_true[shown] - predictions[shown]
    figure = _figure(7, 4.5)
    axes = figure.subplots()
    axes.scatter(predictions[shown], residuals, s=6, alpha=0.4)
    axes.axhline(0, color="black", linewidth=1)
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual - predicted")
    sampled = f"{len(shown)} of {len(y_true)}" if len(shown) < len(y_true) else str(len(y_true))
    axes.set_title(f"Residuals on the holdout ({sampled} rows)")
    _set_margins(figure, left_chars=max(len(f"{value:g}") for value in axes.get_yticks()))
    figure.savefig(root / RESIDUALS_PATH, format="png")


def _feature_importances(model: Any, prepared: PreparedTraining, root: Path, notes: list) -> None:
    final = model[-1] if hasattr(model, "steps") else model
    if hasattr(final, "feature_importances_"):
        values, source = np.asarray(final.feature_importances_, dtype=float), "feature_importances_"
    elif hasattr(final, "coef_"):
        coefficients = np.abs(np.asarray(final.coef_, dtype=float))
        values, source = (coefficients.mean(axis=0) if coefficients.ndim > 1 else coefficients), "|coef_|"
    else:
        notes.append(f"no feature importances: {type(final).__name__} has neither feature_importances_ nor coef_.")
        return
    names = None
    if hasattr(model, "steps") and len(model.steps) > 1:
        try:
            names = [str(n) for n in model[:-1].get_feature_names_out()]
        except Exception:  # a custom step without get_feature_names_out
            names = None
    if names is None or len(names) != len(values):
        names = prepared.features if len(prepared.features) == len(values) else [f"x{i}" for i in range(len(values))]
    table = pd.DataFrame({"feature": names, "importance": values}).sort_values("importance", ascending=False)
    table["source"] = source
    table.to_csv(root / FEATURE_IMPORTANCES_PATH, index=False)
    top = table.head(20).iloc[::-1]
    labels = [_label(name) for name in top["feature"]]
    figure = _figure(7, max(3.0, 0.3 * len(top) + 1.2))
    axes = figure.subplots()
    axes.barh(range(len(top)), top["importance"])
    axes.set_yticks(range(len(top)), labels)
    axes.set_xlabel(source)
    axes.set_title("Feature importances" + (" (top 20)" if len(table) > 20 else ""))
    _set_margins(figure, left_chars=max(len(label) for label in labels), y_label=False)
    figure.savefig(root / FEATURE_IMPORTANCES_PLOT_PATH, format="png")


def _serialization_plan(model: Any, pip_requirements: list[str] | None) -> tuple[str, list[str] | None, list[str] | None]:
    """skops (MLflow's safe default) with the model's own types trusted, and the pip requirements when the
    model holds only scikit-learn/numpy/scipy objects (else MLflow infers them). A model skops cannot store
    (custom functions, lambdas) is stored with cloudpickle."""
    try:
        with _quiet_skops():
            import skops.io  # its import probes every loaded module too

            trusted = sorted(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
    except Exception as error:
        log.warning("skops cannot serialise this model (%s); storing it with cloudpickle.", error)
        return "cloudpickle", None, pip_requirements
    if pip_requirements is not None:
        return "skops", trusted, list(pip_requirements)
    modules = {name.split(".")[0] for name in trusted}
    if modules <= _KNOWN_MODEL_MODULES:
        pinned = [f"{name}=={_distribution_version(name)}" for name in (*_PINNED_DISTRIBUTIONS, "skops")]
        return "skops", trusted, pinned
    return "skops", trusted, None


@functools.lru_cache(maxsize=64)
def _distribution_version(name: str) -> str:
    """An installed distribution's version, looked up once per process (the lookup scans site-packages)."""
    return importlib.metadata.version(name)


@contextmanager
def _quiet_skops():
    """skops looks up objects without ``__module__`` (scipy ufuncs, at import and when saving) by probing every
    loaded module, which makes modules with deprecated attributes (Airflow has many) emit hundreds of
    deprecation warnings into the task log."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"skops\.io\._utils")
        yield


def _example_and_signature(model: Any, prepared: PreparedTraining) -> tuple[pd.DataFrame, Any]:
    """An input example (training rows without missing values where possible) and the signature inferred
    from it (column types as in the training data). With the automatic preprocessing every input may be
    missing (it is imputed), so no input column is marked required."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import ColSpec, Schema

    sample = prepared.x_train.head(SIGNATURE_SAMPLE_ROWS)
    complete = sample.dropna()
    example = (complete if len(complete) >= INPUT_EXAMPLE_ROWS else sample).head(INPUT_EXAMPLE_ROWS)
    with warnings.catch_warnings():  # MLflow's hint about integer columns; the choice is documented
        warnings.filterwarnings("ignore", message=".*Inferred schema contains integer column")
        signature = infer_signature(example, model.predict(example))
    if prepared.estimator.kind == "estimator" and signature.inputs is not None:
        inputs = Schema([ColSpec(spec.type, spec.name, required=False) for spec in signature.inputs.inputs])
        signature = ModelSignature(inputs=inputs, outputs=signature.outputs, params=signature.params)
    return example.reset_index(drop=True), signature


def score_model(model: Any, frame: pd.DataFrame, target: str, task_type: str) -> dict[str, float]:
    """The holdout metrics of a fitted model on labelled ``frame``, computed and named as training logs them
    (classification: accuracy, f1_macro, roc_auc, log_loss; regression: rmse, mae, r2). Used to score a
    challenger and the champion on the same data."""
    if task_type not in TASK_TYPES:
        raise ConfigurationError(f"task_type={task_type!r} is not one of {TASK_TYPES}.")
    if target not in frame.columns:
        raise TrainingDataError(f"The evaluation data has no target column {target!r}.")
    columns = [str(c) for c in getattr(model, "feature_names_in_", [c for c in frame.columns if c != target])]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise TrainingDataError(
            f"The evaluation data lacks the model's input column(s) {_listing(missing)}."
        )
    y = frame[target]
    if y.isna().any():
        raise TrainingDataError(f"The target column {target!r} of the evaluation data has missing values.")
    _, categorical = _split_feature_types(frame, columns)
    x = _normalise_missing(frame[columns], categorical)
    if task_type == CLASSIFICATION:
        return _classification_metrics(model, x, y, [])[0]
    return _regression_metrics(model, x, y)[0]


# -- step 3: log and register ---------------------------------------------------------------------------


def log_and_register(
    client: Any,
    fitted: FittedModel,
    *,
    experiment_id: str,
    model_name: str,
    tags: dict[str, str],
    dataset_uri: str,
    run_name: str | None = None,
) -> TrainingResult:
    """Log the run and register the model as a new version of ``model_name``.

    ``client`` is an ``MlflowClient``; MLflow's fluent API (``log_model``, ``register_model``) must point at
    the same server, e.g. inside ``MlflowHook.session()``. The run is FINISHED only after the version exists.
    """
    import mlflow
    import mlflow.sklearn
    from mlflow.entities import Metric, Param, RunTag

    prepared = fitted.prepared
    run_tags = {
        **tags,
        **prepared.unchanged_tags(),
        TAG_DATASET_URI: dataset_uri,
        TAG_TASK_TYPE: prepared.task_type,
        TAG_TARGET_COLUMN: prepared.config.target_column,
    }
    run = client.create_run(experiment_id, tags=run_tags, run_name=run_name)
    run_id = run.info.run_id
    artifact_tags = {
        TAG_REFERENCE_SAMPLE: f"runs:/{run_id}/{REFERENCE_SAMPLE_PATH}",
        TAG_HOLDOUT: f"runs:/{run_id}/{HOLDOUT_PATH}",
    }
    try:
        params = training_params(fitted)
        # The logged model belongs to the run's experiment and carries the run's params. Given only run_id
        # outside an active run, log_model (MLflow 3.17) creates it in the default experiment "0" instead,
        # with its files under that experiment's artifact root (./mlruns of the working directory when the
        # store is a local database) and no params.
        logged_model = mlflow.initialize_logged_model(
            name=MODEL_ARTIFACT_NAME, source_run_id=run_id, params=params, experiment_id=str(experiment_id)
        )
        with _quiet_skops(), _openmp_threads(_AFTER_FIT_OPENMP_THREADS):
            info = mlflow.sklearn.log_model(
                fitted.model,
                name=MODEL_ARTIFACT_NAME,
                run_id=run_id,
                model_id=logged_model.model_id,
                signature=fitted.signature,
                input_example=fitted.input_example,
                serialization_format=fitted.serialization_format,
                skops_trusted_types=fitted.skops_trusted_types,
                pip_requirements=fitted.pip_requirements,
            )
        # The holdout was scored while the model was logged; its metrics go to the run and its logged model,
        # in one batch with the params and the artifact tags (MLflow takes at most 100 params per batch).
        now = int(time.time() * 1000)
        metrics = [
            Metric(k, v, now, 0, model_id=info.model_id) for k, v in fitted.metrics.items() if math.isfinite(v)
        ]
        metrics.append(Metric("fit_seconds", round(fitted.fit_seconds, 3), now, 0))
        run_params = [Param(k, v) for k, v in params.items()]
        client.log_batch(
            run_id, metrics=metrics, params=run_params[:100], tags=[RunTag(k, v) for k, v in artifact_tags.items()]
        )
        for start in range(100, len(run_params), 100):
            client.log_batch(run_id, params=run_params[start : start + 100])
        client.log_artifacts(run_id, str(fitted.wait_for_artifacts()))
        version = mlflow.register_model(
            info.model_uri, model_name, tags={**run_tags, **artifact_tags}
        )
        client.set_terminated(run_id, "FINISHED")
    except BaseException:
        try:
            client.set_terminated(run_id, "FAILED")
        except Exception:  # the original error matters more than this one
            log.exception("Could not mark MLflow run %s FAILED", run_id)
        raise
    finally:
        fitted.close()
    return TrainingResult(
        model_name=model_name,
        version=str(version.version),
        run_id=run_id,
        model_uri=f"models:/{model_name}/{version.version}",
        metrics=dict(fitted.metrics),
        data_fingerprint=prepared.data_fingerprint,
        skipped=False,
        experiment_id=str(experiment_id),
        outcome="trained",
        reason=f"trained {prepared.estimator.import_path} on {prepared.split['train_rows']} rows",
    )


def training_params(fitted: FittedModel) -> dict[str, str]:
    """MLflow params: the estimator's, the preprocessing and the split."""
    prepared = fitted.prepared
    model = fitted.model
    final = model[-1] if prepared.estimator.kind == "estimator" else model
    params: dict[str, Any] = {
        "estimator": prepared.estimator.import_path,
        "task_type": prepared.task_type,
        "target_column": prepared.config.target_column,
        "feature_columns": ",".join(prepared.features),
        "preprocessing": "auto" if prepared.estimator.kind == "estimator" else "pipeline_factory",
        "random_state": prepared.config.random_state,
        "seeded_params": ",".join(prepared.seeded_params) or "-",
        "serialization_format": fitted.serialization_format,
        **{f"split.{k}": v for k, v in prepared.split.items()},
    }
    if prepared.estimator.kind == "estimator":
        params.update(
            {
                "preprocessing.numeric_columns": ",".join(prepared.numeric_columns) or "-",
                "preprocessing.numeric": "SimpleImputer(median) + StandardScaler",
                "preprocessing.categorical_columns": ",".join(prepared.categorical_columns) or "-",
                "preprocessing.categorical": "SimpleImputer(most_frequent) + OneHotEncoder(handle_unknown=ignore)",
            }
        )
        estimator_params = final.get_params(deep=False)
    else:
        estimator_params = {
            k: v for k, v in model.get_params(deep=True).items() if v is None or isinstance(v, (str, int, float))
        }
    for name, value in sorted(estimator_params.items())[:_MAX_PARAMS]:
        params[f"estimator.{name}"] = value
    return {k: _param_text(v) for k, v in params.items()}


def _param_text(value: Any) -> str:
    text = value if isinstance(value, str) else canonical_json(value) if isinstance(value, (dict, list)) else str(value)
    return text if len(text) <= _MAX_PARAM_CHARS else text[: _MAX_PARAM_CHARS - 3] + "..."


def train_and_register(
    frame: pd.DataFrame,
    config: TrainingConfig,
    client: Any,
    *,
    experiment_id: str,
    model_name: str,
    tags: dict[str, str],
    dataset_uri: str,
    run_name: str | None = None,
) -> TrainingResult:
    """The three steps in one call (no idempotency or champion checks): prepare, fit, log and register."""
    fitted = fit_model(prepare_training(frame, config))
    return log_and_register(
        client, fitted, experiment_id=experiment_id, model_name=model_name, tags=tags,
        dataset_uri=dataset_uri, run_name=run_name,
    )  # fmt: skip


# -- checks before training: idempotency and the champion -------------------------------------------------


def find_task_version(client: Any, model_name: str, identity: dict[str, str]) -> Any | None:
    """The version of ``model_name`` whose tags carry ``identity`` (the task instance that registered it)."""
    terms = [f"name = '{model_name}'"] if "'" not in model_name else []
    terms += [f"tags.`{k}` = '{v}'" for k, v in identity.items() if "'" not in str(v) and "`" not in k]
    matches = [
        version
        for version in _all_pages(lambda token: client.search_model_versions(" AND ".join(terms), page_token=token))
        if version.name == model_name and all(version.tags.get(k) == str(v) for k, v in identity.items())
    ]
    if not matches:
        return None
    return min(matches, key=lambda version: int(version.version))  # the first one, should two ever exist


def abandon_unfinished_runs(client: Any, experiment_id: str, identity: dict[str, str], reason: str) -> list[str]:
    """Mark FAILED the runs an earlier try of this task left RUNNING without registering a version (the
    worker died between creating the run and registering); returns their ids."""
    terms = [f"tags.`{k}` = '{v}'" for k, v in identity.items() if "'" not in str(v) and "`" not in k]
    terms.append("attributes.status = 'RUNNING'")
    runs = client.search_runs([experiment_id], filter_string=" AND ".join(terms), max_results=100)
    abandoned = []
    for run in runs:
        if all(run.data.tags.get(k) == str(v) for k, v in identity.items()):
            client.set_tag(run.info.run_id, TAG_ABANDONED, reason)
            client.set_terminated(run.info.run_id, "FAILED")
            abandoned.append(run.info.run_id)
    return abandoned


def result_from_version(client: Any, version: Any, *, outcome: str, reason: str) -> TrainingResult:
    """A result that points at an existing version (reused by a retry, or the champion when skipping)."""
    run = client.get_run(version.run_id) if version.run_id else None
    if outcome == "reused" and run is not None and run.info.status == "RUNNING":
        client.set_terminated(version.run_id, "FINISHED")  # the earlier try registered, then died
    metrics = {k: float(v) for k, v in (run.data.metrics if run else {}).items() if k != "fit_seconds"}
    return TrainingResult(
        model_name=version.name,
        version=str(version.version),
        run_id=version.run_id or "",
        model_uri=f"models:/{version.name}/{version.version}",
        metrics=metrics,
        data_fingerprint=version.tags.get(TAG_DATA_FINGERPRINT, ""),
        skipped=outcome == "skipped",
        experiment_id=str(run.info.experiment_id) if run else "",
        outcome=outcome,
        reason=reason,
    )


def differences_from_champion(champion_tags: dict[str, str], candidate: dict[str, str]) -> list[str]:
    """What differs between the champion's recorded inputs and this training's; empty means unchanged."""
    differences = []
    for key, words in UNCHANGED_KEYS.items():
        recorded = champion_tags.get(key)
        if recorded is None:
            differences.append(f"the champion has no {key} tag (it was not trained by TrainModelOperator)")
        elif recorded != candidate[key]:
            differences.append(f"{words} differs (champion: {_short(recorded)}, now: {_short(candidate[key])})")
    return differences


def _short(value: str, limit: int = 80) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."


def _all_pages(search: Any) -> list[Any]:
    found, token = [], None
    while True:
        page = search(token)
        found.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return found


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value (so messages read ``0``, not ``np.int64(0)``)."""
    return value.item() if isinstance(value, np.generic) else value


def _listing(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
