"""Feature store logic on Feast: apply, backfill-safe materialisation, point-in-time training sets, freshness.

No Airflow in here: every function takes a ``feast.FeatureStore`` (or plain values) and returns a small
dataclass with ``to_dict()``. Feast is imported inside the functions, so importing this module stays cheap.

Backfill safety
---------------
Feast's SQLite and PostgreSQL online stores write with an unconditional upsert, so materialising an older
window after a newer one puts the older values online. ``materialize_window`` runs Feast's own
materialisation (offline read, per-entity dedup, conversion) but swaps the online store's write step for a
guarded one, chosen by ``write_guard_for``:

* SQLite and PostgreSQL: a conditional upsert, ``ON CONFLICT ... DO UPDATE ... WHERE excluded.event_ts >=
  stored.event_ts``. A stored value is replaced only by one with an equal or newer event timestamp. The
  database evaluates the condition row by row under its own locks, so it holds with concurrent writers too.
  (SQLite stages the rows in a connection-private temp table first, so only the merge takes the lock.)
* Redis: a Lua script that compares the stored ``_ts:<view>`` timestamp of each entity and writes the hash
  only when the new row is not older; Redis runs a script atomically.
* Any other online store: read the stored timestamps with ``online_read`` and drop older rows before the
  store's own write. Correct for one writer at a time; not atomic against concurrent writers.

Equal timestamps overwrite, so re-running the same interval writes the same values again (idempotent), and a
corrected offline row with the same timestamp reaches the online store.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mlops_provider.core.errors import (
    ConfigurationError,
    EmptyDatasetError,
    EntityFrameError,
    FeatureReferenceError,
    FeatureViewNotFoundError,
    MaterializationWindowError,
)

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

log = logging.getLogger(__name__)

DEFAULT_TIMESTAMP_COLUMN = "event_timestamp"
ROW_ORDER_COLUMN = "__mlops_row_order"
# How long a SQLite writer waits for another writer's lock (parallel backfill slices share one file).
SQLITE_BUSY_TIMEOUT_MS = 600_000
# Entities per Redis script call: large enough to amortise round trips, small enough not to stall Redis.
REDIS_ENTITIES_PER_SCRIPT = 500


# -- windows and slices ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaterializationWindow:
    """A time range of event timestamps, ``start`` and ``end`` both included (as Feast reads them)."""

    start: datetime
    end: datetime

    def to_dict(self) -> dict[str, str]:
        return {"window_start": self.start.isoformat(), "window_end": self.end.isoformat()}

    def __str__(self) -> str:
        return f"{self.start.isoformat()} .. {self.end.isoformat()}"


def to_utc(value: Any, *, name: str) -> datetime:
    """A timezone-aware UTC ``datetime`` from a datetime, pendulum/pandas timestamp or ISO 8601 string.

    Naive values are taken as UTC (Airflow's data intervals are always aware).
    """
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise MaterializationWindowError(
                f"{name} is empty; give an ISO 8601 timestamp such as 2026-01-01T00:00:00Z."
            )
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        except ValueError:
            raise MaterializationWindowError(
                f"{name}={text!r} is not an ISO 8601 timestamp; use e.g. 2026-01-01T00:00:00+00:00 or a "
                "template such as '{{ data_interval_start }}'."
            ) from None
    elif hasattr(value, "to_pydatetime"):  # pandas.Timestamp
        value = value.to_pydatetime()
    if not isinstance(value, datetime):
        raise MaterializationWindowError(
            f"{name}={value!r} is a {type(value).__name__}, not a timestamp; pass a datetime or an ISO 8601 string."
        )
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def resolve_window(
    window_start: Any = None,
    window_end: Any = None,
    *,
    default_start: Any = None,
    default_end: Any = None,
) -> MaterializationWindow:
    """The window to materialise: explicit bounds when given, else the defaults (a task's data interval)."""
    start_value = window_start if window_start not in (None, "") else default_start
    end_value = window_end if window_end not in (None, "") else default_end
    if start_value is None or end_value is None:
        missing = " and ".join(n for n, v in (("window_start", start_value), ("window_end", end_value)) if v is None)
        raise MaterializationWindowError(
            f"No {missing}: the run has no data interval (e.g. a manual run of an unscheduled DAG). Pass "
            "window_start and window_end, or schedule the DAG so that each run has a data interval."
        )
    start = to_utc(start_value, name="window_start")
    end = to_utc(end_value, name="window_end")
    if start == end and window_start in (None, "") and window_end in (None, ""):
        raise MaterializationWindowError(
            f"The run's data interval is empty ({start.isoformat()} .. {end.isoformat()}): Airflow 3 runs cron "
            "and timedelta schedules with trigger timetables, whose data interval is a single instant. Use a "
            "timetable with data intervals, e.g. schedule=CronDataIntervalTimetable('@daily', timezone='UTC') "
            "(or [scheduler] create_cron_data_intervals = True), or pass window_start and window_end, e.g. "
            "'{{ (logical_date - macros.timedelta(days=1)).isoformat() }}' and '{{ logical_date.isoformat() }}'."
        )
    if end < start:
        raise MaterializationWindowError(
            f"The window ends before it starts: window_end {end.isoformat()} < window_start {start.isoformat()}. "
            "Swap them, or check the templates that produce them."
        )
    return MaterializationWindow(start, end)


def split_window(
    window: MaterializationWindow,
    *,
    slices: int | None = None,
    slice_length: timedelta | None = None,
) -> list[MaterializationWindow]:
    """Cut ``window`` into consecutive slices: ``slices`` equal parts, or parts of ``slice_length`` (the last
    one shorter). Neighbouring slices share their boundary instant; Feast includes both ends of a window, so
    a row stamped exactly on a boundary is written by both slices, with the same value."""
    if (slices is None) == (slice_length is None):
        raise MaterializationWindowError("Give exactly one of slices (a count) or slice_length (a timedelta).")
    span = window.end - window.start
    if span <= timedelta(0):
        return [window]
    if slices is not None:
        if int(slices) < 1:
            raise MaterializationWindowError(f"slices={slices} must be at least 1.")
        count = int(slices)
        bounds = [window.start + span * i / count for i in range(count)] + [window.end]
    else:
        if not isinstance(slice_length, timedelta) or slice_length <= timedelta(0):
            raise MaterializationWindowError(f"slice_length={slice_length!r} must be a positive timedelta.")
        bounds = []
        cursor = window.start
        while cursor < window.end:
            bounds.append(cursor)
            cursor += slice_length
        bounds.append(window.end)
    return [MaterializationWindow(a, b) for a, b in zip(bounds, bounds[1:])]


# -- write guards: what keeps older rows from replacing newer ones --------------------------------------


@dataclass
class WriteStats:
    """What one feature view's guarded writes did, counted in entity rows and in (entity, feature) values."""

    rows: int = 0
    values: int = 0
    values_written: int = 0

    @property
    def values_kept_out(self) -> int:
        return self.values - self.values_written


def _value_columns(with_value_num: bool) -> list[str]:
    """The online table's columns a guarded write fills (Feast's SQL stores add ``value_num`` on request)."""
    return ["entity_key", "feature_name", "value", "value_text", *(["value_num"] if with_value_num else []),
            "event_ts", "created_ts"]  # fmt: skip


class WriteGuard:
    """Replaces an online store's ``online_write_batch`` so a row never overwrites a newer stored one."""

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
        store = self.online_store
        had_own = "online_write_batch" in vars(store)
        previous = vars(store).get("online_write_batch")
        store.online_write_batch = self._guarded_write
        try:
            yield self
        finally:
            if had_own:
                store.online_write_batch = previous
            else:
                del store.online_write_batch

    def _guarded_write(self, config: Any, table: Any, data: list, progress: Any = None) -> None:
        if data:
            self.write(config, table, data, progress)
        if progress:
            progress(len(data))


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

        from feast.infra.key_encoding_utils import serialize_entity_key
        from feast.infra.online_stores.helpers import compute_table_id, extract_text_and_num
        from feast.utils import to_naive_utc

        conn = self.online_store._get_conn(config)
        table_name = compute_table_id(config.project, table, config.registry.enable_online_feature_view_versioning)
        quoted = '"' + table_name.replace('"', '""') + '"'
        if table_name not in self._has_value_num:
            columns_present = {row[1] for row in conn.execute(f"PRAGMA table_info({quoted})").fetchall()}
            if not columns_present:
                raise ConfigurationError(
                    f"The SQLite online store has no table {table_name!r} for feature view {table.name!r}; "
                    "apply the repository (FeastApplyOperator or `feast apply`) first."
                )
            self._has_value_num[table_name] = "value_num" in columns_present
        with_num = self._has_value_num[table_name]
        columns = _value_columns(with_num)
        staged = f"temp.mlops_staged_{os.getpid()}"
        merge = (
            f"INSERT INTO main.{quoted} ({', '.join(columns)}) SELECT {', '.join(columns)} FROM {staged} WHERE true "
            f"ON CONFLICT(entity_key, feature_name) DO UPDATE SET "
            f"{', '.join(f'{c} = excluded.{c}' for c in columns[2:])} "
            f"WHERE {quoted}.event_ts IS NULL OR excluded.event_ts >= {quoted}.event_ts"
        )
        version = config.entity_key_serialization_version

        def adapt(moment: datetime | None) -> Any:
            # Exactly what Feast's registered sqlite3 adapter stores, computed once per entity row
            # instead of once per (entity, feature) value.
            return None if moment is None else sqlite3.adapt(to_naive_utc(moment))

        # Rows go in primary-key order, so the merge appends along the B-tree instead of jumping around.
        keyed = sorted(
            ((serialize_entity_key(entity_key, entity_key_serialization_version=version), values, event_ts, created_ts)
             for entity_key, values, event_ts, created_ts in data),
            key=lambda row: row[0],
        )

        def rows() -> Iterator[tuple]:  # streamed into SQLite: no list of every value in memory
            for key, values, event_ts, created_ts in keyed:
                stamps = (adapt(event_ts), adapt(created_ts))
                for feature_name in sorted(values):
                    value = values[feature_name]
                    text, number = extract_text_and_num(value, with_num)
                    middle = (text, number) if with_num else (text,)
                    yield (key, feature_name, value.SerializeToString(), *middle, *stamps)

        # Stage the rows in this connection's private temp database first: filling it takes no lock on the
        # online store, so parallel slices only take turns for the merge, one set-based statement.
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        conn.execute(f"DROP TABLE IF EXISTS {staged}")
        conn.execute(f"CREATE TABLE {staged} ({', '.join(columns)})")
        try:
            placeholders = ", ".join("?" * len(columns))
            staged_rows = conn.executemany(f"INSERT INTO {staged} VALUES ({placeholders})", rows()).rowcount
            conn.commit()
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
        self._count(table, data, written)


class PostgresConditionalUpsert(WriteGuard):
    strategy = "conditional-upsert"
    description = (
        "PostgreSQL upsert that replaces a stored value only when the new event timestamp is equal or newer "
        "(ON CONFLICT ... DO UPDATE ... WHERE EXCLUDED.event_ts >= event_ts), rows in key order so that "
        "concurrent slices cannot deadlock"
    )

    def write(self, config: Any, table: Any, data: list, progress: Any) -> None:
        from feast.infra.key_encoding_utils import serialize_entity_key
        from feast.infra.online_stores.helpers import _to_naive_utc, compute_table_id, extract_text_and_num
        from psycopg import sql

        table_name = compute_table_id(config.project, table, config.registry.enable_online_feature_view_versioning)
        version = config.entity_key_serialization_version
        with self.online_store._get_conn(config) as conn, conn.cursor() as cur:
            with_num = self.online_store._check_table_has_value_num(cur, table_name, config)
            columns = _value_columns(with_num)
            target = sql.Identifier(table_name)
            statement = sql.SQL(
                "INSERT INTO {table} ({columns}) VALUES ({values}) "
                "ON CONFLICT (entity_key, feature_name) DO UPDATE SET {updates} "
                "WHERE {table}.event_ts IS NULL OR EXCLUDED.event_ts >= {table}.event_ts"
            ).format(
                table=target,
                columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
                values=sql.SQL(", ").join([sql.Placeholder()] * len(columns)),
                updates=sql.SQL(", ").join(
                    sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in columns[2:]
                ),
            )
            rows = []
            for entity_key, values, event_ts, created_ts in data:
                key = serialize_entity_key(entity_key, entity_key_serialization_version=version)
                event = _to_naive_utc(event_ts)
                created = _to_naive_utc(created_ts) if created_ts is not None else None
                for feature_name, value in values.items():
                    text, number = extract_text_and_num(value, with_num)
                    middle = (text, number) if with_num else (text,)
                    rows.append((key, feature_name, value.SerializeToString(), *middle, event, created))
            rows.sort(key=lambda row: (row[0], row[1]))  # one lock order for every writer: no deadlocks
            cur.executemany(statement, rows)
            written = cur.rowcount
            conn.commit()
        self._count(table, data, written)


# Compares the stored protobuf Timestamp (field 1 seconds, field 2 nanos, varints) with the new one and
# writes the entity's hash only when the new row is not older. KEYS: entity hashes. ARGV: ts field, ttl,
# then per entity: seconds, nanos, serialised timestamp, feature count, field/value pairs.
REDIS_GUARD_SCRIPT = """
local function varint(s, pos)
  local value, scale = 0, 1
  while pos <= #s do
    local byte = string.byte(s, pos)
    pos = pos + 1
    value = value + (byte % 128) * scale
    if byte < 128 then return value, pos end
    scale = scale * 128
  end
  return value, pos
end
local function stored_time(s)
  local seconds, nanos, pos = 0, 0, 1
  while pos <= #s do
    local tag = string.byte(s, pos)
    local value
    value, pos = varint(s, pos + 1)
    if tag == 8 then seconds = value elseif tag == 16 then nanos = value end
  end
  return seconds, nanos
end
local ts_field, ttl, arg, written = ARGV[1], tonumber(ARGV[2]), 3, 0
for _, key in ipairs(KEYS) do
  local seconds, nanos = tonumber(ARGV[arg]), tonumber(ARGV[arg + 1])
  local stamp, count = ARGV[arg + 2], tonumber(ARGV[arg + 3])
  arg = arg + 4
  local newer = true
  local previous = redis.call('HGET', key, ts_field)
  if previous then
    local old_seconds, old_nanos = stored_time(previous)
    newer = old_seconds < seconds or (old_seconds == seconds and old_nanos <= nanos)
  end
  if newer then
    local fields = {ts_field, stamp}
    for i = 0, 2 * count - 1 do fields[#fields + 1] = ARGV[arg + i] end
    redis.call('HSET', key, unpack(fields))
    if ttl > 0 then redis.call('EXPIRE', key, ttl) end
    written = written + count
  end
  arg = arg + 2 * count
end
return written
"""


class RedisAtomicCompareAndSet(WriteGuard):
    strategy = "atomic-compare-and-set"
    description = (
        "Redis Lua script that compares each entity's stored event timestamp and writes its features only "
        "when the new timestamp is equal or newer; Redis runs each script atomically"
    )

    def __init__(self, online_store: Any) -> None:
        super().__init__(online_store)
        self._script = None

    def write(self, config: Any, table: Any, data: list, progress: Any) -> None:
        from feast import utils
        from feast.infra.online_stores.helpers import _mmh3, _redis_key
        from feast.infra.online_stores.redis import RedisType, _versioned_fv_name
        from google.protobuf.timestamp_pb2 import Timestamp

        store_config = config.online_store
        client = self.online_store._get_client(store_config)
        if self._script is None:
            self._script = client.register_script(REDIS_GUARD_SCRIPT)
        view = _versioned_fv_name(table, config)
        ttl = int(store_config.key_ttl_seconds or 0)
        # A cluster only runs a script over keys of one hash slot: one entity per call there.
        per_call = 1 if store_config.redis_type == RedisType.redis_cluster else REDIS_ENTITIES_PER_SCRIPT
        field_keys: dict[str, bytes] = {}
        key_version = config.entity_key_serialization_version
        written = 0
        for begin in range(0, len(data), per_call):
            keys: list[bytes] = []
            args: list[Any] = [f"_ts:{view}", ttl]
            for entity_key, values, event_ts, _ in data[begin : begin + per_call]:
                keys.append(_redis_key(config.project, entity_key, entity_key_serialization_version=key_version))
                stamp = Timestamp()
                stamp.FromDatetime(utils.make_tzaware(event_ts))
                args += [stamp.seconds, stamp.nanos, stamp.SerializeToString(), len(values)]
                for feature_name, value in values.items():
                    if feature_name not in field_keys:
                        field_keys[feature_name] = _mmh3(f"{view}:{feature_name}")
                    args += [field_keys[feature_name], value.SerializeToString()]
            written += int(self._script(keys=keys, args=args, client=client))
        self._count(table, data, written)


class ReadCompareWrite(WriteGuard):
    strategy = "read-compare-write"
    description = (
        "reads the stored event timestamps with online_read and passes only rows that are not older to the "
        "store's own writer; correct for one writer at a time, not atomic against concurrent writers"
    )
    atomic = False

    def __init__(self, online_store: Any) -> None:
        super().__init__(online_store)
        self._write = type(online_store).online_write_batch.__get__(online_store)

    def write(self, config: Any, table: Any, data: list, progress: Any) -> None:
        from feast.utils import to_naive_utc

        stored = self.online_store.online_read(config, table, [row[0] for row in data])
        fresh = []
        for row, (stored_ts, _) in zip(data, stored):
            if stored_ts is None or to_naive_utc(row[2]) >= to_naive_utc(stored_ts):
                fresh.append(row)
        # Within one batch the newest row of an entity must win too.
        newest: dict[bytes, tuple] = {}
        for row in fresh:
            key = row[0].SerializeToString()
            if key not in newest or to_naive_utc(row[2]) >= to_naive_utc(newest[key][2]):
                newest[key] = row
        chosen = list(newest.values())
        if chosen:
            self._write(config, table, chosen, None)
        self._count(table, data, sum(len(values) for _, values, _, _ in chosen))


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


# -- feature views and the registry ---------------------------------------------------------------------


def _materializable_views(store: FeatureStore) -> dict[str, Any]:
    views = {view.name: view for view in store.list_feature_views()}
    views.update({view.name: view for view in store.list_stream_feature_views()})
    return views


def resolve_feature_views(store: FeatureStore, names: Sequence[str] | None) -> list[Any]:
    """The feature views to materialise: the named ones (checked), or every online one."""
    views = _materializable_views(store)
    if not names:
        chosen = [view for view in views.values() if view.online]
        if not chosen:
            raise FeatureViewNotFoundError(
                f"The Feast project {store.project!r} has no online feature views to materialise; apply the "
                "repository first (FeastApplyOperator) or mark a feature view online=True."
            )
        return sorted(chosen, key=lambda view: view.name)
    if isinstance(names, str):
        names = [names]
    on_demand = {view.name for view in store.list_on_demand_feature_views()}
    unknown = [name for name in names if name not in views]
    if unknown:
        hint = ""
        if set(unknown) & on_demand:
            hint = " On-demand feature views are computed at request time and are not materialised."
        raise FeatureViewNotFoundError(
            f"Unknown feature view(s) {unknown} in Feast project {store.project!r}; registered: "
            f"{sorted(views) or 'none (apply the repository first)'}.{hint}"
        )
    offline_only = [name for name in names if not views[name].online]
    if offline_only:
        raise ConfigurationError(
            f"Feature view(s) {offline_only} have online=False, so there is nothing to materialise; set "
            "online=True in their definition and apply, or leave them out of feature_views."
        )
    return [views[name] for name in dict.fromkeys(names)]


def _registry_file(store: FeatureStore) -> Path | None:
    """The local file behind a file registry (None for SQL, remote and object-store registries)."""
    registry = store.config.registry
    if getattr(registry, "registry_type", "file") != "file":
        return None
    path = str(registry.path)
    if "://" in path and not path.startswith("file://"):
        return None
    path = Path(path.removeprefix("file://"))
    return path if path.is_absolute() else Path(store.repo_path) / path


@contextlib.contextmanager
def registry_lock(store: FeatureStore) -> Iterator[None]:
    """Make registry updates safe for parallel tasks on one machine sharing a local file registry.

    Feast rewrites the whole registry file on every change, in place. Two slices recording their intervals
    at the same time would lose one of them, and a task reading while another writes could read a torn
    file. Inside this block updates take an exclusive file lock (one read-modify-write at a time) and the
    file is replaced atomically (written beside it, then renamed), so readers see the old or the new file.
    SQL and remote registries are left to their own transactions.
    """
    path = _registry_file(store)
    if path is None or not path.parent.is_dir():
        yield
        return
    import fcntl

    registry_store = getattr(store.registry, "_registry_store", None)
    patched = registry_store is not None and hasattr(registry_store, "_write_registry")
    if patched:
        registry_store._write_registry = _atomic_registry_writer(path)
    try:
        with open(path.with_name(path.name + ".lock"), "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        if patched:
            del registry_store._write_registry


def _atomic_registry_writer(path: Path) -> Any:
    def write(registry_proto: Any) -> None:
        import threading
        import uuid

        registry_proto.version_id = str(uuid.uuid4())
        registry_proto.last_updated.FromDatetime(datetime.now(timezone.utc))
        staging = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(staging, "wb") as handle:
            handle.write(registry_proto.SerializeToString())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staging, path)

    return write


def _registered_view(store: FeatureStore, name: str) -> Any:
    from feast.errors import FeatureViewNotFoundException

    try:
        return store.registry.get_feature_view(name, store.project, allow_cache=True)
    except FeatureViewNotFoundException:
        return store.registry.get_stream_feature_view(name, store.project, allow_cache=True)


def _same_instant(a: datetime, b: datetime) -> bool:
    return to_utc(a, name="interval") == to_utc(b, name="interval")


def record_materialization(store: FeatureStore, view_name: str, window: MaterializationWindow) -> bool:
    """Add ``window`` to the view's materialisation intervals in the registry, once (False: already there)."""
    with registry_lock(store):
        store.registry.refresh(store.project)
        view = _registered_view(store, view_name)
        for start, end in view.materialization_intervals:
            if _same_instant(start, window.start) and _same_instant(end, window.end):
                return False
        store.registry.apply_materialization(view, store.project, window.start, window.end)
        return True


# -- materialisation ------------------------------------------------------------------------------------


@dataclass
class ViewMaterialization:
    name: str
    rows: int
    values: int
    values_written: int
    values_kept_out: int
    interval_recorded: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MaterializationResult:
    window: MaterializationWindow
    online_store: str
    guard: str
    guard_description: str
    atomic: bool
    views: list[ViewMaterialization] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def values_kept_out(self) -> int:
        return sum(view.values_kept_out for view in self.views)

    def summary(self) -> str:
        lines = [
            f"Materialised {len(self.views)} feature view(s) for {self.window} into the {self.online_store} "
            f"online store in {self.seconds:.1f} s.",
            f"Backfill safety: {self.guard} ({self.guard_description}).",
        ]
        for view in self.views:
            lines.append(
                f"  {view.name}: {view.rows:,} entity rows from the offline store; {view.values_written:,} of "
                f"{view.values:,} feature values written, {view.values_kept_out:,} kept out because the online "
                f"store already held a newer value; interval "
                f"{'recorded in' if view.interval_recorded else 'already in'} the registry."
            )
        if self.values_kept_out:
            lines.append(
                "Values were kept out: this window is older than what is online for those entities (a backfill "
                "or a rerun after newer windows), so the newer values stay online."
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.window.to_dict(),
            "online_store": self.online_store,
            "guard": self.guard,
            "atomic": self.atomic,
            "feature_views": [view.to_dict() for view in self.views],
            "values_written": sum(view.values_written for view in self.views),
            "values_kept_out": self.values_kept_out,
            "seconds": round(self.seconds, 3),
        }


def _silent_progress(length: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=length, disable=True)


def materialize_window(
    store: FeatureStore,
    window: MaterializationWindow,
    feature_views: Sequence[str] | None = None,
) -> MaterializationResult:
    """Materialise ``window`` of ``feature_views`` (default: every online view) without ever replacing a
    newer online value by an older one, and record the interval in the registry once.

    Uses Feast's own per-view materialisation (offline read, dedup to the newest row per entity in the
    window, conversion) with the online write step replaced by ``write_guard_for``'s guard.
    """
    if getattr(store.config.online_store, "type", None) == "remote":
        raise ConfigurationError(
            "The repository uses a remote online store (a Feast feature server); backfill-safe "
            "materialisation needs direct access to the online store. Point feature_store.yaml at it."
        )
    views = resolve_feature_views(store, feature_views)  # bad names fail before anything is written
    provider = store._get_provider()
    online_store = provider.online_store
    if online_store is None:
        raise ConfigurationError(
            f"The Feast repository {store.repo_path} has no online store; add online_store to feature_store.yaml."
        )
    from feast.infra.compute_engines.local.compute import LocalComputeEngine

    if not isinstance(provider.batch_engine, LocalComputeEngine):
        raise ConfigurationError(
            f"The repository's batch engine is {type(provider.batch_engine).__name__}, which writes the online "
            "store from its own workers where the older-row guard cannot run; use the local batch engine "
            "(batch_engine: local in feature_store.yaml) for backfill-safe materialisation."
        )
    guard = write_guard_for(online_store, store.config)
    result = MaterializationResult(
        window=window,
        online_store=str(getattr(store.config.online_store, "type", type(online_store).__name__)),
        guard=guard.strategy,
        guard_description=guard.description,
        atomic=guard.atomic,
    )
    started = time.perf_counter()
    with guard.installed():
        for view in views:
            view_started = time.perf_counter()
            provider.materialize_single_feature_view(
                config=store.config,
                feature_view=view,
                start_date=window.start,
                end_date=window.end,
                registry=store.registry,
                project=store.project,
                tqdm_builder=_silent_progress,
            )
            recorded = record_materialization(store, view.name, window)
            stats = guard.stats.get(view.name, WriteStats())
            result.views.append(
                ViewMaterialization(
                    name=view.name,
                    rows=stats.rows,
                    values=stats.values,
                    values_written=stats.values_written,
                    values_kept_out=stats.values_kept_out,
                    interval_recorded=recorded,
                    seconds=round(time.perf_counter() - view_started, 3),
                )
            )
    result.seconds = time.perf_counter() - started
    return result


# -- apply ----------------------------------------------------------------------------------------------


@dataclass
class ApplyResult:
    project: str
    created: list[str]
    updated: list[str]
    deleted: list[str]
    unchanged: int
    infra_changes: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted or self.infra_changes)

    def summary(self) -> str:
        if not self.changed:
            return (
                f"Feast project {self.project!r} is up to date: {self.unchanged} object(s) unchanged, nothing applied."
            )
        parts = [f"Applied Feast project {self.project!r}:"]
        for label, names in (("created", self.created), ("updated", self.updated), ("deleted", self.deleted)):
            if names:
                parts.append(f"  {label}: {', '.join(names)}")
        if self.infra_changes:
            parts.append(f"  online store: {', '.join(self.infra_changes)}")
        parts.append(f"  unchanged: {self.unchanged}")
        return "\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "changed": self.changed}


def _repo_module_names(repo_path: Path) -> list[str]:
    from feast.repo_operations import get_repo_files

    return [".".join(path.relative_to(repo_path).with_suffix("").parts) for path in get_repo_files(repo_path)]


@contextlib.contextmanager
def _importable_repo(repo_path: Path) -> Iterator[None]:
    """Let Feast import the repository's definition files by module name, and leave no trace afterwards.

    Feast names each file's module relative to the working directory and imports it with ``importlib``, so
    the repository must be the working directory and on ``sys.path``. Modules already loaded under the same
    names (an earlier repository's files, or unrelated modules) step aside, so this repository's files are
    the ones read; working directory, ``sys.path`` and ``sys.modules`` are restored afterwards.
    """
    names = _repo_module_names(repo_path)
    previous_cwd = os.getcwd()
    previous_bytecode = sys.dont_write_bytecode
    # Modules already loaded under these names (an earlier repository, or an unrelated module) step aside
    # while Feast imports this repository's files, and come back afterwards.
    set_aside = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    sys.path.insert(0, str(repo_path))
    sys.dont_write_bytecode = True  # no __pycache__ inside the repository
    os.chdir(repo_path)
    try:
        yield
    finally:
        os.chdir(previous_cwd)
        sys.dont_write_bytecode = previous_bytecode
        with contextlib.suppress(ValueError):
            sys.path.remove(str(repo_path))
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(set_aside)


def apply_repository(store: FeatureStore, repo_path: str | Path) -> ApplyResult:
    """Register the repository's definitions, like ``feast apply``, and say what changed.

    Nothing is written when the registry already matches the definitions, so applying twice changes nothing.
    """
    from feast import Project
    from feast.diff.property_diff import TransitionType
    from feast.repo_operations import extract_objects_for_apply_delete, parse_repo

    repo_path = Path(repo_path).resolve()
    with _importable_repo(repo_path):
        try:
            repo = parse_repo(repo_path)
        except Exception as error:
            raise ConfigurationError(
                f"The feature definitions in {repo_path} did not import: {type(error).__name__}: {error}"
            ) from error
    if not repo.projects:
        description = getattr(store.config, "project_description", None) or ""
        repo.projects.append(Project(name=store.project, description=description))
    elif [project.name for project in repo.projects] != [store.project]:
        raise ConfigurationError(
            f"The definitions in {repo_path} declare project(s) {[p.name for p in repo.projects]} but "
            f"feature_store.yaml names {store.project!r}; make them match."
        )
    registry_diff, infra_diff, new_infra = store.plan(repo)
    by_transition: dict[Any, list[str]] = {}
    for diff in registry_diff.feast_object_diffs:
        label = f"{diff.feast_object_type.name.lower()}:{diff.name}"
        by_transition.setdefault(diff.transition_type, []).append(label)
    infra_changes = [
        f"{diff.transition_type.name.lower()} {diff.name}"
        for diff in infra_diff.infra_object_diffs
        if diff.transition_type != TransitionType.UNCHANGED
    ]
    result = ApplyResult(
        project=store.project,
        created=sorted(by_transition.get(TransitionType.CREATE, [])),
        updated=sorted(by_transition.get(TransitionType.UPDATE, [])),
        deleted=sorted(by_transition.get(TransitionType.DELETE, [])),
        unchanged=len(by_transition.get(TransitionType.UNCHANGED, [])),
        infra_changes=infra_changes,
    )
    if not result.changed:
        return result
    with registry_lock(store):
        if store._should_use_plan():
            store._apply_diffs(registry_diff, infra_diff, new_infra)
        else:
            to_apply, to_delete, _, _ = extract_objects_for_apply_delete(store.project, store.registry, repo)
            store.apply(to_apply, objects_to_delete=to_delete, partial=False)
    return result


# -- point-in-time training sets ------------------------------------------------------------------------


@dataclass
class TrainingSet:
    frame: pd.DataFrame
    features: list[str]
    timestamp_column: str
    feature_service: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": int(len(self.frame)),
            "columns": [str(c) for c in self.frame.columns],
            "features": self.features,
            "feature_service": self.feature_service,
        }


