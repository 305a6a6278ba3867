"""The figures training stores: confusion matrix or residuals, and feature importances (with their table)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_provider.core.training.config import PreparedTraining
from mlops_provider.core.training.evaluation import confusion_counts

MAX_CONFUSION_MATRIX_CLASSES = 50
CONFUSION_MATRIX_PATH = "plots/confusion_matrix.png"
RESIDUALS_PATH = "plots/residuals.png"
FEATURE_IMPORTANCES_PATH = "feature_importances.csv"
FEATURE_IMPORTANCES_PLOT_PATH = "plots/feature_importances.png"


def _figure(width: float = 6.0, height: float = 4.5) -> Any:
    """A figure on the Agg canvas, without pyplot: no global backend switch, safe in any worker thread."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=80)
    FigureCanvasAgg(figure)
    return figure


# Width of one character of a tick label (10 pt text), in inches; for margins sized from the labels.
_CHAR_INCHES = 0.085
_MAX_LABEL_CHARS = 40


def _set_margins(figure: Any, *, left_chars: int, bottom_chars: int = 0, y_label: bool = True) -> None:
    """Fixed margins that leave room for the axis labels and for tick labels of the given lengths (in
    characters; ``bottom_chars`` for rotated x tick labels). Sized up front instead of ``tight_layout``,
    which draws the whole figure once more to measure the text."""
    width, height = figure.get_size_inches()
    left = min(0.45 * width, (0.55 if y_label else 0.25) + _CHAR_INCHES * left_chars)
    bottom = min(0.45 * height, 0.6 + 0.7 * _CHAR_INCHES * bottom_chars)
    figure.subplots_adjust(left=left / width, right=1 - 0.25 / width, bottom=bottom / height, top=1 - 0.4 / height)


def _label(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _MAX_LABEL_CHARS else text[: _MAX_LABEL_CHARS - 1] + "\u2026"


def _plot_confusion_matrix(y_true: pd.Series, predictions: np.ndarray, classes: list, root: Path, notes: list) -> None:
    if len(classes) > MAX_CONFUSION_MATRIX_CLASSES:
        notes.append(f"confusion matrix not drawn: {len(classes)} classes (more than {MAX_CONFUSION_MATRIX_CLASSES}).")
        return
    matrix = confusion_counts(y_true, predictions, classes)
    size = max(4.5, 0.45 * len(classes) + 2)
    figure = _figure(size + 1, size)
    axes = figure.add_subplot()
    axes.imshow(matrix, cmap="Blues")
    labels = [_label(c) for c in classes]
    rotated = len(classes) > 5
    axes.set_xticks(range(len(classes)), labels, rotation=45 if rotated else 0, ha="right" if rotated else "center")
    axes.set_yticks(range(len(classes)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual")
    axes.set_title(f"Confusion matrix (holdout, {int(matrix.sum())} rows)")
    longest = max(len(label) for label in labels)
    _set_margins(figure, left_chars=longest, bottom_chars=longest if rotated else 0)
    if len(classes) <= 20:
        threshold = matrix.max() / 2 if matrix.size else 0
        for (row, column), count in np.ndenumerate(matrix):
            axes.text(
                column, row, str(count), ha="center", va="center", color="white" if count > threshold else "black"
            )
    figure.savefig(root / CONFUSION_MATRIX_PATH, format="png")


def _plot_residuals(prepared: PreparedTraining, predictions: np.ndarray, root: Path) -> None:
    y_true = prepared.y_test.to_numpy(dtype=float)
    shown = np.arange(len(y_true))
    limit = prepared.config.plot_sample_rows
    if len(shown) > limit:  # bounded: drawing cost must not grow with the data
        shown = np.sort(np.random.default_rng(prepared.config.random_state).choice(shown, limit, replace=False))
    residuals = y_true[shown] - predictions[shown]
    figure = _figure(7, 4.5)
    axes = figure.subplots()
    axes.scatter(predictions[shown], residuals, s=6, alpha=0.4)
    axes.axhline(0, color="black", linewidth=1)
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual - predicted")
    sampled = f"{len(shown)} of {len(y_true)}" if len(shown) < len(y_true) else str(len(y_true))
    axes.set_title(f"Residuals on the holdout ({sampled} rows)")
    _set_margins(figure, left_chars=max(len(f"{value:g}") for value in axes.get_yticks()))
    figure.savefig(root / RESIDUALS_PATH, format="png")


def _feature_importances(model: Any, prepared: PreparedTraining, root: Path, notes: list) -> None:
    final = model[-1] if hasattr(model, "steps") else model
    if hasattr(final, "feature_importances_"):
        values, source = np.asarray(final.feature_importances_, dtype=float), "feature_importances_"
    elif hasattr(final, "coef_"):
        coefficients = np.abs(np.asarray(final.coef_, dtype=float))
        values, source = (coefficients.mean(axis=0) if coefficients.ndim > 1 else coefficients), "|coef_|"
    else:
        notes.append(f"no feature importances: {type(final).__name__} has neither feature_importances_ nor coef_.")
        return
    names = None
    if hasattr(model, "steps") and len(model.steps) > 1:
        try:
            names = [str(n) for n in model[:-1].get_feature_names_out()]
        except Exception:  # a custom step without get_feature_names_out
            names = None
    if names is None or len(names) != len(values):
        names = prepared.features if len(prepared.features) == len(values) else [f"x{i}" for i in range(len(values))]
    table = pd.DataFrame({"feature": names, "importance": values}).sort_values("importance", ascending=False)
    table["source"] = source
    table.to_csv(root / FEATURE_IMPORTANCES_PATH, index=False)
    top = table.head(20).iloc[::-1]
    labels = [_label(name) for name in top["feature"]]
    figure = _figure(7, max(3.0, 0.3 * len(top) + 1.2))
    axes = figure.subplots()
    axes.barh(range(len(top)), top["importance"])
    axes.set_yticks(range(len(top)), labels)
    axes.set_xlabel(source)
    axes.set_title("Feature importances" + (" (top 20)" if len(table) > 20 else ""))
    _set_margins(figure, left_chars=max(len(label) for label in labels), y_label=False)
    figure.savefig(root / FEATURE_IMPORTANCES_PLOT_PATH, format="png")
