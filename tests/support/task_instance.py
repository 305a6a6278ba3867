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