def resolve_feature_refs(store: FeatureStore, features: str | Sequence[str]) -> tuple[list[str], Any]:
    """Check feature references (``view:feature``) or a feature service name; return refs and the service."""
    from feast.errors import FeatureServiceNotFoundException

    if isinstance(features, str) and ":" not in features:
        try:
            service = store.get_feature_service(features)
        except FeatureServiceNotFoundException:
            services = sorted(s.name for s in store.list_feature_services())
            raise FeatureReferenceError(
                f"features={features!r} is neither a 'view:feature' reference nor a feature service of project "
                f"{store.project!r}; feature services: {services or 'none'}."
            ) from None
        refs = [
            f"{projection.name_to_use()}:{feature.name}"
            for projection in service.feature_view_projections
            for feature in projection.features
        ]
        return refs, service
    refs = [features] if isinstance(features, str) else list(features)
    if not refs:
        raise FeatureReferenceError("features is empty; list feature references such as 'customer_profile:plan'.")
    views = {view.name: view for view in store.list_all_feature_views()}
    problems = []
    for ref in refs:
        view_name, _, feature_name = str(ref).partition(":")
        if not feature_name:
            problems.append(f"{ref!r} is not of the form 'view:feature'")
        elif view_name not in views:
            problems.append(f"{ref!r}: no feature view {view_name!r}")
        elif feature_name not in {f.name for f in views[view_name].features}:
            known = sorted(f.name for f in views[view_name].features)
            problems.append(f"{ref!r}: feature view {view_name!r} has no feature {feature_name!r} (it has {known})")
    if problems:
        raise FeatureReferenceError(
            f"Bad feature reference(s) for Feast project {store.project!r}: {'; '.join(problems)}. Registered "
            f"feature views: {sorted(views) or 'none (apply the repository first)'}."
        )
    return refs, None


