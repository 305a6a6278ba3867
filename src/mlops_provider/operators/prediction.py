"""BatchPredictOperator: score a dataset with a registered model version and write the predictions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from mlops_provider.core.errors import ConfigurationError
from mlops_provider.hooks.mlflow import MlflowHook


class BatchPredictOperator(BaseOperator):
    """Score ``dataset_uri`` with ``models:/<model_name>@<alias>`` (or a pinned ``version``).

    The output at ``output_uri`` (templated; replaced on rerun, so a retry or a cleared task leaves one copy)
    holds the ``keep_columns`` of the input (default: all), the ``prediction_column``, for classifiers one
    ``probability_<class>`` column per class, and ``model_name`` / ``model_version`` naming the exact version
    that produced each row. The alias is resolved once, at the start, so every row comes from one version.
    Returns ``{output_uri, rows, model_name, model_version, alias}``.
    """

    template_fields: Sequence[str] = ("model_name", "alias", "version", "dataset_uri", "output_uri", "keep_columns")
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
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        aws_conn_id: str | None = "aws_default",
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
        self.mlflow_conn_id = mlflow_conn_id
        self.aws_conn_id = aws_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        from mlops_provider.core.prediction import predict_frame
        from mlops_provider.core.registry import alias_version
        from mlops_provider.hooks.datasets import DatasetHook

        hook = MlflowHook(mlflow_conn_id=self.mlflow_conn_id)
        version = str(self.version) if self.version not in (None, "", "None") else None
        if version is None:
            version = alias_version(hook.get_conn(), self.model_name, self.alias)
            if version is None:
                raise ConfigurationError(
                    f"{self.model_name}@{self.alias} points at no version: promote a model first, or pass version."
                )
        storage = DatasetHook(aws_conn_id=self.aws_conn_id)
        frame = storage.read(self.dataset_uri)
        model = hook.load_sklearn_model(f"models:/{self.model_name}/{version}")
        scored = predict_frame(
            model,
            frame,
            prediction_column=self.prediction_column,
            keep_columns=self.keep_columns,
            include_probabilities=self.include_probabilities,
            source=self.dataset_uri,
        )
        scored["model_name"] = self.model_name
        scored["model_version"] = version
        info = storage.write(scored, self.output_uri)
        self.log.info("Scored %d rows of %s with %s v%s (@%s) into %s.",
                      info.rows, self.dataset_uri, self.model_name, version, self.alias, self.output_uri)  # fmt: skip
        return {
            "output_uri": self.output_uri,
            "rows": info.rows,
            "model_name": self.model_name,
            "model_version": version,
            "alias": self.alias,
        }
