"""Shared pieces of the live-performance statistics: the metric and method names, ``InsufficientEvidenceError``,
and the private helpers that validate inputs (labels, probabilities, numbers, choices) and format and round what
is reported."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from mlops_provider.core.errors import ConfigurationError, DataStateError

METRICS = ("accuracy", "roc_auc", "f1_macro", "log_loss", "rmse", "mae", "r2")
PAIRED_METRICS = ("accuracy", "log_loss", "brier", "rmse", "mae")

LABEL_METRICS = ("accuracy", "f1_macro")  # from predicted labels
PROBABILITY_METRICS = ("roc_auc", "log_loss")  # from predicted probabilities
REGRESSION_METRICS = ("rmse", "mae", "r2")
MIN_ROWS = 2
PROBABILITY_SUM_TOLERANCE = 1e-3  # rows of a 2-D proba must sum to 1 within this (rounded logs pass, scores fail)
_EPS = float(np.finfo(np.float64).eps)  # scikit-learn's log_loss clip for float64 probabilities
_NORMAL = NormalDist()

# method names, as reported in MetricEstimate.method
WILSON = "wilson"
DELONG = "delong"
DELONG_OVR = "delong-ovr"
DELTA = "delta"
CLT = "clt"
CLT_MSE = "clt-mse"  # CLT on the MSE, square root of both ends
_METHODS = {WILSON, DELONG, DELONG_OVR, DELTA, CLT, CLT_MSE}


class InsufficientEvidenceError(DataStateError):
    """Too few labelled rows (or a single class) in the window to estimate a metric; more labels may fix it."""


# ---------------------------------------------------------------------------------------------- inputs


@dataclass
class _Probabilities:
    """Validated probabilities: ``classes`` in column order, ``codes`` the true class of each row (index into
    classes; empty when not needed), ``matrix`` the (n, k) probabilities or, binary 1-D, the positive's."""

    classes: list
    codes: np.ndarray
    matrix: np.ndarray

    @classmethod
    def build(
        cls, matrix: np.ndarray, y: np.ndarray, classes: Any, metric: str, *, need_codes: bool, name: str = "proba"
    ) -> _Probabilities:
        """From a matrix checked by ``_probability_matrix``."""
        width = 2 if matrix.ndim == 1 else matrix.shape[1]
        class_list = cls._classes(classes, y, width, name, metric, one_d=matrix.ndim == 1)
        codes = _encode(y, class_list, metric) if need_codes else np.empty(0, dtype=np.int64)
        return cls(class_list, codes, matrix)

    @staticmethod
    def _classes(classes: Any, y: np.ndarray, width: int, name: str, metric: str, *, one_d: bool) -> list:
        if classes is not None:
            class_list = (
                list(np.asarray(classes, dtype=object).ravel()) if not isinstance(classes, list) else list(classes)
            )
            if len(set(class_list)) != len(class_list):
                raise ConfigurationError(
                    f"classes={_plain(class_list)!r} has duplicates; give each class once, in column order."
                )
            if len(class_list) != width:
                shape = "a 1-D proba is the positive class's of 2 classes" if one_d else f"{name} has {width} columns"
                raise ConfigurationError(
                    f"classes has {len(class_list)} entries but {shape}; give one class per column."
                )
            return class_list
        present = list(pd.unique(y))
        try:
            present.sort()
        except TypeError:
            raise ConfigurationError(
                f"The labels of y_true cannot be sorted; give classes (the column order of {name})."
            ) from None
        if one_d and len(present) < 2 and all(_is_number(v) and v in (0, 1) for v in present):
            present = [False, True] if y.dtype.kind == "b" else [0, 1]
        if len(present) != width:
            raise ConfigurationError(
                f"{metric} got no classes and y_true holds {len(present)} label(s) {_plain(present[:10])!r} but "
                f"{name} has {width} column(s){' (1-D: a binary positive-class probability)' if one_d else ''}; "
                "give classes, the class of each column (model.classes_)."
            )
        return present

    def positive_scores(self) -> np.ndarray:
        return self.matrix if self.matrix.ndim == 1 else self.matrix[:, 1]

    def true_class_probability(self) -> np.ndarray:
        if self.matrix.ndim == 1:
            return np.where(self.codes == 1, self.matrix, 1 - self.matrix)
        return self.matrix[np.arange(self.codes.shape[0]), self.codes]

    def squared_error(self) -> np.ndarray:
        """Brier per row: (p - y)^2 for two classes (scikit-learn's binary scale), sum over classes above two."""
        if self.matrix.ndim == 1 or len(self.classes) == 2:
            error = self.positive_scores() - (self.codes == 1)
            return error * error
        error = self.matrix.copy()
        error[np.arange(self.codes.shape[0]), self.codes] -= 1
        return np.einsum("ij,ij->i", error, error)

    def predicted_labels(self) -> np.ndarray:
        """The most probable class per row (the first on a tie), as ``predict`` returns it."""
        labels = np.asarray(self.classes, dtype=object)
        if self.matrix.ndim == 1:
            index = (self.matrix > 0.5).astype(np.intp)
        else:
            index = np.argmax(self.matrix, axis=1)
        out = labels[index]
        try:
            return out.astype(np.result_type(*[np.asarray(c).dtype for c in self.classes]))
        except (TypeError, ValueError):
            return out


