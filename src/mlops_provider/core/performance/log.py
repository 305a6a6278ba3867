"""The prediction log: what each model version predicted, for which ids and when, kept so that the labels that
arrive later can be joined to it (live model performance).

Layout, one parquet file per DAG run and task, replaced when the task runs again (a retry or a cleared task
leaves one copy)::

    {root}/{model_name}/dt={YYYY-MM-DD}/{dag_id}__{run_id}__{task_id}.parquet

``dt`` is the UTC date of the rows' prediction time, so a window's read lists the ``dt=`` folders and opens only
those that can hold rows of the window. Every name is made one safe path segment by ``core.reports.path_segment``
(``manual__2026-01-01T00:00:00+00:00`` -> ``manual__2026-01-01T00_00_00_00_00``). ``root`` is a local folder or
``s3://bucket/prefix``, by default ``$MLOPS_HOME/prediction_log``.

Columns: the id columns, as the scored data holds them; ``prediction_time`` (UTC); ``model_name``;
``model_version`` (text); ``role``: ``served`` for the version whose answers went to the task's output,
``shadow`` for a version that scored the same rows on the side; ``alias``: the alias the version was resolved
from (``""`` when the version was pinned); ``prediction``; and for classifiers ``probability_<class>`` per class.

Windows are half-open: ``read_prediction_log(..., start, end)`` returns the rows with
``start <= prediction_time < end``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlops_provider.core.errors import (
    ConfigurationError,
    DatasetNotFoundError,
    LabelJoinError,
    MlopsError,
    NoMatchingLabelsError,
    PredictionLogError,
)
from mlops_provider.core.prediction import PREDICTION_COLUMN, PROBABILITY_PREFIX
from mlops_provider.core.reports import path_segment
from mlops_provider.core.tracking import mlops_home

if TYPE_CHECKING:
    import pandas as pd

LOG_FOLDER = "prediction_log"
SERVED = "served"
SHADOW = "shadow"
ROLES = (SERVED, SHADOW)
LABEL_COLUMN = "label"
# Every log file has these columns, besides the id columns and the probability columns of classifiers.
LOG_COLUMNS = ("prediction_time", "model_name", "model_version", "role", "alias", PREDICTION_COLUMN)
_PARTITION = re.compile(r"dt=(\d{4}-\d{2}-\d{2})")
_EXAMPLES = 3


# -- names and places ---------------------------------------------------------------------------------------


def default_log_root() -> str:
    """``$MLOPS_HOME/prediction_log``: where the log goes when no root is given."""
    return str(mlops_home() / LOG_FOLDER)


def log_root(root: str | None = None) -> str:
    """The log's root folder: ``root`` (a local folder or ``s3://bucket/prefix``) or the default one."""
    from mlops_provider.core.datasets import format_from_name, parse_uri

    text = default_log_root() if root is None or not str(root).strip() else str(root).strip()
    location = parse_uri(text)  # a scheme other than local or s3:// is refused here, before anything runs
    if format_from_name(location.path):
        raise ConfigurationError(
            f"prediction_log_uri={text!r} names a file; give the log's root folder (a local folder or "
            "s3://bucket/prefix): each run writes its own file below it."
        )
    return text.rstrip("/") or text


