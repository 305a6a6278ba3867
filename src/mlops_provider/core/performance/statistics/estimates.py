"""Metric estimates with confidence intervals: ``MetricEstimate``, ``estimate_metric`` and the per-metric internals
(accuracy with Wilson intervals, f1_macro, roc_auc with DeLong, log_loss, the regression metrics, and
``_interval``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from mlops_provider.core.errors import ConfigurationError
from mlops_provider.core.performance.statistics.common import (
    _EPS,
    CLT,
    CLT_MSE,
    DELONG,
    DELONG_OVR,
    DELTA,
    LABEL_METRICS,
    METRICS,
    PROBABILITY_METRICS,
    REGRESSION_METRICS,
    WILSON,
    InsufficientEvidenceError,
    _check_choice,
    _check_fraction,
    _check_label_types,
    _check_rows,
    _class_counts,
    _column,
    _numbers,
    _Probabilities,
    _probability_matrix,
    _round,
    _z_two_sided,
)
from mlops_provider.core.registry.gate import METRIC_RANGES, greater_is_better

# ---------------------------------------------------------------------------------------------- estimates


@dataclass(frozen=True)
class MetricEstimate:
    """A metric measured on ``rows`` labelled rows with its two-sided ``confidence`` interval [low, high].

    ``standard_error`` is the estimate's standard error on the metric's scale (for rmse, the delta-method one:
    the MSE's divided by 2*rmse). An estimate built without it (nan) falls back on (high - low) / (2 z)."""

    metric: str
    value: float
    low: float
    high: float
    rows: int
    confidence: float
    method: str
    standard_error: float = math.nan

    @property
    def greater_is_better(self) -> bool:
        return greater_is_better(self.metric)

    @property
    def se(self) -> float:
        """The standard error, from the field or, when that is unknown, from the interval's width."""
        if math.isfinite(self.standard_error):
            return self.standard_error
        return (self.high - self.low) / (2 * _z_two_sided(self.confidence))

    def interval(self, confidence: float) -> tuple[float, float]:
        """The two-sided interval at another ``confidence`` (each end is a one-sided bound at (1-confidence)/2),
        by the same method as [low, high]."""
        _check_fraction("confidence", confidence, "e.g. 0.95")
        return _interval(self.metric, self.method, self.value, self.se, self.rows, confidence)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "value": _round(self.value),
            "low": _round(self.low),
            "high": _round(self.high),
            "rows": int(self.rows),
            "confidence": float(self.confidence),
            "method": self.method,
            "standard_error": _round(self.standard_error),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MetricEstimate:
        """The estimate from ``to_dict``'s output (rounded to 6 significant digits there)."""
        names = [f.name for f in fields(cls)]
        if not isinstance(data, dict) or any(name not in data for name in names[:-1]):
            raise ConfigurationError(f"A MetricEstimate needs the keys {names}; got {data!r}.")
        values: dict[str, Any] = {name: data.get(name) for name in names}
        for name in ("value", "low", "high", "standard_error"):
            values[name] = math.nan if values[name] is None else float(values[name])
        return cls(**values)


def estimate_metric(
    metric: str,
    y_true: Any,
    *,
    y_pred: Any = None,
    proba: Any = None,
    classes: Any = None,
    confidence: float = 0.95,
    seed: int = 0,
) -> MetricEstimate:
    """``metric`` on the labelled rows with its ``confidence`` interval (the methods: module docstring).

    Classification: ``y_pred`` holds the predicted labels (accuracy, f1_macro; derived from ``proba`` as the
    most probable class when not given); ``proba`` the predicted probabilities (roc_auc, log_loss), either the
    positive class's (1-D, binary) or one column per class (2-D) in the order of ``classes``. Without
    ``classes`` the columns are the sorted labels (scikit-learn's and ``model.classes_``' order) and a 1-D
    proba is that of the larger of the two labels. Regression: ``y_pred`` holds the predicted values.
    f1_macro averages over the labels present in ``y_true`` or ``y_pred``, as training's holdout metric does.
    ``seed`` is unused: every interval here is analytic.
    """
    _check_choice("metric", metric, METRICS)
    _check_fraction("confidence", confidence, "e.g. 0.95")
    del seed  # every method is analytic (module docstring); kept in the signature for callers
    y = _column(y_true, "y_true", metric)
    n = y.shape[0]
    if metric in REGRESSION_METRICS:
        if y_pred is None:
            raise ConfigurationError(f"{metric} needs y_pred (the predicted values); got none.")
        pred = _column(y_pred, "y_pred", metric, rows=n)
        _check_rows(metric, n)
        return _regression(metric, _numbers(y, "y_true", metric), _numbers(pred, "y_pred", metric), confidence)
    if metric in PROBABILITY_METRICS:
        if proba is None:
            raise ConfigurationError(
                f"{metric} needs proba, the predicted probabilities (1-D: the positive class's, for a binary model; "
                f"2-D: one column per class, in the order of classes); got none. Metrics from predicted labels "
                f"alone: {list(LABEL_METRICS)}."
            )
        matrix = _probability_matrix(proba, n, "proba", metric)
        _check_rows(metric, n)
        prob = _Probabilities.build(matrix, y, classes, metric, need_codes=True)
        return _roc_auc(prob, confidence) if metric == "roc_auc" else _log_loss(prob, confidence)
    if y_pred is None:
        if proba is None:
            raise ConfigurationError(
                f"{metric} needs y_pred (the predicted labels), or proba with classes to take the most probable "
                "class from; got neither."
            )
        matrix = _probability_matrix(proba, n, "proba", metric)
        _check_rows(metric, n)
        pred = _Probabilities.build(matrix, y, classes, metric, need_codes=False).predicted_labels()
        _check_label_types(y, pred, metric, name="classes")
    else:
        pred = _column(y_pred, "y_pred", metric, rows=n)
        _check_rows(metric, n)
        _check_label_types(y, pred, metric)
    return _accuracy(y, pred, confidence) if metric == "accuracy" else _f1_macro(y, pred, confidence)


def _accuracy(y: np.ndarray, pred: np.ndarray, confidence: float) -> MetricEstimate:
    n = y.shape[0]
    right = int(np.count_nonzero(y == pred))
    value = right / n
    se = _proportion_se(value, n)
    low, high = _interval("accuracy", WILSON, value, se, n, confidence)
    return MetricEstimate("accuracy", value, low, high, n, confidence, WILSON, se)


def _f1_macro(y: np.ndarray, pred: np.ndarray, confidence: float) -> MetricEstimate:
    n = y.shape[0]
    codes, labels = pd.factorize(np.concatenate([y, pred]))
    k = len(labels)
    cells = np.bincount(codes[:n] * k + codes[n:], minlength=k * k).reshape(k, k)  # rows: true, columns: predicted
    tp = np.diag(cells).astype(float)
    size = (cells.sum(axis=1) + cells.sum(axis=0)).astype(float)  # [true = c] + [predicted = c], summed
    f1 = 2 * tp / size
    value = float(f1.mean())
    # Delta method: row (true a, predicted b) moves F1_c by (2[a=b=c] - F1_c ([a=c] + [b=c])) / mean([a=c]+[b=c]);
    # the macro F1 by the mean of that over the classes. Only c = a and c = b contribute.
    mean_size = size / n
    own = -f1 / mean_size  # the part of class c from a row that has c on one side only
    influence = (own[:, None] + own[None, :]) / k
    influence[np.diag_indices(k)] = (2 - 2 * f1) / mean_size / k
    variance = float((cells * influence**2).sum()) / (n * (n - 1))
    se = math.sqrt(max(variance, 0.0))
    low, high = _interval("f1_macro", DELTA, value, se, n, confidence)
    return MetricEstimate("f1_macro", value, low, high, n, confidence, DELTA, se)


def _roc_auc(prob: _Probabilities, confidence: float) -> MetricEstimate:
    n = prob.codes.shape[0]
    k = len(prob.classes)
    counts = np.bincount(prob.codes, minlength=k)
    if k == 2:
        if counts.min() < 2:
            raise InsufficientEvidenceError(
                f"roc_auc needs at least 2 labelled rows of each class in the window; of {n:,} rows, "
                f"{_class_counts(prob.classes, counts)}. Wait for more labels or widen the window."
            )
        value, variance = _binary_auc(prob.positive_scores(), prob.codes == 1)
        method = DELONG
    else:
        if counts.min() < 2:
            raise InsufficientEvidenceError(
                f"roc_auc (one-vs-rest over {k} classes) needs at least 2 labelled rows of every class in the "
                f"window; of {n:,} rows, {_class_counts(prob.classes, counts)}. Wait for more labels or widen the "
                "window."
            )
        value, variance = _ovr_auc(prob.matrix, prob.codes, counts)
        method = DELONG_OVR
    se = math.sqrt(max(variance, 0.0))
    low, high = _interval("roc_auc", method, value, se, n, confidence)
    return MetricEstimate("roc_auc", value, low, high, n, confidence, method, se)


def _tie_groups(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sort order, the group (of equal scores) of each sorted row, and per group its positives and negatives."""
    order = np.argsort(scores)
    ranked = scores[order]
    starts = np.empty(ranked.shape[0], dtype=bool)
    starts[0] = True
    np.not_equal(ranked[1:], ranked[:-1], out=starts[1:])
    first = np.flatnonzero(starts)
    sizes = np.diff(np.append(first, ranked.shape[0]))
    pos = np.add.reduceat(positive[order].astype(np.int64), first)
    return order, starts, pos, sizes - pos


def _auc_shares(pos: np.ndarray, neg: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and, per group of equal scores, the DeLong components: for its positives, the share of negatives
    below (ties half); for its negatives, the share of positives above (ties half)."""
    n_pos, n_neg = int(pos.sum()), int(neg.sum())
    neg_below = np.cumsum(neg) - neg
    pos_above = n_pos - np.cumsum(pos)
    twice_pairs = int((pos * (2 * neg_below + neg)).sum())  # exact in integers: 2 x Mann-Whitney U
    value = twice_pairs / (2.0 * n_pos * n_neg)
    return value, (neg_below + 0.5 * neg) / n_neg, (pos_above + 0.5 * pos) / n_pos


def _binary_auc(scores: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    _, _, pos, neg = _tie_groups(scores, positive)
    value, v10, v01 = _auc_shares(pos, neg)
    n_pos, n_neg = int(pos.sum()), int(neg.sum())
    variance = float((pos * (v10 - value) ** 2).sum()) / (n_pos * (n_pos - 1)) + float(
        (neg * (v01 - value) ** 2).sum()
    ) / (n_neg * (n_neg - 1))
    return value, variance


def _ovr_auc(matrix: np.ndarray, codes: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    n, k = matrix.shape
    influence = np.zeros(n)
    values = []
    for c in range(k):
        positive = codes == c
        order, starts, pos, neg = _tie_groups(matrix[:, c], positive)
        value, v10, v01 = _auc_shares(pos, neg)
        values.append(value)
        group = np.cumsum(starts) - 1
        share = np.where(
            positive[order], (v10[group] - value) * (n / counts[c]), (v01[group] - value) * (n / (n - counts[c]))
        )
        influence[order] += share
    influence /= k
    return float(np.mean(values)), float(influence @ influence) / (n * (n - 1))


def _log_loss(prob: _Probabilities, confidence: float) -> MetricEstimate:
    losses = -np.log(np.clip(prob.true_class_probability(), _EPS, 1 - _EPS))
    return _mean_estimate("log_loss", losses, confidence)


def _regression(metric: str, truth: np.ndarray, pred: np.ndarray, confidence: float) -> MetricEstimate:
    n = truth.shape[0]
    errors = truth - pred
    if metric == "mae":
        return _mean_estimate("mae", np.abs(errors), confidence)
    squared = errors * errors
    if metric == "rmse":
        mse = float(np.mean(squared))
        se_mse = float(np.std(squared, ddof=1)) / math.sqrt(n)
        value = math.sqrt(mse)
        se = se_mse / (2 * value) if value > 0 else 0.0
        low, high = _interval("rmse", CLT_MSE, value, se, n, confidence)
        return MetricEstimate("rmse", value, low, high, n, confidence, CLT_MSE, se)
    # r2 = 1 - A/B with A = mean squared error, B = mean squared deviation of y_true from its mean
    deviation = truth - np.mean(truth)
    deviation *= deviation
    total = float(np.sum(deviation))
    if total == 0:
        raise InsufficientEvidenceError(
            f"r2 needs y_true to vary in the window; all {n:,} labels equal {truth[0]:g}. Wait for more labels "
            "or widen the window."
        )
    residual = float(np.sum(squared))
    value = 1 - residual / total
    a, b = residual / n, total / n
    influence = (squared - a) - (1 - value) * (deviation - b)  # divided by -b below
    variance = float(influence @ influence) / (b * b) / (n * (n - 1))
    se = math.sqrt(variance)
    low, high = _interval("r2", DELTA, value, se, n, confidence)
    return MetricEstimate("r2", value, low, high, n, confidence, DELTA, se)


def _mean_estimate(metric: str, per_row: np.ndarray, confidence: float) -> MetricEstimate:
    n = per_row.shape[0]
    value = float(np.mean(per_row))
    se = float(np.std(per_row, ddof=1)) / math.sqrt(n)
    low, high = _interval(metric, CLT, value, se, n, confidence)
    return MetricEstimate(metric, value, low, high, n, confidence, CLT, se)


def _proportion_se(share: float, rows: int) -> float:
    """Agresti-Caffo: one right and one wrong row added; never zero."""
    adjusted = (share * rows + 1) / (rows + 2)
    return math.sqrt(adjusted * (1 - adjusted) / (rows + 2))


def _interval(metric: str, method: str, value: float, se: float, rows: int, confidence: float) -> tuple[float, float]:
    z = _z_two_sided(confidence)
    if method == WILSON:
        n = rows
        shrink = 1 + z * z / n
        center = (value + z * z / (2 * n)) / shrink
        half = z * math.sqrt(max(value * (1 - value), 0.0) / n + z * z / (4 * n * n)) / shrink
        low, high = center - half, center + half
    elif method == CLT_MSE:
        mse, se_mse = value * value, 2 * value * se
        low, high = math.sqrt(max(mse - z * se_mse, 0.0)), math.sqrt(mse + z * se_mse)
    else:
        low, high = value - z * se, value + z * se
    floor, ceiling = METRIC_RANGES.get(metric, (-math.inf, math.inf))
    return max(low, floor), min(high, ceiling)
