"""The train/test split: the most recent share by time, else a seeded (stratified) random split."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mlops_provider.core.errors import TrainingDataError
from mlops_provider.core.training.config import CLASSIFICATION, TrainingConfig, _listing

# Below these, a "model" would be noise and its metrics meaningless: an empty or nearly empty data window
# must fail loudly rather than register a version.
MIN_TRAIN_ROWS = 10
MIN_TEST_ROWS = 2  # R2 and ROC AUC need at least two holdout rows


def _split_rows(frame: pd.DataFrame, config: TrainingConfig, task_type: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """Train and test row positions: the most recent share by time, else a seeded (stratified) random split."""
    rows = len(frame)
    target = frame[config.target_column]
    test_rows = math.ceil(rows * config.test_size)
    train_rows = rows - test_rows
    classes = target.value_counts() if task_type == CLASSIFICATION else None
    stratified = classes is not None and not config.timestamp_column
    class_count = len(classes) if classes is not None else 0
    need_test = max(MIN_TEST_ROWS, class_count if stratified else 0)
    need_train = max(MIN_TRAIN_ROWS, class_count)
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
    if stratified and classes is not None:  # stratified implies classes; the check narrows the type
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
    (scikit-learn's ``StratifiedShuffleSplit``) at a fraction of the cost: the classes are found by hashing
    rather than sorting, and the rows are gathered in arrays rather than per-row Python lists. Every class needs
    at least two rows (checked by the caller)."""
    try:
        from sklearn.utils.extmath import _approximate_mode  # how scikit-learn shares the rows out per class
    except ImportError:  # moved in another scikit-learn: use the public function
        from sklearn.model_selection import train_test_split

        train, test = train_test_split(np.arange(len(y)), test_size=test_rows, random_state=seed, stratify=y)
        return train, test
    # np.unique(y, return_inverse=True, return_counts=True) as scikit-learn calls it, by hashing: the argsort
    # numpy does behind it is most of the cost, for numeric and text targets alike.
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