def utc_timestamp(value: Any, name: str, *, error: type[MlopsError] = PredictionLogError) -> pd.Timestamp:
    """A UTC ``pandas.Timestamp`` from an aware datetime, pandas timestamp or ISO 8601 text with a time zone.

    A value without a time zone is refused (``error``): which instant it means would be a guess.
    """
    import pandas as pd

    if isinstance(value, str):
        text = value.strip()
        try:
            stamp = pd.Timestamp(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        except (TypeError, ValueError):
            raise error(
                f"{name}={value!r} is not an ISO 8601 timestamp; give one with a time zone, e.g. "
                "2026-01-02T00:00:00+00:00, or a template such as '{{ data_interval_end }}'."
            ) from None
    elif isinstance(value, datetime):  # datetime, pendulum.DateTime and pandas.Timestamp
        stamp = pd.Timestamp(value)
    else:
        raise error(f"{name}={value!r} is a {type(value).__name__}, not a timestamp; give an aware datetime.")
    if stamp is pd.NaT:
        raise error(f"{name} is not a time (NaT); give an aware datetime such as 2026-01-02T00:00:00+00:00.")
    if stamp.tzinfo is None:
        raise error(
            f"{name}={stamp.isoformat()!r} has no time zone, so which instant it means is a guess; add one, "
            f"e.g. {stamp.isoformat()}+00:00 for UTC."
        )
    return stamp.tz_convert("UTC")


def prediction_log_file(
    root: str | None, model_name: str, prediction_time: Any, *, dag_id: str, run_id: str, task_id: str
) -> str:
    """The log file of one DAG run and task: ``{root}/{model}/dt={UTC date}/{dag_id}__{run_id}__{task_id}.parquet``.

    ``root`` None means the default root (``$MLOPS_HOME/prediction_log``).
    """
    stamp = utc_timestamp(prediction_time, "prediction_time")
    file_name = "__".join(path_segment(part) for part in (dag_id, run_id, task_id)) + ".parquet"
    return "/".join([log_root(root), path_segment(model_name), path_segment(f"dt={stamp:%Y-%m-%d}"), file_name])


# -- writing ------------------------------------------------------------------------------------------------


def check_id_columns(frame: pd.DataFrame, id_columns: Sequence[str], source: str = "the input") -> list[str]:
    """``id_columns`` as a list, after checking that ``frame`` has each and that none is a log column."""
    ids = list(dict.fromkeys(str(column) for column in id_columns or ()))
    if not ids:
        raise ConfigurationError(
            "id_columns is empty; name the columns that identify a scored row (the ones the labels will carry), "
            "e.g. id_columns=['customer_id']."
        )
    clashing = [c for c in ids if c in LOG_COLUMNS or c.startswith(PROBABILITY_PREFIX)]
    if clashing:
        raise ConfigurationError(
            f"id_columns {clashing} have the names of the prediction log's own columns {list(LOG_COLUMNS)} "
            f"(or {PROBABILITY_PREFIX}*); rename those columns in the data, or use other id columns."
        )
    missing = [c for c in ids if c not in frame.columns]
    if missing:
        raise ConfigurationError(
            f"id_columns names {missing}, which {source} does not have; it has {list(frame.columns)[:20]}. Give "
            "the columns that identify a row (the ones the labels will carry)."
        )
    return ids


def prediction_log_rows(
    frame: pd.DataFrame,
    scores: pd.DataFrame,
    *,
    id_columns: Sequence[str],
    prediction_time: Any,
    model_name: str,
    model_version: str | int,
    role: str,
    alias: str | None = "",
    source: str = "the input",
) -> pd.DataFrame:
    """The log rows of one model version's answers: ``frame``'s id columns, the log's own columns and ``scores``
    (``core.prediction.score_frame`` of ``frame``: ``prediction`` and the probability columns), row by row."""
    import pandas as pd

    ids = check_id_columns(frame, id_columns, source)
    if role not in ROLES:
        raise PredictionLogError(f"role={role!r} is not a prediction log role; use one of {list(ROLES)}.")
    if len(scores) != len(frame):
        raise PredictionLogError(
            f"{len(scores)} scores for the {len(frame)} rows of {source}; score the same rows you log."
        )
    stamp = utc_timestamp(prediction_time, "prediction_time")
    rows = frame[ids].reset_index(drop=True)
    rows["prediction_time"] = pd.Series(stamp, index=rows.index, dtype="datetime64[ns, UTC]")
    rows["model_name"] = str(model_name)
    rows["model_version"] = str(model_version)
    rows["role"] = role
    rows["alias"] = alias or ""
    for column in scores.columns:
        rows[column] = scores[column].to_numpy()
    return rows


def write_prediction_log(frame: pd.DataFrame, uri: str, *, s3_client: Any = None) -> int:
    """Write ``frame`` (log rows) as the log file ``uri`` (from ``prediction_log_file``), replacing it; returns the
    number of rows. The file appears whole or not at all (a temporary file renamed into place; one S3 PUT).

    Refused before anything is written: rows without the log's columns, prediction times without a time zone,
    an unknown role, or rows whose UTC date is not the file's ``dt=`` partition (a window's read would miss them).
    """
    import pandas as pd

    from mlops_provider.core.datasets import parse_uri, write_dataset

    location = parse_uri(uri)
    if not location.path.lower().endswith(".parquet"):
        raise PredictionLogError(
            f"{uri!r} is not a parquet file name; a prediction log file is one, built by prediction_log_file(...)."
        )
    missing = [c for c in LOG_COLUMNS if c not in frame.columns]
    if missing:
        raise PredictionLogError(
            f"The rows to log at {uri!r} lack the log columns {missing}; they have {list(frame.columns)[:20]}. "
            "Build them with prediction_log_rows(...)."
        )
    times = frame["prediction_time"]
    if not isinstance(times.dtype, pd.DatetimeTZDtype):
        raise PredictionLogError(
            f"prediction_time of the rows to log at {uri!r} is {times.dtype}, not a time with a time zone; make it "
            "one, e.g. frame['prediction_time'].dt.tz_localize('UTC') when the times are UTC."
        )
    if times.isna().any():
        raise PredictionLogError(
            f"{int(times.isna().sum())} rows to log at {uri!r} have no prediction_time; give every row its time."
        )
    roles = sorted(set(frame["role"].astype(str)) - set(ROLES))
    if roles:
        raise PredictionLogError(f"The rows to log at {uri!r} have the roles {roles}; use {list(ROLES)}.")
    times = times.dt.tz_convert("UTC")
    partition = _partition_of(location.path)
    if partition is not None and len(times):
        days = sorted({f"{day:%Y-%m-%d}" for day in times.dt.normalize().unique()} - {partition})
        if days:
            raise PredictionLogError(
                f"Rows predicted on {days} (UTC) cannot go to {uri!r}, the dt={partition} partition: a read of their "
                "window would not look there. Write each day's rows to its own file (prediction_log_file(...))."
            )
    rows = frame.assign(
        prediction_time=times,
        model_name=frame["model_name"].astype(str),
        model_version=frame["model_version"].astype(str),
        role=frame["role"].astype(str),
        alias=frame["alias"].fillna("").astype(str),
    )
    return write_dataset(rows, uri, s3_client=s3_client, format="parquet").rows


def _partition_of(path: str) -> str | None:
    parent = path.rstrip("/").rsplit("/", 2)
    match = _PARTITION.fullmatch(parent[-2]) if len(parent) >= 2 else None
    return match.group(1) if match else None


# -- reading ------------------------------------------------------------------------------------------------


def read_prediction_log(
    root: str | None,
    model_name: str,
    start: Any,
    end: Any,
    *,
    s3_client: Any = None,
    versions: Iterable[str | int] | None = None,
) -> pd.DataFrame:
    """The log rows of ``model_name`` predicted in ``[start, end)`` (``start`` included, ``end`` excluded), of
    the given ``versions`` only when given, ordered by prediction time.

    Only the ``dt=`` partitions whose day overlaps the window are read (the partitions are listed, the others
    never opened). A window with no rows gives an empty frame that has the log's columns (the id and probability
    columns too when a partition of the window was read): what an empty window means is the caller's decision.
    A root, or a model, with no log at all is a ``DatasetNotFoundError``.
    """
    import pandas as pd

    from mlops_provider.core.datasets import PATH_ONLY_COLUMNS_ATTR, list_partitions, read_dataset

    window_start = utc_timestamp(start, "start")
    window_end = utc_timestamp(end, "end")
    if window_end < window_start:
        raise PredictionLogError(
            f"The window ends before it starts: end {window_end.isoformat()} < start {window_start.isoformat()}; "
            "swap them, or check the templates that produce them."
        )
    base = log_root(root)
    folder = f"{base}/{path_segment(model_name)}"
    entries = list_partitions(folder, s3_client=s3_client)
    if not entries:
        _no_log(base, folder, model_name, s3_client)
    chosen = []
    for uri in entries:
        match = _PARTITION.fullmatch(uri.rsplit("/", 1)[-1])
        if match is None:
            continue  # not a partition of the log (a stray file or folder)
        try:
            day = pd.Timestamp(match.group(1), tz="UTC")
        except ValueError:
            continue
        if day < window_end and day + pd.Timedelta(days=1) > window_start:
            chosen.append(uri)
    frames = []
    for uri in chosen:
        part = read_dataset(uri, s3_client=s3_client, allow_empty=True)
        # The folder's dt= is where rows are stored; a dt column the files hold is an id column the task logged.
        path_only = part.attrs.get(PATH_ONLY_COLUMNS_ATTR, [])
        if path_only:
            part = part.drop(columns=path_only)
        if part.empty and not len(part.columns):
            continue  # a partition folder holding no data file (yet)
        missing = [c for c in LOG_COLUMNS if c not in part.columns]
        if missing:
            raise PredictionLogError(
                f"{uri!r} holds files without the prediction log columns {missing} (it has {list(part.columns)[:20]}); "
                "keep only log files (written by BatchPredictOperator) below the log root."
            )
        frames.append(part)
    if not frames:
        return empty_log()
    filled = [part for part in frames if len(part)]
    log = pd.concat(filled, ignore_index=True) if len(filled) > 1 else (filled or frames)[0]
    times = log["prediction_time"]
    if not isinstance(times.dtype, pd.DatetimeTZDtype):
        raise PredictionLogError(
            f"prediction_time in the log at {folder!r} has no time zone ({times.dtype}); files written by "
            "write_prediction_log always have one: rewrite the files that lack it."
        )
    log["prediction_time"] = times.dt.tz_convert("UTC")
    log["model_version"] = log["model_version"].astype(str)
    keep = (log["prediction_time"] >= window_start) & (log["prediction_time"] < window_end)
    if versions is not None:
        keep &= log["model_version"].isin([str(v) for v in versions])
    # Filter, sort and renumber only when that changes something: each is a copy of every row.
    if not keep.all():
        log = log[keep]
    if not log["prediction_time"].is_monotonic_increasing:
        log = log.sort_values("prediction_time", kind="mergesort")
    if not log.index.equals(pd.RangeIndex(len(log))):
        log = log.reset_index(drop=True)
    return log


def empty_log() -> pd.DataFrame:
    """A log frame with no rows and the log's own columns."""
    import pandas as pd

    columns: dict[str, Any] = {name: pd.Series([], dtype=object) for name in LOG_COLUMNS}
    columns["prediction_time"] = pd.Series([], dtype="datetime64[ns, UTC]")
    return pd.DataFrame(columns)


def _no_log(base: str, folder: str, model_name: str, s3_client: Any) -> None:
    from mlops_provider.core.datasets import list_partitions

    models = [uri.rsplit("/", 1)[-1] for uri in list_partitions(base, s3_client=s3_client)]
    if models:
        detail = f"the log root {base!r} holds the logs of {models[:10]}, but none of {model_name!r}"
    else:
        detail = f"there is no prediction log at {base!r} at all"
    raise DatasetNotFoundError(
        f"No prediction log at {folder!r}: {detail}. BatchPredictOperator(prediction_log_uri=..., "
        "id_columns=[...]) writes it when it scores; check the log root and model_name, or run the scoring task "
        "first."
    )


# -- joining the labels ---------------------------------------------------------------------------------------


def join_labels(
    log: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    id_columns: Sequence[str],
    label_column: str,
    label_timestamp_column: str | None = None,
) -> pd.DataFrame:
    """One row per labelled id and model version: that version's newest prediction for the id, made at or
    before the label's time when ``label_timestamp_column`` is given (else the newest in ``log``), with the label.

    Output columns: the id columns, ``model_version``, ``role``, ``prediction``, the log's probability columns
    and ``label``; rows in the labels' order, then by version. Labels whose id has no (early enough) prediction
    are left out; so are labels with a null id, a null label or a null label time. An empty ``log`` or ``labels``
    gives an empty frame (what that means is the caller's decision).

    Id columns are compared at a common type when that is safe: both sides integer-like (integer columns,
    or float columns holding whole numbers, e.g. integers with nulls) become nullable ``Int64``; both sides
    text (``object`` columns of strings, ``string``, categories of strings) become ``string``. Anything else is
    compared as it is: ``"42"`` never matches ``42``, and when no label matches, the error shows both sides' ids
    and types.

    Refused, with a ``LabelJoinError`` that says what to change: labels without an id, label or timestamp column;
    an id labelled twice; label timestamps without a time zone; label values of another type than the predictions
    (text labels for a regressor's numbers, classes the model never predicted and has no probability column
    for). When no label matches a prediction (no shared id, or every shared id predicted only after its label's
    time) the error is ``NoMatchingLabelsError``, a ``LabelJoinError`` a caller may take for "no labels yet".
    """
    import numpy as np
    import pandas as pd

    ids = _join_id_columns(id_columns, label_column, label_timestamp_column)
    _require(labels, [*ids, label_column, *([label_timestamp_column] if label_timestamp_column else [])], ids,
             label_column)  # fmt: skip
    needed = [*ids, "model_version", "role", PREDICTION_COLUMN, "prediction_time"]
    missing = [c for c in needed if c not in log.columns]
    if missing:
        raise LabelJoinError(
            f"The prediction log frame lacks {missing} (it has {list(log.columns)[:20]}); read it with "
            "read_prediction_log(...) and pass the id_columns the scoring task logged."
        )
    if "model_name" in log.columns and log["model_name"].nunique() > 1:
        raise LabelJoinError(
            f"The prediction log frame holds several models {sorted(log['model_name'].unique())[:5]}; join one "
            "model's log at a time (read_prediction_log reads one)."
        )
    probabilities = [c for c in log.columns if str(c).startswith(PROBABILITY_PREFIX)]
    output_columns = [*ids, "model_version", "role", PREDICTION_COLUMN, *probabilities, LABEL_COLUMN]

    label_times = None
    if label_timestamp_column:
        label_times = _label_times(labels[label_timestamp_column], label_timestamp_column)
    _refuse_duplicate_ids(labels, ids)
    usable = labels[ids].notna().all(axis=1) & labels[label_column].notna()
    if label_times is not None:
        usable &= label_times.notna()
    if log.empty or not usable.any():
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in output_columns})
    _check_label_values(labels.loc[usable, label_column], log[PREDICTION_COLUMN], probabilities, label_column)

    # The merge carries only the ids and row numbers (label row, log row); the output's columns are taken from
    # the labels and the log once, at the rows that survive: no wide intermediate frame is copied.
    right = pd.DataFrame({c: labels[c] for c in ids})
    right["__order"] = np.arange(len(labels))
    if not usable.all():
        right = right[usable.to_numpy()]
    left = pd.DataFrame({c: log[c] for c in ids})
    left["__row"] = np.arange(len(log))
    logged = left[ids].notna().all(axis=1)
    if not logged.all():
        left = left[logged]
    log_times = _log_times(log["prediction_time"])
    for column in ids:
        left[column], right[column] = _common_type(left[column], right[column])

    if any(_kind(right[c]) != _kind(left[c]) and {_kind(right[c]), _kind(left[c])} <= {"number", "text"} for c in ids):
        # Numbers never equal text ("42" is not 42): a mistake in the data, not labels that are yet to come.
        raise LabelJoinError(_no_match_message(right, left, ids, len(labels), len(log)))
    matched = right.merge(left, on=ids, how="inner")
    if matched.empty:
        raise NoMatchingLabelsError(_no_match_message(right, left, ids, len(labels), len(log)))
    rows, orders = matched["__row"].to_numpy(), matched["__order"].to_numpy()
    if label_times is not None:
        in_time = np.asarray(log_times.array.take(rows) <= label_times.array.take(orders))
        if not in_time.all():
            matched, rows, orders = matched[in_time], rows[in_time], orders[in_time]
        if matched.empty:
            raise NoMatchingLabelsError(
                f"Labels match logged ids, but every matching prediction was made after its label's time "
                f"({label_timestamp_column!r}): the earliest prediction is "
                f"{log_times.iloc[left['__row'].to_numpy()].min()}, the latest label "
                f"{label_times.iloc[right['__order'].to_numpy()].max()}. Check label_timestamp_column (when the "
                "outcome was known) and its time zone, or leave it out to take the newest prediction."
            )
    versions = log["model_version"].astype(str)
    position = _newest_in_label_order(versions, log_times, rows, orders)
    rows, orders = rows[position], orders[position]
    output: dict[str, Any] = {c: matched[c].array.take(position) for c in ids}
    output["model_version"] = versions.array.take(rows)
    for column in ["role", PREDICTION_COLUMN, *probabilities]:
        output[column] = log[column].array.take(rows)
    output[LABEL_COLUMN] = labels[label_column].array.take(orders)
    return pd.DataFrame(output, columns=output_columns, copy=False)


