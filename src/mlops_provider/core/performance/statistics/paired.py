"""Shadow comparison of a challenger with the champion on the same rows: ``PairedEvidence``, ``PairedDecision``,
``compare_paired`` and the per-row scores they rest on."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from mlops_provider.core.errors import ConfigurationError
from mlops_provider.core.performance.statistics.common import (
    _EPS,
    PAIRED_METRICS,
    InsufficientEvidenceError,
    _check_choice,
    _check_fraction,
    _check_label_types,
    _check_number,
    _column,
    _fmt,
    _fmt_p,
    _improvement_test,
    _improvement_verdict,
    _numbers,
    _Probabilities,
    _probability_matrix,
    _round,
)

# ---------------------------------------------------------------------------------------- shadow evidence

_IMPROVEMENT = {
    "accuracy": "accuracy gain (share of rows)",
    "log_loss": "reduction in mean log loss",
    "brier": "reduction in Brier score",
    "mae": "reduction in mean absolute error",
    "rmse": "reduction in mean squared error (the test is on the MSE, not the RMSE)",
}


@dataclass(frozen=True)
class PairedEvidence:
    """Challenger minus champion, per labelled row both scored, in "higher is better" orientation, as sums
    (module docstring). Evidence of several windows adds up: ``a + b`` or ``sum(windows)``."""

    metric: str
    rows: int
    windows: int
    sum_diff: float
    sum_sq_diff: float

    def __add__(self, other: Any) -> PairedEvidence:
        if not isinstance(other, PairedEvidence):
            return NotImplemented
        if other.metric != self.metric:
            raise ConfigurationError(
                f"Cannot add evidence on {other.metric} to evidence on {self.metric}; add up windows of one metric."
            )
        return PairedEvidence(
            self.metric,
            self.rows + other.rows,
            self.windows + other.windows,
            self.sum_diff + other.sum_diff,
            self.sum_sq_diff + other.sum_sq_diff,
        )

    def __radd__(self, other: Any) -> PairedEvidence:
        if isinstance(other, int) and other == 0:  # sum(...) starts from 0
            return self
        return NotImplemented

    def to_dict(self) -> dict[str, Any]:
        # full precision: the sums are added up over windows, rounding them would accumulate
        return {
            "metric": self.metric,
            "rows": int(self.rows),
            "windows": int(self.windows),
            "sum_diff": float(self.sum_diff),
            "sum_sq_diff": float(self.sum_sq_diff),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairedEvidence:
        names = [f.name for f in fields(cls)]
        if not isinstance(data, dict) or any(name not in data for name in names):
            raise ConfigurationError(f"Paired evidence needs the keys {names}; got {data!r}.")
        _check_choice("evidence metric", data["metric"], PAIRED_METRICS)
        for key in ("rows", "windows"):
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise ConfigurationError(f"Paired evidence {key}={value!r} must be a whole number >= 0.")
        for key in ("sum_diff", "sum_sq_diff"):
            _check_number(f"paired evidence {key}", data[key])
        if data["sum_sq_diff"] < 0:
            raise ConfigurationError(f"Paired evidence sum_sq_diff={data['sum_sq_diff']!r} cannot be negative.")
        return cls(
            data["metric"], int(data["rows"]), int(data["windows"]), float(data["sum_diff"]), float(data["sum_sq_diff"])
        )

    @classmethod
    def from_rows(
        cls,
        metric: str,
        y_true: Any,
        *,
        champion_pred: Any = None,
        challenger_pred: Any = None,
        champion_proba: Any = None,
        challenger_proba: Any = None,
        classes: Any = None,
    ) -> PairedEvidence:
        """The evidence of one window: ``y_true`` and both models' outputs on the same rows, in the same order.

        accuracy: predicted labels (or probabilities to take the most probable class from); log_loss, brier:
        probabilities, both models' columns in the order of ``classes``; rmse, mae: predicted values."""
        _check_choice("metric", metric, PAIRED_METRICS)
        y = _column(y_true, "y_true", metric)
        n = y.shape[0]
        if n == 0:
            raise InsufficientEvidenceError(
                f"No labelled rows shared by the champion and the challenger for {metric} in this window; the "
                "window adds no evidence. Wait for more labels or widen the window."
            )
        sides = {"champion": (champion_pred, champion_proba), "challenger": (challenger_pred, challenger_proba)}
        scores = {}
        for side, (pred, proba) in sides.items():
            scores[side] = _row_scores(metric, y, pred, proba, classes, side)
        diff = scores["challenger"] - scores["champion"]
        return cls(metric, n, 1, float(np.sum(diff)), float(diff @ diff))


