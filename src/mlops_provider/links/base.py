"""Extra links whose URL a task stores in XCom while it runs (the amazon provider's pattern)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.types import TaskInstanceKey


class PersistedUrlLink(BaseOperatorLink):
    """A link button named ``name`` opening the URL a task saved under XCom key ``key``."""

    name: ClassVar[str]
    key: ClassVar[str]

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        try:
            return XCom.get_value(key=self.key, ti_key=ti_key) or ""
        except Exception:  # a link must never break the task page
            return ""

    @classmethod
    def persist(cls, context: Context, url: str | None) -> None:
        # Stored even when empty: Airflow reads every link when the task ends and logs a missing XCom as an error.
        context["ti"].xcom_push(key=cls.key, value=url or "")
