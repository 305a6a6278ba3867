"""Which Asset event a run answers: its own triggering event, else the newest one recorded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_provider import arguments
from mlops_provider.core.errors import ConfigurationError, DataStateError
from mlops_provider.operators.mixins import ResultOperator

if TYPE_CHECKING:
    from airflow.sdk import Asset, Context


def newest_event(context: Context, asset: Asset, *, declare: str, producer: str) -> dict[str, Any]:
    """The event of ``asset`` this run answers, as ``{**extra, event_id, timestamp, triggered_by_event}``.

    A run the scheduler created from the asset reads its ``triggering_asset_events``; a run started by hand (or
    by ``dag.test``) falls back to the newest event of the asset, which the calling task must declare in
    ``inlets`` (``declare`` says how, ``producer`` what raises the events, for the error messages).
    """
    triggering = context.get("triggering_asset_events") or {}
    events = list(triggering[asset]) if asset in triggering else []
    triggered = bool(events)
    if not events:
        try:
            events = list(context["inlet_events"][asset])
        except KeyError as error:
            raise ConfigurationError(
                f"This run was not triggered by {asset.uri} and the task does not declare it in inlets; add "
                f"inlets=[{declare}] to read the newest event."
            ) from error
    if not events:
        raise DataStateError(f"No event of {asset.uri} is recorded yet: run {producer} first, or trigger from one.")
    event = max(events, key=lambda e: e.timestamp)
    return {
        **dict(event.extra or {}),
        "event_id": getattr(event, "id", None),
        "timestamp": event.timestamp.isoformat(),
        "triggered_by_event": triggered,
    }


class AssetEventOperator(ResultOperator):
    """The base of the operators that say which event of a model's Asset a run answers (drift, performance).

    Declares the asset as its inlet, so a run started by hand reads the newest event; a run the asset started
    reads its triggering event. Subclasses name the asset (``asset``) and add what their event means.
    """

    template_fields: Sequence[str] = ("model_name",)
    producer = "the task that raises it"

    def __init__(self, *, model_name: str, **kwargs: Any) -> None:
        model_name = arguments.model_name(model_name)  # it names the inlet Asset, so it is known at parse time
        kwargs.setdefault("inlets", [self.asset(model_name)])
        super().__init__(**kwargs)
        self.model_name = model_name

    @staticmethod
    def asset(model_name: str) -> Asset:
        raise NotImplementedError

    def event(self, context: Context) -> dict[str, Any]:
        asset = self.asset(self.model_name)
        declare = f"{asset.name.split(':', 1)[0]}_asset({self.model_name!r})"
        return newest_event(context, asset, declare=declare, producer=self.producer)
