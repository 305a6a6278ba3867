"""What the models achieved on one window of labelled predictions, and what kind of change that is.

``evaluate_window`` takes the prediction log joined with the labels (``labels.join_labels``: one row per labelled
id and model version) and returns, per version, the live metrics with their confidence intervals; for the
champion, whether the primary metric dropped below its training holdout with statistical support
(``statistics.degradation_test``) and whether a threshold is breached beyond doubt; for each shadow version,
the paired evidence against the champion on the ids both scored (summed over windows by the gate); and the
kind of change, combining the verdict with the input drift of the same window when it is known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from mlops_provider.core.errors import ConfigurationError
from mlops_provider.core.performance import DEFAULT_LIVE_METRIC
from mlops_provider.core.performance import statistics as stats

CLASSIFICATION_METRICS = ("accuracy", "f1_macro", "roc_auc", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2")
PROBABILITY_METRICS = ("roc_auc", "log_loss", "brier")
PROBABILITY_PREFIX = "probability_"

STABLE = "stable"
DEGRADED = "degraded"
INSUFFICIENT = "insufficient_evidence"

KIND_DROP_WITH_DRIFT = "performance drop with input drift"
KIND_CONCEPT_DRIFT = "performance drop without input drift (concept drift)"
KIND_DROP_DRIFT_UNKNOWN = "performance drop (input drift not assessed)"
KIND_DRIFT_ONLY = "input drift without performance drop"
KIND_STABLE = "stable"
KIND_INSUFFICIENT = "insufficient evidence"


@dataclass(frozen=True)
class Baseline:
    """A version's holdout metrics from training, and how many rows they were measured on."""

    metrics: dict[str, float]
    rows: int | None


@dataclass
class VersionPerformance:
    version: str
    role: str
    rows: int
    metrics: dict[str, stats.MetricEstimate] = field(default_factory=dict)
    baseline: Baseline | None = None
    degradation: stats.DegradationResult | None = None
    breaches: list[str] = field(default_factory=list)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "role": self.role,
            "rows": self.rows,
            "metrics": {name: estimate.to_dict() for name, estimate in self.metrics.items()},
            "baseline": dict(self.baseline.metrics) if self.baseline else {},
            "baseline_rows": self.baseline.rows if self.baseline else None,
            "degradation": self.degradation.to_dict() if self.degradation else None,
            "breaches": list(self.breaches),
            "note": self.note,
        }


@dataclass
class LivePerformanceResult:
    model_name: str
    window_start: datetime
    window_end: datetime
    primary_metric: str
    champion_version: str | None
    labelled_rows: int
    versions: dict[str, VersionPerformance]
    paired: dict[str, dict[str, stats.PairedEvidence]]
    input_drift: bool | None
    outcome: str
    kind: str
    statement: str

    @property
    def degraded(self) -> bool:
        return self.outcome == DEGRADED

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "primary_metric": self.primary_metric,
            "champion_version": self.champion_version,
            "labelled_rows": self.labelled_rows,
            "outcome": self.outcome,
            "degraded": self.degraded,
            "kind": self.kind,
            "input_drift": self.input_drift,
            "statement": self.statement,
            "versions": {version: perf.to_dict() for version, perf in self.versions.items()},
            "shadow_evidence": {
                version: {metric: evidence.to_dict() for metric, evidence in by_metric.items()}
                for version, by_metric in self.paired.items()
            },
        }


def probability_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith(PROBABILITY_PREFIX)]


def live_metrics(task_type: str, has_probabilities: bool, classes: int) -> list[str]:
    if task_type == "regression":
        return list(REGRESSION_METRICS)
    names = ["accuracy", "f1_macro"]
    if has_probabilities:
        names += ["roc_auc", "log_loss"]
    return names


def default_primary_metric(task_type: str) -> str:
    """Accuracy for classifiers (a binomial proportion: the exact and most readable interval), RMSE for
    regressors; pass ``primary_metric`` to judge on another."""
    return DEFAULT_LIVE_METRIC["regression" if task_type == "regression" else "classification"]


def check_metric(metric: str, task_type: str) -> str:
    allowed = REGRESSION_METRICS if task_type == "regression" else CLASSIFICATION_METRICS
    if metric not in allowed:
        raise ConfigurationError(
            f"primary_metric={metric!r} is not a live metric of a {task_type} model; use one of {list(allowed)}."
        )
    return metric


def _inputs(rows: pd.DataFrame, task_type: str) -> dict[str, Any]:
    """``estimate_metric`` / ``PairedEvidence.from_rows`` arguments from joined rows of one version."""
    y_true = rows["label"].to_numpy()
    if task_type == "regression":
        return {"y_true": y_true.astype(float), "y_pred": rows["prediction"].to_numpy(dtype=float)}
    columns = probability_columns(rows)
    inputs: dict[str, Any] = {"y_true": y_true, "y_pred": rows["prediction"].to_numpy()}
    if columns and rows[columns].notna().all().all():
        inputs["proba"] = rows[columns].to_numpy(dtype=float)
        inputs["classes"] = [_class_value(c.removeprefix(PROBABILITY_PREFIX), y_true) for c in columns]
    return inputs