def _probability_matrix(proba: Any, rows: int, name: str, metric: str) -> np.ndarray:
    """``proba`` as float64, one row (or value) per labelled row, probabilities in [0, 1], rows summing to 1."""
    try:
        matrix = np.asarray(
            proba.to_numpy() if isinstance(proba, (pd.Series, pd.DataFrame)) else proba, dtype=np.float64
        )
    except (TypeError, ValueError) as error:
        raise ConfigurationError(f"{name} must hold numbers (predicted probabilities) for {metric}: {error}") from None
    if matrix.ndim not in (1, 2) or matrix.shape[0] != rows:
        raise ConfigurationError(
            f"{name} has shape {matrix.shape} but y_true has {rows:,} rows; give one probability per row (1-D, the "
            "positive class's) or one row of class probabilities per row (2-D), for the same rows in the same order."
        )
    if matrix.ndim == 2 and matrix.shape[1] < 2:
        raise ConfigurationError(
            f"{name} has {matrix.shape[1]} column(s); a classifier's probabilities have one per class (>= 2), or "
            "give the positive class's as 1-D."
        )
    if not rows:
        return matrix
    low, high = float(matrix.min()), float(matrix.max())  # nan when any value is nan
    if not (low >= 0 and high <= 1):
        finite = np.isfinite(matrix)
        if not finite.all():
            bad = int(np.count_nonzero(~finite.all(axis=1) if matrix.ndim == 2 else ~finite))
            raise ConfigurationError(
                f"{name} has {bad:,} row(s) with missing (NaN) or infinite probabilities out of {rows:,}; drop the "
                f"rows without a prediction before computing {metric}."
            )
        raise ConfigurationError(
            f"{name} must hold probabilities in [0, 1]; found values from {low:g} to {high:g} (decision scores or "
            "logits?). Log predict_proba's output."
        )
    if matrix.ndim == 2:
        worst = float(np.abs(matrix.sum(axis=1) - 1).max())
        if worst > PROBABILITY_SUM_TOLERANCE:
            raise ConfigurationError(
                f"{name}'s rows must sum to 1 (class probabilities), one is off by {worst:.3g}; log predict_proba's "
                "output, with every class's column."
            )
    return matrix


def _encode(y: np.ndarray, classes: list, metric: str) -> np.ndarray:
    """Index of each row's label in ``classes``; raises when a label is not one of them."""
    keys: list = list(classes)
    values = y
    if y.dtype.kind in "biuf":  # booleans match 0 and 1, as numpy compares them
        keys = [int(c) if isinstance(c, (bool, np.bool_)) else c for c in keys]
        if y.dtype.kind == "b":
            values = y.astype(np.int64)
    codes = pd.Index(keys).get_indexer(values)
    if y.shape[0] and codes.min() < 0:
        unknown = _plain(pd.unique(y[codes < 0])[:10])
        raise ConfigurationError(
            f"y_true holds label(s) {unknown!r} that are not among classes {_plain(classes)!r}, so {metric} is not "
            "defined; give classes as the model's full class list (model.classes_), matching the labels' type."
        )
    return codes


def _column(values: Any, name: str, metric: str, *, rows: int | None = None) -> np.ndarray:
    """One 1-D column without missing values, ``rows`` long when given."""
    if values is None:
        raise ConfigurationError(f"{name} is required for {metric}; got None.")
    array = values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else np.asarray(values)
    if array.ndim != 1:
        raise ConfigurationError(f"{name} must be one column (1-D), got shape {array.shape}.")
    if rows is not None and array.shape[0] != rows:
        raise ConfigurationError(
            f"{name} has {array.shape[0]:,} rows but y_true has {rows:,}; pass the values of the same rows, in the "
            "same order (join them on their id first)."
        )
    kind = array.dtype.kind
    if kind == "f":
        missing = np.isnan(array)
    elif kind in "OMmU":
        missing = pd.isna(array) if kind != "U" else np.zeros(array.shape[0], dtype=bool)
    else:
        missing = None
    if missing is not None and missing.any():
        raise ConfigurationError(
            f"{name} has {int(np.count_nonzero(missing)):,} missing (NaN/None) values out of {array.shape[0]:,}; "
            f"drop the rows without a label or a prediction before computing {metric}."
        )
    return array


