"""DriftSensor: wait until the newest data window drifts away from the champion's reference."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from mlops_provider.operators.drift import DriftCheck

if TYPE_CHECKING:
    from airflow.sdk import Context


class DriftSensor(BaseSensorOperator, DriftCheck):
    """Succeed once the newest window under ``current_uri`` shows drift.

    At each poke the sensor picks the newest partition under ``current_uri`` (the last child in name order,
    e.g. ``dt=2026-01-31/``; set ``newest_partition=False`` to check ``current_uri`` itself) and runs the
    same check as DetectDriftOperator (all its arguments apply, see ``DriftCheck``). Drift: the sensor
    succeeds with the check's result as XCom and, with ``on_drift="emit"`` (default), raises the Asset event
    ``mlops://drift/<model_name>``. No drift, or no data yet: it pokes again later. It runs in
    ``reschedule`` mode by default, so it holds no worker slot between pokes, and the statistics always run
    in a worker, never in the triggerer.
    """

    def __init__(self, *, newest_partition: bool = True, mode: str = "reschedule", **kwargs: Any) -> None:
        super().__init__(mode=mode, **kwargs)
        self.newest_partition = newest_partition

    def _window(self) -> str | None:
        if not self.newest_partition:
            return self.current_uri
        partitions = self.dataset_hook.list_partitions(self.current_uri)
        return partitions[-1] if partitions else None

    def poke(self, context: Context) -> PokeReturnValue | bool:
        window = self._window()
        if window is None:
            self.log.info("No window under %s yet; poking again later.", self.current_uri)
            return False
        result = self.run_drift_check(context, window)
        if result is None:
            self.log.info("The newest window %s is empty; poking again later.", window)
            return False
        if not result["drift_detected"]:
            return False
        self.react_to_drift(context, result)
        return PokeReturnValue(is_done=True, xcom_value=result)
