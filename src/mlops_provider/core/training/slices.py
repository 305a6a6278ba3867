"""Per-slice and fairness metrics on the holdout: one function (``score_groups``) for training and the gate.

``slice_columns``: for each group of each column, the task's standard metrics on the holdout rows of that group
(``slice.<column>.<value>.<metric>``) and the worst over the groups (``slice.<column>.worst_<metric>``), in
``slices.json``. ``sensitive_columns``: fairlearn's group disparities (``core.training.fairness``), in
``fairness.json``. Names, limits and the gate's checks of them: ``core.slicing``.

Training computes them from the holdout predictions it already has; the gate re-scores the stored holdout (with
its context columns joined back) through ``score_model``, which calls the same function for the challenger and
the champion. Bad settings are refused by ``check_group_columns`` before anything is fitted or logged.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_provider.core.errors import ConfigurationError
from mlops_provider.core.slicing import MAX_GROUPS, MIN_GROUP_ROWS, MISSING_GROUP, SLICE_METRICS, key_part
from mlops_provider.core.training.config import CLASSIFICATION, TrainingConfig, _listing

SLICES_PATH = "slices.json"
FAIRNESS_PATH = "fairness.json"


@dataclass
class GroupReport:
    """What ``score_groups`` found: flat metrics, the two reports, and the groups and numbers behind each metric."""

    metrics: dict[str, float] = field(default_factory=dict)
    slices: dict[str, Any] | None = None
    fairness: dict[str, Any] | None = None
    explanations: dict[str, str] = field(default_factory=dict)

    def write(self, root: Path) -> None:
        for path, content in ((SLICES_PATH, self.slices), (FAIRNESS_PATH, self.fairness)):
            if content is not None:
                (root / path).write_text(json.dumps(content, indent=2, default=_plain))


@dataclass
class Group:
    """The holdout rows of one value of a column, and its metrics (``None``: too few rows to measure)."""

    value: str
    key: str  # ``value`` as it appears in metric keys
    rows: int
    mask: np.ndarray
    metrics: dict[str, float] | None


def group_labels(values: pd.Series) -> pd.Series:
    """Each row's group: its value as text, ``(missing)`` for a missing value."""
    return values.astype(object).where(values.notna(), MISSING_GROUP).map(str)


def group_frame(frame: pd.DataFrame, slice_columns: list[str], sensitive_columns: list[str]) -> pd.DataFrame:
    """The group labels of the evaluation rows, one column per slice or sensitive column."""
    wanted = list(dict.fromkeys([*slice_columns, *sensitive_columns]))
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise ConfigurationError(
            f"The evaluation data lacks the column(s) {_listing(missing)} that the model's slice_columns / "
            f"sensitive_columns name (slice_columns {slice_columns}, sensitive_columns {sensitive_columns}); "
            "evaluate on data that has them, e.g. the challenger's stored holdout (leave evaluation_dataset_uri unset)."
        )
    return pd.DataFrame({c: group_labels(frame[c]).to_numpy() for c in wanted})


def check_group_columns(frame: pd.DataFrame, config: TrainingConfig) -> None:
    """Refuse slice and sensitive columns that cannot be measured, before anything is fitted or logged."""
    columns = [str(c) for c in frame.columns]
    for setting, wanted in (("slice_columns", config.slice_columns), ("sensitive_columns", config.sensitive_columns)):
        missing = [c for c in wanted if c not in columns]
        if missing:
            raise ConfigurationError(
                f"{setting} names {_listing(missing)}, which the data does not have (columns: {_listing(columns)}); "
                f"name columns of the dataset, e.g. {setting}=['plan']."
            )
        for column in wanted:
            values = frame[column]
            if pd.api.types.is_datetime64_any_dtype(values):
                raise ConfigurationError(
                    f"{setting} names {column!r}, which holds dates/times; group the rows by a label derived from "
                    "it upstream (e.g. the month as text) and name that column."
                )
            if not values.notna().any():
                raise ConfigurationError(
                    f"{setting} names {column!r}, which holds no values (null in all {len(frame)} rows); fix the "
                    "data or name another column."
                )
            distinct = int(values.nunique(dropna=True)) + int(values.isna().any())
            if distinct <= MAX_GROUPS:
                continue
            numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
            if setting == "sensitive_columns" and numeric:
                raise ConfigurationError(
                    f"sensitive_columns names {column!r}, a numeric column with {distinct} distinct values; a "
                    f"sensitive column must hold group labels (at most {MAX_GROUPS}). Bin it upstream (e.g. ages "
                    "into bands such as '18-29', '30-44') and name the binned column."
                )
            raise ConfigurationError(
                f"{setting} names {column!r}, which has {distinct} distinct values; at most {MAX_GROUPS} groups per "
                "column are measured (there is no 'other' bucket). Group or bin it upstream, or name a column with "
                "fewer values."
            )
    if config.sensitive_columns:
        try:
            import fairlearn.metrics  # noqa: F401
        except ImportError as error:
            raise ConfigurationError(
                f"sensitive_columns needs fairlearn, which cannot be imported ({error}); install 'fairlearn>=0.13' "
                "where the task runs, or leave sensitive_columns unset."
            ) from error


