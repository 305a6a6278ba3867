"""ModelAliasSensor: wait until a registered model's alias points to a newer version."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator

from mlops_provider.hooks.mlflow import MlflowHook
from mlops_provider.triggers.registry import ModelAliasTrigger, is_newer


class ModelAliasSensor(BaseSensorOperator):
    """Succeed when ``model_name@alias`` points to a version newer than ``newer_than``.

    ``newer_than`` (templated) defaults to the version the alias points to when the sensor starts, so the
    sensor waits for the *next* promotion. Deferrable by default: the waiting happens in the triggerer
    (``ModelAliasTrigger`` polls the registry every ``poke_interval`` seconds), holding no worker slot.
    Returns ``{model_name, alias, version, model_uri}``.
    """

    template_fields: Sequence[str] = ("model_name", "alias", "newer_than")
    ui_color = "#c9e4de"

    def __init__(
        self,
        *,
        model_name: str,
        alias: str = "champion",
        newer_than: str | None = None,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        deferrable: bool = True,
        poke_interval: float = 60.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.model_name = model_name
        self.alias = alias
        self.newer_than = newer_than
        self.mlflow_conn_id = mlflow_conn_id
        self.deferrable = deferrable

    def _current(self) -> str | None:
        from mlops_provider.core.registry import alias_version

        return alias_version(MlflowHook(mlflow_conn_id=self.mlflow_conn_id).get_conn(), self.model_name, self.alias)

    def _result(self, version: str) -> dict[str, Any]:
        self.log.info("%s@%s now points at version %s.", self.model_name, self.alias, version)
        return {
            "model_name": self.model_name,
            "alias": self.alias,
            "version": str(version),
            "model_uri": f"models:/{self.model_name}/{version}",
        }

    def execute(self, context: Any) -> Any:
        current = self._current()
        baseline = self.newer_than if self.newer_than not in (None, "", "None") else current
        self.newer_than = baseline
        if baseline is not None and current is not None and is_newer(current, baseline):
            return self._result(current)
        if not self.deferrable:
            return super().execute(context)
        self.log.info("Waiting in the triggerer for %s@%s to move past version %s.", self.model_name, self.alias, baseline)
        self.defer(
            trigger=ModelAliasTrigger(
                model_name=self.model_name,
                alias=self.alias,
                after_version=baseline,
                mlflow_conn_id=self.mlflow_conn_id,
                poll_interval=self.poke_interval,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout) if self.timeout else None,
        )

    def poke(self, context: Any) -> Any:
        from airflow.sdk import PokeReturnValue

        current = self._current()
        if is_newer(current, self.newer_than):
            return PokeReturnValue(is_done=True, xcom_value=self._result(current))
        return False

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        if event.get("status") != "success":
            from airflow.sdk.exceptions import AirflowException

            raise AirflowException(
                f"Waiting for {self.model_name}@{self.alias} failed in the triggerer: {event.get('message')}"
            )
        return self._result(event["version"])
