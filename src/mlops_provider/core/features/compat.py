"""Every call into Feast's private API, behind small named functions, with a check of the Feast version.

Backfill-safe materialisation and apply need more than Feast's public API: the provider behind a store,
the online stores' connections and key encodings, the registry file writer, the diff-based apply. These are
underscored or internal and change between Feast releases without notice, so they are gathered here and
were checked against the Feast versions in ``FEAST_TESTED``. Outside that range ``require_tested_feast``
raises before anything is written: a changed internal could otherwise fail half-way, or, worse, let
materialisation bypass the older-row guard and put older values online without a word.

Functions that open a private path check the version first (``_checked``, once per process). The per-row
helpers (``naive_utc``, ``tz_aware``, the Redis key encoders) do not: they run only inside a guard's write,
which runs only after ``route_online_writes`` has checked.

Feast is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from mlops_provider.core.errors import ConfigurationError

# The Feast releases whose internals the functions below were checked against: [first, below). The lower
# bound is the version in uv.lock; widen the range only after tests/test_features.py passes on the new one.
FEAST_TESTED: tuple[tuple[int, ...], tuple[int, ...]] = ((0, 67, 0), (0, 68, 0))

_F = TypeVar("_F", bound=Callable[..., Any])
_verified = False


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def tested_range() -> str:
    """The tested range as a pip requirement specifier, e.g. ``>=0.67.0,<0.68.0``."""
    first, below = FEAST_TESTED
    return f">={_dotted(first)},<{_dotted(below)}"


@functools.cache
def installed_feast_version() -> str | None:
    """The installed Feast distribution's version (read once per process), or None when it is not installed."""
    try:
        return metadata.version("feast")
    except metadata.PackageNotFoundError:
        return None


def check_feast_version(version: str | None) -> None:
    """Raise ``ConfigurationError`` unless ``version`` lies in ``FEAST_TESTED`` (pre-releases count as their
    release: ``0.68.0rc1`` is outside ``<0.68.0``)."""
    requirement = f"feast[redis,postgres]{tested_range()}"
    if version is None:
        raise ConfigurationError(f"Feast is not installed; install a tested version: pip install '{requirement}'.")
    match = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", version)
    parsed = tuple(int(part or 0) for part in match.groups()) if match else None
    first, below = FEAST_TESTED
    if parsed is None or not first <= parsed < below:
        raise ConfigurationError(
            f"Feast {version} is installed, but backfill-safe materialisation and apply rely on Feast internals "
            f"that were checked only against feast {tested_range()}; on other versions they may fail half-way "
            f"or write older values online. Install a tested version (pip install '{requirement}'), or, to "
            f"adopt feast {version}, run tests/test_features.py against it and widen FEAST_TESTED in "
            f"{__name__}."
        )


def require_tested_feast() -> None:
    """Check the installed Feast version against ``FEAST_TESTED`` (once per process when it passes)."""
    global _verified
    if not _verified:
        check_feast_version(installed_feast_version())
        _verified = True


def _checked(function: _F) -> _F:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _verified:
            require_tested_feast()
        return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


# -- the provider and its materialisation ---------------------------------------------------------------


@_checked
def provider_of(store: Any) -> Any:
    """The Feast provider behind ``store`` (``FeatureStore._get_provider``)."""
    return store._get_provider()


@_checked
def foreign_batch_engine(provider: Any) -> str | None:
    """The class name of the provider's batch engine unless it is Feast's in-process engine (None then), which
    writes through the provider's own online store object, where a guard can intercept the writes."""
    from feast.infra.compute_engines.local.compute import LocalComputeEngine

    engine = provider.batch_engine
    return None if isinstance(engine, LocalComputeEngine) else type(engine).__name__


