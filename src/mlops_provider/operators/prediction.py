"""BatchPredictOperator: score a dataset with a registered model version and write the predictions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_provider import arguments
from mlops_provider.core.errors import ConfigurationError
from mlops_provider.operators.mixins import DATASET_FIELDS, MLFLOW_FIELDS, DatasetHookMixin, MlflowHookMixin

if TYPE_CHECKING:
    from airflow.sdk import Context


class BatchPredictOperator(MlflowHookMixin, DatasetHookMixin):
    """Score ``dataset_uri`` with ``models:/<model_name>@<alias>`` (or a pinned ``version``).

    The output at ``output_uri`` (templated; replaced on rerun, so a retry or a cleared task leaves one copy)
    holds the ``keep_columns`` of the input (default: all), the ``prediction_column``, for classifiers one
    ``probability_<class>`` column per class, and ``model_name`` / ``model_version`` naming the exact version
    that produced each row. The alias is resolved once, at the start, so every row comes from one version.
    Returns ``{output_uri, rows, model_name, model_version, alias}``.
    """

    template_fields: Sequence[str] = (
        "model_name", "alias", "version", "dataset_uri", "output_uri", "keep_columns", *MLFLOW_FIELDS, *DATASET_FIELDS,
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

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.prediction import predict_frame
        from mlops_provider.core.registry import alias_version

        model_name = arguments.model_name(self.model_name)
        version = arguments.optional_text(self.version, "version")
        if version is not None:
            self.mlflow_hook.get_model_version(model_name, version)  # a missing one fails before any read
        else:
            self.mlflow_hook.get_registered_model(model_name)
            version = alias_version(self.mlflow_hook.get_conn(), model_name, self.alias)
            if version is None:
                raise ConfigurationError(
                    f"{model_name}@{self.alias} points at no version: promote a model first, or pass version."
                )
        frame = self.dataset_hook.read(self.dataset_uri)
        model = self.mlflow_hook.load_sklearn_model(f"models:/{model_name}/{version}")
        scored = predict_frame(
            model,
            frame,
            prediction_column=self.prediction_column,
            keep_columns=arguments.optional_list(self.keep_columns, "keep_columns"),
            include_probabilities=self.include_probabilities,
            source=self.dataset_uri,
        )
        scored["model_name"] = model_name
        scored["model_version"] = version
        info = self.dataset_hook.write(scored, self.output_uri)
        self.log.info("Scored %d rows of %s with %s v%s (@%s) into %s.",
                      info.rows, self.dataset_uri, model_name, version, self.alias, self.output_uri)  # fmt: skip
        return {
            "output_uri": self.output_uri,
            "rows": info.rows,
            "model_name": model_name,
            "model_version": version,
            "alias": self.alias,
        }
