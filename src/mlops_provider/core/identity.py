"""Which task try did something: one identity for MLflow tags, promotion history, lock owners and replays.

A retry or a cleared rerun of a task in the same DAG run has the same ``key`` (only ``try_number`` differs),
so "did this task already do it in this run" is one comparison of keys wherever it is asked: the version
training registered, the gate decision, the alias move.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops_provider.core import tags


@dataclass(frozen=True)
class TaskIdentity:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1
    try_number: int = 1

    @property
    def key(self) -> dict[str, str]:
        """What a retry shares with the try before it (everything but the try number), as text."""
        return {"dag_id": self.dag_id, "run_id": self.run_id, "task_id": self.task_id, "map_index": str(self.map_index)}

    def same_task(self, recorded: Mapping[str, Any] | None) -> bool:
        """True when ``recorded`` (a ``key``/``actor`` dict read back from MLflow) names this task in this run."""
        if not recorded:
            return False
        return all(str(recorded.get(name, "-1" if name == "map_index" else None)) == value
                   for name, value in self.key.items())  # fmt: skip

    @property
    def owner(self) -> str:
        """A readable holder name for locks and logs."""
        mapped = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}/{self.run_id}/{self.task_id}{mapped} try {self.try_number}"

    def actor(self, **extra: str) -> dict[str, str]:
        """Who did it, for the promotion history and gate tags: the key, the try and any extra (user, approver)."""
        return {**self.key, "try_number": str(self.try_number), **{k: v for k, v in extra.items() if v}}

    def run_tags(self) -> dict[str, str]:
        """MLflow tags that tie a run, version or report to this task try."""
        from mlops_provider import __version__

        return {
            tags.AIRFLOW_DAG_ID: self.dag_id,
            tags.AIRFLOW_RUN_ID: self.run_id,
            tags.AIRFLOW_TASK_ID: self.task_id,
            tags.AIRFLOW_TRY_NUMBER: str(self.try_number),
            tags.AIRFLOW_MAP_INDEX: str(self.map_index),
            tags.PROVIDER_VERSION: __version__,
        }

    def key_tags(self) -> dict[str, str]:
        """The ``run_tags`` a retry shares with earlier tries: what to search MLflow for."""
        run_tags = self.run_tags()
        return {name: run_tags[name] for name in tags.AIRFLOW_TASK_KEY}

    @classmethod
    def from_tags(cls, values: Mapping[str, str]) -> TaskIdentity | None:
        """The identity recorded in MLflow tags, or None when they do not hold one."""
        if not all(values.get(name) for name in (tags.AIRFLOW_DAG_ID, tags.AIRFLOW_RUN_ID, tags.AIRFLOW_TASK_ID)):
            return None
        return cls(
            dag_id=values[tags.AIRFLOW_DAG_ID],
            run_id=values[tags.AIRFLOW_RUN_ID],
            task_id=values[tags.AIRFLOW_TASK_ID],
            map_index=int(values.get(tags.AIRFLOW_MAP_INDEX) or -1),
            try_number=int(values.get(tags.AIRFLOW_TRY_NUMBER) or 1),
        )