def build_training_set(
    store: FeatureStore,
    entity_frame: pd.DataFrame,
    features: str | Sequence[str],
    *,
    timestamp_column: str = DEFAULT_TIMESTAMP_COLUMN,
    full_feature_names: bool = False,
) -> TrainingSet:
    """Join the features onto each entity row as they were at that row's timestamp (point in time).

    Feast takes, per row and feature view, the newest feature row with ``event_timestamp <= row timestamp``
    and not older than the view's ttl; later feature rows never leak into a row. Extra entity-frame columns
    (labels) pass through; rows keep their input order.
    """
    import pandas as pd

    refs, service = resolve_feature_refs(store, features)
    if entity_frame.empty:
        raise EmptyDatasetError("The entity frame has no rows; a training set needs entity keys and timestamps.")
    if timestamp_column not in entity_frame.columns:
        raise EntityFrameError(
            f"The entity frame has no timestamp column {timestamp_column!r} (columns: {list(entity_frame.columns)}); "
            "set timestamp_column to the column holding each row's label time."
        )
    if timestamp_column != DEFAULT_TIMESTAMP_COLUMN and DEFAULT_TIMESTAMP_COLUMN in entity_frame.columns:
        raise EntityFrameError(
            f"The entity frame has both {timestamp_column!r} and {DEFAULT_TIMESTAMP_COLUMN!r}; Feast would read the "
            f"latter. Drop or rename one of them."
        )
    views = {view.name: view for view in store.list_all_feature_views()}
    needed_keys: dict[str, list[str]] = {}
    for ref in refs:
        view = views.get(ref.split(":", 1)[0])
        for column in getattr(view, "entity_columns", None) or []:
            needed_keys.setdefault(column.name, []).append(view.name)
    missing = {key: sorted(set(names)) for key, names in needed_keys.items() if key not in entity_frame.columns}
    if missing:
        raise EntityFrameError(
            f"The entity frame lacks the entity key column(s) {sorted(missing)} that feature view(s) "
            f"{sorted({n for names in missing.values() for n in names})} join on; add them."
        )
    frame = entity_frame.copy()
    try:
        frame[timestamp_column] = pd.to_datetime(frame[timestamp_column], utc=True)
    except (ValueError, TypeError) as error:
        raise EntityFrameError(
            f"The timestamp column {timestamp_column!r} does not parse as timestamps: {error}"
        ) from None
    if frame[timestamp_column].isna().any():
        raise EntityFrameError(
            f"{int(frame[timestamp_column].isna().sum())} row(s) have no {timestamp_column!r}; every row needs the "
            "time its label was observed."
        )
    frame[ROW_ORDER_COLUMN] = range(len(frame))
    frame = frame.rename(columns={timestamp_column: DEFAULT_TIMESTAMP_COLUMN})
    job = store.get_historical_features(
        entity_df=frame,
        features=service if service is not None else refs,
        full_feature_names=full_feature_names,
    )
    joined = job.to_df()
    joined = joined.sort_values(ROW_ORDER_COLUMN, kind="stable").drop(columns=[ROW_ORDER_COLUMN]).reset_index(drop=True)
    joined = joined.rename(columns={DEFAULT_TIMESTAMP_COLUMN: timestamp_column})
    ordered = [c for c in entity_frame.columns if c in joined.columns]
    ordered += [c for c in joined.columns if c not in entity_frame.columns]
    return TrainingSet(
        frame=joined[ordered],
        features=refs,
        timestamp_column=timestamp_column,
        feature_service=service.name if service is not None else None,
    )