def task_scores(
    task_type: str, y_true: np.ndarray, predictions: np.ndarray, probabilities: np.ndarray | None, classes: list
) -> dict[str, float]:
    """The task's standard metrics on a set of rows, as training computes them on the whole holdout."""
    from mlops_provider.core.training.evaluation import classification_scores, regression_scores

    if task_type == CLASSIFICATION:
        return classification_scores(y_true, predictions, probabilities, classes, [])
    return regression_scores(y_true.astype(float), predictions.astype(float))


def split_groups(
    task_type: str,
    y_true: np.ndarray,
    predictions: np.ndarray,
    probabilities: np.ndarray | None,
    classes: list,
    labels: np.ndarray,
) -> list[Group]:
    """The groups of ``labels`` in value order, each with its metrics when it has at least MIN_GROUP_ROWS rows."""
    groups, used = [], set()
    for value in sorted(pd.unique(labels)):
        mask = labels == value
        rows = int(mask.sum())
        key = base = key_part(value)
        suffix = 2
        while key in used:  # two values the same once made safe for a key ("a+b", "a_b")
            key, suffix = f"{base}_{suffix}", suffix + 1
        used.add(key)
        metrics = None
        if rows >= MIN_GROUP_ROWS:
            group_probabilities = probabilities[mask] if probabilities is not None else None
            metrics = task_scores(task_type, y_true[mask], predictions[mask], group_probabilities, classes)
        groups.append(Group(str(value), key, rows, mask, metrics))
    return groups


def worst_and_best(groups: list[Group], metric: str, scores: dict[str, float]) -> tuple[Group, Group] | None:
    """The groups with the worst and the best finite ``scores`` (group key -> value) in ``metric``'s direction."""
    from mlops_provider.core.registry.gate import greater_is_better

    scored = [g for g in groups if g.key in scores and math.isfinite(scores[g.key])]
    if not scored:
        return None
    ordered = sorted(scored, key=lambda g: scores[g.key], reverse=not greater_is_better(metric))
    return ordered[0], ordered[-1]


def describe_spread(metric: str, column: str, groups: list[Group], scores: dict[str, float]) -> tuple[Group, str]:
    """The worst group in ``metric`` and a sentence naming it (and the best) with the numbers."""
    pair = worst_and_best(groups, metric, scores)
    assert pair is not None
    worst, best = pair
    text = f"{metric} {scores[worst.key]:.2f} for {column}={worst.value} ({worst.rows} rows)"
    if best is not worst:
        text += f" vs {scores[best.key]:.2f} for {column}={best.value} ({best.rows} rows)"
    return worst, text


def score_groups(
    task_type: str,
    y_true: Any,
    predictions: Any,
    probabilities: np.ndarray | None,
    classes: list,
    groups: pd.DataFrame,
    *,
    slice_columns: list[str],
    sensitive_columns: list[str],
) -> GroupReport:
    """Per-slice metrics of ``slice_columns`` and fairness metrics of ``sensitive_columns`` (label columns of
    ``groups``, row for row with ``y_true``), with the reports and the explanation of each metric."""
    from mlops_provider.core.training.fairness import fairness_of_column

    y_true, predictions = np.asarray(y_true), np.asarray(predictions)
    report = GroupReport()
    if slice_columns:
        report.slices = {"min_group_rows": MIN_GROUP_ROWS, "max_groups": MAX_GROUPS, "columns": {}}
    for column in slice_columns:
        column_key = key_part(column)
        found = split_groups(task_type, y_true, predictions, probabilities, classes, groups[column].to_numpy())
        entry: dict[str, Any] = {"groups": [], "worst": {}}
        for group in found:
            item: dict[str, Any] = {"value": group.value, "key": group.key, "rows": group.rows}
            if group.metrics is None:
                item.update(metrics={}, note=f"not measured: fewer than {MIN_GROUP_ROWS} rows")
            else:
                item["metrics"] = group.metrics
                for metric, value in group.metrics.items():
                    name = f"slice.{column_key}.{group.key}.{metric}"
                    report.metrics[name] = value
                    report.explanations[name] = f"{metric} on the {group.rows} holdout rows with {column}={group.value}"
            entry["groups"].append(item)
        for metric in SLICE_METRICS[task_type]:
            scores = {g.key: g.metrics[metric] for g in found if g.metrics and metric in g.metrics}
            if worst_and_best(found, metric, scores) is None:
                continue
            worst, text = describe_spread(metric, column, found, scores)
            entry["worst"][metric] = {"value": worst.value, "score": scores[worst.key]}
            report.metrics[f"slice.{column_key}.worst_{metric}"] = scores[worst.key]
            report.explanations[f"slice.{column_key}.worst_{metric}"] = text
        report.slices["columns"][column] = entry  # type: ignore[index]
    if sensitive_columns:
        report.fairness = {"min_group_rows": MIN_GROUP_ROWS, "max_groups": MAX_GROUPS, "columns": {}}
    for column in sensitive_columns:
        entry, metrics, explanations = fairness_of_column(
            task_type, y_true, predictions, probabilities, classes, column, groups[column].to_numpy()
        )
        report.fairness["columns"][column] = entry  # type: ignore[index]
        report.metrics.update(metrics)
        report.explanations.update(explanations)
    report.metrics = {k: float(v) for k, v in report.metrics.items()}
    return report


def _plain(value: Any) -> Any:
    """numpy numbers in the reports as Python numbers (json's ``default``)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