@_checked
def offline_read_end(config: Any, end: datetime) -> datetime:
    """The ``end_date`` to hand Feast so that its offline read stops just before ``end``.

    Feast's offline reads for materialisation include both ``start_date`` and ``end_date``: the file (Dask)
    store filters with ``Series.between(start_date, end_date, inclusive="both")``
    (``feast/infra/offline_stores/dask.py``, ``evaluate_offline_job``), the SQL stores with ``BETWEEN``
    (``offline_utils.get_timestamp_filter_sql``; PostgreSQL's ``pull_latest_from_table_or_query`` too), the
    DuckDB/ibis store with ``>=`` and ``<=``. Half-open windows ``[start, end)`` therefore pass the last
    instant before ``end`` that the store can tell apart from it: the file store compares pandas
    timestamps, which keep nanoseconds (parquet ``timestamp[ns]``), so ``end - 1 ns`` as a
    ``pandas.Timestamp``; every other store gets a ``datetime``, ``end - 1 µs`` (Python's precision;
    PostgreSQL's ``timestamptz`` holds microseconds and rounds a literal to the nearest one, so ``end - 1 ns``
    would read as ``end`` again and put its rows back in). A row stamped less than a
    microsecond before ``end`` in such a store's finer-grained column would fall between the two windows.
    """
    offline_type = getattr(getattr(config, "offline_store", None), "type", None)
    if offline_type in ("file", "dask"):
        import pandas as pd

        return pd.Timestamp(end) - pd.Timedelta(1, unit="ns")
    return end - timedelta(microseconds=1)


@_checked
def materialize_view(provider: Any, store: Any, view: Any, start: datetime, end: datetime, progress: Any) -> None:
    """Feast's per-view materialisation: offline read, newest row per entity, conversion, online write.

    ``start`` and ``end`` go to Feast's offline read as they are, and Feast includes both: pass
    ``offline_read_end(config, window.end)`` as ``end`` for a half-open window."""
    provider.materialize_single_feature_view(
        config=store.config,
        feature_view=view,
        start_date=start,
        end_date=end,
        registry=store.registry,
        project=store.project,
        tqdm_builder=progress,
    )


@_checked
@contextlib.contextmanager
def route_online_writes(online_store: Any, write: Callable[..., None]) -> Iterator[None]:
    """Send the online store's ``online_write_batch`` calls to ``write`` inside this block.

    The local batch engine writes through the provider's online store object, so an instance attribute on
    that object catches its writes; the store's own attribute (if any) comes back afterwards.
    """
    had_own = "online_write_batch" in vars(online_store)
    previous = vars(online_store).get("online_write_batch")
    online_store.online_write_batch = write
    try:
        yield
    finally:
        if had_own:
            online_store.online_write_batch = previous
        else:
            del online_store.online_write_batch


@_checked
def own_online_write(online_store: Any) -> Callable[..., None]:
    """The store's own ``online_write_batch``, bound, bypassing ``route_online_writes``."""
    return type(online_store).online_write_batch.__get__(online_store)


def naive_utc(moment: datetime) -> datetime:
    """A timestamp as Feast's stores keep it: naive UTC (``feast.utils.to_naive_utc``; per row, unchecked)."""
    from feast.utils import to_naive_utc

    return to_naive_utc(moment)


def tz_aware(moment: datetime) -> datetime:
    """Naive timestamps taken as UTC (``feast.utils.make_tzaware``; per row, unchecked)."""
    from feast.utils import make_tzaware

    return make_tzaware(moment)


# -- SQL online stores (SQLite, PostgreSQL) -------------------------------------------------------------


@_checked
def online_table_name(config: Any, view: Any) -> str:
    """The online table of ``view`` in Feast's SQL online stores."""
    from feast.infra.online_stores.helpers import compute_table_id

    return compute_table_id(config.project, view, config.registry.enable_online_feature_view_versioning)


def online_table_columns(with_value_num: bool) -> list[str]:
    """The online table's columns a guarded write fills (Feast's SQL stores add ``value_num`` on request)."""
    return ["entity_key", "feature_name", "value", "value_text", *(["value_num"] if with_value_num else []),
            "event_ts", "created_ts"]  # fmt: skip


