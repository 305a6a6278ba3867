"""Drift on wide data: columns read in blocks from parquet, each tested once, results that merge.

``core.drift.detect_drift`` takes two DataFrames, so both sides are in memory whole (200k rows x 1,000 float
columns is 1.6 GB a side). Here a side is a ``Source``: parquet files whose schema and row count come from
their footers, read a block of columns at a time (``BLOCK_CELLS`` values a side), so memory follows the block,
not the table. The verdicts are those of ``detect_drift`` on the same data, column for column:

* the same column choice and types (``core.drift.resolve_column_types`` on the schemas);
* the same seeded row sample above ``max_rows`` (the indices ``DataFrame.sample`` draws);
* ``ks``: scipy's ``ks_2samp`` statistic from the two sorted columns and its p-value from the same
  ``kstwo`` survival function (what Evidently's ``ks`` calls), without ``ks_2samp``'s two extra searches
  over the pooled data;
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
# scipy's ks_2samp switches from its exact to its asymptotic p-value above this many rows per side.
KS_EXACT_MAX_ROWS = 10_000


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
    """Local parquet files (S3 files are copied to a temporary folder first, once): columns are read per block."""

    def __init__(self, files: list[_ParquetFile]) -> None:
        import pyarrow.parquet as pq

        self.files = files
        self.rows = sum(f.rows for f in files)
        self.schema = pq.read_schema(files[0].path)
        self.file_columns = set(self.schema.names)
        self.path_columns = [k for k in files[0].partition_values if k not in self.file_columns]

    def schema_frame(self) -> pd.DataFrame:
        frame = self.schema.empty_table().to_pandas()
        for key in self.path_columns:
            frame[key] = frame.index.astype(str).astype(object)  # read_dataset makes them string columns
        return frame

    def read(self, columns: list[str], rows: np.ndarray | None = None) -> pa.Table:
        import pyarrow as pa
        import pyarrow.parquet as pq

        in_files = [c for c in columns if c in self.file_columns]
        tables = []
        for data_file in self.files:
            table = pq.read_table(data_file.path, columns=in_files)
            for key in columns:
                if key not in self.file_columns:
                    value = data_file.partition_values.get(key)
                    table = table.append_column(key, pa.array([value] * data_file.rows, pa.string()))
            tables.append(table.select(columns))
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        return table if rows is None else table.take(rows)


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
    return ParquetSource(files)


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
) -> DriftPart:
    """Test each of ``column_types`` once, a block of columns at a time."""
    from mlops_provider.core.drift import register_stattests

    register_stattests()
    reference_rows = sample_rows(reference.rows, settings.max_rows, settings.seed)
    current_rows = sample_rows(current.rows, settings.max_rows, settings.seed + 1)
    tested = {
        "reference": reference.rows if reference_rows is None else len(reference_rows),
        "current": current.rows if current_rows is None else len(current_rows),
    }
    tested["sampled"] = tested["reference"] < reference.rows or tested["current"] < current.rows
    block = max(1, BLOCK_CELLS // max(tested["reference"], tested["current"], 1))
    names = list(column_types)
    results: dict[str, ColumnDrift] = {}
    sketches: dict[str, dict[str, Any]] = {}
    for start in range(0, len(names), block):
        chunk = names[start : start + block]
        tables = (reference.read(chunk, reference_rows), current.read(chunk, current_rows))
        jobs = [(column, column_types[column], *settings.method_for(column, column_types[column])) for column in chunk]
        # numpy's sorts and searches and Arrow's counts release the GIL: one thread per core tests columns side by
        # side, each holding only its own column's copies.
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            for (column, *_), (outcome, sketch) in zip(jobs, pool.map(_test_job, jobs, repeat(tables)), strict=True):
                results[column] = outcome
                if sketch is not None:
                    sketches[column] = sketch
        del tables
        if progress is not None:
            progress(min(start + block, len(names)), len(names))
    return DriftPart(results, sketches, reference.rows, current.rows, tested)


def _test_job(
    job: tuple[str, str, str, float], tables: tuple[pa.Table, pa.Table]
) -> tuple[ColumnDrift, dict[str, Any] | None]:
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
) -> WideDrift:
    """``detect_drift`` on two sources, a block of columns at a time."""
    types = plan_columns(reference, current, settings)
    part = check_columns(reference, current, types, settings, progress=progress)
    return merge_parts([part], settings)


# -- one column ---------------------------------------------------------------------------------------------


def test_column(
    column: str, column_type: str, method: str, threshold: float, ref: pa.ChunkedArray, cur: pa.ChunkedArray
) -> tuple[ColumnDrift, Callable[[], dict[str, Any]]]:
    """The column's verdict and a function that sketches it (called only for drifted columns)."""
    if column_type == NUMERICAL:
        if method == "ks":
            ref_values, cur_values = _sorted_numbers(column, ref, "reference"), _sorted_numbers(column, cur, "current")
            score = ks_p_value(ref_values, cur_values)
            outcome = ColumnDrift(NUMERICAL, "ks", score, float(threshold), bool(score <= threshold))
            return outcome, lambda: _histogram(ref_values, cur_values, is_sorted=True)
        ref_values, cur_values = _numbers(column, ref, "reference"), _numbers(column, cur, "current")
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