def _newest_in_label_order(versions: pd.Series, times: pd.Series, rows: Any, orders: Any) -> Any:
    """Positions, among the merged pairs (label row ``orders[i]``, log row ``rows[i]``), of each label's newest
    prediction per version (of equal times, the later pair), ordered by label row, then by version (numerically,
    text after numbers, then as text); ``versions`` and ``times`` are the log's, as text and in UTC.

    The label's row number stands for its ids (``join_labels`` refuses an id labelled twice), so the order and
    the de-duplication work on one integer per pair, label row x version rank: no text is sorted or converted
    per row, only the few distinct versions. The prediction times are sorted only when a label has several
    predictions of one version.
    """
    import numpy as np
    import pandas as pd

    codes, texts = pd.factorize(versions)
    distinct = pd.DataFrame({"model_version": texts, "__version": pd.to_numeric(texts, errors="coerce")})
    ranks = np.empty(len(texts), dtype=np.int64)
    ranks[distinct.sort_values(["__version", "model_version"], kind="mergesort").index.to_numpy()] = np.arange(
        len(texts)
    )
    key = orders.astype(np.int64) * max(len(texts), 1) + ranks[codes[rows]]
    if len(key) < 2 or (key[1:] >= key[:-1]).all():
        position = np.arange(len(key))
    else:
        position = np.argsort(key, kind="stable")
    sorted_key = key[position]
    if len(sorted_key) > 1 and (sorted_key[1:] == sorted_key[:-1]).any():
        pairs = pd.DataFrame({"__key": key, "prediction_time": times.array.take(rows)})  # index: the pair's position
        pairs = pairs.sort_values("prediction_time", kind="mergesort").drop_duplicates("__key", keep="last")
        position = pairs.sort_values("__key", kind="mergesort").index.to_numpy()
    return position


