"""Online-store write guards: what keeps an older row from replacing a newer one online.

Feast's SQLite and PostgreSQL online stores write with an unconditional upsert, so materialising an older
window after a newer one puts the older values online. Materialisation runs Feast's own steps (offline
read, per-entity dedup, conversion) but swaps the online store's write step for a guard, one per file
behind the ``WriteGuard`` interface, chosen by ``write_guard_for``:

* SQLite and PostgreSQL (``sqlite.py``, ``postgres.py``): a conditional upsert, ``ON CONFLICT ... DO UPDATE
  ... WHERE excluded.event_ts >= stored.event_ts``. A stored value is replaced only by one with an equal or
  newer event timestamp. The database evaluates the condition row by row under its own locks, so it holds
  with concurrent writers too. (SQLite stages the rows in a connection-private temp table first, so only
  the merge takes the lock.)
* Redis (``redis.py``): a Lua script that compares the stored ``_ts:<view>`` timestamp of each entity and
  writes the hash only when the new row is not older; Redis runs a script atomically.
* Any other online store (``generic.py``): read the stored timestamps with ``online_read`` and drop older
  rows before the store's own write. Correct for one writer at a time; not atomic against concurrent writers.

Equal timestamps overwrite, so re-running the same interval writes the same values again (idempotent), and a
corrected offline row with the same timestamp reaches the online store.
"""

from __future__ import annotations

from typing import Any

from mlops_provider.core.errors import ConfigurationError
from mlops_provider.core.features.guards.base import WriteGuard, WriteStats
from mlops_provider.core.features.guards.generic import ReadCompareWrite
from mlops_provider.core.features.guards.postgres import PostgresConditionalUpsert
from mlops_provider.core.features.guards.redis import (
    REDIS_ENTITIES_PER_SCRIPT,
    REDIS_GUARD_SCRIPT,
    RedisAtomicCompareAndSet,
)
from mlops_provider.core.features.guards.sqlite import SQLITE_BUSY_TIMEOUT_MS, SqliteConditionalUpsert

__all__ = [
    "REDIS_ENTITIES_PER_SCRIPT",
    "REDIS_GUARD_SCRIPT",
    "SQLITE_BUSY_TIMEOUT_MS",
    "PostgresConditionalUpsert",
    "ReadCompareWrite",
    "RedisAtomicCompareAndSet",
    "SqliteConditionalUpsert",
    "WriteGuard",
    "WriteStats",
    "write_guard_for",
]


def write_guard_for(online_store: Any, config: Any) -> WriteGuard:
    """The guard for this online store: atomic conditional writes where the store allows, else read-compare-write."""
    kind = getattr(config.online_store, "type", "")
    vector = bool(getattr(config.online_store, "vector_enabled", False))
    name = type(online_store).__name__
    if name == "SqliteOnlineStore" and not vector:
        return SqliteConditionalUpsert(online_store)
    if name == "PostgreSQLOnlineStore" and not vector:
        return PostgresConditionalUpsert(online_store)
    if name == "RedisOnlineStore":
        return RedisAtomicCompareAndSet(online_store)
    if not hasattr(online_store, "online_read"):
        raise ConfigurationError(
            f"The online store {kind!r} cannot be read back, so materialisation cannot keep older rows out; "
            "use the sqlite, postgres or redis online store."
        )
    return ReadCompareWrite(online_store)
