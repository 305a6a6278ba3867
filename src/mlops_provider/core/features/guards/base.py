"""The interface every online-store write guard implements, and what a guard counts."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from mlops_provider.core.features import compat


@dataclass
class WriteStats:
    """What one feature view's guarded writes did, counted in entity rows and in (entity, feature) values."""

    rows: int = 0
    values: int = 0
    values_written: int = 0

    @property
    def values_kept_out(self) -> int:
        return self.values - self.values_written


class WriteGuard:
    """Replaces an online store's ``online_write_batch`` so a row never overwrites a newer stored one.

    A guard declares its ``strategy`` (a short name for XCom), a ``description`` (one clause for the log)
    and whether it is ``atomic`` against concurrent writers, and implements ``write``: store the rows of
    ``data`` (Feast's ``(entity_key, {feature: value}, event_ts, created_ts)`` tuples) that are not older
    than what is stored, and report through ``_count`` how many (entity, feature) values it wrote.
    """

    strategy: ClassVar[str]
    description: ClassVar[str]
    atomic: ClassVar[bool] = True

    def __init__(self, online_store: Any) -> None:
        self.online_store = online_store
        self.stats: dict[str, WriteStats] = {}

    def write(self, config: Any, table: Any, data: list, progress: Any) -> None:
        raise NotImplementedError

    def _count(self, table: Any, data: list, written_values: int) -> None:
        stats = self.stats.setdefault(table.name, WriteStats())
        stats.rows += len(data)
        stats.values += sum(len(values) for _, values, _, _ in data)
        stats.values_written += written_values

    @contextlib.contextmanager
    def installed(self) -> Iterator[WriteGuard]:
        """Route the online store's writes through this guard (the batch engine shares the same object)."""
        with compat.route_online_writes(self.online_store, self._guarded_write):
            yield self

    def _guarded_write(self, config: Any, table: Any, data: list, progress: Any = None) -> None:
        if data:
            self.write(config, table, data, progress)
        if progress:
            progress(len(data))
