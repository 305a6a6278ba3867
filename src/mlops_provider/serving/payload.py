"""Request bodies to frames, and a model's scores to the answer; the per-request work, kept lean.

Bodies are MLflow scoring-server compatible: ``{"dataframe_records": [{...}, ...]}`` or
``{"dataframe_split": {"columns": [...], "data": [[...], ...]}}``, with an optional ``"key"`` (the routing key).
A single record (the common case) becomes its one-row frame from a dict of one-item lists, which pandas builds
several times faster than from a list of dicts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mlops_provider.core.prediction import PREDICTION_COLUMN, PROBABILITY_PREFIX, score_frame

FIX = (
    'send {"dataframe_records": [{"<column>": <value>, ...}]} or '
    '{"dataframe_split": {"columns": [...], "data": [[...]]}} with Content-Type: application/json'
)


class BadRequest(ValueError):
    """The request cannot be scored as sent; the message names the input and the fix (a 400)."""


@dataclass(frozen=True)
class ParsedRequest:
    frame: Any  # pandas.DataFrame, one row per record
    ids: dict[str, list[Any]]
    key: str | None
    rows: int
    body: bytes = b""  # as received: what the shadow process is sent


def parse_request(
    body: bytes, *, id_columns: tuple[str, ...], require_ids: bool, header_key: str | None
) -> ParsedRequest:
    """The frame, id values and routing key of a request body; ``BadRequest`` naming what is wrong."""
    import pandas as pd

    try:
        payload = json.loads(body)
    except ValueError as error:
        raise BadRequest(f"The request body is not JSON ({error}); {FIX}.") from None
    if not isinstance(payload, dict):
        raise BadRequest(f"The request body is a JSON {type(payload).__name__}, not an object; {FIX}.")
    if "dataframe_records" in payload:
        records = payload["dataframe_records"]
        if not isinstance(records, list) or not records:
            raise BadRequest(f"dataframe_records must be a non-empty list of objects (one per row); {FIX}.")
        for position, record in enumerate(records):
            if not isinstance(record, dict):
                raise BadRequest(
                    f"dataframe_records[{position}] is a JSON {type(record).__name__}, not an object of "
                    f"column: value; {FIX}."
                )
        if len(records) == 1:
            frame = pd.DataFrame({column: [value] for column, value in records[0].items()})
        else:
            frame = pd.DataFrame.from_records(records)
    elif "dataframe_split" in payload:
        split = payload["dataframe_split"]
        columns = split.get("columns") if isinstance(split, dict) else None
        data = split.get("data") if isinstance(split, dict) else None
        if not isinstance(columns, list) or not isinstance(data, list) or not data:
            raise BadRequest(f'dataframe_split needs "columns" (a list) and "data" (a non-empty list of rows); {FIX}.')
        bad = [i for i, row in enumerate(data) if not isinstance(row, list) or len(row) != len(columns)]
        if bad:
            raise BadRequest(
                f"dataframe_split.data rows {bad[:5]} do not have one value per column ({len(columns)} columns); "
                "give every row one value per column, in the order of columns."
            )
        frame = pd.DataFrame(data, columns=[str(c) for c in columns])
    else:
        raise BadRequest(
            f"The request body has neither dataframe_records nor dataframe_split (keys: {sorted(payload)[:10]}); {FIX}."
        )
    ids: dict[str, list[Any]] = {}
    if id_columns:
        missing = [c for c in id_columns if c not in frame.columns]
        if missing and require_ids:
            raise BadRequest(
                f"The rows lack the id columns {missing} that the prediction log records (--id-columns); "
                "add them to every row, so the labels that arrive later can be joined to these predictions."
            )
        if not missing:
            ids = {c: frame[c].tolist() for c in id_columns}
            if require_ids:
                empty = [c for c, values in ids.items() if any(v is None or v != v for v in values)]
                if empty:
                    raise BadRequest(
                        f"Some rows have no value in the id columns {empty}; give every row its id, so the labels "
                        "that arrive later can be joined to its prediction."
                    )
    key = payload.get("key", header_key)
    if key is None and ids:
        key = "|".join(str(ids[c][0]) for c in id_columns)
    return ParsedRequest(frame=frame, ids=ids, key=None if key is None else str(key), rows=len(frame), body=body)


def missing_features(features: tuple[str, ...], frame: Any) -> list[str]:
    columns = frame.columns
    return [f for f in features if f not in columns]


class _TransformOnce:
    """A scikit-learn Pipeline seen by ``score_frame`` with its preprocessing run once per input.

    ``score_frame`` calls ``predict`` and then ``predict_proba`` on the same rows; the Pipeline itself would run
    every preprocessing step twice, which is most of the time a one-row request takes. This stand-in transforms
    once, as ``Pipeline.predict`` does step by step, and hands the result to the final estimator, so the answers
    are the Pipeline's own. Built per call: the cache is one input, never shared between threads.
    """

    def __init__(self, pipeline: Any, fast: Any = None) -> None:
        self.feature_names_in_ = pipeline.feature_names_in_
        self.named_steps = pipeline.named_steps
        self._steps = [step for _, step in pipeline.steps[:-1] if step is not None and step != "passthrough"]
        if fast is not None:  # the first step is the ColumnTransformer the fast path stands in for
            self._steps[0] = fast
        self._final = pipeline.steps[-1][1]
        self._input: Any = None
        self._transformed: Any = None

    def _transform(self, inputs: Any) -> Any:
        if inputs is not self._input:
            transformed = inputs
            for step in self._steps:
                transformed = step.transform(transformed)
            self._input, self._transformed = inputs, transformed
        return self._transformed

    def predict(self, inputs: Any) -> Any:
        return self._final.predict(self._transform(inputs))


class _TransformOnceWithProbabilities(_TransformOnce):
    def __init__(self, pipeline: Any, fast: Any = None) -> None:
        super().__init__(pipeline, fast)
        self.classes_ = pipeline.classes_

    def predict_proba(self, inputs: Any) -> Any:
        return self._final.predict_proba(self._transform(inputs))


def scoring_model(model: Any, fast: Any = None) -> Any:
    """What ``score_frame`` is given for ``model``: a fresh ``_TransformOnce`` for a Pipeline (with ``fast``, a
    ``fastpath.ColumnFastPath`` for its first step), else the model itself."""
    steps = getattr(model, "steps", None)
    if not steps or len(steps) < 2 or not hasattr(model, "feature_names_in_"):
        return model
    if fast is not None and steps[0][1] is not fast.transformer:
        fast = None
    if hasattr(model, "predict_proba"):
        return _TransformOnceWithProbabilities(model, fast)
    return _TransformOnce(model, fast)


def limit_native_threads() -> None:
    """Native parallelism (OpenMP) off for scoring in the calling thread, for good: on a request's few rows,
    waking an OpenMP team costs more than it saves (a HistGradientBoosting pipeline: ~16 ms per call with two
    threads on a busy two-core machine, ~6 ms with one) and it takes the core the event loop parses requests
    on. ``omp_set_num_threads`` is per thread, so only the service's scoring threads are affected; each row's
    answer does not depend on the thread count. Call it from the scoring thread once scikit-learn is loaded."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, user_api="openmp")
    except Exception as error:  # only slower without it
        import logging

        logging.getLogger("mlops_provider.serving").warning("Could not limit OpenMP threads: %s", error)


def score(model: Any, frame: Any, fast: Any = None) -> tuple[list[Any], dict[str, list[Any]]]:
    """Predictions and class probabilities (``{class: [...]}``, empty for regressors) as the batch scoring
    (``core.prediction.score_frame``) gives them, in Python types ready for JSON."""
    scores = score_frame(scoring_model(model, fast), frame, include_probabilities=True, source="the request")
    predictions = scores[PREDICTION_COLUMN].tolist()
    probabilities = {
        column[len(PROBABILITY_PREFIX) :]: scores[column].tolist()
        for column in scores.columns
        if column.startswith(PROBABILITY_PREFIX)
    }
    return predictions, probabilities
