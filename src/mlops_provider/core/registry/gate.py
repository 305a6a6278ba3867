"""The gate: the decision on a challenger, from its metrics and the champion's on the same data."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops_provider.core.errors import ConfigurationError
from mlops_provider.core.slicing import base_metric, check_group_metric, is_group_metric

LOWER_IS_BETTER = {
    "rmse", "mae", "mse", "log_loss", "mape", "max_error", "brier_score",
    "demographic_parity_difference", "equalized_odds_difference",
}  # fmt: skip
VALUE_KEYS = {"min", "max"}
CHANGE_KEYS = {"min_absolute_change", "min_relative_change"}
ALLOWED_KEYS = VALUE_KEYS | CHANGE_KEYS | {"greater_is_better"}
# What the provider scores a model on (training's holdout metrics, the gate's re-scoring), per task type.
SCORED_METRICS = {
    "classification": ("accuracy", "f1_macro", "roc_auc", "log_loss"),
    "regression": ("rmse", "mae", "r2"),
}
# The values a metric can take: a min below the range (or a max above it) passes every model.
METRIC_RANGES = {
    "accuracy": (0.0, 1.0),
    "f1_macro": (0.0, 1.0),
    "roc_auc": (0.0, 1.0),
    "log_loss": (0.0, math.inf),
    "rmse": (0.0, math.inf),
    "mae": (0.0, math.inf),
    "r2": (-math.inf, 1.0),
    "recall": (0.0, 1.0),
    "demographic_parity_difference": (0.0, 1.0),
    "equalized_odds_difference": (0.0, 1.0),
}


@dataclass(frozen=True)
class GateCheck:
    metric: str
    kind: str  # min | max | min_absolute_change | min_relative_change
    required: float
    actual: float | None
    passed: bool
    note: str = ""


@dataclass
class GateDecision:
    promote: bool
    checks: list[GateCheck]
    challenger_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    champion_version: str | None
    cold_start: bool
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        verdict = "PROMOTE" if self.promote else "REJECT"
        against = "no champion yet (cold start)" if self.cold_start else f"champion v{self.champion_version}"
        lines = [f"{verdict}: challenger against {against}."]
        for check in self.checks:
            mark = "pass" if check.passed else "FAIL"
            actual = "n/a" if check.actual is None else f"{check.actual:.6g}"
            lines.append(f"  {mark} {check.metric} {check.kind} {check.required:g}: {actual} {check.note}".rstrip())
        return "\n".join(lines)


def greater_is_better(metric: str) -> bool:
    """Whether a higher value is better; a slice or fairness metric goes the way of the metric behind it."""
    return base_metric(metric).lower() not in LOWER_IS_BETTER


DEFAULT_PRIMARY_METRIC = {"classification": "roc_auc", "regression": "rmse"}


def primary_metric_gate(primary_metric: str | None, min_improvement: float, task_type: str | None) -> dict[str, dict]:
    """The usual gate: beat the champion on one metric by ``min_improvement`` (in the metric's better direction).

    Without ``primary_metric`` the metric follows the task type: roc_auc for classification, rmse for regression.
    """
    metric = primary_metric or DEFAULT_PRIMARY_METRIC.get(task_type or "")
    if not metric:
        raise ConfigurationError(
            f"No primary metric for task type {task_type!r}; give primary_metric (e.g. 'roc_auc' or 'rmse') "
            "or explicit thresholds."
        )
    return {metric: {"min_absolute_change": float(min_improvement)}}


def validate_thresholds(thresholds: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Check the gate configuration; raises before anything is scored."""
    if not thresholds:
        raise ConfigurationError(
            "No thresholds: a gate that passes every challenger is a bug. Give thresholds such as "
            '{"f1_macro": {"min": 0.7, "min_absolute_change": 0.0}} or {"rmse": {"max": 10.0}}.'
        )
    if not isinstance(thresholds, dict):
        raise ConfigurationError(f"thresholds must be a dict of metric -> rules, got {type(thresholds).__name__}.")
    for metric, rules in thresholds.items():
        if not isinstance(rules, dict) or not rules:
            raise ConfigurationError(f"thresholds[{metric!r}] must be a non-empty dict such as {{'min': 0.7}}.")
        unknown = set(rules) - ALLOWED_KEYS
        if unknown:
            raise ConfigurationError(
                f"thresholds[{metric!r}] has unknown keys {sorted(unknown)}; use {sorted(ALLOWED_KEYS)}."
            )
        if not set(rules) & (VALUE_KEYS | CHANGE_KEYS):
            raise ConfigurationError(f"thresholds[{metric!r}] sets no bound; add min, max or a change threshold.")
        if "greater_is_better" in rules and not isinstance(rules["greater_is_better"], bool):
            raise ConfigurationError(
                f"thresholds[{metric!r}]['greater_is_better'] must be true or false, got "
                f"{rules['greater_is_better']!r}; leave it out to infer it from the metric name."
            )
        for key in set(rules) - {"greater_is_better"}:
            if not isinstance(rules[key], (int, float)) or isinstance(rules[key], bool) or math.isnan(rules[key]):
                raise ConfigurationError(f"thresholds[{metric!r}][{key!r}] must be a number, got {rules[key]!r}.")
        _check_range(metric, rules)
    return thresholds


def _check_range(metric: str, rules: dict[str, Any]) -> None:
    low, high = METRIC_RANGES.get(base_metric(metric).lower(), (-math.inf, math.inf))
    for key in sorted(VALUE_KEYS & set(rules)):
        value = rules[key]
        if low <= value <= high:
            continue
        always_passes = value < low if key == "min" else value > high
        raise ConfigurationError(
            f"thresholds[{metric!r}][{key!r}] = {value} is outside the range of {metric} [{low:g}, {high:g}], so "
            f"it {'passes' if always_passes else 'rejects'} every model; give a bound inside the range."
        )


def check_scored_metrics(
    thresholds: dict[str, dict[str, Any]],
    task_type: str | None = None,
    *,
    slice_columns: list[str] | None = None,
    sensitive_columns: list[str] | None = None,
) -> None:
    """Refuse gate metrics the provider does not score (for ``task_type``, or for any task type).

    ``slice.``/``fairness.`` metrics (see ``core.slicing``) must name a column of the model's ``slice_columns``
    / ``sensitive_columns``; with those ``None`` (not known yet) only the shape of the name is checked."""
    for metric in thresholds:
        if is_group_metric(metric):
            check_group_metric(metric, task_type, slice_columns=slice_columns, sensitive_columns=sensitive_columns)
    known = SCORED_METRICS.get(task_type or "") or tuple(m for ms in SCORED_METRICS.values() for m in ms)
    unknown = sorted(m for m in thresholds if m not in known and not is_group_metric(m))
    if unknown:
        kind = f"a {task_type} model" if task_type in SCORED_METRICS else "a model"
        raise ConfigurationError(f"The gate names {unknown}, which {kind} is not scored on; use {list(known)}.")


def evaluate_gate(
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    thresholds: dict[str, dict[str, Any]],
    *,
    champion_version: str | None = None,
    explanations: dict[str, str] | None = None,
) -> GateDecision:
    """Decide on metrics both models got on the same evaluation data.

    Value thresholds (``min``/``max``) always apply. Change thresholds compare with the champion
    (``min_absolute_change``: challenger must beat it by at least this much; ``min_relative_change``: by this
    fraction of the champion's value), in the metric's better direction (``greater_is_better``, inferred from
    the name: rmse, mae, mse, log_loss... are better lower). With no champion (cold start) they are skipped.

    ``explanations`` (metric -> text, from the challenger's group report) say which groups and numbers are
    behind a ``slice.``/``fairness.`` metric; a failed check on one names them in its reason.
    """
    validate_thresholds(thresholds)
    explanations = explanations or {}
    checks: list[GateCheck] = []
    for metric, rules in thresholds.items():
        if metric not in challenger and is_group_metric(metric):
            measured = sorted(m for m in challenger if m.startswith(metric.rsplit(".", 1)[0] + "."))
            raise ConfigurationError(
                f"The gate names {metric!r}, which the challenger was not scored on on this data: the group may "
                "be absent from the evaluation rows or too small to measure, roc_auc may be undefined in it, or "
                f"the parity metrics may need a binary target. Metrics of that kind it has: {measured or 'none'}; "
                "see slices.json / fairness.json of its training run."
            )
        if metric not in challenger:
            raise ConfigurationError(
                f"The gate names metric {metric!r} but the challenger was scored on {sorted(challenger)}; "
                "use one of those names."
            )
        value = float(challenger[metric])
        higher = bool(rules.get("greater_is_better", greater_is_better(metric)))
        if "min" in rules:
            checks.append(GateCheck(metric, "min", float(rules["min"]), value, value >= rules["min"]))
        if "max" in rules:
            checks.append(GateCheck(metric, "max", float(rules["max"]), value, value <= rules["max"]))
        for kind in ("min_absolute_change", "min_relative_change"):
            if kind not in rules:
                continue
            required = float(rules[kind])
            if champion is None:
                checks.append(GateCheck(metric, kind, required, None, True, "(skipped: no champion)"))
                continue
            if metric not in champion:
                raise ConfigurationError(
                    f"The gate names metric {metric!r} but the champion was scored on {sorted(champion)}; "
                    "use a metric both models report."
                )
            reference = float(champion[metric])
            improvement = value - reference if higher else reference - value
            if kind == "min_relative_change":
                if reference:
                    improvement = improvement / abs(reference)
                elif improvement:  # against a champion of exactly 0, any gain or loss is infinitely large
                    improvement = math.copysign(math.inf, improvement)
            direction = "higher" if higher else "lower"
            checks.append(
                GateCheck(
                    metric,
                    kind,
                    required,
                    improvement,
                    improvement >= required,
                    f"(champion {reference:.6g}, challenger {value:.6g}, {direction} is better)",
                )
            )
    reasons = [_reason(c, explanations.get(c.metric)) for c in checks if not c.passed]
    return GateDecision(
        promote=not reasons,
        checks=checks,
        challenger_metrics=dict(challenger),
        champion_metrics=dict(champion) if champion is not None else None,
        champion_version=champion_version,
        cold_start=champion is None,
        reasons=reasons,
    )


def _number(value: float) -> str:
    return f"{value:.2f}" if 0.01 <= abs(value) < 1000 or value == 0 else f"{value:.3g}"


def _reason(check: GateCheck, explanation: str | None) -> str:
    actual = "n/a" if check.actual is None else f"{check.actual:.6g}"
    if explanation is None:
        return f"{check.metric} {check.kind} {check.required:g} not met ({actual})"
    if check.kind in VALUE_KEYS and check.actual is not None:
        sign = "<" if check.kind == "min" else ">"
        return f"{check.metric} = {_number(check.actual)} {sign} {check.kind} {_number(check.required)}: {explanation}"
    return f"{check.metric} {check.kind} {check.required:g} not met ({actual}) {check.note}: {explanation}"