def _class_value(text: str, labels: np.ndarray) -> Any:
    """A probability column's class in the labels' type (``probability_1`` -> 1 for integer labels)."""
    if labels.dtype.kind in "iu":
        return int(text)
    if labels.dtype.kind == "b":
        return text == "True"
    if labels.dtype.kind == "f":
        return float(text)
    return text


def _estimates(rows: pd.DataFrame, task_type: str, metrics: list[str], confidence: float) -> tuple[dict, str]:
    inputs = _inputs(rows, task_type)
    estimates: dict[str, stats.MetricEstimate] = {}
    skipped = []
    for metric in metrics:
        if metric in PROBABILITY_METRICS and "proba" not in inputs:
            skipped.append(f"{metric} (no probabilities logged)")
            continue
        try:
            estimates[metric] = stats.estimate_metric(
                metric,
                inputs["y_true"],
                y_pred=inputs.get("y_pred"),
                proba=inputs.get("proba"),
                classes=inputs.get("classes"),
                confidence=confidence,
            )
        except stats.InsufficientEvidenceError as error:
            skipped.append(f"{metric} ({error})")
    return estimates, ("not computed: " + "; ".join(skipped)) if skipped else ""


def paired_evidence(champion: pd.DataFrame, shadow: pd.DataFrame, id_columns: list[str], task_type: str) -> dict:
    """Challenger-minus-champion evidence per paired metric on the ids both versions scored."""
    # The merge carries the ids and row numbers only; each side's rows are then taken once, in pair order.
    left = pd.DataFrame({c: champion[c].to_numpy() for c in id_columns})
    left["__champion"] = np.arange(len(champion))
    right = pd.DataFrame({c: shadow[c].to_numpy() for c in id_columns})
    right["__shadow"] = np.arange(len(shadow))
    pairs = left.merge(right, on=id_columns)
    if pairs.empty:
        return {}
    champion_rows = champion.iloc[pairs["__champion"].to_numpy()]
    shadow_rows = shadow.iloc[pairs["__shadow"].to_numpy()]
    champion_inputs, shadow_inputs = _inputs(champion_rows, task_type), _inputs(shadow_rows, task_type)
    if task_type == "regression":
        names = ["rmse", "mae"]
    else:
        names = ["accuracy"] + (
            ["log_loss", "brier"] if "proba" in champion_inputs and "proba" in shadow_inputs else []
        )
    evidence = {}
    for metric in names:
        evidence[metric] = stats.PairedEvidence.from_rows(
            metric,
            champion_inputs["y_true"],
            champion_pred=champion_inputs.get("y_pred"),
            challenger_pred=shadow_inputs.get("y_pred"),
            champion_proba=champion_inputs.get("proba"),
            challenger_proba=shadow_inputs.get("proba"),
            classes=champion_inputs.get("classes"),
        )
    return evidence


