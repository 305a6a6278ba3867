"""Drift on wide data: columns read in blocks from parquet, each tested once, results that merge.

``core.drift.detect_drift`` takes two DataFrames, so both sides are in memory whole (200k rows x 1,000 float
columns is 1.6 GB a side). Here a side is a ``Source``: parquet files whose schema and row count come from
their footers, read a block of columns at a time (``BLOCK_CELLS`` values a side), so memory follows the block,
not the table. The verdicts are those of ``detect_drift`` on the same data, column for column:

* the same column choice and types (``core.drift.resolve_column_types`` on the schemas);
* the same seeded row sample above ``max_rows`` (the indices ``DataFrame.sample`` draws);
* ``ks``: scipy's ``ks_2samp`` p-value (what Evidently's ``ks`` calls) from ``core.drift_ks``, without sorting
  the columns;
* ``chi2_homogeneity``: category counts taken in Arrow (no Python strings per row), then the same test;
* any other method: Evidently's stattest on the column as a pandas Series, as ``detect_drift`` does.

A check of some columns (``columns=``, one mapped task of a split check) returns a ``DriftPart``: the column
verdicts plus a small sketch (histogram or category shares) of each drifted column for the report;
``merge_parts`` joins the parts of all columns into the one ``DriftResult`` a single check would give.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_provider.core import datasets
from mlops_provider.core.drift import (
    CATEGORICAL,
    CHI2_HOMOGENEITY,
    NUMERICAL,
    ColumnDrift,
    DriftResult,
    DriftSettings,
    all_null_column,
    resolve_column_types,
    stattest_column,
)
from mlops_provider.core.drift_ks import ks_p_value
from mlops_provider.core.errors import DriftInputError, EmptyDatasetError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

# Above this many tested columns a single check uses this engine and the compact report (Evidently's HTML grows
# by a full widget set per column and takes seconds per column to build).
WIDE_COLUMNS = 100
# Values per side held at once: 16M float64 values are 128 MB a side.
BLOCK_CELLS = 16_000_000
THREADS = max(1, min(4, os.cpu_count() or 1))
HISTOGRAM_BINS = 20
TOP_CATEGORIES = 8


class Source:
    """One side of a check: its row count and schema without reading data, and blocks of columns."""

    rows: int

    def schema_frame(self) -> pd.DataFrame:
        """An empty DataFrame with the side's columns and pandas dtypes."""
        raise NotImplementedError

    def read(self, columns: list[str], rows: np.ndarray | None = None) -> pa.Table:
        """``columns`` (all rows, or the rows at the sorted positions ``rows``) as an Arrow table."""
        raise NotImplementedError


