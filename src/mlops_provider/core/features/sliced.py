"""Long windows materialised in time slices: memory follows one slice, a killed run resumes where it stopped.

Feast materialises a window in one piece: it reads every row of the window, keeps the newest per entity and
converts every value to protobuf one by one, so its memory grows with the window and its time goes to the
conversion. ``materialize_in_slices`` cuts the window into slices of ``slice_length`` and handles one slice
at a time (read, newest row per entity, encode, guarded write), so only one slice's rows are ever held.

Slices run newest first. An entity written from a newer slice of this run already has a newer value online
than any row an older slice holds for it, so older slices skip it (``rows_superseded``): the online store
ends exactly as one window would leave it, and a long window of daily snapshots costs about one slice of
writes plus the reads. The write guard still decides every value that is written, so values newer than the
window (a backfill under newer data) stay online.

Each finished slice is recorded in the registry as a materialisation interval of each view, like a window
of its own. With ``resume`` (the default), slices already recorded for every view are skipped: a retry after
a killed worker starts at the first slice not finished, and rerunning a finished window writes nothing.
The intervals are what freshness reads, so they also say how far a long run has got.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from mlops_provider.core.durations import as_duration
from mlops_provider.core.errors import ConfigurationError, MaterializationWindowError
from mlops_provider.core.features import compat
from mlops_provider.core.features.guards import SqliteConditionalUpsert, WriteStats
from mlops_provider.core.features.materialize import (
    MaterializationResult,
    ViewMaterialization,
    prepare_materialization,
)
from mlops_provider.core.features.registry import materialized_intervals, record_materialization
from mlops_provider.core.features.slice_io import RowGroupCache, encoded_rows, read_slice
from mlops_provider.core.windows import MaterializationWindow, split_window

if TYPE_CHECKING:
    from feast import FeatureStore

SliceCallback = Callable[[int, MaterializationWindow, list[ViewMaterialization]], None]


def check_slice_length(slice_length: Any) -> timedelta:
    """``slice_length`` as a positive timedelta: a timedelta, seconds, or text such as ``1d``, ``6h``,
    ``PT6H`` (what pandas.Timedelta reads)."""
    try:
        return as_duration(slice_length, "slice_length", positive=True, example="timedelta(days=1)")
    except ConfigurationError:
        raise MaterializationWindowError(
            f"slice_length={slice_length!r} is not a positive duration; pass a timedelta such as "
            "timedelta(days=1), a number of seconds, or text such as '1d' or '6h' (or leave it unset to "
            "materialise the window in one piece)."
        ) from None


def materialize_in_slices(
    store: FeatureStore,
    window: MaterializationWindow,
    feature_views: Sequence[str] | None = None,
    *,
    slice_length: Any,
    resume: bool = True,
    on_slice: SliceCallback | None = None,
) -> MaterializationResult:
    """Materialise ``window`` in consecutive slices of ``slice_length`` (the last one shorter), newest first,
    each through the backfill guard and recorded in the registry when done; see the module docstring.

    ``resume`` skips the slices already recorded for every view (a retry continues a killed run; a finished
    window is not written again); ``resume=False`` writes every slice again. ``on_slice(index, slice,
    views)`` is called after each slice (index counts from 0 in the order run)."""
    length = check_slice_length(slice_length)
    views, provider, guard = prepare_materialization(store, feature_views)
    parts = split_window(window, slice_length=length)[::-1]
    result = MaterializationResult(
        window=window,
        online_store=str(getattr(store.config.online_store, "type", type(provider.online_store).__name__)),
        guard=guard.strategy,
        guard_description=guard.description,
        atomic=guard.atomic,
        slices=0 if window.empty else len(parts),
    )
    totals = {view.name: ViewMaterialization(view.name, 0, 0, 0, 0, False, 0.0) for view in views}
    result.views = list(totals.values())
    if window.empty:
        return result
    done = {view.name: materialized_intervals(store, view.name) for view in views} if resume else {}
    seen: dict[str, list[Any]] = {view.name: [] for view in views}
    caches = {view.name: RowGroupCache() for view in views}
    started = time.perf_counter()
    with guard.installed():
        for index, part in enumerate(parts):
            bounds = (part.start, part.end)
            if resume and all(bounds in done[view.name] for view in views):
                result.slices_resumed += 1
                continue
            reports = []
            for view in views:
                if resume and bounds in done[view.name]:
                    continue
                report = _materialize_slice(store, guard, view, part, seen[view.name], caches[view.name])
                report.interval_recorded = record_materialization(store, view.name, part)
                reports.append(report)
                _add(totals[view.name], report)
            if on_slice is not None:
                on_slice(index, part, reports)
    result.seconds = time.perf_counter() - started
    return result


def _materialize_slice(
    store: FeatureStore, guard: Any, view: Any, part: MaterializationWindow, seen: list[Any], cache: RowGroupCache
) -> ViewMaterialization:
    """Read, skip entities a newer slice wrote, encode and write one slice of one view."""
    import pyarrow as pa
    import pyarrow.compute as pc

    began = time.perf_counter()
    table = read_slice(store, view, part, cache)
    read = table.num_rows
    join_keys = [entity.name for entity in view.entity_columns]
    if len(join_keys) == 1 and read:
        keys = table.column(join_keys[0]).combine_chunks()
        if seen:
            known = pa.chunked_array(seen, type=keys.type)
            table = table.filter(pc.invert(pc.is_in(keys, value_set=known.combine_chunks())))
            keys = table.column(join_keys[0]).combine_chunks()
        seen.append(keys)
    before = guard.stats.get(view.name, WriteStats())
    before = WriteStats(before.rows, before.values, before.values_written)
    if table.num_rows:
        if isinstance(guard, SqliteConditionalUpsert):
            guard.write_encoded(
                store.config,
                view,
                lambda with_num, adapt: encoded_rows(store.config, view, table, with_num, adapt),
                table.num_rows,
            )
        else:  # the other guards take Feast's rows, converted by Feast
            guard.write(store.config, view, compat.feast_online_rows(table, view), None)
    after = guard.stats.get(view.name, WriteStats())
    return ViewMaterialization(
        name=view.name,
        rows=read,
        values=after.values - before.values,
        values_written=after.values_written - before.values_written,
        values_kept_out=after.values_kept_out - before.values_kept_out,
        interval_recorded=False,
        seconds=round(time.perf_counter() - began, 3),
        rows_superseded=read - table.num_rows,
    )


def _add(total: ViewMaterialization, part: ViewMaterialization) -> None:
    total.rows += part.rows
    total.values += part.values
    total.values_written += part.values_written
    total.values_kept_out += part.values_kept_out
    total.rows_superseded += part.rows_superseded
    total.interval_recorded = total.interval_recorded or part.interval_recorded
    total.seconds = round(total.seconds + part.seconds, 3)