def _join_id_columns(id_columns: Sequence[str], label_column: str, label_timestamp_column: str | None) -> list[str]:
    if isinstance(id_columns, str):
        id_columns = [id_columns]
    ids = list(dict.fromkeys(str(c) for c in id_columns or ()))
    if not ids:
        raise LabelJoinError("id_columns is empty; name the columns that identify a row, e.g. ['customer_id'].")
    if label_column in ids or (label_timestamp_column and label_timestamp_column in ids):
        raise LabelJoinError(
            f"label_column={label_column!r} / label_timestamp_column={label_timestamp_column!r} is also an id "
            f"column {ids}; give the column holding the outcome (and the one holding its time)."
        )
    return ids


def _require(labels: pd.DataFrame, columns: list[str], ids: list[str], label_column: str) -> None:
    missing = [c for c in columns if c not in labels.columns]
    if not missing:
        return
    roles = []
    for column in missing:
        role = "id column" if column in ids else "label column" if column == label_column else "label timestamp column"
        argument = {"id column": "id_columns", "label column": "label_column"}.get(role, "label_timestamp_column")
        roles.append(f"{column!r} ({role}, {argument})")
    raise LabelJoinError(
        f"The labels lack {', '.join(roles)}; they have {list(labels.columns)[:20]}. Name columns the labels have, "
        "or rename the labels' columns."
    )


