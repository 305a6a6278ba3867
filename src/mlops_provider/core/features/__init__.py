"""Feature store logic on Feast: apply, backfill-safe materialisation, point-in-time training sets, freshness.

No Airflow in here: every function takes a ``feast.FeatureStore`` (or plain values) and returns a small
dataclass with ``to_dict()``. Feast is imported inside the functions, so importing this package stays cheap.

Modules, by concern:

* ``guards``: the online-store write guards that keep older rows from replacing newer ones, one per file
  behind ``WriteGuard``, chosen by ``write_guard_for`` (its docstring explains backfill safety).
* ``registry``: apply a repository, the registry lock, recording materialisation intervals.
* ``materialize``: ``materialize_window`` and its result.
* ``sliced``, ``slice_io``: long windows in time slices (memory of one slice, resumable), and their reads
  and encoding.
* ``training_sets``: point-in-time joins.
* ``freshness``: freshness from the recorded materialisation intervals.
* ``compat``: every call into Feast's private API, with the check of the Feast version they were tested on.

The materialisation windows (parse, default, slice) are ``mlops_provider.core.windows``, re-exported here: the
operators use them at DAG parse time, without loading this package.
"""

from __future__ import annotations

from mlops_provider.core.features.freshness import (
    FreshnessReport,
    ViewFreshness,
    assess_view_freshness,
    check_freshness,
    merge_intervals,
)
from mlops_provider.core.features.guards import (
    REDIS_ENTITIES_PER_SCRIPT,
    REDIS_GUARD_SCRIPT,
    SQLITE_BUSY_TIMEOUT_MS,
    PostgresConditionalUpsert,
    ReadCompareWrite,
    RedisAtomicCompareAndSet,
    SqliteConditionalUpsert,
    WriteGuard,
    WriteStats,
    write_guard_for,
)
from mlops_provider.core.features.materialize import (
    MaterializationResult,
    ViewMaterialization,
    materialize_window,
    resolve_feature_views,
)
from mlops_provider.core.features.registry import (
    ApplyResult,
    apply_repository,
    record_materialization,
    registry_lock,
)
from mlops_provider.core.features.sliced import check_slice_length, materialize_in_slices
from mlops_provider.core.features.training_sets import (
    DEFAULT_TIMESTAMP_COLUMN,
    ROW_ORDER_COLUMN,
    TrainingSet,
    build_training_set,
    resolve_feature_refs,
)
from mlops_provider.core.windows import MaterializationWindow, resolve_window, split_window, to_utc

__all__ = [
    "DEFAULT_TIMESTAMP_COLUMN",
    "REDIS_ENTITIES_PER_SCRIPT",
    "REDIS_GUARD_SCRIPT",
    "ROW_ORDER_COLUMN",
    "SQLITE_BUSY_TIMEOUT_MS",
    "ApplyResult",
    "FreshnessReport",
    "MaterializationResult",
    "MaterializationWindow",
    "PostgresConditionalUpsert",
    "ReadCompareWrite",
    "RedisAtomicCompareAndSet",
    "SqliteConditionalUpsert",
    "TrainingSet",
    "ViewFreshness",
    "ViewMaterialization",
    "WriteGuard",
    "WriteStats",
    "apply_repository",
    "assess_view_freshness",
    "build_training_set",
    "check_slice_length",
    "check_freshness",
    "materialize_in_slices",
    "materialize_window",
    "merge_intervals",
    "record_materialization",
    "registry_lock",
    "resolve_feature_refs",
    "resolve_feature_views",
    "resolve_window",
    "split_window",
    "to_utc",
    "write_guard_for",
]
