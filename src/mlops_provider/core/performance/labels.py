"""Joining the labels that arrive later to the prediction log (``core.performance.log``): each labelled id gets, per
model version, that version's newest prediction (made at or before the label's time, when that time is given).

``join_labels`` takes the log as ``read_prediction_log`` returns it and the labels as a frame (the id columns, the
outcome and, optionally, when the outcome was known); its output is what ``core.performance.live`` judges.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_provider.core.errors import LabelJoinError, NoMatchingLabelsError
from mlops_provider.core.prediction import PREDICTION_COLUMN, PROBABILITY_PREFIX

if TYPE_CHECKING:
    import pandas as pd

LABEL_COLUMN = "label"
_EXAMPLES = 3


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