def _examples(frame: pd.DataFrame, columns: list[str], count: int = _EXAMPLES) -> list[Any]:
    rows = frame[columns].drop_duplicates().head(count)
    values = [tuple(_plain(v) for v in row) for row in rows.itertuples(index=False, name=None)]
    return [value[0] for value in values] if len(columns) == 1 else values


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


def _refuse_duplicate_ids(labels: pd.DataFrame, ids: list[str]) -> None:
    repeated = labels.duplicated(ids, keep=False)
    if not repeated.any():
        return
    shown = _examples(labels[repeated], ids)
    count = int(labels.loc[repeated, ids].drop_duplicates().shape[0])
    raise LabelJoinError(
        f"The labels hold {count} ids more than once ({int(repeated.sum())} rows), e.g. {shown!r} on {ids}; keep "
        f"one label per id, e.g. labels.sort_values(<time>).drop_duplicates({ids}, keep='last')."
    )


def _label_times(values: pd.Series, column: str) -> pd.Series:
    import pandas as pd

    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    naive_fix = f"localize them, e.g. labels[{column!r}].dt.tz_localize('UTC') when they are UTC"
    if pd.api.types.is_datetime64_dtype(values):
        example = values.dropna().head(1).tolist()
        raise LabelJoinError(
            f"label_timestamp_column {column!r} holds times without a time zone (e.g. {[str(v) for v in example]}), "
            f"so which instant they mean is a guess; {naive_fix}."
        )
    present = values.dropna()
    stamps = []
    for value in present:
        try:
            stamp = pd.Timestamp(value)
        except (TypeError, ValueError):
            raise LabelJoinError(
                f"label_timestamp_column {column!r} holds {value!r}, which is not a time; give aware timestamps "
                "(ISO 8601 text with an offset, or datetimes with a time zone)."
            ) from None
        if stamp.tzinfo is None:
            raise LabelJoinError(
                f"label_timestamp_column {column!r} holds times without a time zone (e.g. {str(value)!r}), so which "
                f"instant they mean is a guess; {naive_fix}."
            )
        stamps.append(stamp.tz_convert("UTC"))
    result = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    if stamps:
        result.loc[present.index] = pd.DatetimeIndex(stamps)
    return result


