"""BatchPredictOperator: score a dataset with a registered model version and write the predictions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from mlops_provider import arguments
from mlops_provider.core.errors import ConfigurationError
from mlops_provider.operators.context import report_location
from mlops_provider.operators.mixins import DATASET_FIELDS, MLFLOW_FIELDS, DatasetHookMixin, MlflowHookMixin

if TYPE_CHECKING:
    from airflow.sdk import Context


@dataclass(frozen=True)
class _Scorer:
    """One model version that scores the input: the served one or a shadow."""

    version: str
    role: str
    alias: str  # the alias it was resolved from; "" when pinned


class BatchPredictOperator(MlflowHookMixin, DatasetHookMixin):
    """Score ``dataset_uri`` with ``models:/<model_name>@<alias>`` (or a pinned ``version``).

    The output at ``output_uri`` (templated; replaced on rerun, so a retry or a cleared task leaves one copy)
    holds the ``keep_columns`` of the input (default: all), the ``prediction_column``, for classifiers one
    ``probability_<class>`` column per class, and ``model_name`` / ``model_version`` naming the exact version
    that produced each row. The alias is resolved once, at the start, so every row comes from one version.

    The prediction log (``core.performance.log``), for joining the labels that arrive later:

    :param id_columns: the columns that identify a row (templated; the key the labels will carry). Giving them
        switches the log on; they are required when a log is written.
    :param prediction_log_uri: the log's root folder, local or ``s3://`` (templated). Default: with
        ``id_columns``, ``$MLOPS_HOME/prediction_log``; ``False`` turns the log off. Each run writes one file,
        ``{root}/{model}/dt={UTC date}/{dag_id}__{run_id}__{task_id}.parquet``, replaced on rerun.
    :param shadow_aliases: aliases of versions that score the same rows on the side (templated); their rows go
        to the same log file with role ``shadow`` and never to ``output_uri``. An alias that points at no version
        is skipped with a warning (a challenger may not exist yet); one that points at the served version is
        skipped (its rows are logged once, as served).
    :param shadow_versions: version numbers that score on the side in the same way (templated).
    :param prediction_time: the time the rows are logged at (templated; ISO 8601 with a time zone). Default: the
        run's ``data_interval_end``, else its ``logical_date``, else its ``run_after``, else now, so that a rerun
        writes the same log.

    Every model is loaded and every score computed before anything is written; then the output, then the log.
    Returns ``{output_uri, rows, model_name, model_version, alias, prediction_log_uri, shadow_versions}``
    (``prediction_log_uri``: the file written, or None).
    """

    template_fields: Sequence[str] = (
        "model_name", "alias", "version", "dataset_uri", "output_uri", "keep_columns", "id_columns",
        "prediction_log_uri", "shadow_aliases", "shadow_versions", "prediction_time", *MLFLOW_FIELDS, *DATASET_FIELDS,
    )  # fmt: skip
    ui_color = "#dcd3f0"

    def __init__(
        self,
        *,
        model_name: str,
        dataset_uri: str,
        output_uri: str,
        alias: str = "champion",
        version: str | int | None = None,
        prediction_column: str = "prediction",
        keep_columns: list[str] | None = None,
        include_probabilities: bool = True,
        id_columns: list[str] | str | None = None,
        prediction_log_uri: str | bool | None = None,
        shadow_aliases: list[str] | str | None = None,
        shadow_versions: list[str | int] | str | None = None,
        prediction_time: str | datetime | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.dataset_uri = dataset_uri
        self.output_uri = output_uri
        self.alias = alias
        self.version = version
        self.prediction_column = prediction_column
        self.keep_columns = keep_columns
        self.include_probabilities = include_probabilities
        self.id_columns = id_columns
        self.prediction_log_uri = prediction_log_uri
        self.shadow_aliases = shadow_aliases
        self.shadow_versions = shadow_versions
        self.prediction_time = prediction_time
        names = ("id_columns", "prediction_log_uri", "shadow_aliases", "shadow_versions")
        if all(arguments.is_literal(getattr(self, name)) for name in names):
            self._log_settings()  # literal settings are checked when the DAG is parsed

    def _log_settings(self) -> tuple[str | None, list[str], list[str], list[str]]:
        """``(log root or None when off, id_columns, shadow aliases, shadow versions)``, checked together."""
        from mlops_provider.core.performance.log import log_root

        id_columns = arguments.optional_list(self.id_columns, "id_columns") or []
        shadow_aliases = arguments.optional_list(self.shadow_aliases, "shadow_aliases") or []
        shadow_versions = arguments.optional_list(self.shadow_versions, "shadow_versions") or []
        bad = [v for v in shadow_versions if not v.strip().isdigit() or int(v) < 1]
        if bad:
            raise ConfigurationError(f"shadow_versions holds {bad!r}, which are not version numbers; give e.g. [3, 4].")
        shadow_versions = [str(int(v)) for v in shadow_versions]
        setting = self.prediction_log_uri
        if isinstance(setting, str) and setting.strip().lower() in arguments.FALSE_TEXT | arguments.TRUE_TEXT:
            setting = setting.strip().lower() in arguments.TRUE_TEXT
        if setting is False:
            root = None
        elif setting is True or arguments.is_unset(setting):
            root = log_root(None) if (id_columns or setting is True) else None
        else:
            root = log_root(arguments.required_text(setting, "prediction_log_uri"))
        if root is not None and not id_columns:
            raise ConfigurationError(
                f"A prediction log is written (prediction_log_uri={self.prediction_log_uri!r}) but id_columns is not "
                "given; name the columns that identify a row (the key the labels will carry), e.g. "
                "id_columns=['customer_id'], or pass prediction_log_uri=False."
            )
        if root is None and (shadow_aliases or shadow_versions):
            raise ConfigurationError(
                "shadow_aliases / shadow_versions are given but no prediction log is written, and shadow rows go "
                "only to the log; give id_columns (and prediction_log_uri, or the default root), or drop the shadows."
            )
        return root, id_columns, shadow_aliases, shadow_versions

    def _prediction_time(self, context: Context) -> datetime:
        from mlops_provider.core.performance.log import utc_timestamp

        if not arguments.is_unset(self.prediction_time):
            return utc_timestamp(self.prediction_time, "prediction_time", error=ConfigurationError).to_pydatetime()
        run_after = getattr(context.get("dag_run"), "run_after", None)
        for name, value in (
            ("data_interval_end", context.get("data_interval_end")),
            ("logical_date", context.get("logical_date")),
            ("run_after", run_after),
        ):
            if isinstance(value, datetime):  # the run's own times: a rerun logs at the same time
                return utc_timestamp(value, f"the run's {name}", error=ConfigurationError).to_pydatetime()
        return datetime.now(timezone.utc)

    def _resolve(self, model_name: str, shadow_aliases: list[str], shadow_versions: list[str]) -> list[_Scorer]:
        """The served version, then each shadow version to score (each version once)."""
        from mlops_provider.core.registry import alias_version

        version = arguments.optional_text(self.version, "version")
        if version is not None:
            self.mlflow_hook.get_model_version(model_name, version)  # a missing one fails before any read
            scorers = [_Scorer(version, "served", "")]
        else:
            self.mlflow_hook.get_registered_model(model_name)
            version = alias_version(self.mlflow_hook.get_conn(), model_name, self.alias)
            if version is None:
                raise ConfigurationError(
                    f"{model_name}@{self.alias} points at no version: promote a model first, or pass version."
                )
            scorers = [_Scorer(version, "served", str(self.alias))]
        for alias in shadow_aliases:
            shadow = alias_version(self.mlflow_hook.get_conn(), model_name, alias)
            if shadow is None:
                self.log.warning("Shadow alias %s@%s points at no version: skipped (no challenger yet?).",
                                 model_name, alias)  # fmt: skip
            elif any(s.version == shadow for s in scorers):
                self.log.info("Shadow alias %s@%s is version %s, scored already: skipped.", model_name, alias, shadow)
            else:
                scorers.append(_Scorer(shadow, "shadow", alias))
        for shadow in shadow_versions:
            if any(s.version == shadow for s in scorers):
                self.log.info("Shadow version %s of %s is scored already: skipped.", shadow, model_name)
                continue
            self.mlflow_hook.get_model_version(model_name, shadow)
            scorers.append(_Scorer(shadow, "shadow", ""))
        return scorers

    def _load(self, model_name: str, scorer: _Scorer) -> Any:
        from mlflow.exceptions import MlflowException

        uri = f"models:/{model_name}/{scorer.version}"
        try:
            return self.mlflow_hook.load_sklearn_model(uri)
        except MlflowException as error:
            source = f"@{scorer.alias}" if scorer.alias else "pinned"
            raise ConfigurationError(
                f"Could not load {uri} (the {scorer.role} version, {source}): {error.message}. Nothing was written; "
                "check that the version's artifacts exist and hold a scikit-learn model (register it from a training "
                f"run), or score without it{' (shadow_aliases / shadow_versions)' if scorer.role == 'shadow' else ''}."
            ) from error

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.datasets import parse_uri
        from mlops_provider.core.performance.log import (
            check_id_columns,
            prediction_log_file,
            prediction_log_rows,
            write_prediction_log,
        )
        from mlops_provider.core.prediction import predict_frame, score_frame

        model_name = arguments.model_name(self.model_name)
        root, id_columns, shadow_aliases, shadow_versions = self._log_settings()
        log_uri, prediction_time = None, None
        if root is not None:
            prediction_time = self._prediction_time(context)
            log_uri = prediction_log_file(root, model_name, prediction_time, **report_location(context))
        scorers = self._resolve(model_name, shadow_aliases, shadow_versions)
        frame = self.dataset_hook.read(self.dataset_uri)
        if log_uri is not None:
            id_columns = check_id_columns(frame, id_columns, self.dataset_uri)
        models = {s.version: self._load(model_name, s) for s in scorers}
        served = scorers[0]
        scores = {
            s.version: score_frame(models[s.version], frame, include_probabilities=True, source=self.dataset_uri)
            for s in scorers
        }
        scored = predict_frame(
            models[served.version],
            frame,
            prediction_column=self.prediction_column,
            keep_columns=arguments.optional_list(self.keep_columns, "keep_columns"),
            include_probabilities=self.include_probabilities,
            source=self.dataset_uri,
            scores=scores[served.version],
        )
        scored["model_name"] = model_name
        scored["model_version"] = served.version
        log_rows = None
        if log_uri is not None:
            import pandas as pd

            log_rows = pd.concat(
                [
                    prediction_log_rows(
                        frame,
                        scores[s.version],
                        id_columns=id_columns,
                        prediction_time=prediction_time,
                        model_name=model_name,
                        model_version=s.version,
                        role=s.role,
                        alias=s.alias,
                        source=self.dataset_uri,
                    )  # fmt: skip
                    for s in scorers
                ],
                ignore_index=True,
            )
        info = self.dataset_hook.write(scored, self.output_uri)
        self.log.info("Scored %d rows of %s with %s v%s (@%s) into %s.",
                      info.rows, self.dataset_uri, model_name, served.version, self.alias, self.output_uri)  # fmt: skip
        shadows = [s.version for s in scorers[1:]]
        if log_uri is not None and log_rows is not None:  # the output first: a log row always has its output row
            s3_client = self.dataset_hook.s3_client if parse_uri(log_uri).scheme == "s3" else None
            logged = write_prediction_log(log_rows, log_uri, s3_client=s3_client)
            self.log.info("Logged %d predictions (served v%s, shadow versions %s) to %s.",
                          logged, served.version, shadows or "none", log_uri)  # fmt: skip
        return {
            "output_uri": self.output_uri,
            "rows": info.rows,
            "model_name": model_name,
            "model_version": served.version,
            "alias": self.alias,
            "prediction_log_uri": log_uri,
            "shadow_versions": shadows,
        }
