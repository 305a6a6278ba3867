"""Any other online store: read the stored timestamps back and pass only rows that are not older."""

from __future__ import annotations

from typing import Any

from mlops_provider.core.features import compat
from mlops_provider.core.features.guards.base import WriteGuard


class ReadCompareWrite(WriteGuard):
    strategy = "read-compare-write"
    description = (
        "reads the stored event timestamps with online_read and passes only rows that are not older to the "
        "store's own writer; correct for one writer at a time, not atomic against concurrent writers"
    )
    atomic = False

    def __init__(self, online_store: Any) -> None:
        super().__init__(online_store)
        self._write = compat.own_online_write(online_store)

    def write(self, config: Any, table: Any, data: list, progress: Any) -> None:
        naive_utc = compat.naive_utc
        stored = self.online_store.online_read(config, table, [row[0] for row in data])
        fresh = []
        for row, (stored_ts, _) in zip(data, stored, strict=False):
            if stored_ts is None or naive_utc(row[2]) >= naive_utc(stored_ts):
                fresh.append(row)
        # Within one batch the newest row of an entity must win too.
        newest: dict[bytes, tuple] = {}
        for row in fresh:
            key = row[0].SerializeToString()
            if key not in newest or naive_utc(row[2]) >= naive_utc(newest[key][2]):
                newest[key] = row
        chosen = list(newest.values())
        if chosen:
            self._write(config, table, chosen, None)
        self._count(table, data, sum(len(values) for _, values, _, _ in chosen))