def _log_times(values: pd.Series) -> pd.Series:
    import pandas as pd

    if not isinstance(values.dtype, pd.DatetimeTZDtype):
        raise LabelJoinError(
            f"prediction_time in the prediction log frame is {values.dtype}, not a time with a time zone; read the "
            "log with read_prediction_log(...)."
        )
    return values.dt.tz_convert("UTC")


def _kind(values: pd.Series) -> str:
    """``number``, ``text`` or what pandas infers otherwise (``mixed``, ``datetime``, ...)."""
    import pandas as pd

    if isinstance(values.dtype, pd.CategoricalDtype):
        return _kind(pd.Series(values.cat.categories))
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return "number"
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal", "boolean"):
        return "number"
    return "text" if inferred == "string" else inferred


def _class_of(text: str, kind: str) -> Any:
    """A probability column's class (``probability_1`` -> ``1`` for numeric predictions)."""
    if kind != "number":
        return text
    if text in ("True", "False"):
        return text == "True"
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _check_label_values(labels: pd.Series, predictions: pd.Series, probabilities: list[str], column: str) -> None:
    import pandas as pd

    predicted = predictions.dropna()
    if predicted.empty:
        return
    label_kind, prediction_kind = _kind(labels), _kind(predicted)
    shown = [_plain(v) for v in pd.unique(labels)[:_EXAMPLES]]
    classifier = bool(probabilities) or not pd.api.types.is_float_dtype(predicted)
    if not classifier:
        if label_kind != "number":
            raise LabelJoinError(
                f"label_column {column!r} holds {label_kind} ({labels.dtype}) values such as {shown!r}, but the "
                f"logged predictions are numbers ({predicted.dtype}, a regressor's); give numeric labels, e.g. "
                f"pd.to_numeric(labels[{column!r}]), or check label_column."
            )
        return
    classes = set(pd.unique(predicted).tolist())
    if label_kind != prediction_kind and {label_kind, prediction_kind} <= {"number", "text"}:
        raise LabelJoinError(
            f"label_column {column!r} holds {label_kind} ({labels.dtype}) values such as {shown!r}, but the model "
            f"predicts {prediction_kind} classes ({predicted.dtype}) such as {sorted(classes, key=str)[:5]!r}; "
            "convert the labels to the classes' type (e.g. labels[col].astype(int)), or check label_column."
        )
    classes |= {_class_of(c[len(PROBABILITY_PREFIX) :], prediction_kind) for c in probabilities}
    unknown = [_plain(v) for v in pd.unique(labels) if _plain(v) not in classes]
    if unknown:
        count = int(labels.isin(unknown).sum())
        raise LabelJoinError(
            f"label_column {column!r} holds values the model never predicted and has no probability column for: "
            f"{sorted(unknown, key=str)[:5]!r} ({count} labels); its classes are {sorted(classes, key=str)[:10]!r}. "
            "Check label_column (the target the model was trained on), or map the labels to these classes."
        )


