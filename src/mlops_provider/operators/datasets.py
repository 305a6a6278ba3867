"""SelectPartitionsOperator: turn a folder of dated partitions into the list of URIs a run should read."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from mlops_provider import arguments
from mlops_provider.core.datasets import URI_LIST_SEPARATOR
from mlops_provider.core.errors import ConfigurationError
from mlops_provider.operators.mixins import DATASET_FIELDS, DatasetHookMixin

if TYPE_CHECKING:
    from airflow.sdk import Context

ON_EMPTY = ("skip", "fail")


def _day(value: Any, name: str) -> date | None:
    if isinstance(value, datetime):  # a datetime is also a date: keep only its day
        return value.date()
    if isinstance(value, date):
        return value
    text = arguments.optional_text(value, name)
    if text is None:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError as error:
        raise ConfigurationError(f"{name}={text!r} is not a date; give YYYY-MM-DD (e.g. '{{{{ ds }}}}').") from error


class SelectPartitionsOperator(DatasetHookMixin):
    """Pick the ``<partition_key>=YYYY-MM-DD`` partitions of ``dataset_uri`` that a run should read.

    Keeps the partitions dated in ``[since, until)`` (either bound optional, templated: pass
    ``"{{ data_interval_start | ds }}"`` and ``"{{ data_interval_end | ds }}"`` for a run's interval), then
    the newest ``last`` of them when given. Partitions are listed at run time, so a backfill sees what has
    landed by then. Returns ``{dataset_uri, partitions, count}``: ``dataset_uri`` is the comma-separated list
    of partition URIs, which every operator of this provider reads as one dataset. With nothing selected
    the task is skipped (``on_empty="skip"``, default, with downstream tasks) or fails (``"fail"``).
    """

    template_fields: Sequence[str] = ("dataset_uri", "since", "until", "last", *DATASET_FIELDS)
    ui_color = "#e8e4f0"

    def __init__(
        self,
        *,
        dataset_uri: str,
        since: str | None = None,
        until: str | None = None,
        last: int | str | None = None,
        partition_key: str = "dt",
        on_empty: str = "skip",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if on_empty not in ON_EMPTY:
            raise ConfigurationError(f"on_empty={on_empty!r} in task {self.task_id!r} is not one of {ON_EMPTY}.")
        if not partition_key or "=" in partition_key or "/" in partition_key:
            raise ConfigurationError(f"partition_key={partition_key!r} must be a folder key such as 'dt'.")
        self.dataset_uri = dataset_uri
        self.since = since
        self.until = until
        self.last = last
        self.partition_key = partition_key
        self.on_empty = on_empty

    def execute(self, context: Context) -> dict[str, Any]:
        since, until, last = (
            _day(self.since, "since"),
            _day(self.until, "until"),
            arguments.optional_int(self.last, "last", minimum=1),
        )
        if since and until and since >= until:
            raise ConfigurationError(f"since={since} is not before until={until}; the window [since, until) is empty.")
        prefix = f"{self.partition_key}="
        chosen: list[tuple[date, str]] = []
        for uri in self.dataset_hook.list_partitions(self.dataset_uri):
            name = uri.rstrip("/").rsplit("/", 1)[-1]
            if not name.startswith(prefix):
                continue
            try:
                day = date.fromisoformat(name[len(prefix) :][:10])
            except ValueError:
                self.log.warning("Ignoring %s: its %s value is not a date.", uri, self.partition_key)
                continue
            if (since is None or day >= since) and (until is None or day < until):
                chosen.append((day, uri))
        chosen.sort()
        if last is not None:
            chosen = chosen[-last:]
        window = f"[{since or '...'}, {until or '...'})" + (f", newest {last}" if last else "")
        if not chosen:
            message = f"No {prefix}YYYY-MM-DD partition of {self.dataset_uri} in {window}."
            if self.on_empty == "fail":
                raise ConfigurationError(message + " Check that the data landed, or widen the window.")
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(message + " Nothing to do for this run (on_empty='skip').")
        days = [day.isoformat() for day, _ in chosen]
        self.log.info("Selected %d partition(s) of %s in %s: %s", len(chosen), self.dataset_uri, window, days)
        return {
            "dataset_uri": URI_LIST_SEPARATOR.join(uri for _, uri in chosen),
            "partitions": days,
            "count": len(chosen),
        }