# -- freshness ------------------------------------------------------------------------------------------


def merge_intervals(intervals: Sequence[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Union of intervals; touching or overlapping ones merge (slices share their boundaries)."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted((to_utc(s, name="interval start"), to_utc(e, name="interval end")) for s, e in intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


@dataclass
class ViewFreshness:
    name: str
    fresh: bool
    materialized_until: datetime | None
    covered_from: datetime | None
    intervals: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "fresh": self.fresh,
            "materialized_until": self.materialized_until.isoformat() if self.materialized_until else None,
            "covered_from": self.covered_from.isoformat() if self.covered_from else None,
            "intervals": self.intervals,
            "reason": self.reason,
        }


@dataclass
class FreshnessReport:
    fresh_until: datetime
    covered_since: datetime | None
    views: list[ViewFreshness]

    @property
    def fresh(self) -> bool:
        return all(view.fresh for view in self.views)

    def summary(self) -> str:
        head = f"Freshness up to {self.fresh_until.isoformat()}"
        if self.covered_since:
            head += f" without gaps since {self.covered_since.isoformat()}"
        lines = [head + (": all feature views are fresh." if self.fresh else ": not yet.")]
        lines += [f"  {view.name}: {'fresh' if view.fresh else 'stale'} ({view.reason})" for view in self.views]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fresh": self.fresh,
            "fresh_until": self.fresh_until.isoformat(),
            "covered_since": self.covered_since.isoformat() if self.covered_since else None,
            "feature_views": [view.to_dict() for view in self.views],
        }


