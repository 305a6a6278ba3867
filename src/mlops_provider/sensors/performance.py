"""PerformanceSensor: wait until enough labels have arrived to judge a window of predictions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from mlops_provider.operators.performance import LiveWindow

if TYPE_CHECKING:
    from airflow.sdk import Context


class PerformanceSensor(BaseSensorOperator, LiveWindow):
    """Succeed once the champion's predictions of the window have at least ``min_rows`` labels.

    Same data arguments as EvaluateLivePerformanceOperator (see ``LiveWindow``): put it before that operator
    so the evaluation runs when there is evidence to judge, instead of reporting "insufficient evidence". It
    runs in ``reschedule`` mode by default (labels take hours or days; no worker slot is held between
    pokes). Returns ``{labelled_rows, versions, window_start, window_end}``.
    """

    def __init__(self, *, mode: str = "reschedule", poke_interval: float = 3600, **kwargs: Any) -> None:
        super().__init__(mode=mode, poke_interval=poke_interval, **kwargs)

    def poke(self, context: Context) -> PokeReturnValue | bool:
        joined, start, end, empty_reason, _ids = self.labelled_predictions(context, missing_is_empty=True)
        window = f"[{start.isoformat()}, {end.isoformat()})"
        if joined.empty:
            self.log.info("No labelled prediction of %s in %s yet: %s.", self.model_name, window, empty_reason)
            return False
        champion = self.mlflow_hook.get_version_by_alias(self.model_name, self.champion_alias)
        served = joined[joined["role"] == "served"]
        counts = {str(v): int(n) for v, n in joined["model_version"].value_counts().items()}
        if champion is not None and str(champion.version) in set(served["model_version"].astype(str)):
            labelled = counts.get(str(champion.version), 0)
        else:
            labelled = int(served["model_version"].value_counts().max()) if len(served) else 0
        self.log.info(
            "%s: %d labelled predictions of the served model in %s (need %d); per version: %s.",
            self.model_name, labelled, window, self.min_rows, counts,
        )  # fmt: skip
        if labelled < int(self.min_rows or 1):
            return False
        return PokeReturnValue(
            is_done=True,
            xcom_value={
                "labelled_rows": labelled,
                "versions": counts,
                "window_start": start.isoformat(),
                "window_end": end.isoformat(),
            },
        )
