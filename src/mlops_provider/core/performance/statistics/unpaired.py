"""Two versions that answered *different* requests (a canary): ``compare_estimates`` of their metric estimates, and
``compare_proportions`` of two rates (e.g. error rates).

A canary answers a share of the traffic and the champion the rest, so no row is scored by both: the pairing of
``compare_paired`` is not available. What is left is each version's estimate of the metric on its own rows
(``estimate_metric``: value and standard error). The improvement (challenger minus champion, oriented so that
higher is better: for log_loss, rmse and mae it is champion minus challenger) has the standard error
sqrt(se_challenger^2 + se_champion^2), the two samples being independent. The decision is the one-sided z-test of
``compare_paired`` with the same words: "promote" when the improvement exceeds ``min_improvement`` with
p < ``significance``, "reject" otherwise, "wait" while either side has fewer than ``min_rows`` rows. A negative
``min_improvement`` is a tolerance (non-inferiority: "not worse by more than |min_improvement|").

It needs more rows than the paired test for the same difference (the shared difficulty of the rows is not
removed), and the canary's share sets how fast it gets them. Measured in tests/unit/test_rollout_statistics.py
with fixed seeds: two equally good classifiers (accuracy 0.80) on 400 canary rows vs 3,600 champion rows, 4,000
trials: "promote" in 5.3% at significance 0.05 and the reverse test in 4.8% (the false-positive rate matches the
level); a canary 8 points better is promoted in 99.2%, 8 points worse never. Equal regressors (rmse): 6.2%.

``compare_proportions``: is rate A higher than rate B by more than ``max_increase``? One-sided z-test on the
difference of two independent proportions, each with Agresti-Caffo's "one success and one failure added"
standard error (never zero, also with no error at all on either side).
"""

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
    _improvement_test,
    _improvement_verdict,
    _round,
    _upper_tail,
)
from mlops_provider.core.performance.statistics.estimates import MetricEstimate

UNPAIRED_Z = "unpaired z-test"
TWO_PROPORTION_Z = "two-proportion z-test"


@dataclass(frozen=True)
class UnpairedDecision:
    """promote | reject | wait, with the improvement (challenger minus champion, higher is better), its two-sided
    (1 - 2*significance) interval, the one-sided p-value of "improvement > min_improvement" and both row counts."""

    outcome: str
    metric: str
    improvement: float
    low: float
    high: float
    z: float
    p_value: float
    challenger_rows: int
    champion_rows: int
    min_improvement: float
    significance: float
    reason: str
    test: str = UNPAIRED_Z

    @property
    def rows(self) -> int:
        return self.challenger_rows + self.champion_rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "test": self.test,
            "metric": self.metric,
            "improvement": _round(self.improvement),
            "low": _round(self.low),
            "high": _round(self.high),
            "z": _round(self.z),
            "p_value": _round(self.p_value),
            "rows": int(self.rows),
            "challenger_rows": int(self.challenger_rows),
            "champion_rows": int(self.champion_rows),
            "min_improvement": float(self.min_improvement),
            "significance": float(self.significance),
            "reason": self.reason,
        }