def assess_view_freshness(
    name: str,
    intervals: Sequence[tuple[datetime, datetime]],
    fresh_until: datetime,
    covered_since: datetime | None = None,
) -> ViewFreshness:
    """Fresh when the newest materialised interval reaches ``fresh_until``; with ``covered_since``, the
    materialised intervals must also cover ``covered_since .. fresh_until`` without a gap."""
    merged = merge_intervals(intervals)
    if not merged:
        return ViewFreshness(name, False, None, None, 0, "never materialised")
    until = merged[-1][1]
    if covered_since is None:
        fresh = until >= fresh_until
        reason = f"materialised up to {until.isoformat()}"
        return ViewFreshness(name, fresh, until, None, len(intervals), reason)
    covering = next((span for span in merged if span[0] <= covered_since and span[1] >= fresh_until), None)
    if covering:
        reason = f"covered {covering[0].isoformat()} .. {covering[1].isoformat()}"
        return ViewFreshness(name, True, until, covering[0], len(intervals), reason)
    gaps = []
    cursor = covered_since
    for start, end in merged:
        if end <= cursor:
            continue
        if start > cursor:
            gaps.append(f"{cursor.isoformat()} .. {min(start, fresh_until).isoformat()}")
        cursor = max(cursor, end)
        if cursor >= fresh_until:
            break
    if cursor < fresh_until:
        gaps.append(f"{cursor.isoformat()} .. {fresh_until.isoformat()}")
    return ViewFreshness(name, False, until, None, len(intervals), f"not materialised: {', '.join(gaps)}")


def check_freshness(
    store: FeatureStore,
    feature_views: Sequence[str] | None,
    fresh_until: datetime,
    covered_since: datetime | None = None,
) -> FreshnessReport:
    """Freshness of each feature view from the materialisation intervals recorded in the Feast registry."""
    store.refresh_registry()
    views = resolve_feature_views(store, feature_views)
    fresh_until = to_utc(fresh_until, name="fresh_until")
    since = to_utc(covered_since, name="covered_since") if covered_since is not None else None
    if since is not None and since > fresh_until:
        raise MaterializationWindowError(
            f"covered_since {since.isoformat()} is after fresh_until {fresh_until.isoformat()}; swap them."
        )
    return FreshnessReport(
        fresh_until=fresh_until,
        covered_since=since,
        views=[assess_view_freshness(v.name, v.materialization_intervals, fresh_until, since) for v in views],
    )
