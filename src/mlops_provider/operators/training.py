"""TrainModelOperator: train a scikit-learn model, record everything in MLflow, register a new version."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_provider import arguments
from mlops_provider.core import tags as tag_names
from mlops_provider.core.errors import ConfigurationError
from mlops_provider.links.mlflow import MlflowRunLink, mlflow_run_url
from mlops_provider.links.model_card import ModelCardLink
from mlops_provider.operators.context import task_identity
from mlops_provider.operators.mixins import DATASET_FIELDS, MLFLOW_FIELDS, DatasetHookMixin, MlflowHookMixin

if TYPE_CHECKING:
    from airflow.sdk import Context


class TrainModelOperator(MlflowHookMixin, DatasetHookMixin):
    """Train a model on a dataset, track the run in MLflow and register it as a new version of ``model_name``.

    :param dataset_uri: the training data (templated): a parquet/CSV file or folder, local or ``s3://``,
        e.g. a training set written by ``GetHistoricalFeaturesOperator``.
    :param target_column: the column to predict (templated).
    :param feature_columns: the model's inputs (templated; a list, JSON list or comma-separated string).
        Default: every column except the target, ``id_columns``, ``timestamp_column`` and date/time columns.
    :param id_columns: identifier columns that are never features (e.g. ``["customer_id"]``).
    :param timestamp_column: when given, the most recent ``test_size`` share of rows (by this column) is held
        out; otherwise a seeded random split, stratified by class for classification.
    :param estimator: import path of a scikit-learn estimator class (``sklearn.ensemble.RandomForestClassifier``)
        or of a function returning a complete ``Pipeline``. Default: ``HistGradientBoostingClassifier`` or
        ``HistGradientBoostingRegressor`` for the task type. An estimator class gets automatic preprocessing
        (numerics: median imputation + scaling; categoricals: most-frequent imputation + one-hot, unknown
        categories ignored); a pipeline factory's pipeline is used as returned.
    :param estimator_params: keyword arguments for the estimator class or the pipeline factory (templated;
        a dict or its JSON text).
    :param problem_type: ``classification`` or ``regression`` (named so because ``task_type`` is an Airflow
        operator attribute); default: the estimator's kind, else inferred from the target (text, bool,
        category, or integers with <= 20 distinct values: classification).
    :param model_name: the registered model that receives the new version (templated).
    :param experiment_name: the MLflow experiment of the runs (default: ``model_name``).
    :param champion_alias: the alias whose version is compared with this training (default ``champion``).
    :param skip_if_unchanged: skip training when the data fingerprint, estimator spec, training configuration
        and provider version equal the champion's; the result then points at the champion.
    :param test_size: share of rows held out for the metrics (default 0.2).
    :param random_state: seed of the split and of every ``random_state`` the estimator leaves unset.
    :param reference_sample_rows: at most this many training rows are stored as the reference sample for
        drift checks (default 50,000).
    :param gate_metrics: the metrics the gate after this task will compare (templated list); a metric the
        model's task type is not scored on (``rmse`` for a classifier) fails here, before anything is trained.
    :param slice_columns: columns whose groups get their own holdout metrics (templated list):
        ``slice.<column>.<value>.<metric>`` and ``slice.<column>.worst_<metric>``, and ``slices.json``.
    :param sensitive_columns: columns whose groups are compared with fairlearn (templated list):
        ``fairness.<column>.demographic_parity_difference`` / ``equalized_odds_difference`` (binary
        classification) and ``fairness.<column>.worst_group_<metric>``, and ``fairness.<column>`` in
        ``fairness.json``. Groups with fewer than 30 holdout rows are listed but not measured; a column with more
        than 50 distinct values is refused. See ``docs/operators/training.md``.
    :param pip_requirements: requirements recorded with the model; default: pinned numpy, pandas,
        scikit-learn, scipy and skops when the model holds only their objects, else MLflow's inference.
    :param model_owner / model_purpose / known_limits: who answers for the model, what it is for, and what it
        should not be used for (templated text), recorded on the version and shown on its model card. Default
        owner and purpose: the registered model's ``mlops.owner``/``mlops.purpose`` tags or description, else
        the fleet catalogue entry's ``owners``/``description``.
    :param aws_conn_id: the ``aws`` connection for ``s3://`` data.
    :param mlflow_conn_id: the ``mlflow`` connection (default ``mlflow_default``; embedded store without it).

    Returns ``{model_name, version, run_id, model_uri, metrics, data_fingerprint, skipped, experiment_id,
    outcome, reason}``; ``outcome`` is ``trained``, ``reused`` (a retry found the version an earlier try of
    this task registered) or ``skipped`` (unchanged since the champion).
    """

    template_fields: Sequence[str] = (
        "dataset_uri",
        "target_column",
        "feature_columns",
        "id_columns",
        "timestamp_column",
        "estimator",
        "estimator_params",
        "problem_type",
        "model_name",
        "experiment_name",
        "champion_alias",
        "gate_metrics",
        "slice_columns",
        "sensitive_columns",
        "model_owner",
        "model_purpose",
        "known_limits",
        *MLFLOW_FIELDS,
        *DATASET_FIELDS,
    )
    template_fields_renderers = {"estimator_params": "json"}
    operator_extra_links = (MlflowRunLink(), ModelCardLink())
    ui_color = "#cfe8d5"

    def __init__(
        self,
        *,
        dataset_uri: str,
        target_column: str,
        model_name: str,
        feature_columns: list[str] | str | None = None,
        id_columns: list[str] | str | None = None,
        timestamp_column: str | None = None,
        estimator: str | None = None,
        estimator_params: dict[str, Any] | str | None = None,
        problem_type: str | None = None,
        experiment_name: str | None = None,
        champion_alias: str = "champion",
        skip_if_unchanged: bool = True,
        test_size: float = 0.2,
        random_state: int = 42,
        reference_sample_rows: int = 50_000,
        pip_requirements: list[str] | None = None,
        gate_metrics: list[str] | str | None = None,
        slice_columns: list[str] | str | None = None,
        sensitive_columns: list[str] | str | None = None,
        model_owner: str | None = None,
        model_purpose: str | None = None,
        known_limits: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not model_name:
            raise ConfigurationError("model_name is empty; name the registered model that receives the versions.")
        if arguments.is_literal(model_name):
            arguments.model_name(model_name)  # a bad name fails when the DAG is parsed
        if isinstance(test_size, bool) or not isinstance(test_size, (int, float)) or not 0 < test_size < 1:
            raise ConfigurationError(f"test_size={test_size!r} must be a fraction between 0 and 1 (e.g. 0.2).")
        if (
            isinstance(reference_sample_rows, bool)
            or not isinstance(reference_sample_rows, int)
            or reference_sample_rows < 1
        ):
            raise ConfigurationError(f"reference_sample_rows={reference_sample_rows!r} must be a positive integer.")
        self.dataset_uri = dataset_uri
        self.target_column = target_column
        self.model_name = model_name
        self.feature_columns = feature_columns
        self.id_columns = id_columns
        self.timestamp_column = timestamp_column
        self.estimator = estimator
        self.estimator_params = estimator_params
        self.problem_type = problem_type
        self.experiment_name = experiment_name
        self.champion_alias = champion_alias
        self.skip_if_unchanged = skip_if_unchanged
        self.test_size = test_size
        self.random_state = random_state
        self.reference_sample_rows = reference_sample_rows
        self.pip_requirements = pip_requirements
        self.gate_metrics = gate_metrics
        self.slice_columns = slice_columns
        self.sensitive_columns = sensitive_columns
        self.model_owner = model_owner
        self.model_purpose = model_purpose
        self.known_limits = known_limits

    def training_config(self) -> Any:
        """The rendered arguments as a ``core.training.TrainingConfig`` (strings from templates parsed)."""
        from mlops_provider.core.training import TrainingConfig

        task_type = arguments.optional_text(self.problem_type, "problem_type")
        return TrainingConfig(
            target_column=arguments.required_text(self.target_column, "target_column"),
            feature_columns=arguments.optional_list(self.feature_columns, "feature_columns") or None,
            id_columns=arguments.optional_list(self.id_columns, "id_columns") or [],
            timestamp_column=arguments.optional_text(self.timestamp_column, "timestamp_column"),
            estimator=arguments.optional_text(self.estimator, "estimator"),
            estimator_params=arguments.optional_dict(self.estimator_params, "estimator_params") or {},
            problem_type=task_type.lower() if task_type else None,
            test_size=float(self.test_size),
            random_state=int(self.random_state),
            reference_sample_rows=int(self.reference_sample_rows),
            pip_requirements=list(self.pip_requirements) if self.pip_requirements is not None else None,
            slice_columns=arguments.optional_list(self.slice_columns, "slice_columns") or [],
            sensitive_columns=arguments.optional_list(self.sensitive_columns, "sensitive_columns") or [],
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core import training as core

        self.model_name = arguments.model_name(self.model_name)
        self.dataset_uri = arguments.required_text(self.dataset_uri, "dataset_uri")
        self.experiment_name = arguments.optional_text(self.experiment_name, "experiment_name")
        config = self.training_config()
        config.validate()
        hook = self.mlflow_hook
        identity = task_identity(context)
        tags = identity.run_tags()
        client = hook.get_conn()

        earlier = core.find_task_version(client, self.model_name, identity.key_tags())
        if earlier is not None:
            earlier_try = earlier.tags.get(tag_names.AIRFLOW_TRY_NUMBER)
            result = core.result_from_version(
                client,
                earlier,
                outcome="reused",
                reason=f"version {earlier.version} was registered by try {earlier_try} of this task in this DAG run",
            )
            self.log.info(
                "Not training again: %s version %s was already registered by try %s of this task for DAG run %s "
                "(run %s). Returning it.",
                self.model_name, result.version, earlier.tags.get(tag_names.AIRFLOW_TRY_NUMBER), identity.run_id,
                result.run_id,
            )  # fmt: skip
            return self._finish(context, hook, result)

        frame = self.dataset_hook.read(self.dataset_uri)
        prepared = core.prepare_training(frame, config)
        gate_metrics = arguments.optional_list(self.gate_metrics, "gate_metrics")
        if gate_metrics:
            from mlops_provider.core.registry import check_scored_metrics

            check_scored_metrics(
                dict.fromkeys(gate_metrics, {}), prepared.task_type,
                slice_columns=config.slice_columns, sensitive_columns=config.sensitive_columns,
            )  # fmt: skip
        self.log.info(
            "Training data %s: %d rows, %s task, features %s; data fingerprint %s.",
            self.dataset_uri, prepared.rows, prepared.task_type, prepared.features, prepared.data_fingerprint,
        )  # fmt: skip

        why = "skip_if_unchanged=False"
        if self.skip_if_unchanged:
            champion = hook.get_version_by_alias(self.model_name, self.champion_alias)
            if champion is None:
                why = f"no {self.model_name}@{self.champion_alias} to compare with"
                self.log.info("No %s@%s yet: training.", self.model_name, self.champion_alias)
            else:
                differences = core.differences_from_champion(champion.tags, prepared.unchanged_tags())
                if not differences:
                    reason = (
                        f"{self.model_name} version {champion.version} (@{self.champion_alias}) was trained on the "
                        f"same data ({prepared.data_fingerprint}), the same estimator spec and training "
                        f"configuration, with provider version {champion.tags.get(core.TAG_PROVIDER_VERSION)}"
                    )
                    self.log.info("Training skipped: %s. Set skip_if_unchanged=False to train anyway.", reason)
                    result = core.result_from_version(client, champion, outcome="skipped", reason=reason)
                    return self._finish(context, hook, result)
                why = f"version {champion.version} (@{self.champion_alias}) differs: {'; '.join(differences)}"
                self.log.info("Training: %s %s.", self.model_name, why)

        experiment_id = hook.get_or_create_experiment(self.experiment_name or self.model_name)
        fitted = core.fit_model(prepared)
        try:
            abandoned = core.abandon_unfinished_runs(
                client,
                experiment_id,
                identity.key_tags(),
                reason=f"left RUNNING by an earlier try; superseded by try {identity.try_number}",
            )
            if abandoned:
                self.log.warning(
                    "Marked FAILED the run(s) %s that an earlier try of this task left unfinished without "
                    "registering a version.", abandoned,
                )  # fmt: skip
            tags.update(self._card_tags(frame, config))
            with hook.session() as session_client:
                result = core.log_and_register(
                    session_client,
                    fitted,
                    experiment_id=experiment_id,
                    model_name=self.model_name,
                    tags=tags,
                    dataset_uri=self.dataset_uri,
                    run_name=f"{self.model_name} {identity.dag_id}.{identity.task_id} {identity.run_id}",
                )
        finally:
            fitted.close()
        result = dataclasses.replace(result, reason=f"{result.reason}; {why}")
        self.log.info(
            "Registered %s version %s from run %s: %s trained on %d rows (%s split), held-out metrics %s. %s",
            result.model_name, result.version, result.run_id, prepared.estimator.import_path,
            prepared.split["train_rows"], prepared.split["method"],
            ", ".join(f"{k}={v:.4g}" for k, v in result.metrics.items()), " ".join(fitted.notes),
        )  # fmt: skip
        return self._finish(context, hook, result)

    def _finish(self, context: Context, hook: Any, result: Any) -> dict[str, Any]:
        url = mlflow_run_url(hook.settings.base_ui_url, result.experiment_id, result.run_id)
        MlflowRunLink.persist(context, url)
        if url:
            self.log.info("MLflow run: %s", url)
        self._model_card(context, hook, result)
        return result.to_dict()

    def _card_tags(self, frame: Any, config: Any) -> dict[str, str]:
        """What the model card shows that only this task knows: the people's words and the data's time span;
        recorded with the run and the version, so a card regenerated later still has them."""
        import json

        from mlops_provider.core.model_card import data_time_range

        found = {
            tag_names.OWNER: arguments.optional_text(self.model_owner, "model_owner"),
            tag_names.PURPOSE: arguments.optional_text(self.model_purpose, "model_purpose"),
            tag_names.KNOWN_LIMITS: arguments.optional_text(self.known_limits, "known_limits"),
        }
        span = data_time_range(frame, config.timestamp_column)
        if span:
            found[tag_names.DATA_TIME_RANGE] = json.dumps(span)
        return {k: v[:5000] for k, v in found.items() if v}

    def _model_card(self, context: Context, hook: Any, result: Any) -> None:
        from mlops_provider.operators.model_card import refresh_model_cards

        if result.outcome == "skipped":  # nothing changed for the champion: its card stands, unless it has none
            from mlops_provider.core.model_card import card_ui_url

            try:
                has_card = bool(hook.get_model_version(result.model_name, result.version).tags.get(tag_names.CARD_URI))
            except Exception as error:  # a link is not worth failing a task that had nothing to do
                self.log.warning("Could not read %s v%s's card: %s", result.model_name, result.version, error)
                has_card = False
            if has_card:
                url = card_ui_url(hook.settings.base_ui_url, result.experiment_id, result.run_id)
                ModelCardLink.persist(context, url)
                return
        refresh_model_cards(
            self, context, hook, result.model_name, [result.version], trigger="registration",
            link_version=result.version,
        )  # fmt: skip
