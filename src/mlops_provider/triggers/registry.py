"""ModelAliasTrigger: wait, in the triggerer, until a registered model's alias points past a version."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

if TYPE_CHECKING:
    from mlops_provider.hooks.mlflow import MlflowHook


class ModelAliasTrigger(BaseTrigger):
    """Polls the MLflow registry every ``poll_interval`` seconds until ``model_name@alias`` points to a version
    greater than ``after_version`` (or to any version when ``after_version`` is None).

    The registry call is a blocking HTTP request; it runs in a worker thread so the triggerer's event loop
    stays free for every other trigger. A server that does not answer (down, restarting, 503) is waited out;
    any other error (a refused login, a deleted model) ends the wait with an error event.
    """

    def __init__(
        self,
        *,
        model_name: str,
        alias: str,
        after_version: str | None,
        mlflow_conn_id: str,
        poll_interval: float = 30.0,
    ) -> None:
        super().__init__()
        self.model_name = model_name
        self.alias = alias
        self.after_version = after_version
        self.mlflow_conn_id = mlflow_conn_id
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "model_name": self.model_name,
                "alias": self.alias,
                "after_version": self.after_version,
                "mlflow_conn_id": self.mlflow_conn_id,
                "poll_interval": self.poll_interval,
            },
        )

    @cached_property
    def hook(self) -> MlflowHook:
        from mlops_provider.hooks.mlflow import MlflowHook

        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id)

    def _current_version(self) -> str | None:
        from mlops_provider.core.registry import alias_version

        return alias_version(self.hook.get_conn(), self.model_name, self.alias)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from asgiref.sync import sync_to_async

        from mlops_provider.core.errors import ServiceUnreachableError

        current_version = sync_to_async(self._current_version)
        while True:
            try:
                version = await current_version()
            except ServiceUnreachableError as error:  # an outage or a restart: the wait outlives it
                self.log.warning("%s Waiting on; next look in %ss.", error, self.poll_interval)
                await asyncio.sleep(self.poll_interval)
                continue
            except Exception as error:  # report to the task instead of dying silently in the triggerer
                yield TriggerEvent({"status": "error", "message": f"{type(error).__name__}: {error}"})
                return
            if is_newer(version, self.after_version):
                yield TriggerEvent(
                    {"status": "success", "model_name": self.model_name, "alias": self.alias, "version": version}
                )
                return
            self.log.info(
                "%s@%s points at version %s; waiting for a version after %s.",
                self.model_name, self.alias, version, self.after_version,
            )  # fmt: skip
            await asyncio.sleep(self.poll_interval)


def is_newer(version: str | None, after_version: str | None) -> bool:
    if version is None:
        return False
    return after_version is None or int(version) > int(after_version)
