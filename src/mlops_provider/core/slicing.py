"""Names of the per-slice and fairness metrics, and the checks of gate thresholds that use them.

Plain Python (no pandas): the gate checks these names when a DAG is parsed. The metrics themselves are computed
by ``core.training.slices`` (per-slice metrics, one function for training and the gate) and
``core.training.fairness`` (fairlearn's group disparities).

Metric names (``<column>`` and ``<value>`` made safe for MLflow keys by ``key_part``):

* ``slice.<column>.<value>.<metric>``: a standard metric on the holdout rows of one group of a ``slice_columns``
  column; ``slice.<column>.worst_<metric>``: the worst over the measured groups;
* ``fairness.<column>.demographic_parity_difference`` and ``fairness.<column>.equalized_odds_difference``
  (binary classification, fairlearn's definitions, between groups) and ``fairness.<column>.worst_group_<metric>``
  for a ``sensitive_columns`` column.

A group with fewer than ``MIN_GROUP_ROWS`` holdout rows is listed in the reports but not measured (too few rows
for a rate to mean anything); a column with more than ``MAX_GROUPS`` distinct values is refused before training.
"""

from __future__ import annotations

import re

from mlops_provider.core.errors import ConfigurationError

SLICE_PREFIX = "slice."
FAIRNESS_PREFIX = "fairness."
MIN_GROUP_ROWS = 30  # holdout rows a group needs to be measured
MAX_GROUPS = 50  # distinct values a slice or sensitive column may have (more: ConfigurationError, no "other" bucket)
MISSING_GROUP = "(missing)"  # the group of rows whose value is missing
PARITY_METRICS = ("demographic_parity_difference", "equalized_odds_difference")
WORST_GROUP_METRICS = {
    "classification": ("accuracy", "recall", "f1_macro", "roc_auc", "log_loss"),
    "regression": ("rmse", "mae", "r2"),
}
SLICE_METRICS = {
    "classification": ("accuracy", "f1_macro", "roc_auc", "log_loss"),
    "regression": ("rmse", "mae", "r2"),
}
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /]")
_MAX_KEY_PART = 60


def key_part(text: str) -> str:
    """``text`` as MLflow allows it in a metric key (letters, digits, ``_ - . space /``; others become ``_``),
    at most 60 characters."""
    safe = _UNSAFE.sub("_", str(text))[:_MAX_KEY_PART]
    return safe or "_"


def is_group_metric(metric: str) -> bool:
    return metric.startswith((SLICE_PREFIX, FAIRNESS_PREFIX))


def base_metric(metric: str) -> str:
    """The standard metric behind a slice or fairness metric (its range and better direction), else ``metric``."""
    if not is_group_metric(metric):
        return metric
    last = metric.rsplit(".", 1)[-1]
    for prefix in ("worst_group_", "worst_"):
        if last.startswith(prefix):
            return last[len(prefix) :]
    return last


def _known(table: dict[str, tuple[str, ...]], task_type: str | None) -> tuple[str, ...]:
    return table.get(task_type or "") or tuple(dict.fromkeys(m for ms in table.values() for m in ms))


def _column_and_tail(metric: str, prefix: str, columns: list[str] | None) -> tuple[str | None, str]:
    rest = metric[len(prefix) :]
    if columns is None:  # not known yet (a DAG being parsed): the column is the first part
        head, _, tail = rest.partition(".")
        return head, tail
    for column in sorted(columns, key=lambda c: -len(key_part(c))):
        key = key_part(column)
        if rest.startswith(key + "."):
            return column, rest[len(key) + 1 :]
    return None, rest


def check_group_metric(
    metric: str,
    task_type: str | None = None,
    *,
    slice_columns: list[str] | None = None,
    sensitive_columns: list[str] | None = None,
) -> None:
    """Refuse a ``slice.``/``fairness.`` gate metric the model cannot have. ``slice_columns`` and
    ``sensitive_columns`` are the model's settings (``None``: not known yet, only the name's shape is checked)."""
    if metric.startswith(SLICE_PREFIX):
        setting, prefix, columns = "slice_columns", SLICE_PREFIX, slice_columns
        metrics = _known(SLICE_METRICS, task_type)
    else:
        setting, prefix, columns = "sensitive_columns", FAIRNESS_PREFIX, sensitive_columns
        metrics = _known(WORST_GROUP_METRICS, task_type)
    column, tail = _column_and_tail(metric, prefix, columns)
    if column is None:
        guess = metric[len(prefix) :].partition(".")[0] or "<column>"
        raise ConfigurationError(
            f"The gate names {metric!r}, but the model was trained without {guess!r} in {setting} "
            f"({setting}: {columns or 'not set'}), so it has no such metric. Train it with {setting}=[{guess!r}] "
            f"(TrainModelOperator, or {setting} in the lifecycle settings), or drop the threshold."
        )
    if prefix == FAIRNESS_PREFIX and tail in PARITY_METRICS:
        if task_type == "regression":
            raise ConfigurationError(
                f"The gate names {metric!r}, but {tail} compares a classifier's predicted classes between groups "
                f"and this is a regression model. For regression use fairness.{key_part(column)}.worst_group_rmse "
                f"(or _mae, _r2) or slice metrics (slice_columns)."
            )
        return
    if prefix == FAIRNESS_PREFIX:
        wanted = tail.removeprefix("worst_group_") if tail.startswith("worst_group_") else None
        shapes = f"{', '.join(PARITY_METRICS)} or worst_group_<metric> with <metric> one of {list(metrics)}"
    else:
        if "." in tail:  # <value>.<metric>
            wanted = tail.rpartition(".")[2]
        else:
            wanted = tail.removeprefix("worst_") if tail.startswith("worst_") else None
        shapes = f"worst_<metric> or <value>.<metric> with <metric> one of {list(metrics)}"
    if wanted not in metrics:
        raise ConfigurationError(
            f"The gate names {metric!r}; after {prefix}{key_part(column)}. write {shapes}"
            + (f" (for a {task_type} model)." if task_type else ".")
        )
