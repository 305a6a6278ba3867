"""Step 1 of training: check the data and the configuration and build the unfitted model (``prepare_training``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlops_provider.core.datasets import partition_columns
from mlops_provider.core.errors import EstimatorSpecError, TrainingDataError
from mlops_provider.core.fingerprint import data_fingerprint, tag_value
from mlops_provider.core.training.config import (
    CLASSIFICATION,
    DEFAULT_ESTIMATORS,
    REGRESSION,
    PreparedTraining,
    TrainingConfig,
    _listing,
)
from mlops_provider.core.training.estimators import (
    _auto_pipeline,
    _code_versions,
    build_estimator,
    seed_estimator,
    validate_estimator_params,
)
from mlops_provider.core.training.slices import check_group_columns, group_frame
from mlops_provider.core.training.split import _split_rows

if TYPE_CHECKING:
    from mlops_provider.core.training.config import EstimatorSpec

# An integer target with at most this many distinct values is taken for class labels when neither the
# estimator nor problem_type says which task it is.
MAX_CLASSES_FOR_INTEGER_TARGET = 20
_HEAD_ROWS = 1_000  # the rows the feature checks look at before scanning a whole column


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
    _check_feature_values(frame, features, categorical)
    check_group_columns(frame, config)

    y = frame[target]
    nulls = int(y.isna().sum())
    if nulls:
        raise TrainingDataError(
            f"The target column {target!r} has {nulls} missing value(s) in {len(frame)} rows; a model cannot "
            "learn from unlabelled rows. Drop or fill them upstream (e.g. in the task that builds the dataset)."
        )

    estimator_path = config.estimator or None
    model_object: Any = None
    spec: EstimatorSpec | None = None
    if estimator_path:
        model_object, spec = build_estimator(estimator_path, config.estimator_params)
    task_type = resolve_task_type(config.problem_type, model_object, y, target)
    if spec is None:  # no estimator given (build_estimator returns both or raises): the task's default
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
            # only when set, so that a configuration without them keeps the value it had before they existed
            **({"slice_columns": config.slice_columns} if config.slice_columns else {}),
            **({"sensitive_columns": config.sensitive_columns} if config.sensitive_columns else {}),
        }
    )
    group_columns = list(dict.fromkeys([*config.slice_columns, *config.sensitive_columns]))
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
        holdout_context=frame[[c for c in frame.columns if c not in features and c != target]].iloc[test_rows],
        split=split,
        data_fingerprint=fingerprint.value,
        estimator=spec,
        model=model,
        seeded_params=seeded,
        training_config=training_config,
        rows=len(frame),
        holdout_groups=group_frame(frame.iloc[test_rows], group_columns, []) if group_columns else None,
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
    excluded = {
        target,
        *config.id_columns,
        *([config.timestamp_column] if config.timestamp_column else []),
        *partition_columns(frame),
    }
    features = [c for c in columns if c not in excluded and not _is_datetime(frame[c])]
    if not features:
        raise TrainingDataError(
            f"No feature columns are left after excluding the target, id, timestamp and partition columns "
            f"(columns: {_listing(columns)}); set feature_columns."
        )
    return features


def _split_feature_types(frame: pd.DataFrame, features: list[str]) -> tuple[list[str], list[str]]:
    numeric = [
        c for c in features if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    ]
    categorical = [c for c in features if c not in numeric]
    return numeric, categorical


def _check_feature_values(frame: pd.DataFrame, features: list[str], categorical: list[str]) -> None:
    """Refuse features a model would silently misread: all-null columns, numbers with stray text."""
    # A value among the first rows settles it; only a column null there is scanned whole (a pass over a text
    # column's Python objects is what this step costs on large data).
    empty = [c for c in features if not (frame[c].iloc[:_HEAD_ROWS].notna().any() or frame[c].notna().any())]
    if empty:
        raise TrainingDataError(
            f"The feature column(s) {_listing(empty)} hold no values (null in all {len(frame)} rows); fix the data "
            "or leave them out (feature_columns, or id_columns to keep them out of the default features)."
        )
    for column in categorical:
        if pd.api.types.is_bool_dtype(frame[column]):
            continue
        # A look at a few values first: text columns (plans, countries) stop here at almost no cost.
        head = frame[column].iloc[:_HEAD_ROWS].dropna()
        if len(head) < 200:  # sparse at the top: the first 200 values wherever they are
            head = frame[column].dropna()
        if pd.to_numeric(head.iloc[:200], errors="coerce").notna().mean() < 0.5:
            continue
        values = frame[column].dropna()
        parsed = pd.to_numeric(values, errors="coerce")
        stray = values[parsed.isna()]
        if 0 < len(stray) and len(stray) <= 0.05 * len(values):
            examples = sorted({str(v) for v in stray.iloc[:1000]})[:3]
            raise TrainingDataError(
                f"The feature column {column!r} holds numbers and {len(stray)} text value(s) such as {examples}, "
                "so it would be treated as categorical; fix or null those values upstream (or, if the column is a "
                "code rather than a number, make every value text)."
            )


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


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value (so messages read ``0``, not ``np.int64(0)``)."""
    return value.item() if isinstance(value, np.generic) else value
