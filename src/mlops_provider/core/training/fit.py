"""Step 2 of training: fit, then evaluate, draw and write the artifacts beside the main thread (``fit_model``)."""

from __future__ import annotations

import functools
import json
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlops_provider.core.errors import EstimatorSpecError
from mlops_provider.core.training.config import (
    CLASSIFICATION,
    HOLDOUT_CONTEXT_PATH,
    HOLDOUT_PATH,
    REFERENCE_SAMPLE_PATH,
    PreparedTraining,
)
from mlops_provider.core.training.evaluation import _classification_outputs, _regression_metrics, classification_scores
from mlops_provider.core.training.plots import _feature_importances, _plot_confusion_matrix, _plot_residuals
from mlops_provider.core.training.serialization import _example_and_signature, _serialization_plan

MAX_HOLDOUT_ROWS = 1_000_000  # above this the stored holdout is a seeded sample (metrics use the full holdout)
SUMMARY_PATH = "training_summary.json"
# OpenMP threads per calling thread for the model's predictions after the fit (holdout scoring beside the
# main thread; the few-row predictions of the signature and of MLflow's input-example check on it). With
# three threads busy on the cores, OpenMP teams of two spend most of their time waiting for a descheduled
# member, so even a prediction of a few rows is slow.
_AFTER_FIT_OPENMP_THREADS = 1
# The interpreter's switch interval while the holdout is scored beside the main thread. A prediction releases
# the interpreter lock for each tree and takes it back after; while the main thread runs Python (logging the
# model), each take waits up to the switch interval: with the default interval, scoring beside a busy main
# thread spends most of its time waiting for the lock; a shorter interval hands the lock back sooner.
_SCORING_SWITCH_INTERVAL = 0.0005


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
    context = prepared.holdout_context
    if len(holdout) > MAX_HOLDOUT_ROWS:  # the same seed on the same row count keeps the two files aligned
        holdout = holdout.sample(MAX_HOLDOUT_ROWS, random_state=seed)
        context = context.sample(MAX_HOLDOUT_ROWS, random_state=seed)
    holdout.to_parquet(root / HOLDOUT_PATH, index=False)
    if len(context.columns):
        context.to_parquet(root / HOLDOUT_CONTEXT_PATH, index=False)


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
    model: Any,
    scorer: Any,
    x_scored: Any,
    prepared: PreparedTraining,
    notes: list[str],
    root: Path,
    evaluation: Future,
) -> None:
    """Holdout metrics (handed over through ``evaluation`` at once), then the confusion matrix or residual
    plot, feature importances and the summary. ``scorer`` predicts ``x_scored``: the model and the holdout
    features, or the model's last step and the features as the steps before it transformed them. With slice or
    sensitive columns, their metrics join the holdout metrics and ``slices.json`` / ``fairness.json`` are written
    (``core.training.slices``, the function the gate scores them with)."""
    try:
        with _openmp_threads(_AFTER_FIT_OPENMP_THREADS), _switch_interval_at_most(_SCORING_SWITCH_INTERVAL):
            if prepared.task_type == CLASSIFICATION:
                predictions, probabilities = _classification_outputs(scorer, x_scored)
                classes = list(scorer.classes_) if probabilities is not None else []
                y_true = prepared.y_test.to_numpy()
                metrics = classification_scores(y_true, predictions, probabilities, classes, notes)
            else:
                metrics, predictions = _regression_metrics(scorer, x_scored, prepared.y_test)
                probabilities, classes = None, []
            if prepared.holdout_groups is not None:
                metrics.update(_group_metrics(prepared, predictions, probabilities, classes, scorer, root))
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


def _group_metrics(
    prepared: PreparedTraining, predictions: Any, probabilities: Any, classes: list, scorer: Any, root: Path
) -> dict[str, float]:
    from mlops_provider.core.training.slices import score_groups

    if not classes and hasattr(scorer, "classes_"):
        classes = list(scorer.classes_)
    assert prepared.holdout_groups is not None
    report = score_groups(
        prepared.task_type, prepared.y_test.to_numpy(), predictions, probabilities, classes, prepared.holdout_groups,
        slice_columns=prepared.config.slice_columns, sensitive_columns=prepared.config.sensitive_columns,
    )  # fmt: skip
    report.write(root)
    return report.metrics


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
    library), when the estimator's OpenMP runtime is loaded."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()