def _check_rows_setting(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 2:
        raise ConfigurationError(f"{name}={value!r} must be a whole number >= 2 (a standard error needs two rows).")


def compare_estimates(
    challenger: MetricEstimate,
    champion: MetricEstimate,
    *,
    min_improvement: float = 0.0,
    significance: float = 0.05,
    min_rows: int = 200,
) -> UnpairedDecision:
    """Promote the challenger when its estimate beats the champion's by more than ``min_improvement`` at
    ``significance`` (one-sided z-test on the difference of two independent estimates); wait while either has
    fewer than ``min_rows`` rows; reject otherwise (module docstring)."""
    for name, value in (("challenger", challenger), ("champion", champion)):
        if not isinstance(value, MetricEstimate):
            raise ConfigurationError(
                f"{name} must be a MetricEstimate (from estimate_metric), got {type(value).__name__}."
            )
    if challenger.metric != champion.metric:
        raise ConfigurationError(
            f"Cannot compare {challenger.metric} of the challenger with {champion.metric} of the champion; estimate "
            "the same metric on both."
        )
    _check_number("min_improvement", min_improvement)
    _check_fraction("significance", significance, "e.g. 0.05", high=0.5)
    _check_rows_setting("min_rows", min_rows)
    metric = challenger.metric
    sign = 1.0 if challenger.greater_is_better else -1.0
    improvement = sign * (challenger.value - champion.value)
    se = math.sqrt(challenger.se**2 + champion.se**2)
    z, p_value, low, high = _improvement_test(improvement, se, min_improvement, significance)
    level = f"{(1 - 2 * significance) * 100:g}%"
    direction = "higher" if sign > 0 else "lower"
    seen = (
        f"{metric} {_fmt(challenger.value)} on {challenger.rows:,} challenger rows vs {_fmt(champion.value)} on "
        f"{champion.rows:,} champion rows ({direction} is better)"
    )
    if min(challenger.rows, champion.rows) < min_rows:
        outcome = "wait"
        reason = f"wait: {seen}; the decision needs at least {min_rows:,} labelled rows of each version."
    else:
        numbers_ = (
            f"{seen}: improvement {_fmt(improvement)}, {level} interval {_fmt(low)} to {_fmt(high)}, "
            f"{UNPAIRED_Z} z = {z:.2f}, one-sided p {_fmt_p(p_value)}"
        )
        outcome, reason = _improvement_verdict(p_value, significance, min_improvement, numbers_)
    return UnpairedDecision(
        outcome=outcome,
        metric=metric,
        improvement=improvement,
        low=low,
        high=high,
        z=z,
        p_value=p_value,
        challenger_rows=int(challenger.rows),
        champion_rows=int(champion.rows),
        min_improvement=float(min_improvement),
        significance=float(significance),
        reason=reason,
    )


@dataclass(frozen=True)
class ProportionTest:
    """Is rate A above rate B by more than ``max_increase``? (one-sided two-proportion z-test)"""

    higher: bool
    rate_a: float
    rate_b: float
    count_a: int
    total_a: int
    count_b: int
    total_b: int
    increase: float
    z: float
    p_value: float
    max_increase: float
    significance: float
    test: str = TWO_PROPORTION_Z

    def to_dict(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "higher": bool(self.higher),
            "rate_a": _round(self.rate_a),
            "rate_b": _round(self.rate_b),
            "count_a": int(self.count_a),
            "total_a": int(self.total_a),
            "count_b": int(self.count_b),
            "total_b": int(self.total_b),
            "increase": _round(self.increase),
            "z": _round(self.z),
            "p_value": _round(self.p_value),
            "max_increase": float(self.max_increase),
            "significance": float(self.significance),
        }


def compare_proportions(
    count_a: int, total_a: int, count_b: int, total_b: int, *, max_increase: float = 0.0, significance: float = 0.05
) -> ProportionTest:
    """Whether ``count_a / total_a`` exceeds ``count_b / total_b`` by more than ``max_increase`` at ``significance``
    (module docstring)."""
    for name, value in (("count_a", count_a), ("total_a", total_a), ("count_b", count_b), ("total_b", total_b)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ConfigurationError(f"{name}={value!r} must be a whole number >= 0 (a count).")
    if count_a > total_a or count_b > total_b:
        raise ConfigurationError(
            f"A count exceeds its total ({count_a}/{total_a}, {count_b}/{total_b}); give events and their trials."
        )
    _check_number("max_increase", max_increase)
    if not 0 <= max_increase < 1:
        raise ConfigurationError(f"max_increase={max_increase!r} must be in [0, 1): a difference of two rates.")
    _check_fraction("significance", significance, "e.g. 0.05", high=0.5)
    rate_a = count_a / total_a if total_a else 0.0
    rate_b = count_b / total_b if total_b else 0.0
    adjusted_a = (count_a + 1) / (total_a + 2)
    adjusted_b = (count_b + 1) / (total_b + 2)
    se = math.sqrt(adjusted_a * (1 - adjusted_a) / (total_a + 2) + adjusted_b * (1 - adjusted_b) / (total_b + 2))
    increase = rate_a - rate_b
    z = (increase - max_increase) / se
    p_value = _upper_tail(z)
    return ProportionTest(
        higher=bool(p_value < significance and increase > max_increase),
        rate_a=rate_a,
        rate_b=rate_b,
        count_a=int(count_a),
        total_a=int(total_a),
        count_b=int(count_b),
        total_b=int(total_b),
        increase=increase,
        z=z,
        p_value=p_value,
        max_increase=float(max_increase),
        significance=float(significance),
    )
