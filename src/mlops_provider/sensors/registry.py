"""ModelAliasSensor: wait until a registered model's alias points to a newer version."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator

from mlops_provider import arguments
from mlops_provider.core.errors import ConfigurationError
from mlops_provider.operators.mixins import MLFLOW_FIELDS, MlflowHookMixin, default_deferrable
from mlops_provider.triggers.registry import ModelAliasTrigger, is_newer

if TYPE_CHECKING:
    from airflow.sdk import Context


class ModelAliasSensor(MlflowHookMixin, BaseSensorOperator):
    """Succeed when ``model_name@alias`` points to a version newer than ``newer_than``.

    ``newer_than`` (templated) defaults to the version the alias points to when the sensor starts, so the
    sensor waits for the *next* promotion. With ``deferrable=True`` (default: the platform's
    ``[operators] default_deferrable``) the waiting happens in the triggerer (``ModelAliasTrigger`` polls the
    registry every ``poke_interval`` seconds), holding no worker slot.
    Returns ``{model_name, alias, version, model_uri}``.
    """

    template_fields: Sequence[str] = ("model_name", "alias", "newer_than", *MLFLOW_FIELDS)
    ui_color = "#c9e4de"

    def __init__(
        self,
        *,
        model_name: str,
        alias: str = "champion",
        newer_than: str | None = None,
        deferrable: bool = default_deferrable(),
        poke_interval: float = 60.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.model_name = model_name
        self.alias = alias
        self.newer_than = newer_than
        self.deferrable = deferrable

    def _current(self) -> str | None:
        from mlops_provider.core.registry import alias_version

        if not getattr(self, "_inputs_checked", False):
            self._check_inputs()
        return alias_version(self.mlflow_hook.get_conn(), self.model_name, self.alias)

    def _check_inputs(self) -> None:
        """Before the first look: a misspelt model or version would otherwise be waited for until the timeout."""
        self.model_name = arguments.model_name(self.model_name)
        self.alias = arguments.required_text(self.alias, "alias")
        newer_than = arguments.optional_text(self.newer_than, "newer_than")
        if newer_than is not None and not newer_than.isdigit():
            raise ConfigurationError(
                f"newer_than={newer_than!r} is not a version number; give the version to wait past (e.g. '3'), "
                "or leave it unset to wait for the next promotion."
            )
        self.newer_than = newer_than
        self.mlflow_hook.get_registered_model(self.model_name)
        self._inputs_checked = True

    def _result(self, version: str) -> dict[str, Any]:
        self.log.info("%s@%s now points at version %s.", self.model_name, self.alias, version)
        return {
            "model_name": self.model_name,
            "alias": self.alias,
            "version": str(version),
            "model_uri": f"models:/{self.model_name}/{version}",
        }

    def execute(self, context: Context) -> Any:
        current = self._current()
        baseline = arguments.optional_text(self.newer_than, "newer_than") or current
        self.newer_than = baseline
        if baseline is not None and current is not None and is_newer(current, baseline):
            return self._result(current)
        if not self.deferrable:
            return super().execute(context)
        self.log.info(
            "Waiting in the triggerer for %s@%s to move past version %s.", self.model_name, self.alias, baseline
        )
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

    def poke(self, context: Context) -> Any:
        from airflow.sdk import PokeReturnValue

        current = self._current()
        if current is not None and is_newer(current, self.newer_than):
            return PokeReturnValue(is_done=True, xcom_value=self._result(current))
        return False

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        if not isinstance(event, dict) or event.get("status") != "success" or not event.get("version"):
            from airflow.sdk.exceptions import AirflowException

            raise AirflowException(
                f"Waiting for {self.model_name}@{self.alias} failed in the triggerer: "
                f"{event.get('message') if isinstance(event, dict) else f'unexpected event {event!r}'}"
            )
        return self._result(event["version"])
