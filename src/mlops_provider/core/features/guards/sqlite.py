"""SQLite online store: stage the rows, then one conditional upsert that never replaces a newer value."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mlops_provider.core.errors import ConfigurationError
from mlops_provider.core.features import compat
from mlops_provider.core.features.guards.base import WriteGuard, WriteStats
from mlops_provider.core.storage import exclusive_file_lock

log = logging.getLogger(__name__)

# How long a SQLite writer waits for another writer's lock (parallel backfill slices share one file).
SQLITE_BUSY_TIMEOUT_MS = 600_000


class SqliteConditionalUpsert(WriteGuard):
    strategy = "conditional-upsert"
    description = (
        "rows staged in a connection-private temp table, then merged with one SQLite upsert that replaces a "
        "stored value only when the new event timestamp is equal or newer (ON CONFLICT ... DO UPDATE ... WHERE "
        "excluded.event_ts >= event_ts); SQLite runs one merge at a time"
    )

    def __init__(self, online_store: Any) -> None:
        super().__init__(online_store)
        self._has_value_num: dict[str, bool] = {}

    def write(self, config: Any, table: Any, data: list, progress: Any) -> None:
        import sqlite3

        # Timestamps stored exactly as Feast's registered sqlite3 adapter stores them; rows in primary-key
        # order, so the merge appends along the B-tree instead of jumping around; streamed into SQLite.
        # typeshed's sqlite3.adapt overloads all require `proto`, which defaults to PrepareProtocol at run time.
        written = self.merge(
            config,
            table,
            lambda with_num: compat.encoded_online_rows(config, data, with_num, adapt=sqlite3.adapt),  # type: ignore[arg-type]
        )
        self._count(table, data, written)

    def write_encoded(
        self, config: Any, table: Any, rows: Callable[[bool, Callable[[Any], Any]], Iterable[tuple]], entities: int
    ) -> int:
        """Merge rows already encoded as the online table's (``rows(with_value_num, adapt)``, timestamps through
        ``adapt``) for ``entities`` entity rows; returns and counts the values written."""
        import sqlite3

        values = len(table.features) * entities
        # typeshed's sqlite3.adapt overloads all require `proto`, which defaults to PrepareProtocol at run time.
        written = self.merge(config, table, lambda with_num: rows(with_num, sqlite3.adapt))  # type: ignore[arg-type]
        stats = self.stats.setdefault(table.name, WriteStats())
        stats.rows += entities
        stats.values += values
        stats.values_written += written
        return written

    def merge(self, config: Any, table: Any, encode: Callable[[bool], Iterable[tuple]]) -> int:
        """Stage ``encode(with_value_num)``'s rows, then merge them under the write lock; the values written."""
        conn = compat.sql_connection(self.online_store, config)
        table_name = compat.online_table_name(config, table)
        quoted = '"' + table_name.replace('"', '""') + '"'
        if table_name not in self._has_value_num:
            columns_present = {row[1] for row in conn.execute(f"PRAGMA table_info({quoted})").fetchall()}
            if not columns_present:
                raise ConfigurationError(
                    f"The SQLite online store has no table {table_name!r} for feature view {table.name!r}; "
                    "apply the feature repository (`feast apply` or an apply task) first."
                )
            self._has_value_num[table_name] = "value_num" in columns_present
        with_num = self._has_value_num[table_name]
        columns = compat.online_table_columns(with_num)
        staged = f"temp.mlops_staged_{os.getpid()}"
        merge = (
            f"INSERT INTO main.{quoted} ({', '.join(columns)}) SELECT {', '.join(columns)} FROM {staged} WHERE true "
            f"ON CONFLICT(entity_key, feature_name) DO UPDATE SET "
            f"{', '.join(f'{c} = excluded.{c}' for c in columns[2:])} "
            f"WHERE {quoted}.event_ts IS NULL OR excluded.event_ts >= {quoted}.event_ts"
        )
        rows = encode(with_num)
        # Stage the rows in this connection's private temp database first: filling it takes no lock on the
        # online store, so parallel slices only take turns for the merge, one set-based statement.
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        conn.execute(f"DROP TABLE IF EXISTS {staged}")
        conn.execute(f"CREATE TABLE {staged} ({', '.join(columns)})")
        try:
            placeholders = ", ".join("?" * len(columns))
            staged_rows = conn.executemany(f"INSERT INTO {staged} VALUES ({placeholders})", rows).rowcount
            conn.commit()
            # Our own writers take turns on a lock file first: SQLite's busy handler polls with sleeps of up to
            # 100 ms, so a slice waiting on another's merge would idle after the lock is free; a flock wakes the
            # waiter at once. busy_timeout still covers writers that do not take the lock file (Feast itself).
            with _merge_turn(conn):
                started = time.perf_counter()
                conn.execute("BEGIN IMMEDIATE")  # take the write lock now, waiting up to busy_timeout for it
                try:
                    written = conn.execute(merge).rowcount
                    conn.commit()
                except BaseException:
                    conn.rollback()
                    raise
                held = time.perf_counter() - started
            log.debug("SQLite merge of %d values held the write lock %.2f s", staged_rows, held)
        finally:
            conn.execute(f"DROP TABLE IF EXISTS {staged}")
            conn.commit()
        return int(written)


def _merge_turn(conn: Any) -> Any:
    """The lock file beside the online store's database file (``<db>.mlops-merge.lock``); none for an in-memory
    database."""
    import contextlib

    path = next((row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"), "")
    if not path:
        return contextlib.nullcontext()
    return exclusive_file_lock(Path(path + ".mlops-merge.lock"))
