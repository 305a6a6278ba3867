"""Exceptions raised by the lifecycle core.

Each message names the input that is wrong and what to do about it, so that the Airflow task log
is enough to fix a failed run. The classes say what kind of problem it is, so that a retry policy can tell:

* ``DataStateError``: the data is not (yet) where or as it should be (nothing at the URI, an empty
  window). Another try later may find it: tasks retry these.
* ``ServiceUnreachableError``: a server did not answer (S3, MLflow). Transient: tasks retry these.
* every other ``MlopsError`` (``ConfigurationError``, ``TrainingDataError``, ...): the same input gives the
  same error, so a retry cannot help. Tasks fail at once, without spending their retries.
"""

from __future__ import annotations


class MlopsError(ValueError):
    """Base class of every error this provider raises for bad input or configuration."""

    retryable = False


class DataStateError(MlopsError):
    """The data is missing or not in the expected state (yet); retrying later may find it."""

    retryable = True


class ServiceUnreachableError(MlopsError):
    """A service did not answer (connection refused, timed out, throttled); transient."""

    retryable = True


class DatasetError(MlopsError):
    """A dataset URI cannot be read or written as asked."""


class DatasetNotFoundError(DatasetError, DataStateError, FileNotFoundError):
    """Nothing exists at the dataset URI."""


class EmptyDatasetError(DatasetError, DataStateError):
    """The dataset exists but holds no rows (or no data files)."""


class UnsupportedFormatError(DatasetError):
    """The dataset's file format (or URI scheme) is not one this provider reads."""


class ConfigurationError(MlopsError):
    """A connection, path or setting is missing or malformed."""


class DriftInputError(MlopsError):
    """The reference or current data cannot be compared as asked (missing, all-null or mismatched columns)."""


class ExpectationSuiteError(MlopsError):
    """An expectation suite cannot be used as given: unreadable or invalid JSON, an unknown expectation type,
    invalid expectation arguments, or a column the data does not have."""


class FeatureViewNotFoundError(MlopsError):
    """A feature view named in a task is not registered in the Feast repository."""


class FeatureReferenceError(MlopsError):
    """A feature reference (``view:feature``) or feature service does not exist in the Feast repository."""


class MaterializationWindowError(MlopsError):
    """A materialisation window is missing, unparseable, or ends before it starts."""


class EntityFrameError(MlopsError):
    """An entity frame for a training set lacks its timestamp or entity key columns."""


class TrainingDataError(MlopsError):
    """The training data cannot train the model as asked: a missing target or feature column, a target with
    one class or nulls, a non-numeric target for regression, or too few rows for the holdout split."""


class EstimatorSpecError(MlopsError):
    """The estimator cannot be built as given: an import path that does not resolve, an object that is not a
    scikit-learn estimator or pipeline factory, or parameters the estimator rejects."""


class PredictionLogError(MlopsError):
    """A prediction log cannot be written or read as asked: missing log columns, a time without a time zone, rows
    whose prediction time does not belong to the file's ``dt=`` partition, a window that ends before it starts."""


class LabelJoinError(MlopsError):
    """Labels cannot be joined to logged predictions: a missing id, label or timestamp column, duplicate ids,
    naive label timestamps, label values of another type than the predictions, or no label matching any
    prediction."""


class NoMatchingLabelsError(LabelJoinError):
    """No label matches a logged prediction (by id, and by time when the labels carry one): the labels belong to
    other predictions, have not arrived yet, or hold their ids in another type than the log."""