@_checked
def encoded_online_rows(
    config: Any, data: list, with_value_num: bool, adapt: Callable[[datetime], Any] | None = None
) -> Iterator[tuple]:
    """Feast's SQL online-table rows for ``data``, one per (entity, feature), in (entity key, feature) order,
    columns as ``online_table_columns``. Timestamps are naive UTC, passed through ``adapt`` when given (once
    per entity row, not per value). A generator: no list of every value in memory."""
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.infra.online_stores.helpers import extract_text_and_num
    from feast.utils import to_naive_utc

    version = config.entity_key_serialization_version

    def stamp(moment: datetime | None) -> Any:
        if moment is None:
            return None
        naive = to_naive_utc(moment)
        return adapt(naive) if adapt else naive

    # Entity rows in primary-key order: SQLite's merge appends along its B-tree, PostgreSQL locks in one order.
    keyed = sorted(
        (
            (serialize_entity_key(entity_key, entity_key_serialization_version=version), values, event_ts, created_ts)
            for entity_key, values, event_ts, created_ts in data
        ),
        key=lambda row: row[0],
    )
    for key, values, event_ts, created_ts in keyed:
        stamps = (stamp(event_ts), stamp(created_ts))
        for feature_name in sorted(values):
            value = values[feature_name]
            text, number = extract_text_and_num(value, with_value_num)
            middle = (text, number) if with_value_num else (text,)
            yield (key, feature_name, value.SerializeToString(), *middle, *stamps)


@_checked
def sql_connection(online_store: Any, config: Any) -> Any:
    """The SQLite or PostgreSQL online store's own connection (``_get_conn``)."""
    return online_store._get_conn(config)


@_checked
def postgres_table_has_value_num(online_store: Any, cursor: Any, table_name: str, config: Any) -> bool:
    return online_store._check_table_has_value_num(cursor, table_name, config)


# -- Redis online store ---------------------------------------------------------------------------------


@_checked
def redis_client(online_store: Any, store_config: Any) -> Any:
    return online_store._get_client(store_config)


@_checked
def redis_view_name(view: Any, config: Any) -> str:
    """The view's name as the Redis store uses it in its ``_ts:<view>`` and feature field keys."""
    from feast.infra.online_stores.redis import _versioned_fv_name

    return _versioned_fv_name(view, config)


@_checked
def is_redis_cluster(store_config: Any) -> bool:
    from feast.infra.online_stores.redis import RedisType

    return store_config.redis_type == RedisType.redis_cluster


@_checked
def redis_entity_key_encoder(config: Any) -> Callable[[Any], bytes]:
    """A function from an entity key proto to its Redis hash key (called per row)."""
    from feast.infra.online_stores.helpers import _redis_key

    project, version = config.project, config.entity_key_serialization_version
    return lambda entity_key: _redis_key(project, entity_key, entity_key_serialization_version=version)


def redis_field_key(view_name: str, feature_name: str) -> bytes:
    """A feature's hash field in the Redis store (per feature, unchecked)."""
    from feast.infra.online_stores.helpers import _mmh3

    return _mmh3(f"{view_name}:{feature_name}")


# -- the registry ---------------------------------------------------------------------------------------


@_checked
@contextlib.contextmanager
def registry_file_writer(store: Any, write: Callable[[Any], None]) -> Iterator[None]:
    """Inside this block the file registry writes its proto with ``write`` (no-op for other registries)."""
    registry_store = getattr(store.registry, "_registry_store", None)
    if registry_store is None or not hasattr(registry_store, "_write_registry"):
        yield
        return
    registry_store._write_registry = write
    try:
        yield
    finally:
        del registry_store._write_registry


@_checked
def registry_proto_bytes(registry_proto: Any) -> bytes:
    """The registry proto stamped as Feast stamps it before writing (new version id, update time), serialised."""
    import uuid

    registry_proto.version_id = str(uuid.uuid4())
    registry_proto.last_updated.FromDatetime(datetime.now(timezone.utc))
    return registry_proto.SerializeToString()


# -- apply ----------------------------------------------------------------------------------------------


@_checked
def repo_files(repo_path: Path) -> list[Path]:
    """The repository's definition files, as ``feast apply`` finds them (``.feastignore`` honoured)."""
    from feast.repo_operations import get_repo_files

    return list(get_repo_files(repo_path))


@_checked
def parse_repo(repo_path: Path) -> Any:
    """The repository's objects, imported from its definition files as ``feast apply`` does."""
    from feast.repo_operations import parse_repo as feast_parse_repo

    return feast_parse_repo(repo_path)