class FrameSource(Source):
    """A DataFrame already in memory (a reference sample from MLflow, a CSV file, a test's frame)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.rows = len(frame)

    def schema_frame(self) -> pd.DataFrame:
        return self.frame.iloc[:0]

    def read(self, columns: list[str], rows: np.ndarray | None = None) -> pa.Table:
        import pyarrow as pa

        part = self.frame[columns] if rows is None else self.frame[columns].iloc[rows]
        return pa.Table.from_pandas(part, preserve_index=False)


@dataclass(frozen=True)
class _ParquetFile:
    path: str
    rows: int
    partition_values: dict[str, str]


class ParquetSource(Source):
    """Local parquet files (S3 files are copied to a temporary folder first, once): columns are read per block.

    Each file is opened once: its footer (at 1,000 columns, thousands of column chunks) is parsed once, not per
    block. Not memory-mapped: the mapped pages of a file would count in the task's resident memory until it closes.
    """

    def __init__(self, files: list[_ParquetFile]) -> None:
        import pyarrow.parquet as pq

        self.files = files
        self.rows = sum(f.rows for f in files)
        self.schema = pq.read_schema(files[0].path)
        self.file_columns = set(self.schema.names)
        self.path_columns = [k for k in files[0].partition_values if k not in self.file_columns]
        self._opened: dict[str, Any] = {}

    def schema_frame(self) -> pd.DataFrame:
        frame = self.schema.empty_table().to_pandas()
        for key in self.path_columns:
            frame[key] = frame.index.astype(str).astype(object)  # read_dataset makes them string columns
        return frame

    def _parquet_file(self, path: str) -> Any:
        import pyarrow.parquet as pq

        if path not in self._opened:
            self._opened[path] = pq.ParquetFile(path)
        return self._opened[path]

    def read(self, columns: list[str], rows: np.ndarray | None = None) -> pa.Table:
        import pyarrow as pa

        in_files = [c for c in columns if c in self.file_columns]
        tables = []
        for data_file in self.files:
            table = self._parquet_file(data_file.path).read(columns=in_files, use_threads=True)
            for key in columns:
                if key not in self.file_columns:
                    value = data_file.partition_values.get(key)
                    table = table.append_column(key, pa.array([value] * data_file.rows, pa.string()))
            tables.append(table.select(columns))
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        return table if rows is None else table.take(rows)

    def close(self) -> None:
        for opened in self._opened.values():
            opened.close()
        self._opened.clear()


def open_source(uri: str, *, s3_client: Any = None, stack: ExitStack) -> Source:
    """The dataset at ``uri`` (as ``core.datasets.read_dataset`` reads it) as a ``Source``.

    Parquet is read per block of columns; S3 objects are copied once into a temporary folder that ``stack``
    removes. CSV has no column index, so a CSV dataset is read whole (``FrameSource``).
    """
    import pyarrow.parquet as pq

    files: list[_ParquetFile] = []
    for part in datasets.split_uris(uri):
        location = datasets.parse_uri(part)
        if location.scheme == "s3":
            listed = datasets._list_s3(location, datasets._require_s3_client(location, s3_client))
        else:
            listed = datasets._list_local(location)
        if not listed:
            continue
        if datasets._check_format(location, listed, None) != "parquet":
            return FrameSource(datasets.read_dataset(uri, s3_client=s3_client, allow_empty=True))
        own = datasets._own_partition_values(location)
        for data_file in listed:
            path = data_file.name
            if location.scheme == "s3":
                folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="mlops-drift-"))
                path = str(Path(folder) / Path(data_file.name).name)
                s3_client.download_file(location.bucket, data_file.name, path)
            values = {**own, **datasets._partition_values(data_file.relative_dir)}
            files.append(_ParquetFile(path, pq.ParquetFile(path).metadata.num_rows, values))
    if not files:
        import pandas as pd

        return FrameSource(pd.DataFrame())
    source = ParquetSource(files)
    stack.callback(source.close)
    return source


@dataclass
class DriftPart:
    """The verdicts of some columns, their row counts and a sketch of each drifted column (for the report)."""

    columns: dict[str, ColumnDrift]
    sketches: dict[str, dict[str, Any]]
    reference_rows: int
    current_rows: int
    tested_rows: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftPart:
        return cls(
            columns={name: ColumnDrift(**column) for name, column in data["columns"].items()},
            sketches=dict(data.get("sketches") or {}),
            reference_rows=int(data["reference_rows"]),
            current_rows=int(data["current_rows"]),
            tested_rows=dict(data["tested_rows"]),
        )


@dataclass
class WideDrift:
    """A whole check: the verdict of record and the sketches its report draws."""

    result: DriftResult
    sketches: dict[str, dict[str, Any]] = field(default_factory=dict)


def plan_columns(reference: Source, current: Source, settings: DriftSettings) -> dict[str, str]:
    """The tested columns and their types, from the two schemas (no data read): ``detect_drift``'s choice."""
    for side, source in (("reference", reference), ("current", current)):
        if source.rows == 0:
            raise EmptyDatasetError(f"The {side} data has no rows; a drift check needs both sides.")
    types = resolve_column_types(reference.schema_frame(), current.schema_frame(), settings)
    if not types:
        raise DriftInputError("No column is left to test after excluding timestamps and excluded columns.")
    return types


def chunk_columns(columns: list[str], columns_per_task: int) -> list[list[str]]:
    """``columns`` in consecutive chunks of at most ``columns_per_task`` (the last may be shorter)."""
    return [columns[start : start + columns_per_task] for start in range(0, len(columns), columns_per_task)]


def settings_for(settings: DriftSettings, columns: list[str]) -> DriftSettings:
    """The settings of a check of ``columns`` only (per-column overrides of other columns left out)."""
    return replace(
        settings,
        columns=list(columns),
        per_column_method={c: m for c, m in settings.per_column_method.items() if c in columns},
        per_column_threshold={c: t for c, t in settings.per_column_threshold.items() if c in columns},
    )


