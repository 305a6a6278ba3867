"""Training with a full MLflow record: split, estimator, automatic preprocessing, metrics, plots, registration.

The work is done in three steps so that nothing reaches MLflow before the inputs are known to be good:

1. ``prepare_training(frame, config)`` (``data``) checks the data and the configuration and builds the
   (unfitted) model: columns, task type, target, row count for the split, the estimator import path and its
   parameters. Every bad input raises ``TrainingDataError`` or ``EstimatorSpecError`` here. It also computes
   what "unchanged" is judged on: the data fingerprint, the estimator spec and the training configuration.
2. ``fit_model(prepared)`` (``fit``) fits on the training share, computes holdout metrics, draws the plots and
   picks the reference sample, all in memory. A fit that fails still leaves no trace in MLflow.
3. ``log_and_register(client, fitted, ...)`` (``record``) creates the MLflow run, logs params, metrics,
   artifacts and the model, registers it as a new version of ``model_name`` with the same tags as the run, and
   only then marks the run FINISHED. If this step dies half-way (a killed worker), the run stays RUNNING
   without a version; ``abandon_unfinished_runs`` marks such runs FAILED before the next try logs a fresh run.

``find_task_version`` (a retry finds the version its task already registered) and
``differences_from_champion`` (skip when data, spec and provider version equal the champion's) are the two
checks an operator makes before training.

Reproducibility: rows are put into a canonical order by content before splitting (see
``core.fingerprint``), the split is seeded with ``random_state``, and every ``random_state`` parameter the
estimator leaves unset gets the same seed. Same data (in any row order, at any path), same spec, same seed:
the same model and identical metrics.

The modules, by concern: ``config`` (what goes in and comes out), ``data`` (step 1), ``split``,
``estimators``, ``fit`` (step 2 and its background work), ``evaluation`` (metrics), ``plots``,
``serialization`` (how the model is stored), ``record`` (step 3 and the checks before training). The MLflow
tag names live in ``core.tags``; the ``TAG_*`` names here are kept for existing callers.

This package imports pandas and numpy at import time; scikit-learn, MLflow and matplotlib are imported by the
functions that need them.
"""

from __future__ import annotations

from mlops_provider.core.tags import (
    ABANDONED as TAG_ABANDONED,
)
from mlops_provider.core.tags import (
    DATA_FINGERPRINT as TAG_DATA_FINGERPRINT,
)
from mlops_provider.core.tags import (
    DATASET_URI as TAG_DATASET_URI,
)
from mlops_provider.core.tags import (
    ESTIMATOR_SPEC as TAG_ESTIMATOR_SPEC,
)
from mlops_provider.core.tags import (
    HOLDOUT as TAG_HOLDOUT,
)
from mlops_provider.core.tags import (
    PROVIDER_VERSION as TAG_PROVIDER_VERSION,
)
from mlops_provider.core.tags import (
    REFERENCE_SAMPLE as TAG_REFERENCE_SAMPLE,
)
from mlops_provider.core.tags import (
    TARGET_COLUMN as TAG_TARGET_COLUMN,
)
from mlops_provider.core.tags import (
    TASK_TYPE as TAG_TASK_TYPE,
)
from mlops_provider.core.tags import (
    TRAINING_CONFIG as TAG_TRAINING_CONFIG,
)
from mlops_provider.core.training.config import (
    CLASSIFICATION,
    REGRESSION,
    TASK_TYPES,
    EstimatorSpec,
    PreparedTraining,
    TrainingConfig,
    TrainingResult,
)
from mlops_provider.core.training.data import infer_task_type, prepare_training, resolve_task_type
from mlops_provider.core.training.estimators import (
    build_estimator,
    resolve_import_path,
    seed_estimator,
    validate_estimator_params,
)
from mlops_provider.core.training.evaluation import confusion_counts, holdout_with_context, score_model
from mlops_provider.core.training.fit import FittedModel, fit_model
from mlops_provider.core.training.record import (
    abandon_unfinished_runs,
    differences_from_champion,
    find_task_version,
    log_and_register,
    result_from_version,
    train_and_register,
    training_params,
)
from mlops_provider.core.training.serialization import _serialization_plan as _serialization_plan  # for benchmarks
from mlops_provider.core.training.slices import GroupReport, score_groups
from mlops_provider.core.training.split import stratified_split

__all__ = [
    # what goes in and comes out
    "CLASSIFICATION",
    "REGRESSION",
    "TASK_TYPES",
    "EstimatorSpec",
    "FittedModel",
    "PreparedTraining",
    "TrainingConfig",
    "TrainingResult",
    # step 1: check the inputs and build the unfitted model
    "build_estimator",
    "infer_task_type",
    "prepare_training",
    "resolve_import_path",
    "resolve_task_type",
    "seed_estimator",
    "stratified_split",
    "validate_estimator_params",
    # step 2: fit and evaluate
    "confusion_counts",
    "fit_model",
    "score_model",
    "score_groups",
    "GroupReport",
    "holdout_with_context",
    # step 3: log and register; the checks before training
    "abandon_unfinished_runs",
    "differences_from_champion",
    "find_task_version",
    "log_and_register",
    "result_from_version",
    "train_and_register",
    "training_params",
    # MLflow tag names, kept for existing callers (they live in core.tags)
    "TAG_ABANDONED",
    "TAG_DATASET_URI",
    "TAG_DATA_FINGERPRINT",
    "TAG_ESTIMATOR_SPEC",
    "TAG_HOLDOUT",
    "TAG_PROVIDER_VERSION",
    "TAG_REFERENCE_SAMPLE",
    "TAG_TARGET_COLUMN",
    "TAG_TASK_TYPE",
    "TAG_TRAINING_CONFIG",
]