def _integer_like(values: pd.Series) -> bool:
    import pandas as pd

    if pd.api.types.is_bool_dtype(values):
        return False
    if pd.api.types.is_integer_dtype(values):
        return True
    present = values.dropna()
    if pd.api.types.is_float_dtype(values):
        return bool((present == present.round()).all())
    return pd.api.types.infer_dtype(present, skipna=True) == "integer"


def _string_like(values: pd.Series) -> bool:
    import pandas as pd

    if isinstance(values.dtype, pd.CategoricalDtype):
        return _string_like(pd.Series(values.cat.categories))
    return pd.api.types.infer_dtype(values, skipna=True) == "string"


def _common_type(left: pd.Series, right: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Both sides of one id column at a common type when that loses nothing (see ``join_labels``)."""
    if left.dtype == right.dtype and not _string_like(left):
        return left, right
    if _integer_like(left) and _integer_like(right):
        return left.astype("Int64"), right.astype("Int64")
    if _string_like(left) and _string_like(right):
        return left.astype("string"), right.astype("string")
    return left, right


def _no_match_message(labels: pd.DataFrame, log: pd.DataFrame, ids: list[str], label_rows: int, log_rows: int) -> str:
    types = ", ".join(f"{c}: {labels[c].dtype} in the labels, {log[c].dtype} in the log" for c in ids)
    fixes = []
    for column in ids:
        kinds = (_kind(labels[column]), _kind(log[column]))
        convert = {("text", "number"): "astype('int64')", ("number", "text"): "astype(str)"}.get(kinds)
        if convert:
            fixes.append(
                f"the labels' {column!r} holds {kinds[0]}, the log's {kinds[1]}s: convert it, e.g. "
                f"labels[{column!r}].{convert}"
            )
    fix = "; ".join(fixes) if fixes else "make both sides hold the same ids of the same type"
    return (
        f"None of the {label_rows} labels matches any of the {log_rows} logged predictions on id_columns {ids}: label "
        f"ids e.g. {_examples(labels, ids)!r}, logged ids e.g. {_examples(log, ids)!r} ({types}). Fix: {fix}; "
        "and check that the labels belong to the predictions of the window that was read."
    )