def _row_scores(metric: str, y: np.ndarray, pred: Any, proba: Any, classes: Any, side: str) -> np.ndarray:
    """Per-row score of one model, higher is better."""
    n = y.shape[0]
    if metric in ("rmse", "mae"):
        if pred is None:
            raise ConfigurationError(f"Paired {metric} needs {side}_pred (the {side}'s predicted values); got none.")
        errors = _numbers(y, "y_true", metric) - _numbers(
            _column(pred, f"{side}_pred", metric, rows=n), f"{side}_pred", metric
        )
        return -np.abs(errors) if metric == "mae" else -(errors * errors)
    if metric == "accuracy":
        if pred is not None:
            labels = _column(pred, f"{side}_pred", metric, rows=n)
            _check_label_types(y, labels, metric, name=f"{side}_pred")
        elif proba is not None:
            matrix = _probability_matrix(proba, n, f"{side}_proba", metric)
            labels = _Probabilities.build(
                matrix, y, classes, metric, need_codes=False, name=f"{side}_proba"
            ).predicted_labels()
            _check_label_types(y, labels, metric, name="classes")
        else:
            raise ConfigurationError(
                f"Paired accuracy needs {side}_pred (the {side}'s predicted labels) or {side}_proba; got neither."
            )
        return (y == labels).astype(float)
    if proba is None:
        raise ConfigurationError(
            f"Paired {metric} needs {side}_proba (the {side}'s predicted probabilities); got none. Paired metrics "
            f"from predicted labels or values: ['accuracy', 'rmse', 'mae']."
        )
    matrix = _probability_matrix(proba, n, f"{side}_proba", metric)
    prob = _Probabilities.build(matrix, y, classes, metric, need_codes=True, name=f"{side}_proba")
    if metric == "log_loss":
        return np.log(np.clip(prob.true_class_probability(), _EPS, 1 - _EPS))
    return -prob.squared_error()


@dataclass(frozen=True)
class PairedDecision:
    """promote | reject | wait, with the mean improvement (challenger minus champion, higher is better), its
    two-sided (1 - 2*significance) interval and the one-sided p-value of "improvement > min_improvement"."""

    outcome: str
    metric: str
    improvement: float
    low: float
    high: float
    p_value: float
    rows: int
    windows: int
    min_improvement: float
    significance: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "metric": self.metric,
            "improvement": _round(self.improvement),
            "low": _round(self.low),
            "high": _round(self.high),
            "p_value": _round(self.p_value),
            "rows": int(self.rows),
            "windows": int(self.windows),
            "min_improvement": float(self.min_improvement),
            "significance": float(self.significance),
            "reason": self.reason,
        }


def compare_paired(
    evidence: PairedEvidence,
    *,
    min_improvement: float = 0.0,
    significance: float = 0.05,
    min_rows: int = 1000,
    min_windows: int = 1,
) -> PairedDecision:
    """Promote the challenger when its mean per-row improvement over the champion exceeds ``min_improvement``
    at ``significance`` (one-sided z-test); wait while there are fewer than ``min_rows`` rows or
    ``min_windows`` windows of evidence; reject otherwise."""
    if not isinstance(evidence, PairedEvidence):
        raise ConfigurationError(
            f"evidence must be PairedEvidence (from PairedEvidence.from_rows), got {type(evidence).__name__}."
        )
    _check_number("min_improvement", min_improvement)
    _check_fraction("significance", significance, "e.g. 0.05", high=0.5)
    for name, value, least in (("min_rows", min_rows, 1), ("min_windows", min_windows, 1)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
            raise ConfigurationError(f"{name}={value!r} must be a whole number >= {least}.")
    n, metric = evidence.rows, evidence.metric
    what = _IMPROVEMENT[metric]
    improvement = low = high = p_value = math.nan
    if n >= 2:
        improvement = evidence.sum_diff / n
        variance = max((evidence.sum_sq_diff - n * improvement * improvement) / (n - 1), 0.0)
        se = math.sqrt(variance / n)
        z, p_value, low, high = _improvement_test(improvement, se, min_improvement, significance)
    level = f"{(1 - 2 * significance) * 100:g}%"
    seen = f"{n:,} shared labelled rows over {evidence.windows} window(s)"
    needed = max(min_rows, 2)  # a variance needs two rows
    if n < needed or evidence.windows < min_windows:
        outcome = "wait"
        so_far = (
            ""
            if n < 2
            else f" So far the {what} is {_fmt(improvement)} ({level} interval {_fmt(low)} to {_fmt(high)})."
        )
        reason = f"wait: {seen}; the decision needs at least {needed:,} rows and {min_windows} window(s).{so_far}"
    else:
        numbers_ = (
            f"{what} {_fmt(improvement)}, {level} interval {_fmt(low)} to {_fmt(high)}, on {seen}; one-sided "
            f"p {_fmt_p(p_value)}"
        )
        outcome, reason = _improvement_verdict(p_value, significance, min_improvement, numbers_)
    return PairedDecision(
        outcome=outcome,
        metric=metric,
        improvement=improvement,
        low=low,
        high=high,
        p_value=p_value,
        rows=n,
        windows=evidence.windows,
        min_improvement=float(min_improvement),
        significance=float(significance),
        reason=reason,
    )
