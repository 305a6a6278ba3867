"""The canary statistics (``statistics/unpaired.py``): the unpaired comparison of two versions' estimates and the
two-proportion test of error rates, with their false-positive rates and power measured on simulated traffic
with fixed seeds.

Measured at the seeds used here (a rate over 4,000 trials is known to about +-0.7 points, over 1,000 to +-1.4):

* accuracy, canary 400 rows vs champion 3,600, equally good (0.80): "promote" in 5.3% at significance 0.05, and
  the reverse test ("the canary is worse") in 4.8%: the false-positive rate matches the level;
* a canary 8 points better: promoted in 99.2%, 8 points worse: never (a canary 3 points better, at another seed:
  44%: the canary's 400 rows are the limit);
* rmse, equally good models (normal errors, sd 1), 2,000 trials: 6.2% (the squared errors' variance is estimated
  from their heavier tail; the test allows up to 7%);
* error rates, both 1% over 1,000 and 9,000 requests: "higher" in 2.2% (Agresti-Caffo is conservative with rare
  events); 3% vs 1%: 99.6%.
"""

from __future__ import annotations

import numpy as np
import pytest

from mlops_provider.core.errors import ConfigurationError
from mlops_provider.core.performance.statistics import (
    MetricEstimate,
    compare_estimates,
    compare_proportions,
    estimate_metric,
)

TRIALS = 4000


def accuracy_estimates(rng, p_canary, p_champion, n_canary=400, n_champion=3600):
    """Estimates of accuracy of the canary and the champion, each right with its probability, row by row."""
    canary = (rng.random(n_canary) < p_canary).astype(np.int64)
    champion = (rng.random(n_champion) < p_champion).astype(np.int64)
    return (
        estimate_metric("accuracy", np.ones(n_canary, dtype=np.int64), y_pred=canary),
        estimate_metric("accuracy", np.ones(n_champion, dtype=np.int64), y_pred=champion),
    )


def rate(outcomes, value="promote"):
    return sum(o == value for o in outcomes) / len(outcomes)


def test_equal_versions_are_called_better_or_worse_at_the_stated_level():
    rng = np.random.default_rng(7)
    better, worse = [], []
    for _ in range(TRIALS):
        canary, champion = accuracy_estimates(rng, 0.8, 0.8)
        better.append(compare_estimates(canary, champion, significance=0.05).outcome)
        worse.append(compare_estimates(champion, canary, significance=0.05).outcome)
    assert 0.04 <= rate(better) <= 0.065, rate(better)
    assert 0.04 <= rate(worse) <= 0.065, rate(worse)
    assert "wait" not in better


def test_a_better_canary_is_found_and_a_worse_one_never_promoted():
    rng = np.random.default_rng(8)
    much = [compare_estimates(*accuracy_estimates(rng, 0.88, 0.8)).outcome for _ in range(1000)]
    worse = [compare_estimates(*accuracy_estimates(rng, 0.72, 0.8)).outcome for _ in range(1000)]
    assert rate(much) >= 0.97, rate(much)
    assert rate(worse) == 0.0


def test_lower_is_better_metrics_are_oriented_and_equal_rmse_has_the_stated_level():
    rng = np.random.default_rng(9)
    outcomes = []
    for _ in range(2000):
        truth_a, truth_b = rng.normal(size=400), rng.normal(size=3600)
        canary = estimate_metric("rmse", truth_a, y_pred=truth_a + rng.normal(size=400))
        champion = estimate_metric("rmse", truth_b, y_pred=truth_b + rng.normal(size=3600))
        outcomes.append(compare_estimates(canary, champion).outcome)
    assert 0.035 <= rate(outcomes) <= 0.07, rate(outcomes)
    truth = rng.normal(size=2000)
    smaller = estimate_metric("rmse", truth, y_pred=truth + 0.5 * rng.normal(size=2000))
    larger = estimate_metric("rmse", truth, y_pred=truth + rng.normal(size=2000))
    decision = compare_estimates(smaller, larger)
    assert decision.outcome == "promote" and decision.improvement > 0.4  # lower rmse is the improvement
    assert "lower is better" in decision.reason


def test_min_improvement_and_min_rows_have_the_paired_semantics():
    canary = MetricEstimate("accuracy", 0.85, 0.83, 0.87, 1000, 0.95, "wilson", 0.011)
    champion = MetricEstimate("accuracy", 0.80, 0.79, 0.81, 9000, 0.95, "wilson", 0.004)
    assert compare_estimates(canary, champion).outcome == "promote"
    assert compare_estimates(canary, champion, min_improvement=0.06).outcome == "reject"
    assert compare_estimates(champion, canary, min_improvement=-0.1).outcome == "promote"  # a tolerance
    waiting = compare_estimates(canary, champion, min_rows=2000)
    assert waiting.outcome == "wait" and "at least 2,000 labelled rows of each version" in waiting.reason
    data = waiting.to_dict()
    assert data["challenger_rows"] == 1000 and data["champion_rows"] == 9000 and data["test"] == "unpaired z-test"


def test_error_rates_two_proportion_test():
    rng = np.random.default_rng(10)
    same = [compare_proportions(rng.binomial(1000, 0.01), 1000, rng.binomial(9000, 0.01), 9000).higher
            for _ in range(TRIALS)]  # fmt: skip
    assert 0.01 <= np.mean(same) <= 0.06, np.mean(same)
    more = [compare_proportions(rng.binomial(1000, 0.03), 1000, rng.binomial(9000, 0.01), 9000).higher
            for _ in range(1000)]  # fmt: skip
    assert np.mean(more) >= 0.9, np.mean(more)
    none = compare_proportions(0, 500, 0, 5000)
    assert not none.higher and np.isfinite(none.z)  # no error anywhere: a finite z, never a division by zero
    tolerated = compare_proportions(40, 1000, 10, 1000, max_increase=0.05)
    assert not tolerated.higher and tolerated.increase == pytest.approx(0.03)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: compare_estimates(0.8, 0.7), "challenger must be a MetricEstimate"),
        (lambda: compare_estimates(MetricEstimate("accuracy", .8, .7, .9, 100, .95, "wilson"),
                                   MetricEstimate("rmse", 1, .9, 1.1, 100, .95, "clt")), "same metric"),
        (lambda: compare_estimates(MetricEstimate("accuracy", .8, .7, .9, 100, .95, "wilson"),
                                   MetricEstimate("accuracy", .8, .7, .9, 100, .95, "wilson"), significance=0.6),
         "significance=0.6"),
        (lambda: compare_proportions(5, 3, 1, 10), "exceeds its total"),
        (lambda: compare_proportions(-1, 3, 1, 10), "count_a=-1"),
        (lambda: compare_proportions(1, 3, 1, 10, max_increase=1.5), "max_increase=1.5"),
    ],
)  # fmt: skip
def test_bad_inputs_name_the_fix(call, match):
    with pytest.raises(ConfigurationError, match=match):
        call()
