"""What training takes and gives: the configuration, the estimator spec, the prepared inputs and the result."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from mlops_provider import __version__ as PROVIDER_VERSION
from mlops_provider.core import tags as tag_names
from mlops_provider.core.errors import ConfigurationError
from mlops_provider.core.fingerprint import tag_value

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

REFERENCE_SAMPLE_PATH = "reference/reference_sample.parquet"
HOLDOUT_PATH = "holdout/holdout.parquet"
# The held-out rows' other columns (ids, timestamps, columns this model does not use), row for row with the
# holdout: a gate joins them back so that a champion trained on other features is scored on the same rows.
HOLDOUT_CONTEXT_PATH = "holdout/holdout_context.parquet"


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
    slice_columns: list[str] = field(default_factory=list)  # per-slice holdout metrics (core.training.slices)
    sensitive_columns: list[str] = field(default_factory=list)  # fairness metrics (core.training.fairness)

    def validate(self) -> None:
        if not isinstance(self.target_column, str) or not self.target_column.strip():
            raise ConfigurationError("target_column is empty; name the column the model should predict.")
        if self.problem_type not in (None, *TASK_TYPES):
            raise ConfigurationError(
                f"problem_type={self.problem_type!r} is not one of {TASK_TYPES}; leave it unset to infer it from "
                "the estimator and the target."
            )
        if (
            isinstance(self.test_size, bool)
            or not isinstance(self.test_size, (int, float))
            or not (0 < self.test_size < 1)
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
        for name in ("slice_columns", "sensitive_columns"):
            self._check_group_setting(name, getattr(self, name))

    def _check_group_setting(self, name: str, columns: Any) -> None:
        if not isinstance(columns, (list, tuple)) or not all(isinstance(c, str) and c.strip() for c in columns):
            raise ConfigurationError(f"{name}={columns!r} must be a list of column names, e.g. {name}=['plan'].")
        duplicates = sorted({c for c in columns if list(columns).count(c) > 1})
        if duplicates:
            raise ConfigurationError(f"{name} lists {_listing(duplicates)} more than once; name each column once.")
        if self.target_column in columns:
            raise ConfigurationError(
                f"{name} names the target column {self.target_column!r}; groups are compared on the target, so "
                f"they must come from another column: remove it from {name} (e.g. {name}=['plan'])."
            )
        if self.timestamp_column and self.timestamp_column in columns:
            raise ConfigurationError(
                f"{name} names the timestamp column {self.timestamp_column!r}, which has a value per row; group "
                "the rows by a label derived from it upstream (e.g. the month as text) and name that column."
            )


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
    holdout_context: pd.DataFrame  # see HOLDOUT_CONTEXT_PATH
    split: dict[str, Any]
    data_fingerprint: str
    estimator: EstimatorSpec
    model: Any
    seeded_params: list[str]
    training_config: str
    rows: int
    holdout_groups: pd.DataFrame | None = None  # group labels of the holdout rows (slice and sensitive columns)

    def unchanged_tags(self) -> dict[str, str]:
        """The tag values a champion must carry for this training to be skipped."""
        return {
            tag_names.DATA_FINGERPRINT: self.data_fingerprint,
            tag_names.ESTIMATOR_SPEC: self.estimator.tag(),
            tag_names.TRAINING_CONFIG: self.training_config,
            tag_names.PROVIDER_VERSION: PROVIDER_VERSION,
        }

    def group_tags(self) -> dict[str, str]:
        """The slice and sensitive columns, as the gate reads them from the version (JSON lists; only when set)."""
        found = {
            tag_names.SLICE_COLUMNS: self.config.slice_columns,
            tag_names.SENSITIVE_COLUMNS: self.config.sensitive_columns,
        }
        return {tag: json.dumps(list(columns)) for tag, columns in found.items() if columns}


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


# -- for messages ----------------------------------------------------------------------------------


def _listing(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