@_checked
def apply_plan(store: Any, repo: Any, registry_diff: Any, infra_diff: Any, new_infra: Any) -> None:
    """Apply what ``store.plan(repo)`` planned, the way ``feast apply`` does on this Feast version."""
    if store._should_use_plan():
        store._apply_diffs(registry_diff, infra_diff, new_infra)
    else:
        from feast.repo_operations import extract_objects_for_apply_delete

        to_apply, to_delete, _, _ = extract_objects_for_apply_delete(store.project, store.registry, repo)
        store.apply(to_apply, objects_to_delete=to_delete, partial=False)


# -- sliced materialisation: offline reads and conversion outside Feast's engine -----------------------


@_checked
def offline_columns(view: Any, store: Any) -> tuple[list[str], list[str], str, str | None]:
    """The source columns Feast reads to materialise ``view``: join keys, features, event timestamp, created
    timestamp (``feast.utils._get_column_names``: source names, before the view's field mapping)."""
    from feast.utils import _get_column_names

    entities = [store.registry.get_entity(name, store.project) for name in view.entities]
    join_keys, features, timestamp, created, *_ = _get_column_names(view, entities)
    return list(join_keys), list(features), timestamp, created


@_checked
def local_parquet_path(source: Any, repo_path: Any) -> str | None:
    """The local parquet file or folder behind a ``FileSource`` (None for other sources and remote files)."""
    from feast.infra.offline_stores.file_source import FileSource

    if not isinstance(source, FileSource) or type(source.file_format).__name__ not in ("ParquetFormat", "NoneType"):
        return None
    uri = FileSource.get_uri_for_file_path(repo_path, source.path)
    if "://" in uri and not uri.startswith("file://"):
        return None
    return uri.removeprefix("file://")


@_checked
def pull_latest(store: Any, view: Any, start: datetime, end: datetime) -> Any:
    """Feast's offline read for materialisation (newest row per entity in ``start`` .. ``end``, both included),
    as an arrow table with the view's field mapping applied."""
    join_keys, features, timestamp, created = offline_columns(view, store)
    job = provider_of(store).offline_store.pull_latest_from_table_or_query(
        config=store.config,
        data_source=view.batch_source,
        join_key_columns=join_keys,
        feature_name_columns=features,
        timestamp_field=timestamp,
        created_timestamp_column=created,
        start_date=start,
        end_date=end,
    )
    table = job.to_arrow()
    mapping = view.batch_source.field_mapping or {}
    return table.rename_columns([mapping.get(name, name) for name in table.column_names]) if mapping else table


@_checked
def proto_values(batch: Any, columns: list[tuple[str, Any]]) -> dict[str, list]:
    """Feast's own per-value conversion of arrow columns to ``ValueProto`` (``_columns_to_proto_values``)."""
    from feast.utils import _columns_to_proto_values

    return _columns_to_proto_values(batch, columns, allow_missing=False)


@_checked
def feast_online_rows(table: Any, view: Any) -> list:
    """Feast's ``(entity_key, {feature: value}, event_ts, created_ts)`` rows for an arrow table of ``view``."""
    from feast.utils import _convert_arrow_to_proto

    join_keys = {entity.name: entity.dtype.to_value_type() for entity in view.entity_columns}
    return _convert_arrow_to_proto(table, view, join_keys)


@_checked
def serialized_entity_keys(config: Any, join_keys: list[str], values: dict[str, list]) -> list[bytes]:
    """The online stores' entity key bytes, one per row, from per-column ``ValueProto`` lists."""
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey

    version = config.entity_key_serialization_version
    columns = [values[name] for name in join_keys]
    return [
        serialize_entity_key(EntityKey(join_keys=join_keys, entity_values=list(row)),
                             entity_key_serialization_version=version)
        for row in zip(*columns, strict=True)
    ]  # fmt: skip


def text_and_num(value: Any, with_value_num: bool) -> tuple[Any, Any]:
    """The SQL online tables' ``value_text`` and ``value_num`` of a ``ValueProto`` (per unique value, unchecked)."""
    from feast.infra.online_stores.helpers import extract_text_and_num

    return extract_text_and_num(value, with_value_num)
