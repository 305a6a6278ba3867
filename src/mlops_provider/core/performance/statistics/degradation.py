"""Degradation against the training holdout and threshold breaches: ``DegradationResult``, ``degradation_test`` and
``threshold_breaches``."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from mlops_provider.core.errors import ConfigurationError
from mlops_provider.core.performance.statistics.common import (
    _check_fraction,
    _check_number,
    _fmt,
    _fmt_p,
    _round,
    _upper_tail,
)
from mlops_provider.core.performance.statistics.estimates import (
    MetricEstimate,
    _proportion_se,
)

# --------------------------------------------------------------------------------------------- degradation


@dataclass(frozen=True)
class DegradationResult:
    """One-sided test of "live is worse than the holdout baseline by more than min_drop"; ``drop`` is in the
    metric's worse direction (positive: worse than the baseline)."""

    metric: str
    degraded: bool
    live: float
    baseline: float
    drop: float
    z: float
    p_value: float
    significance: float
    min_drop: float
    statement: str
    live_rows: int = 0
    baseline_rows: int | None = None
    standard_error: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "degraded": bool(self.degraded),
            "live": _round(self.live),
            "baseline": _round(self.baseline),
            "drop": _round(self.drop),
            "z": _round(self.z),
            "p_value": _round(self.p_value),
            "significance": float(self.significance),
            "min_drop": float(self.min_drop),
            "statement": self.statement,
            "live_rows": int(self.live_rows),
            "baseline_rows": self.baseline_rows,
            "standard_error": _round(self.standard_error),
        }


def degradation_test(
    live: MetricEstimate,
    *,
    baseline: float,
    baseline_rows: int | None,
    significance: float = 0.01,
    min_drop: float = 0.0,
) -> DegradationResult:
    """Is ``live`` worse than ``baseline`` (the training holdout's value, measured on ``baseline_rows`` rows;
    None: treat it as exact) by more than ``min_drop``? One-sided z-test at ``significance`` (module docstring)."""
    if not isinstance(live, MetricEstimate):
        raise ConfigurationError(f"live must be a MetricEstimate (from estimate_metric), got {type(live).__name__}.")
    _check_number("baseline", baseline)
    _check_fraction("significance", significance, "e.g. 0.01", high=0.5)
    _check_number("min_drop", min_drop)
    if min_drop < 0:
        raise ConfigurationError(f"min_drop={min_drop!r} must be >= 0: the drop (in {live.metric}) to ignore.")
    if baseline_rows is not None and (
        isinstance(baseline_rows, bool) or not isinstance(baseline_rows, numbers.Integral) or baseline_rows < 2
    ):
        raise ConfigurationError(
            f"baseline_rows={baseline_rows!r} must be the holdout's row count (a whole number >= 2), or None when "
            "unknown (the baseline is then taken as exact)."
        )
    higher = live.greater_is_better
    drop = (baseline - live.value) if higher else (live.value - baseline)
    se_live = live.se
    if baseline_rows is None:
        se_base = 0.0
    elif live.metric == "accuracy":
        se_base = _proportion_se(min(max(baseline, 0.0), 1.0), int(baseline_rows))
    else:
        se_base = se_live * math.sqrt(live.rows / baseline_rows)
    se = math.sqrt(se_live * se_live + se_base * se_base)
    excess = drop - min_drop
    if se > 0:
        z = excess / se
    else:
        z = math.copysign(math.inf, excess) if excess else 0.0
    p_value = _upper_tail(z)
    degraded = bool(p_value < significance and drop > min_drop)

    where = f"{baseline_rows:,}-row holdout" if baseline_rows is not None else "holdout, taken as exact"
    head = (
        f"{live.metric} {_fmt(live.value)} on {live.rows:,} labelled rows vs baseline {_fmt(baseline)} ({where}): "
        f"{_fmt(abs(drop))} {'worse' if drop > 0 else 'better' if drop < 0 else 'the same'}, z = {z:.2f}, one-sided "
        f"p {_fmt_p(p_value)}"
    )
    if degraded:
        tail = f"degraded (p < {significance:g} and the drop exceeds min_drop {min_drop:g})"
    elif drop <= min_drop:
        tail = f"not degraded (the drop does not exceed min_drop {min_drop:g})"
    else:
        tail = f"not degraded (a drop this size is within the noise at significance {significance:g})"
    return DegradationResult(
        metric=live.metric,
        degraded=degraded,
        live=live.value,
        baseline=float(baseline),
        drop=drop,
        z=z,
        p_value=p_value,
        significance=float(significance),
        min_drop=float(min_drop),
        statement=f"{head}; {tail}.",
        live_rows=int(live.rows),
        baseline_rows=None if baseline_rows is None else int(baseline_rows),
        standard_error=se,
    )


def threshold_breaches(live: MetricEstimate, rules: dict, *, significance: float = 0.01) -> list[str]:
    """Sentences for the bounds in ``rules`` (``{"min": 0.7}``, ``{"max": 0.3}``, or both) that ``live`` breaches
    beyond doubt: its whole one-sided interval at ``significance`` lies beyond the bound. Empty when none."""
    if not isinstance(live, MetricEstimate):
        raise ConfigurationError(f"live must be a MetricEstimate (from estimate_metric), got {type(live).__name__}.")
    _check_fraction("significance", significance, "e.g. 0.01", high=0.5)
    if not isinstance(rules, dict) or not rules:
        raise ConfigurationError(
            f"rules for {live.metric} must be a non-empty dict such as {{'min': 0.7}}; got {rules!r}."
        )
    unknown = sorted(set(rules) - {"min", "max"})
    if unknown:
        raise ConfigurationError(f"rules for {live.metric} have unknown keys {unknown}; use 'min' and/or 'max'.")
    for key, bound in rules.items():
        _check_number(f"rules[{key!r}] for {live.metric}", bound)
    low, high = live.interval(1 - 2 * significance)
    level = f"{(1 - significance) * 100:g}%"
    breaches = []
    if "min" in rules and high < rules["min"]:
        breaches.append(
            f"{live.metric} {_fmt(live.value)} on {live.rows:,} labelled rows is below the minimum {rules['min']:g}: "
            f"even its one-sided {level} upper bound {_fmt(high)} is under it."
        )
    if "max" in rules and low > rules["max"]:
        breaches.append(
            f"{live.metric} {_fmt(live.value)} on {live.rows:,} labelled rows is above the maximum {rules['max']:g}: "
            f"even its one-sided {level} lower bound {_fmt(low)} is over it."
        )
    return breaches