def sample_rows(rows: int, max_rows: int, seed: int) -> np.ndarray | None:
    """The sorted row positions ``DataFrame.sample(n=max_rows, random_state=seed)`` picks; None: every row."""
    import numpy as np

    if rows <= max_rows:
        return None
    return np.sort(np.random.RandomState(seed).choice(rows, size=max_rows, replace=False))


def check_columns(
    reference: Source,
    current: Source,
    column_types: dict[str, str],
    settings: DriftSettings,
    *,
    progress: Callable[[int, int], None] | None = None,
    report_sample: Callable[[pa.Table, pa.Table], None] | None = None,
) -> DriftPart:
    """Test each of ``column_types`` once, a block of columns at a time.

    With ``report_sample``, the rows the report is built from (``report_rows`` a side, the rows ``sample_rows``
    picks with the sides' seeds) are kept from the blocks as they are read and handed to it, all columns in
    ``column_types`` order, as soon as the last block is read: the report needs no second read of the data.
    """
    reference_rows = sample_rows(reference.rows, settings.max_rows, settings.seed)
    current_rows = sample_rows(current.rows, settings.max_rows, settings.seed + 1)
    tested = {
        "reference": reference.rows if reference_rows is None else len(reference_rows),
        "current": current.rows if current_rows is None else len(current_rows),
    }
    tested["sampled"] = tested["reference"] < reference.rows or tested["current"] < current.rows
    report_rows = (
        sample_rows(reference.rows, settings.report_rows, settings.seed),
        sample_rows(current.rows, settings.report_rows, settings.seed + 1),
    )
    kept: tuple[list[pa.Table], list[pa.Table]] = ([], [])
    block = max(1, BLOCK_CELLS // max(tested["reference"], tested["current"], 1))
    names = list(column_types)
    results: dict[str, ColumnDrift] = {}
    sketches: dict[str, dict[str, Any]] = {}
    # numpy's searches and counts and Arrow's reads release the GIL: one thread per core tests columns side by side,
    # each holding only its own column's arrays.
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for start in range(0, len(names), block):
            chunk = names[start : start + block]
            tables = []
            for side, source, rows in ((0, reference, reference_rows), (1, current, current_rows)):
                if report_sample is None:
                    tables.append(source.read(chunk, rows))
                    continue
                whole = source.read(chunk)
                tables.append(whole if rows is None else whole.take(rows))
                kept[side].append(whole if report_rows[side] is None else whole.take(report_rows[side]))
                del whole
            if report_sample is not None and start + block >= len(names):
                report_sample(*(_join_columns(side_tables) for side_tables in kept))
                kept = ([], [])
            jobs = [
                (column, column_types[column], *settings.method_for(column, column_types[column])) for column in chunk
            ]
            for (column, *_), (outcome, sketch) in zip(jobs, pool.map(_test_job, jobs, repeat(tables)), strict=True):
                results[column] = outcome
                if sketch is not None:
                    sketches[column] = sketch
            del tables
            if progress is not None:
                progress(min(start + block, len(names)), len(names))
    return DriftPart(results, sketches, reference.rows, current.rows, tested)


def _join_columns(tables: list[pa.Table]) -> pa.Table:
    """Tables of the same rows side by side: one table with all their columns."""
    import pyarrow as pa

    if len(tables) == 1:
        return tables[0]
    return pa.Table.from_arrays(
        [column for table in tables for column in table.columns],
        names=[name for table in tables for name in table.column_names],
    )


def _test_job(job: tuple[str, str, str, float], tables: list[pa.Table]) -> tuple[ColumnDrift, dict[str, Any] | None]:
    column, column_type, method, threshold = job
    reference, current = tables
    outcome, sketch = test_column(
        column, column_type, method, threshold, reference.column(column), current.column(column)
    )
    return outcome, (sketch() if outcome.drifted else None)


def merge_parts(parts: list[DriftPart], settings: DriftSettings) -> WideDrift:
    """The parts of one check (each column in exactly one part) as the verdict a single check gives."""
    if not parts:
        raise DriftInputError("No column results to merge: the split drift check tested no columns.")
    columns: dict[str, ColumnDrift] = {}
    sketches: dict[str, dict[str, Any]] = {}
    for part in parts:
        twice = sorted(set(columns) & set(part.columns))
        if twice:
            raise DriftInputError(f"Columns {twice[:20]} were tested by two parts of the split check; plan again.")
        columns.update(part.columns)
        sketches.update(part.sketches)
    first = parts[0]
    return WideDrift(
        result_of(columns, first.reference_rows, first.current_rows, first.tested_rows, settings), sketches
    )


def result_of(
    columns: dict[str, ColumnDrift],
    reference_rows: int,
    current_rows: int,
    tested_rows: dict[str, Any],
    settings: DriftSettings,
) -> DriftResult:
    drifted = sorted(name for name, column in columns.items() if column.drifted)
    share = len(drifted) / len(columns)
    return DriftResult(
        drift_detected=share >= settings.drift_share,
        drift_share=share,
        drifted_columns=drifted,
        columns=columns,
        reference_rows=reference_rows,
        current_rows=current_rows,
        tested_rows=dict(tested_rows),
        settings=settings.record(),
    )


def detect_drift_wide(
    reference: Source,
    current: Source,
    settings: DriftSettings,
    *,
    progress: Callable[[int, int], None] | None = None,
    report_sample: Callable[[pa.Table, pa.Table], None] | None = None,
) -> WideDrift:
    """``detect_drift`` on two sources, a block of columns at a time (``report_sample``: see ``check_columns``)."""
    types = plan_columns(reference, current, settings)
    part = check_columns(reference, current, types, settings, progress=progress, report_sample=report_sample)
    return merge_parts([part], settings)


# -- one column ---------------------------------------------------------------------------------------------


def test_column(
    column: str, column_type: str, method: str, threshold: float, ref: pa.ChunkedArray, cur: pa.ChunkedArray
) -> tuple[ColumnDrift, Callable[[], dict[str, Any]]]:
    """The column's verdict and a function that sketches it (called only for drifted columns)."""
    if column_type == NUMERICAL:
        ref_values, cur_values = _numbers(column, ref, "reference"), _numbers(column, cur, "current")
        if method == "ks":
            score = ks_p_value(ref_values, cur_values)
            outcome = ColumnDrift(NUMERICAL, "ks", score, float(threshold), bool(score <= threshold))
        else:
            outcome = stattest_column(column, column_type, method, threshold, ref_values, cur_values)
        return outcome, lambda: _histogram(ref_values, cur_values, is_sorted=False)
    ref_counts, cur_counts = _counts(column, ref, "reference"), _counts(column, cur, "current")
    if method == CHI2_HOMOGENEITY:
        from mlops_provider.core.drift import chi2_homogeneity_counts

        score, drifted = chi2_homogeneity_counts(ref_counts, cur_counts, threshold)
        outcome = ColumnDrift(CATEGORICAL, CHI2_HOMOGENEITY, float(score), float(threshold), bool(drifted))
    else:
        outcome = stattest_column(column, column_type, method, threshold, _expand(ref_counts), _expand(cur_counts))
    return outcome, lambda: _shares(ref_counts, cur_counts)


def _numbers(column: str, values: pa.ChunkedArray, side: str) -> np.ndarray:
    """The column's values as a numpy array, without nulls and NaN (read-only: it may share Arrow's buffer)."""
    import numpy as np

    array = np.asarray(values.to_numpy(), dtype=np.float64) if values.null_count else values.to_numpy()
    if array.dtype.kind == "f":
        nan = np.isnan(array)
        if nan.any():
            array = array[~nan]
    if array.size == 0:
        raise all_null_column(column, side, len(values))
    return array


def _counts(column: str, values: pa.ChunkedArray, side: str) -> pd.Series:
    """Category counts as ``Series.value_counts`` of the column as text gives them (nulls left out)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(values.type):
        counts = _dictionary_counts(values)
        # Equal counts keep value_counts' order (first seen first): only the general path below knows it.
        if counts is not None and not counts.duplicated().any():
            if counts.empty:
                raise all_null_column(column, side, len(values))
            return counts.sort_values(ascending=False, kind="stable")
        values = values.cast(values.type.value_type)
    counted = pc.value_counts(values.drop_null())
    labels = [_label(v) for v in counted.field("values").to_pylist()]
    counts = pd.Series(counted.field("counts").to_numpy(), index=labels, dtype="int64")
    if counts.empty:
        raise all_null_column(column, side, len(values))
    counts = counts.groupby(level=0, sort=False).sum() if counts.index.has_duplicates else counts
    return counts.sort_values(ascending=False, kind="stable")


def _dictionary_counts(values: pa.ChunkedArray) -> pd.Series | None:
    """Counts per label of a dictionary column from its codes (no string per row); None when it has none."""
    import numpy as np
    import pandas as pd

    totals: dict[str, int] = {}
    for chunk in values.chunks:
        if len(chunk) == 0:
            continue
        codes = chunk.indices
        if codes.null_count:
            codes = codes.drop_null()
        counted = np.bincount(np.asarray(codes.to_numpy(zero_copy_only=False), dtype=np.intp),
                              minlength=len(chunk.dictionary))  # fmt: skip
        for value, count in zip(chunk.dictionary.to_pylist(), counted.tolist(), strict=False):
            if count and value is not None:
                label = _label(value)
                totals[label] = totals.get(label, 0) + count
    return pd.Series(totals, dtype="int64") if totals else pd.Series([], dtype="int64")


def _label(value: Any) -> str:
    import pandas as pd

    return str(pd.Series([value]).astype(str).iloc[0]) if not isinstance(value, str) else value


def _expand(counts: pd.Series) -> pd.Series:
    import numpy as np
    import pandas as pd

    return pd.Series(np.repeat(counts.index.to_numpy(dtype=object), counts.to_numpy()))


def _histogram(ref: np.ndarray, cur: np.ndarray, *, is_sorted: bool) -> dict[str, Any]:
    """Shares of each side in ``HISTOGRAM_BINS`` equal bins over the pooled 0.5-99.5% range (tails in the ends).

    Unsorted samples are not sorted: the two order statistics come from ``np.partition`` and the bin counts from
    one search of each value among the edges (the same counts as searching the edges in the sorted sample).
    """
    import numpy as np

    def order_statistics(values: np.ndarray) -> tuple[float, float]:
        first, second = int(0.005 * (len(values) - 1)), int(0.995 * (len(values) - 1))
        if is_sorted:
            return values[first], values[second]
        parted = np.partition(values, [first, second])
        return parted[first], parted[second]

    (ref_low, ref_high), (cur_low, cur_high) = order_statistics(ref), order_statistics(cur)
    low, high = min(ref_low, cur_low), max(ref_high, cur_high)
    if not high > low:
        low, high = min(ref.min(), cur.min()), max(ref.max(), cur.max())
    if not high > low:
        high = low + 1.0
    edges = np.linspace(float(low), float(high), HISTOGRAM_BINS + 1)

    def shares(values: np.ndarray) -> list[float]:
        if is_sorted:
            cuts = np.concatenate([[0], np.searchsorted(values, edges[1:-1], "left"), [len(values)]])
            counts = np.diff(cuts)
        else:
            counts = np.bincount(np.searchsorted(edges[1:-1], values, "right"), minlength=HISTOGRAM_BINS)
        return [round(float(v), 5) for v in counts / len(values)]

    return {
        "kind": "histogram",
        "edges": [float(f"{e:.6g}") for e in edges],
        "reference": shares(ref),
        "current": shares(cur),
        "mean": [float(f"{ref.mean():.6g}"), float(f"{cur.mean():.6g}")],
    }


def _shares(ref: pd.Series, cur: pd.Series) -> dict[str, Any]:
    """Shares of the ``TOP_CATEGORIES`` commonest categories on each side and of all others together."""
    ref_share, cur_share = ref / ref.sum(), cur / cur.sum()
    top = (ref_share.add(cur_share, fill_value=0)).sort_values(ascending=False).index[:TOP_CATEGORIES]
    labels = [str(label) for label in top]
    ref_top = [round(float(ref_share.get(label, 0.0)), 5) for label in top]
    cur_top = [round(float(cur_share.get(label, 0.0)), 5) for label in top]
    if len(ref_share.index.union(cur_share.index)) > len(top):
        labels.append("(other)")
        ref_top.append(round(max(0.0, 1 - sum(ref_top)), 5))
        cur_top.append(round(max(0.0, 1 - sum(cur_top)), 5))
    return {"kind": "categories", "labels": labels, "reference": ref_top, "current": cur_top}
