"""Holdout metrics: how training scores a model, and ``score_model`` for scoring one on other labelled data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlops_provider.core.errors import ConfigurationError, TrainingDataError
from mlops_provider.core.training.config import CLASSIFICATION, TASK_TYPES, _listing
from mlops_provider.core.training.data import _normalise_missing, _split_feature_types


def _classification_metrics(model: Any, x: Any, y: pd.Series, notes: list[str]) -> tuple[dict[str, float], np.ndarray]:
    predictions, probabilities = _classification_outputs(model, x)
    classes = list(model.classes_) if probabilities is not None else []
    return classification_scores(y.to_numpy(), predictions, probabilities, classes, notes), predictions


def _classification_outputs(model: Any, x: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """The predicted classes and, when the model has ``predict_proba``, the class probabilities."""
    if not hasattr(model, "predict_proba"):
        return model.predict(x), None
    probabilities = model.predict_proba(x)
    return _predictions_from_probabilities(model, x, probabilities), probabilities


def classification_scores(
    y_true: np.ndarray, predictions: Any, probabilities: np.ndarray | None, classes: list, notes: list[str]
) -> dict[str, float]:
    """accuracy, f1_macro and, with probabilities, log_loss and roc_auc (where defined) of one set of rows: the
    whole holdout, or one group of it (``core.training.slices``)."""
    from sklearn.metrics import log_loss, roc_auc_score

    if probabilities is None:
        notes.append("roc_auc and log_loss not computed: the model has no predict_proba.")
        return _label_metrics(y_true, predictions)
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
    return metrics


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
    predictions = np.asarray(model.predict(x), dtype=float)
    return regression_scores(y.to_numpy(dtype=float), predictions), predictions


def regression_scores(y_true: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """rmse, mae and r2 of one set of rows (the whole holdout, or one group of it)."""
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

    return {
        "rmse": float(root_mean_squared_error(y_true, predictions)),
        "mae": float(mean_absolute_error(y_true, predictions)),
        "r2": float(r2_score(y_true, predictions)),
    }


def confusion_counts(y_true: Any, predictions: Any, classes: list) -> np.ndarray:
    """``sklearn.metrics.confusion_matrix(y_true, predictions, labels=classes)`` (rows: actual, columns:
    predicted; rows whose label is not in ``classes`` left out) by hashing and counting, without that
    function's input checks, which take most of its time."""
    index = pd.Index(classes)
    actual, predicted = index.get_indexer(np.asarray(y_true)), index.get_indexer(np.asarray(predictions))
    known = (actual >= 0) & (predicted >= 0)
    n = len(classes)
    return np.bincount(actual[known] * n + predicted[known], minlength=n * n).reshape(n, n)


def score_model(
    model: Any,
    frame: pd.DataFrame,
    target: str,
    task_type: str,
    *,
    slice_columns: list[str] | None = None,
    sensitive_columns: list[str] | None = None,
    explanations: dict[str, str] | None = None,
) -> dict[str, float]:
    """The holdout metrics of a fitted model on labelled ``frame``, computed and named as training logs them
    (classification: accuracy, f1_macro, roc_auc, log_loss; regression: rmse, mae, r2). Used to score a
    challenger and the champion on the same data.

    With ``slice_columns`` / ``sensitive_columns`` (columns of ``frame``) the per-slice and fairness metrics
    follow, computed as training computes them (``core.training.slices.score_groups``); ``explanations``, when
    given, receives the groups and numbers behind each of them (for the gate's reasons)."""
    if task_type not in TASK_TYPES:
        raise ConfigurationError(f"task_type={task_type!r} is not one of {TASK_TYPES}.")
    if target not in frame.columns:
        raise TrainingDataError(f"The evaluation data has no target column {target!r}.")
    columns = [str(c) for c in getattr(model, "feature_names_in_", [c for c in frame.columns if c != target])]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise TrainingDataError(f"The evaluation data lacks the model's input column(s) {_listing(missing)}.")
    y = frame[target]
    if y.isna().any():
        raise TrainingDataError(f"The target column {target!r} of the evaluation data has missing values.")
    _, categorical = _split_feature_types(frame, columns)
    x = _normalise_missing(frame[columns], categorical)
    if not slice_columns and not sensitive_columns:
        if task_type == CLASSIFICATION:
            return _classification_metrics(model, x, y, [])[0]
        return _regression_metrics(model, x, y)[0]
    from mlops_provider.core.training.slices import group_frame, score_groups

    groups = group_frame(frame, slice_columns or [], sensitive_columns or [])
    if task_type == CLASSIFICATION:
        predictions, probabilities = _classification_outputs(model, x)
        classes = list(model.classes_) if hasattr(model, "classes_") else sorted(pd.unique(y))
        metrics = classification_scores(y.to_numpy(), predictions, probabilities, classes, [])
    else:
        predictions, probabilities, classes = np.asarray(model.predict(x), dtype=float), None, []
        metrics = regression_scores(y.to_numpy(dtype=float), predictions)
    report = score_groups(
        task_type, y.to_numpy(), predictions, probabilities, classes, groups,
        slice_columns=slice_columns or [], sensitive_columns=sensitive_columns or [],
    )  # fmt: skip
    if explanations is not None:
        explanations.update(report.explanations)
    return {**metrics, **report.metrics}


def holdout_with_context(holdout: pd.DataFrame, context: pd.DataFrame) -> pd.DataFrame:
    """The stored holdout with its rows' other columns joined back (row for row), so that a model trained on
    other columns than the challenger can be scored on the same rows."""
    if len(context) != len(holdout):
        raise TrainingDataError(
            f"The holdout has {len(holdout)} rows but its context file {len(context)}; they were not written "
            "together. Retrain the challenger to store them again."
        )
    extra = context[[c for c in context.columns if c not in holdout.columns]]
    return pd.concat([holdout.reset_index(drop=True), extra.reset_index(drop=True)], axis=1)
