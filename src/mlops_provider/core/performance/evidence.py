"""Promotion on live evidence: the paired shadow comparison a challenger collected, added up over windows.

``EvaluateLivePerformanceOperator`` leaves one tag per window on each shadow version
(``mlops.live_evidence.<start>-<end>``: the per-row sums of challenger-minus-champion scores on the labelled ids
both versions scored). The gate's ``live_evidence`` settings add up the windows recorded against the current
champion and decide with ``statistics.compare_paired``: promote when the challenger is better by more than
``min_improvement`` at the stated significance, reject when it is not, wait while the rows or windows are
fewer than required.
"""

from __future__ import annotations

import json
from typing import Any

from mlops_provider.core import tags
from mlops_provider.core.errors import ConfigurationError

SETTINGS = {"metric", "min_rows", "min_windows", "min_improvement", "significance"}
DEFAULTS: dict[str, Any] = {"metric": "accuracy", "min_rows": 1000, "min_windows": 1, "min_improvement": 0.0,
                            "significance": 0.05}  # fmt: skip


def check_live_evidence(settings: Any) -> dict[str, Any] | None:
    """The gate's ``live_evidence`` argument with its defaults filled in; None when it is not set."""
    from mlops_provider.core.performance.statistics import PAIRED_METRICS

    if settings is None or settings == {}:
        return None
    if not isinstance(settings, dict):
        raise ConfigurationError(
            f"live_evidence={settings!r} is not a dict; give e.g. "
            '{"metric": "accuracy", "min_rows": 5000, "min_windows": 3, "min_improvement": 0.0}.'
        )
    unknown = sorted(set(settings) - SETTINGS)
    if unknown:
        raise ConfigurationError(f"live_evidence has unknown keys {unknown}; use {sorted(SETTINGS)}.")
    merged = {**DEFAULTS, **settings}
    if merged["metric"] not in PAIRED_METRICS:
        raise ConfigurationError(
            f"live_evidence metric {merged['metric']!r} cannot be compared row by row; use one of "
            f"{list(PAIRED_METRICS)}."
        )
    for key in ("min_rows", "min_windows"):
        value = merged[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(f"live_evidence[{key!r}]={value!r} must be a whole number >= 1.")
    for key, low, high in (("min_improvement", -1e9, 1e9), ("significance", 0.0, 0.5)):
        value = merged[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value < high:
            raise ConfigurationError(f"live_evidence[{key!r}]={value!r} must be a number in ({low:g}, {high:g}).")
    return merged


def collected_evidence(version_tags: dict[str, str], champion_version: str, metric: str) -> Any:
    """The challenger's evidence against ``champion_version`` on ``metric``, summed over its windows; None
    when it has none."""
    from mlops_provider.core.performance.statistics import PairedEvidence

    total = None
    for key, value in sorted(version_tags.items()):
        if not key.startswith(tags.LIVE_EVIDENCE_PREFIX):
            continue
        record = json.loads(value)
        if str(record.get("champion_version")) != str(champion_version) or metric not in record.get("evidence", {}):
            continue
        evidence = PairedEvidence.from_dict(record["evidence"][metric])
        total = evidence if total is None else total + evidence
    return total


def decide_on_live_evidence(version_tags: dict[str, str], champion_version: str, settings: dict[str, Any]) -> dict:
    """``{"outcome": "promote" | "reject" | "wait", "reason": ..., ...numbers}`` for the gate."""
    from mlops_provider.core.performance.statistics import compare_paired

    evidence = collected_evidence(version_tags, champion_version, settings["metric"])
    if evidence is None:
        return {
            "outcome": "wait",
            "reason": (
                f"live evidence: no shadow comparison with champion v{champion_version} on {settings['metric']} yet "
                f"(need {settings['min_rows']} labelled rows over {settings['min_windows']} window(s)); score this "
                "version in shadow (BatchPredictOperator(shadow_aliases=...)) and run "
                "EvaluateLivePerformanceOperator"
            ),
            "rows": 0,
            "windows": 0,
        }
    decision = compare_paired(
        evidence,
        min_improvement=float(settings["min_improvement"]),
        significance=float(settings["significance"]),
        min_rows=int(settings["min_rows"]),
        min_windows=int(settings["min_windows"]),
    )
    return {**decision.to_dict(), "reason": f"live evidence against champion v{champion_version}: {decision.reason}"}