def ks_p_value(reference: np.ndarray, current: np.ndarray) -> float:
    """scipy's two-sided ``ks_2samp`` p-value (what Evidently's ``ks`` returns) for two sorted samples."""
    import numpy as np
    from scipy.stats import distributions, ks_2samp

    n1, n2 = len(reference), len(current)
    if max(n1, n2) <= KS_EXACT_MAX_ROWS:
        return float(ks_2samp(reference, current)[1])
    # The empirical CDFs differ most at a sample value; after the last of equal values, both CDFs count the
    # ties, which is where ks_2samp's searches with side='right' evaluate them.
    ref_last = _last_of_runs(reference)
    cur_last = _last_of_runs(current)
    below_cur = np.searchsorted(reference, current, "right")  # reference values <= each current value
    shared = below_cur > 0
    if np.any(reference[below_cur[shared] - 1] == current[shared]):
        below_ref = np.searchsorted(current, reference[ref_last], "right")
    else:
        # No value on both sides: "current <= reference[i]" is "below_cur <= i", so one count of below_cur
        # replaces the second search.
        below_ref = np.cumsum(np.bincount(below_cur, minlength=n1 + 1))[:n1][ref_last]
    at_ref = (np.flatnonzero(ref_last) + 1) / n1 - below_ref / n2
    at_cur = below_cur[cur_last] / n1 - (np.flatnonzero(cur_last) + 1) / n2
    high = max(float(at_ref.max()), float(at_cur.max()))
    low = min(float(at_ref.min()), float(at_cur.min()))
    d = max(high, min(max(-low, 0.0), 1.0))
    m, n = sorted([float(n1), float(n2)], reverse=True)
    return float(np.clip(distributions.kstwo.sf(d, np.round(m * n / (m + n))), 0, 1))


def _last_of_runs(values: np.ndarray) -> np.ndarray:
    import numpy as np

    last = np.empty(len(values), dtype=bool)
    last[-1] = True
    np.not_equal(values[1:], values[:-1], out=last[:-1])
    return last


def _numbers(column: str, values: pa.ChunkedArray, side: str, *, keep_nan: bool = False) -> np.ndarray:
    import numpy as np

    array = np.array(values.to_numpy(), dtype=np.float64) if values.null_count else values.to_numpy()
    if not array.flags.writeable:
        array = array.copy()  # sorted in place
    if keep_nan:
        return array
    if array.dtype.kind == "f":
        array = array[~np.isnan(array)]
    if array.size == 0:
        raise all_null_column(column, side, len(values))
    return array


def _sorted_numbers(column: str, values: pa.ChunkedArray, side: str) -> np.ndarray:
    """The column's values sorted, without NaN (sorted last, so cut from the end instead of a masked copy)."""
    import numpy as np

    array = _numbers(column, values, side, keep_nan=True)
    array.sort()
    if array.dtype.kind == "f" and array.size and np.isnan(array[-1]):
        array = array[: int(np.searchsorted(array, np.nan, "left"))]
    if array.size == 0:
        raise all_null_column(column, side, len(values))
    return array


def _counts(column: str, values: pa.ChunkedArray, side: str) -> pd.Series:
    """Category counts as ``Series.value_counts`` of the column as text gives them (nulls left out)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    counted = pc.value_counts(values.drop_null())
    labels = [_label(v) for v in counted.field("values").to_pylist()]
    counts = pd.Series(counted.field("counts").to_numpy(), index=labels, dtype="int64")
    if counts.empty:
        raise all_null_column(column, side, len(values))
    counts = counts.groupby(level=0, sort=False).sum() if counts.index.has_duplicates else counts
    return counts.sort_values(ascending=False, kind="stable")


def _label(value: Any) -> str:
    import pandas as pd

    return str(pd.Series([value]).astype(str).iloc[0]) if not isinstance(value, str) else value


def _expand(counts: pd.Series) -> pd.Series:
    import numpy as np
    import pandas as pd

    return pd.Series(np.repeat(counts.index.to_numpy(dtype=object), counts.to_numpy()))


def _histogram(ref: np.ndarray, cur: np.ndarray, *, is_sorted: bool) -> dict[str, Any]:
    """Shares of each side in ``HISTOGRAM_BINS`` equal bins over the pooled 0.5-99.5% range (tails in the ends)."""
    import numpy as np

    if not is_sorted:
        ref, cur = np.sort(ref), np.sort(cur)
    low = min(ref[int(0.005 * (len(ref) - 1))], cur[int(0.005 * (len(cur) - 1))])
    high = max(ref[int(0.995 * (len(ref) - 1))], cur[int(0.995 * (len(cur) - 1))])
    if not high > low:
        low, high = min(ref[0], cur[0]), max(ref[-1], cur[-1])
    if not high > low:
        high = low + 1.0
    edges = np.linspace(float(low), float(high), HISTOGRAM_BINS + 1)

    def shares(values: np.ndarray) -> list[float]:
        cuts = np.concatenate([[0], np.searchsorted(values, edges[1:-1], "left"), [len(values)]])
        return [round(float(v), 5) for v in np.diff(cuts) / len(values)]

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
