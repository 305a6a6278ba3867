"""Content fingerprints of training data, and canonical JSON for specs stored as MLflow tags.

The data fingerprint answers "was this model trained on exactly this data?" without looking at where the
data came from. It is a SHA-256 over the content of the columns a model is trained on, and it is:

* **independent of the location**: path, bucket, file names, number of part files and file format do not
  enter it, only the values read;
* **independent of row order and column order**: rows are a multiset (each row gets a 64-bit hash; the
  sorted hashes are digested) and columns are taken in name order. Training puts rows into the same
  canonical order before splitting (``DataFingerprint.order``), so a reordered copy of the data trains
  the very same model, which is what makes "same fingerprint, skip training" safe;
* **sensitive to everything else**: every value, repeated rows (a duplicate counts twice), column names and
  the kind of each column (integer, float, bool, string, datetime, ...).

Normalisation, so that equal content read through different formats hashes equally: integers of any width
hash by value, floats are widened to float64, datetimes are compared as UTC nanoseconds, categorical and
pandas ``string`` columns as their values, and ``None`` and ``NaN`` are the same missing value.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

FINGERPRINT_PREFIX = "sha256:"
FINGERPRINT_VERSION = "1"  # part of the digest: a change of the recipe must not look like equal data
MAX_TAG_JSON_CHARS = 4000  # MLflow model-version tags hold 5000 characters; longer specs are stored hashed


@dataclass(frozen=True)
class DataFingerprint:
    """The fingerprint of a frame and the per-row hashes it was made of (for ``canonical_order``)."""

    value: str
    row_hashes: np.ndarray
    columns: tuple[str, ...]
    order: np.ndarray  # canonical_order(row_hashes): the row positions sorted by content


def column_kind(series: pd.Series) -> str:
    """A coarse type name that does not depend on storage width or file format."""
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return column_kind(pd.Series(dtype.categories)) if len(dtype.categories) else "string"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_timedelta64_dtype(dtype):
        return "timedelta"
    if pd.api.types.is_string_dtype(dtype):
        return "string"
    return str(dtype)


def _normalised(series: pd.Series) -> pd.Series:
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _normalised(series.astype(dtype.categories.dtype if len(dtype.categories) else object))
    if pd.api.types.is_float_dtype(dtype):
        return series.astype("float64")
    if pd.api.types.is_datetime64_any_dtype(dtype):
        if getattr(series.dt, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        return series.astype("datetime64[ns]")
    if pd.api.types.is_extension_array_dtype(dtype):  # pandas "string", nullable Int64/boolean
        if pd.api.types.is_integer_dtype(dtype):
            return series.astype("float64") if series.isna().any() else series.astype("int64")
        return series.astype(object).where(series.notna(), None)
    return series


def data_fingerprint(frame: pd.DataFrame, columns: list[str] | None = None) -> DataFingerprint:
    """Fingerprint the content of ``columns`` of ``frame`` (all columns by default).

    The per-row hashes are those of ``pandas.util.hash_pandas_object`` on the normalised columns in name
    order; they are computed column by column and combined the way pandas combines a frame's columns, so no
    normalised copy of the frame is built. The rows are sorted by hash once: that order is the canonical
    order training uses (``DataFingerprint.order``) and the sorted hashes are what is digested.
    """
    import numpy as np
    import pandas as pd

    names = sorted(columns if columns is not None else [str(c) for c in frame.columns])
    rows = len(frame)
    if rows and names:
        row_hashes = _combine_hashes(
            [pd.util.hash_pandas_object(_normalised(frame[name]), index=False).to_numpy() for name in names]
        )
    else:
        row_hashes = np.zeros(rows, dtype=np.uint64)
    order = canonical_order(row_hashes)
    digest = hashlib.sha256()
    schema = [[name, column_kind(frame[name])] for name in names]
    digest.update(canonical_json({"recipe": FINGERPRINT_VERSION, "schema": schema, "rows": rows}).encode())
    digest.update(row_hashes[order].astype("<u8", copy=False).tobytes())
    return DataFingerprint(FINGERPRINT_PREFIX + digest.hexdigest(), row_hashes, tuple(names), order)


def _combine_hashes(arrays: list[np.ndarray]) -> np.ndarray:
    """One 64-bit hash per row from one per column: the combination ``hash_pandas_object`` applies to a
    frame's columns (CPython's tuple hash), so the values equal ``hash_pandas_object(frame[names])``."""
    import numpy as np

    multiplier = np.uint64(1000003)
    combined = np.full(len(arrays[0]), 0x345678, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for position, hashes in enumerate(arrays):
            remaining = len(arrays) - position
            combined ^= hashes
            combined *= multiplier
            multiplier += np.uint64(82520 + remaining + remaining)
        combined += np.uint64(97531)
    return combined


def canonical_order(row_hashes: np.ndarray) -> np.ndarray:
    """Positions that sort the rows by content: equal data in any order gets the same sequence of rows.

    Rows with equal hashes are equal rows (in the fingerprinted columns), so the order among them does not
    matter and the sort need not be stable (numpy's default sort is about twice as fast as a stable one)."""
    import numpy as np

    return np.argsort(row_hashes)


def canonical_json(value: Any) -> str:
    """One JSON text per value: sorted keys, no whitespace, non-JSON values as ``str``."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def tag_value(value: Any) -> str:
    """Canonical JSON small enough for an MLflow tag; longer texts are replaced by their SHA-256."""
    text = canonical_json(value)
    if len(text) <= MAX_TAG_JSON_CHARS:
        return text
    return FINGERPRINT_PREFIX + hashlib.sha256(text.encode()).hexdigest()
