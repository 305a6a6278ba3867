"""Step 3 of training, in MLflow: log the run and register the version (``log_and_register``); and the checks an
operator makes before training: the version a retry already registered, runs a dead try left RUNNING, and
whether anything changed since the champion."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import pandas as pd

from mlops_provider.core import tags as tag_names
from mlops_provider.core.fingerprint import canonical_json
from mlops_provider.core.training.config import (
    HOLDOUT_CONTEXT_PATH,
    HOLDOUT_PATH,
    REFERENCE_SAMPLE_PATH,
    TrainingConfig,
    TrainingResult,
)
from mlops_provider.core.training.data import prepare_training
from mlops_provider.core.training.fit import _AFTER_FIT_OPENMP_THREADS, FittedModel, _openmp_threads, fit_model
from mlops_provider.core.training.serialization import _quiet_skops

log = logging.getLogger(__name__)

MODEL_ARTIFACT_NAME = "model"
# What must match the champion for training to be skipped, with the words the log uses for each.
UNCHANGED_KEYS = {
    tag_names.DATA_FINGERPRINT: "data fingerprint",
    tag_names.ESTIMATOR_SPEC: "estimator spec",
    tag_names.TRAINING_CONFIG: "training configuration",
    tag_names.PROVIDER_VERSION: "provider version",
}

_MAX_PARAM_CHARS = 6000
_MAX_PARAMS = 500


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
        **prepared.group_tags(),
        tag_names.DATASET_URI: dataset_uri,
        tag_names.TASK_TYPE: prepared.task_type,
        tag_names.TARGET_COLUMN: prepared.config.target_column,
    }
    run = client.create_run(experiment_id, tags=run_tags, run_name=run_name)
    run_id = run.info.run_id
    artifact_tags = {
        tag_names.REFERENCE_SAMPLE: f"runs:/{run_id}/{REFERENCE_SAMPLE_PATH}",
        tag_names.HOLDOUT: f"runs:/{run_id}/{HOLDOUT_PATH}",
    }
    if len(prepared.holdout_context.columns):
        artifact_tags[tag_names.HOLDOUT_CONTEXT] = f"runs:/{run_id}/{HOLDOUT_CONTEXT_PATH}"
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
        metrics = [Metric(k, v, now, 0, model_id=info.model_id) for k, v in fitted.metrics.items() if math.isfinite(v)]
        metrics.append(Metric("fit_seconds", round(fitted.fit_seconds, 3), now, 0))
        run_params = [Param(k, v) for k, v in params.items()]
        client.log_batch(
            run_id, metrics=metrics, params=run_params[:100], tags=[RunTag(k, v) for k, v in artifact_tags.items()]
        )
        for start in range(100, len(run_params), 100):
            client.log_batch(run_id, params=run_params[start : start + 100])
        client.log_artifacts(run_id, str(fitted.wait_for_artifacts()))
        version = mlflow.register_model(info.model_uri, model_name, tags={**run_tags, **artifact_tags})
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
        **({"slice_columns": ",".join(prepared.config.slice_columns)} if prepared.config.slice_columns else {}),
        **(
            {"sensitive_columns": ",".join(prepared.config.sensitive_columns)}
            if prepared.config.sensitive_columns
            else {}
        ),
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
            client.set_tag(run.info.run_id, tag_names.ABANDONED, reason)
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
        data_fingerprint=version.tags.get(tag_names.DATA_FINGERPRINT, ""),
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
            differences.append(f"the champion has no {key} tag (it was not trained by mlops_provider's training step)")
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