def evaluate_window(
    joined: pd.DataFrame,
    *,
    model_name: str,
    window_start: datetime,
    window_end: datetime,
    task_type: str,
    id_columns: list[str],
    champion_version: str | None,
    baselines: dict[str, Baseline],
    primary_metric: str | None = None,
    thresholds: dict[str, dict[str, Any]] | None = None,
    significance: float = 0.01,
    min_drop: float = 0.0,
    min_rows: int = 200,
    confidence: float = 0.95,
    input_drift: bool | None = None,
) -> LivePerformanceResult:
    """Judge one window; ``joined`` holds one row per labelled id and version (``labels.join_labels``)."""
    primary = check_metric(primary_metric or default_primary_metric(task_type), task_type)
    thresholds = thresholds or {}
    for metric in thresholds:
        check_metric(metric, task_type)
    has_probabilities = bool(probability_columns(joined))
    metrics = live_metrics(task_type, has_probabilities, joined["label"].nunique())
    if primary not in metrics:
        metrics.append(primary)

    served = joined[joined["role"] == "served"]
    if champion_version is None or champion_version not in set(served["model_version"]):
        counts = served["model_version"].value_counts()
        champion_version = str(counts.index[0]) if len(counts) else champion_version
    versions: dict[str, VersionPerformance] = {}
    frames: dict[str, pd.DataFrame] = {}
    for (version, role), rows in joined.groupby(["model_version", "role"], sort=True):
        version = str(version)
        if role == "served" and version != champion_version:
            role = "served (earlier champion)"
        frames[version] = rows
        perf = VersionPerformance(version=version, role=str(role), rows=len(rows), baseline=baselines.get(version))
        perf.metrics, perf.note = _estimates(rows, task_type, metrics, confidence)
        versions[version] = perf

    champion = versions.get(champion_version or "")
    outcome, reasons = INSUFFICIENT, []
    if champion is None:
        reasons.append(f"no labelled prediction of the champion (version {champion_version}) in the window")
    elif champion.rows < min_rows or primary not in champion.metrics:
        reasons.append(f"{champion.rows} labelled rows of version {champion.version}, fewer than min_rows={min_rows}")
    elif not (champion.baseline and primary in champion.baseline.metrics) and not thresholds:
        reasons.append(
            f"version {champion.version} has no training holdout value of {primary} to compare with and no "
            "thresholds are given: nothing to judge the live value against (give thresholds)"
        )
    else:
        live = champion.metrics[primary]
        if champion.baseline and primary in champion.baseline.metrics:
            champion.degradation = stats.degradation_test(
                live,
                baseline=champion.baseline.metrics[primary],
                baseline_rows=champion.baseline.rows,
                significance=significance,
                min_drop=min_drop,
            )
        for metric, rules in thresholds.items():
            if metric in champion.metrics:
                champion.breaches += stats.threshold_breaches(
                    champion.metrics[metric], rules, significance=significance
                )
            else:
                reasons.append(f"the threshold on {metric} is not checked: {metric} was not computed ({champion.note})")
        dropped = bool(champion.degradation and champion.degradation.degraded)
        outcome = DEGRADED if dropped or champion.breaches else STABLE

    paired: dict[str, dict[str, stats.PairedEvidence]] = {}
    if champion is not None:
        for version, perf in versions.items():
            if perf.role == "shadow":
                evidence = paired_evidence(frames[champion.version], frames[version], id_columns, task_type)
                if evidence:
                    paired[version] = evidence

    kind = change_kind(outcome, input_drift)
    result = LivePerformanceResult(
        model_name=model_name,
        window_start=window_start,
        window_end=window_end,
        primary_metric=primary,
        champion_version=champion.version if champion else champion_version,
        labelled_rows=int(joined.drop_duplicates(id_columns).shape[0]) if len(joined) else 0,
        versions=versions,
        paired=paired,
        input_drift=input_drift,
        outcome=outcome,
        kind=kind,
        statement="",
    )
    result.statement = decision_statement(result, reasons, significance)
    return result


def change_kind(outcome: str, input_drift: bool | None) -> str:
    if outcome == INSUFFICIENT:
        return KIND_INSUFFICIENT
    if outcome == DEGRADED:
        if input_drift is None:
            return KIND_DROP_DRIFT_UNKNOWN
        return KIND_DROP_WITH_DRIFT if input_drift else KIND_CONCEPT_DRIFT
    return KIND_DRIFT_ONLY if input_drift else KIND_STABLE


def _number(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def decision_statement(result: LivePerformanceResult, reasons: list[str], significance: float) -> str:
    """The decision in plain words, with the numbers behind it."""
    window = f"[{result.window_start.isoformat()}, {result.window_end.isoformat()})"
    if result.outcome == INSUFFICIENT:
        return (
            f"{result.model_name}: insufficient evidence for predictions made in {window}: "
            + "; ".join(reasons)
            + ". No verdict: wait for more labels (PerformanceSensor) or widen the window."
        )
    champion = result.versions[str(result.champion_version)]
    live = champion.metrics[result.primary_metric]
    parts = [
        f"{result.model_name} version {champion.version} (champion) on {champion.rows:,} labelled predictions made "
        f"in {window}: {result.primary_metric} {_number(live.value)} "
        f"({live.confidence:.0%} interval {_number(live.low)} to {_number(live.high)})"
    ]
    if champion.degradation is not None:
        d = champion.degradation
        rows = f" on {champion.baseline.rows:,} rows" if champion.baseline and champion.baseline.rows else ""
        verdict = "a drop beyond noise" if d.degraded else "no drop beyond noise"
        parts.append(
            f"against {_number(d.baseline)} on its training holdout{rows}: {verdict} "
            f"(drop {_number(d.drop)}, one-sided p={d.p_value:.2g}, level {significance})"
        )
    else:
        parts.append("(no holdout value of this metric to compare with)")
    text = " ".join(parts) + "."
    if champion.breaches:
        text += " Thresholds breached: " + " ".join(champion.breaches)
    if reasons:
        text += " Note: " + "; ".join(reasons) + "."
    drift = {None: "input drift was not assessed", True: "the inputs drifted", False: "the inputs did not drift"}
    text += f" In this window {drift[result.input_drift]}: {result.kind}."
    for version, evidence in result.paired.items():
        first = next(iter(evidence.values()))
        text += f" Shadow version {version} was scored on {first.rows:,} of the same labelled rows."
    return text
