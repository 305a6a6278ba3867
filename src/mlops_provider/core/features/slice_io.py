"""One slice of a long materialisation: read it from the offline store, and encode it for the online store.

``read_slice`` returns the newest row per entity among the rows stamped in ``[start, end)``, as an arrow table
with the view's own column names, like Feast's materialisation read. A local parquet ``FileSource`` is read
by row group, only those whose timestamp statistics overlap the slice, each decoded once for the slices it
holds (``RowGroupCache``); Feast's file (Dask) store would read and sort the whole file for every slice.
Every other source goes through Feast's own offline read (``compat.pull_latest``), which SQL stores push
down to their ``WHERE`` clause.

``encoded_rows`` turns such a table into the SQL online tables' rows without Feast's per-value conversion of
every value: each column is dictionary-encoded, Feast converts each distinct value once (its own function,
so the bytes are the ones Feast would write), and the rows index into those. Snapshot data repeats its
values a lot (plans, counts, rounded amounts), so there are far fewer distinct values than values.

Feast, pyarrow and pandas are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlops_provider.core.features import compat
from mlops_provider.core.windows import MaterializationWindow

if TYPE_CHECKING:
    import pyarrow as pa


class RowGroupCache:
    """The last few decoded parquet row groups of a slice-by-slice read. Consecutive slices usually fall in
    the same row group (a row group holds up to about a million rows: many slices of daily data), so each row
    group is decoded once instead of once per slice; memory stays at ``keep`` row groups."""

    def __init__(self, keep: int = 2) -> None:
        self.keep = keep
        self._tables: dict[tuple[str, int, tuple[str, ...]], Any] = {}

    def get(self, key: tuple[str, int, tuple[str, ...]], read: Callable[[], Any]) -> Any:
        if key not in self._tables:
            while len(self._tables) >= self.keep:
                del self._tables[next(iter(self._tables))]
            self._tables[key] = read()
        return self._tables[key]


def read_slice(store: Any, view: Any, window: MaterializationWindow, cache: RowGroupCache | None = None) -> pa.Table:
    """The newest row per entity of ``view`` among the rows stamped in ``window`` (half-open)."""
    path = compat.local_parquet_path(view.batch_source, store.repo_path)
    if path is None:
        read_end = compat.offline_read_end(store.config, window.end)
        return compat.pull_latest(store, view, window.start, read_end)
    import pyarrow as pa
    import pyarrow.dataset as ds

    join_keys, features, timestamp, created = compat.offline_columns(view, store)
    dataset = ds.dataset(path, format="parquet")
    column_type = dataset.schema.field(timestamp).type
    start, end = (_scalar(moment, column_type) for moment in (window.start, window.end))
    wanted = tuple(dict.fromkeys([*join_keys, *features, timestamp, *([created] if created else [])]))
    in_window = (ds.field(timestamp) >= start) & (ds.field(timestamp) < end)
    cache = cache or RowGroupCache()
    parts = []
    for fragment in dataset.get_fragments(filter=in_window):
        # Row-group statistics leave only the row groups that may hold rows of the window.
        for group in fragment.split_by_row_group(filter=in_window):
            index = group.row_groups[0].id

            def decode(group: Any = group) -> Any:
                return group.to_table(columns=list(wanted))

            table = cache.get((fragment.path, index, wanted), decode)
            parts.append(table.filter(in_window))
    schema = pa.schema([dataset.schema.field(name) for name in wanted])
    table = pa.concat_tables(parts) if parts else schema.empty_table()
    table = newest_per_entity(table, join_keys, timestamp, created)
    mapping = view.batch_source.field_mapping or {}
    return table.rename_columns([mapping.get(name, name) for name in table.column_names]) if mapping else table


def _scalar(moment: datetime, column_type: Any) -> Any:
    """``moment`` as an arrow scalar comparable with the timestamp column (naive columns hold UTC)."""
    import pyarrow as pa

    if getattr(column_type, "tz", None) is None:
        moment = compat.naive_utc(moment)
    unit = getattr(column_type, "unit", "us")
    return pa.scalar(moment, type=pa.timestamp(unit, tz=getattr(column_type, "tz", None)))


def newest_per_entity(table: pa.Table, join_keys: list[str], timestamp: str, created: str | None) -> pa.Table:
    """One row per entity: the newest event timestamp, ties broken by the newest created timestamp (Feast's
    materialisation sorts by created, then event timestamp, and keeps the last row per entity)."""
    import numpy as np
    import pandas as pd

    if table.num_rows == 0 or not join_keys:
        return table
    order_columns = [timestamp, *([created] if created else [])]
    frame = pd.DataFrame({name: table.column(name).to_numpy(zero_copy_only=False) for name in join_keys})
    for name in order_columns:
        frame[f"__order_{name}"] = table.column(name).to_numpy(zero_copy_only=False)
    frame = frame.sort_values([f"__order_{name}" for name in order_columns], kind="stable")
    kept = frame.drop_duplicates(join_keys, keep="last").index.to_numpy()
    return table.take(np.sort(kept))


def encoded_rows(
    config: Any,
    view: Any,
    table: pa.Table,
    with_value_num: bool,
    adapt: Callable[[datetime], Any] | None = None,
) -> Iterator[tuple]:
    """The SQL online-table rows (``compat.online_table_columns`` order) for ``table``, one per (entity,
    feature), in (entity key, feature) order; timestamps naive UTC, passed through ``adapt`` when given.
    ``table`` holds one row per entity (``read_slice``). A generator over the slice's columns."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if table.num_rows == 0:
        return
    batch = table.combine_chunks()
    join_keys = [entity.name for entity in view.entity_columns]
    key_types = [(entity.name, entity.dtype.to_value_type()) for entity in view.entity_columns]
    keys = compat.serialized_entity_keys(
        config, join_keys, compat.proto_values(pa.RecordBatch.from_arrays([batch.column(k).combine_chunks()
                                                                            for k in join_keys], join_keys), key_types)
    )  # fmt: skip
    columns: list[tuple[str, list[tuple], Any]] = []
    for feature in sorted(view.features, key=lambda field: field.name):
        column = batch.column(feature.name).combine_chunks()
        encoded = pc.dictionary_encode(column)
        distinct = pa.concat_arrays([encoded.dictionary, pa.nulls(1, type=column.type)])  # last: the null value
        protos = compat.proto_values(
            pa.RecordBatch.from_arrays([distinct], [feature.name]), [(feature.name, feature.dtype.to_value_type())]
        )[feature.name]
        cells = [(proto.SerializeToString(), *_text_and_num(proto, with_value_num)) for proto in protos]
        codes = encoded.indices.fill_null(len(distinct) - 1).to_numpy(zero_copy_only=False)
        columns.append((feature.name, cells, codes))
    source = view.batch_source
    event = _stamps(batch.column(source.timestamp_field), adapt)
    created_name = source.created_timestamp_column
    created = _stamps(batch.column(created_name), adapt) if created_name else [None] * len(keys)
    for row in sorted(range(len(keys)), key=keys.__getitem__):  # primary-key order: the merge appends
        key, stamps = keys[row], (event[row], created[row])
        for name, cells, codes in columns:
            yield (key, name, *cells[codes[row]], *stamps)


def _text_and_num(proto: Any, with_value_num: bool) -> tuple:
    text, number = compat.text_and_num(proto, with_value_num)
    return (text, number) if with_value_num else (text,)


def _stamps(column: Any, adapt: Callable[[datetime], Any] | None) -> list:
    """Naive UTC datetimes (microseconds, like Feast's conversion), adapted; None for nulls."""
    import pandas as pd

    moments = pd.to_datetime(column.to_numpy(zero_copy_only=False), utc=True).tz_convert(None).to_pydatetime()
    nulls = column.is_null().to_numpy(zero_copy_only=False) if column.null_count else None
    return [
        None if nulls is not None and nulls[i] else (adapt(moment) if adapt else moment)
        for i, moment in enumerate(moments)
    ]
