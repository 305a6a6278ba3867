"""Group disparities of one sensitive column, with fairlearn (imported here, at task time).

For a binary classifier (positive class: the model's second class, as for roc_auc):

* ``demographic_parity_difference``: the largest difference in selection rate (share predicted positive) between
  two groups (fairlearn's ``demographic_parity_difference``, ``method="between_groups"``);
* ``equalized_odds_difference``: the larger of the largest true-positive-rate and false-positive-rate differences
  between two groups (fairlearn's ``equalized_odds_difference``, ``agg="worst_case"``).

For every task, ``worst_group_<metric>``: the metric in the group where it is worst (``core.slicing`` lists the
metrics). Only groups with at least ``MIN_GROUP_ROWS`` holdout rows count; smaller ones are listed, unmeasured.
A multi-class model gets no parity metrics (fairlearn defines them for binary predictions); regression neither.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlops_provider.core.slicing import MIN_GROUP_ROWS, WORST_GROUP_METRICS, key_part
from mlops_provider.core.training.config import CLASSIFICATION
from mlops_provider.core.training.slices import Group, describe_spread, split_groups, worst_and_best

RATES = ("selection_rate", "true_positive_rate", "false_positive_rate")


def fairness_of_column(
    task_type: str,
    y_true: np.ndarray,
    predictions: np.ndarray,
    probabilities: np.ndarray | None,
    classes: list,
    column: str,
    labels: np.ndarray,
) -> tuple[dict[str, Any], dict[str, float], dict[str, str]]:
    """``fairness.json``'s entry for ``column``, its metrics and the explanation of each."""
    column_key = key_part(column)
    groups = split_groups(task_type, y_true, predictions, probabilities, classes, labels)
    measured = [g for g in groups if g.metrics is not None]
    binary = task_type == CLASSIFICATION and len(classes) == 2
    if task_type == CLASSIFICATION:
        for group in measured:
            assert group.metrics is not None
            group.metrics["recall"] = _recall(y_true[group.mask], predictions[group.mask], classes)
    entry: dict[str, Any] = {"groups": [], "notes": []}
    metrics: dict[str, float] = {}
    explanations: dict[str, str] = {}
    rates: dict[str, dict[str, float]] = {}
    if binary and len(measured) >= 2:
        rates = _parity(y_true, predictions, classes[1], labels, measured, column, column_key, entry, metrics,
                        explanations)  # fmt: skip
    elif task_type == CLASSIFICATION and not binary:
        entry["notes"].append(
            f"demographic_parity_difference and equalized_odds_difference not computed: they need a binary target "
            f"(the model has {len(classes)} classes)."
        )
    elif binary:
        entry["notes"].append(
            f"demographic_parity_difference and equalized_odds_difference not computed: fewer than two groups have "
            f"{MIN_GROUP_ROWS} rows or more."
        )
    for group in groups:
        item: dict[str, Any] = {"value": group.value, "key": group.key, "rows": group.rows}
        if group.metrics is None:
            item["note"] = f"not measured: fewer than {MIN_GROUP_ROWS} rows"
        else:
            item.update({rate: rates[rate][group.key] for rate in RATES if rate in rates})
            item.update(group.metrics)
            if binary and not (y_true[group.mask] == classes[1]).any():
                item["note"] = "no positive labels: fairlearn counts its true positive rate as 0"
        entry["groups"].append(item)
    worst_groups: dict[str, Any] = {}
    for metric in WORST_GROUP_METRICS[task_type]:
        scores = {g.key: g.metrics[metric] for g in measured if g.metrics and metric in g.metrics}
        if worst_and_best(measured, metric, scores) is None:
            continue
        worst, text = describe_spread(metric, column, measured, scores)
        worst_groups[metric] = {"metric": metric, "value": worst.value, "score": scores[worst.key]}
        metrics[f"fairness.{column_key}.worst_group_{metric}"] = scores[worst.key]
        explanations[f"fairness.{column_key}.worst_group_{metric}"] = text
    entry["worst_group"] = next(iter(worst_groups.values()), None)
    entry["worst_groups"] = worst_groups
    return entry, metrics, explanations


def _parity(
    y_true: np.ndarray,
    predictions: np.ndarray,
    positive: Any,
    labels: np.ndarray,
    measured: list[Group],
    column: str,
    column_key: str,
    entry: dict[str, Any],
    metrics: dict[str, float],
    explanations: dict[str, str],
) -> dict[str, dict[str, float]]:
    """fairlearn's parity differences over the measured groups; returns the rates per group key."""
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    keep = np.isin(labels, [g.value for g in measured])
    actual = (y_true[keep] == positive).astype(int)
    predicted = (predictions[keep] == positive).astype(int)
    sensitive = labels[keep]
    by_group = MetricFrame(
        metrics={"selection_rate": selection_rate, "true_positive_rate": true_positive_rate,
                 "false_positive_rate": false_positive_rate},
        y_true=actual, y_pred=predicted, sensitive_features=sensitive,
    ).by_group  # fmt: skip
    keys = {g.value: g.key for g in measured}
    rates = {rate: {keys[str(v)]: float(by_group.loc[v, rate]) for v in by_group.index} for rate in RATES}
    parity = float(demographic_parity_difference(actual, predicted, sensitive_features=sensitive))
    odds = float(equalized_odds_difference(actual, predicted, sensitive_features=sensitive))
    entry["positive_class"] = str(positive)
    entry["demographic_parity_difference"] = parity
    entry["equalized_odds_difference"] = odds
    metrics[f"fairness.{column_key}.demographic_parity_difference"] = parity
    metrics[f"fairness.{column_key}.equalized_odds_difference"] = odds
    explanations[f"fairness.{column_key}.demographic_parity_difference"] = _gap(
        "selection rate", rates["selection_rate"], measured, column
    )
    explanations[f"fairness.{column_key}.equalized_odds_difference"] = "; ".join(
        _gap(words, rates[rate], measured, column)
        for words, rate in (("true positive rate", RATES[1]), ("false positive rate", RATES[2]))
    )
    return rates


def _gap(words: str, rates: dict[str, float], groups: list[Group], column: str) -> str:
    """The lowest and the highest rate: "<words> 0.31 for plan=basic vs 0.49 for plan=pro"."""
    ordered = sorted((g for g in groups if g.key in rates), key=lambda g: rates[g.key])
    low, high = ordered[0], ordered[-1]
    return f"{words} {rates[low.key]:.2f} for {column}={low.value} vs {rates[high.key]:.2f} for {column}={high.value}"


def _recall(y_true: np.ndarray, predictions: np.ndarray, classes: list) -> float:
    """Recall of the positive class (binary; the true positive rate) or the mean recall over classes."""
    from sklearn.metrics import recall_score

    if len(classes) == 2:
        return float(recall_score(y_true == classes[1], predictions == classes[1], zero_division=0))
    return float(recall_score(y_true, predictions, labels=classes, average="macro", zero_division=0))
