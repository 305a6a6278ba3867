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
``start <= prediction_time < end``. Joining the labels to these rows is ``core.performance.labels``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlops_provider.core.errors import ConfigurationError, DatasetNotFoundError, MlopsError, PredictionLogError
from mlops_provider.core.prediction import PREDICTION_COLUMN, PROBABILITY_PREFIX
from mlops_provider.core.reports import path_segment
from mlops_provider.core.tracking import mlops_home

if TYPE_CHECKING:
    import pandas as pd

LOG_FOLDER = "prediction_log"
SERVED = "served"
SHADOW = "shadow"
ROLES = (SERVED, SHADOW)
# Every log file has these columns, besides the id columns and the probability columns of classifiers.
LOG_COLUMNS = ("prediction_time", "model_name", "model_version", "role", "alias", PREDICTION_COLUMN)
_PARTITION = re.compile(r"dt=(\d{4}-\d{2}-\d{2})")


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