def _numbers(values: np.ndarray, name: str, metric: str) -> np.ndarray:
    try:
        array = values.astype(np.float64, copy=False)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name} must hold numbers for {metric} (a regression metric).") from None
    if not np.isfinite(array).all():
        raise ConfigurationError(f"{name} has infinite values; {metric} needs finite numbers.")
    return array


def _label_kind(array: np.ndarray) -> str:
    if array.dtype.kind in "biuf":
        return "number"
    if array.dtype.kind in "US":
        return "string"
    if array.dtype.kind == "O" and array.shape[0]:
        first = array[0]
        if isinstance(first, (str, bytes)):
            return "string"
        if _is_number(first):
            return "number"
    return "other"


def _check_label_types(y: np.ndarray, pred: np.ndarray, metric: str, name: str = "y_pred") -> None:
    kinds = {_label_kind(y), _label_kind(pred)}
    if kinds == {"number", "string"}:
        raise ConfigurationError(
            f"y_true holds {_label_kind(y)}s but {name} {_label_kind(pred)}s, so no prediction can match its label "
            f"for {metric}; convert both to the same type."
        )


def _check_rows(metric: str, rows: int) -> None:
    if rows < MIN_ROWS:
        raise InsufficientEvidenceError(
            f"{metric} needs at least {MIN_ROWS} labelled rows in the window; found {rows}. Wait for more labels "
            "or widen the window."
        )


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigurationError(f"{name}={value!r} is not supported; use one of {list(choices)}.")


def _check_number(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigurationError(f"{name} must be a finite number, got {value!r}.")


def _check_fraction(name: str, value: Any, example: str, high: float = 1.0) -> None:
    _check_number(name, value)
    if not 0 < value < high:
        raise ConfigurationError(f"{name}={value!r} must be between 0 and {high:g} (exclusive), {example}.")


def _is_number(value: Any) -> bool:
    return isinstance(value, (numbers.Number, np.number, np.bool_)) and not isinstance(value, (str, bytes))


def _class_counts(classes: list, counts: np.ndarray) -> str:
    return ", ".join(f"{int(count):,} of class {label!r}" for label, count in zip(_plain(classes), counts, strict=True))


def _plain(values: Any) -> list:
    """Python scalars for messages: [0, 1], not [np.int64(0), np.int64(1)]."""
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def _z_two_sided(confidence: float) -> float:
    return _NORMAL.inv_cdf(0.5 + confidence / 2)


def _upper_tail(z: float) -> float:
    """P(Z > z) for a standard normal Z, accurate far in the tail."""
    return 0.5 * math.erfc(z / math.sqrt(2))


def _improvement_test(
    improvement: float, se: float, min_improvement: float, significance: float
) -> tuple[float, float, float, float]:
    """``(z, p, low, high)``: the one-sided z-test that ``improvement`` (standard error ``se``) exceeds
    ``min_improvement``, and the two-sided (1 - 2 * ``significance``) interval around it, whose low end is above
    ``min_improvement`` exactly when p < ``significance``."""
    excess = improvement - min_improvement
    z = excess / se if se > 0 else (math.copysign(math.inf, excess) if excess else 0.0)
    half = _z_two_sided(1 - 2 * significance) * se
    return z, _upper_tail(z), improvement - half, improvement + half


def _improvement_verdict(p_value: float, significance: float, min_improvement: float, numbers: str) -> tuple[str, str]:
    """``("promote" | "reject", reason)`` for a test of ``_improvement_test``, with its ``numbers`` in the reason."""
    if p_value < significance:
        return "promote", (
            f"promote: the challenger is better by more than {min_improvement:g} ({numbers} < {significance:g})."
        )
    return "reject", (
        f"reject: the challenger is not shown better by more than {min_improvement:g} ({numbers} >= {significance:g})."
    )


def _round(value: float) -> float | None:
    """6 significant digits; None for nan/inf (JSON has no such numbers)."""
    value = float(value)
    if not math.isfinite(value):
        return None
    return float(f"{value:.6g}")


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


def _fmt_p(p: float) -> str:
    return "< 1e-15" if p < 1e-15 else f"= {p:.2g}"
