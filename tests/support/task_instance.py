"""A stand-in for the few TaskInstance attributes operators read, to call ``execute()`` or ``poke()`` outside
a DAG run (its XCom pushes are kept in ``xcoms``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TaskInstanceStandIn:
    dag_id: str = "tests"
    run_id: str = "manual__2026-01-01T00:00:00+00:00"
    task_id: str = "train"
    try_number: int = 1
    map_index: int = -1
    xcoms: dict = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


class AssetEvents(list):
    """The events raised on one outlet of ``OutletEventsStandIn``, as ``(uri, extra)`` pairs."""

    def add(self, asset: Any, extra: Any = None, **_: Any) -> None:
        self.append((getattr(asset, "uri", asset), extra))


class OutletEventsStandIn(dict):
    """``context["outlet_events"]``: records every Asset event a task would raise, per outlet."""

    def __missing__(self, key: Any) -> AssetEvents:
        self[key] = AssetEvents()
        return self[key]

    def emitted(self) -> list[tuple[Any, Any]]:
        """Every event, on any outlet: ``(uri, extra)``."""
        return [event for events in self.values() for event in events]
