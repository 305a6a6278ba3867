"""The gate decision as tables: ``evaluate_gate``, ``validate_thresholds``, ``primary_metric_gate``.

Every expected value was worked out by hand from the rules in ``core/registry.py``; the metric values are
chosen to be exact in binary floating point where a case sits on a boundary (0.75, 0.875, 0.125 ...), so
"equal to the threshold passes" is tested on an exact equality, not on a rounding accident.
Reasons read ``<metric> <kind> <required:g> not met (<actual:.6g>)``.
"""

from __future__ import annotations

import copy
import math

import pytest

from mlops_provider.core.errors import ConfigurationError
from mlops_provider.core.registry import evaluate_gate, primary_metric_gate, validate_thresholds

# (id, challenger, champion, thresholds, promote, reasons)
GATE_CASES = [
    # -- value thresholds: min / max, champion irrelevant -------------------------------------------------
    ("min-above", {"roc_auc": 0.75}, None, {"roc_auc": {"min": 0.7}}, True, []),
    ("min-equal-passes", {"roc_auc": 0.75}, None, {"roc_auc": {"min": 0.75}}, True, []),
    ("min-below", {"roc_auc": 0.69}, None, {"roc_auc": {"min": 0.7}}, False, ["roc_auc min 0.7 not met (0.69)"]),
    ("max-equal-passes", {"rmse": 10.0}, None, {"rmse": {"max": 10.0}}, True, []),
    ("max-above", {"rmse": 10.5}, None, {"rmse": {"max": 10}}, False, ["rmse max 10 not met (10.5)"]),
    (
        "min-and-max-band",
        {"accuracy": 1.0},
        None,
        {"accuracy": {"min": 0.5, "max": 0.99}},
        False,
        ["accuracy max 0.99 not met (1)"],
    ),
    ("value-thresholds-ignore-champion", {"roc_auc": 0.75}, {"roc_auc": 0.95}, {"roc_auc": {"min": 0.7}}, True, []),
    ("integer-metric-values", {"max_error": 3}, None, {"max_error": {"max": 3}}, True, []),
    # -- min_absolute_change, higher is better (roc_auc) ---------------------------------------------------
    (
        "abs-higher-better-improves",
        {"roc_auc": 0.875},
        {"roc_auc": 0.75},
        {"roc_auc": {"min_absolute_change": 0.1}},
        True,
        [],
    ),
    (
        "abs-higher-better-equal-passes",
        {"roc_auc": 0.875},
        {"roc_auc": 0.75},
        {"roc_auc": {"min_absolute_change": 0.125}},
        True,
        [],
    ),
    (
        "abs-higher-better-too-small",
        {"roc_auc": 0.8125},
        {"roc_auc": 0.75},
        {"roc_auc": {"min_absolute_change": 0.125}},
        False,
        ["roc_auc min_absolute_change 0.125 not met (0.0625)"],
    ),
    ("abs-zero-tie-passes", {"roc_auc": 0.8}, {"roc_auc": 0.8}, {"roc_auc": {"min_absolute_change": 0.0}}, True, []),
    (
        "abs-zero-worse-fails",
        {"roc_auc": 0.75},
        {"roc_auc": 0.875},
        {"roc_auc": {"min_absolute_change": 0}},
        False,
        ["roc_auc min_absolute_change 0 not met (-0.125)"],
    ),
    # -- min_absolute_change, lower is better (rmse, log_loss; name matched case-insensitively) ------------
    ("abs-lower-better-equal-passes", {"rmse": 9.5}, {"rmse": 10.0}, {"rmse": {"min_absolute_change": 0.5}}, True, []),
    (
        "abs-lower-better-too-small",
        {"rmse": 9.75},
        {"rmse": 10.0},
        {"rmse": {"min_absolute_change": 0.5}},
        False,
        ["rmse min_absolute_change 0.5 not met (0.25)"],
    ),
    (
        "abs-lower-better-higher-is-worse",
        {"rmse": 10.5},
        {"rmse": 10.0},
        {"rmse": {"min_absolute_change": 0}},
        False,
        ["rmse min_absolute_change 0 not met (-0.5)"],
    ),
    (
        "abs-lower-better-log-loss",
        {"log_loss": 0.25},
        {"log_loss": 0.5},
        {"log_loss": {"min_absolute_change": 0.25}},
        True,
        [],
    ),
    (
        "abs-lower-better-uppercase-name",
        {"RMSE": 9.0},
        {"RMSE": 10.0},
        {"RMSE": {"min_absolute_change": 1.0}},
        True,
        [],
    ),
    # -- min_relative_change: improvement / |champion| ----------------------------------------------------
    (
        "rel-higher-better-equal-passes",
        {"roc_auc": 0.625},
        {"roc_auc": 0.5},
        {"roc_auc": {"min_relative_change": 0.25}},
        True,
        [],
    ),
    (
        "rel-higher-better-too-small",
        {"roc_auc": 0.5625},
        {"roc_auc": 0.5},
        {"roc_auc": {"min_relative_change": 0.25}},
        False,
        ["roc_auc min_relative_change 0.25 not met (0.125)"],
    ),
    (
        "rel-lower-better-equal-passes",
        {"log_loss": 0.25},
        {"log_loss": 0.5},
        {"log_loss": {"min_relative_change": 0.5}},
        True,
        [],
    ),
    (
        "rel-lower-better-too-small",
        {"log_loss": 0.375},
        {"log_loss": 0.5},
        {"log_loss": {"min_relative_change": 0.5}},
        False,
        ["log_loss min_relative_change 0.5 not met (0.25)"],
    ),
    (
        "rel-lower-better-worse",
        {"rmse": 12.0},
        {"rmse": 8.0},
        {"rmse": {"min_relative_change": 0.0}},
        False,
        ["rmse min_relative_change 0 not met (-0.5)"],
    ),
    ("rel-negative-champion-uses-abs", {"r2": -0.25}, {"r2": -0.5}, {"r2": {"min_relative_change": 0.5}}, True, []),
    # -- relative change against a champion value of zero ------------------------------------------------
    (
        "rel-zero-champion-improves-is-infinite",
        {"roc_auc": 0.125},
        {"roc_auc": 0.0},
        {"roc_auc": {"min_relative_change": 1000.0}},
        True,
        [],
    ),
    (
        "rel-zero-champion-tie-is-zero",
        {"roc_auc": 0.0},
        {"roc_auc": 0.0},
        {"roc_auc": {"min_relative_change": 0.5}},
        False,
        ["roc_auc min_relative_change 0.5 not met (0)"],
    ),
    (
        "rel-zero-champion-tie-zero-required",
        {"mae": 0.0},
        {"mae": 0.0},
        {"mae": {"min_relative_change": 0.0}},
        True,
        [],
    ),
    # -- explicit greater_is_better overrides the name -----------------------------------------------------
    (
        "override-lower-on-unknown-name",
        {"cost": 3.0},
        {"cost": 4.0},
        {"cost": {"greater_is_better": False, "min_absolute_change": 1.0}},
        True,
        [],
    ),
    (
        "unknown-name-defaults-higher",
        {"cost": 3.0},
        {"cost": 4.0},
        {"cost": {"min_absolute_change": 1.0}},
        False,
        ["cost min_absolute_change 1 not met (-1)"],
    ),
    (
        "override-higher-on-rmse",
        {"rmse": 10.5},
        {"rmse": 10.0},
        {"rmse": {"greater_is_better": True, "min_absolute_change": 0.5}},
        True,
        [],
    ),
    (
        "override-higher-on-rmse-rejects-lower",
        {"rmse": 9.5},
        {"rmse": 10.0},
        {"rmse": {"greater_is_better": True, "min_absolute_change": 0.0}},
        False,
        ["rmse min_absolute_change 0 not met (-0.5)"],
    ),
    # -- cold start: no champion, change thresholds skipped (and pass), value thresholds still apply -------
    (
        "cold-start-change-only",
        {"roc_auc": 0.5},
        None,
        {"roc_auc": {"min_absolute_change": 0.25, "min_relative_change": 0.5}},
        True,
        [],
    ),
    (
        "cold-start-value-still-applies",
        {"roc_auc": 0.6},
        None,
        {"roc_auc": {"min": 0.7, "min_absolute_change": 0.05}},
        False,
        ["roc_auc min 0.7 not met (0.6)"],
    ),
    # -- several metrics and rules: every failure is listed, in threshold order ---------------------------
    (
        "two-metrics-both-fail",
        {"roc_auc": 0.8, "log_loss": 0.4},
        None,
        {"roc_auc": {"min": 0.9}, "log_loss": {"max": 0.3}},
        False,
        ["roc_auc min 0.9 not met (0.8)", "log_loss max 0.3 not met (0.4)"],
    ),
    (
        "value-passes-change-fails",
        {"rmse": 9.75, "mae": 1.0},
        {"rmse": 10.0, "mae": 2.0},
        {"rmse": {"max": 10.0, "min_absolute_change": 0.5}},
        False,
        ["rmse min_absolute_change 0.5 not met (0.25)"],
    ),
    (
        "unused-metrics-ignored",
        {"roc_auc": 0.875, "f1": 0.1},
        {"roc_auc": 0.75, "f1": 0.9},
        {"roc_auc": {"min_absolute_change": 0.125}},
        True,
        [],
    ),
]


@pytest.mark.parametrize(
    ("challenger", "champion", "thresholds", "promote", "reasons"),
    [pytest.param(*case[1:], id=case[0]) for case in GATE_CASES],
)
def test_gate_decision(challenger, champion, thresholds, promote, reasons):
    decision = evaluate_gate(challenger, champion, thresholds, champion_version=None if champion is None else "3")
    assert decision.promote is promote
    assert decision.reasons == reasons
    assert decision.cold_start is (champion is None)
    assert [check.passed for check in decision.checks].count(False) == len(reasons)
    assert decision.challenger_metrics == challenger
    assert decision.champion_metrics == champion
    assert ("PROMOTE" if promote else "REJECT") in decision.summary()


def test_cold_start_checks_are_recorded_as_skipped():
    decision = evaluate_gate(
        {"roc_auc": 0.5}, None, {"roc_auc": {"min": 0.25, "min_absolute_change": 0.25, "min_relative_change": 0.5}}
    )
    assert [(c.kind, c.actual, c.passed) for c in decision.checks] == [
        ("min", 0.5, True),
        ("min_absolute_change", None, True),
        ("min_relative_change", None, True),
    ]
    assert all("no champion" in c.note for c in decision.checks[1:])
    assert "cold start" in decision.summary()


def test_change_check_records_improvement_and_direction():
    thresholds = {"rmse": {"min_absolute_change": 0.5}}
    decision = evaluate_gate({"rmse": 9.75}, {"rmse": 10.0}, thresholds, champion_version="7")
    (check,) = decision.checks
    assert (check.metric, check.kind, check.required, check.actual, check.passed) == (
        "rmse", "min_absolute_change", 0.5, 0.25, False,
    )  # fmt: skip
    assert check.note == "(champion 10, challenger 9.75, lower is better)"
    assert "champion v7" in decision.summary()


@pytest.mark.parametrize(
    ("challenger", "thresholds", "missing"),
    [
        pytest.param({"rmse": 1.0}, {"roc_auc": {"min": 0.7}}, "roc_auc", id="only-other-metric"),
        pytest.param({}, {"f1_macro": {"min_absolute_change": 0.0}}, "f1_macro", id="no-metrics"),
        pytest.param({"roc_auc": 0.9}, {"roc_auc": {"min": 0.7}, "log_loss": {"max": 0.5}}, "log_loss", id="second"),
    ],
)
def test_metric_missing_from_challenger(challenger, thresholds, missing):
    with pytest.raises(ConfigurationError, match=rf"metric '{missing}' but the challenger was scored on"):
        evaluate_gate(challenger, {"roc_auc": 0.8, "log_loss": 0.4, "f1_macro": 0.5}, thresholds)


def test_gate_validates_thresholds_first():
    with pytest.raises(ConfigurationError, match="No thresholds"):
        evaluate_gate({"roc_auc": 0.9}, None, {})


def test_relative_change_against_zero_champion_rejects_a_worse_challenger():
    decision = evaluate_gate({"rmse": 0.5}, {"rmse": 0.0}, {"rmse": {"min_relative_change": 0.0}})
    assert not decision.promote


def test_metric_missing_from_champion_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="roc_auc"):
        evaluate_gate({"roc_auc": 0.9}, {"accuracy": 0.8}, {"roc_auc": {"min_absolute_change": 0.0}})


# -- validate_thresholds ------------------------------------------------------------------------------------

INVALID_THRESHOLDS = [
    ("none", None, r"^No thresholds"),
    ("empty-dict", {}, r"^No thresholds"),
    ("empty-list", [], r"^No thresholds"),
    ("list", [("roc_auc", {"min": 0.7})], r"must be a dict of metric -> rules, got list"),
    ("string", "roc_auc>0.7", r"must be a dict of metric -> rules, got str"),
    ("rules-number", {"roc_auc": 0.7}, r"thresholds\['roc_auc'\] must be a non-empty dict"),
    ("rules-empty", {"roc_auc": {}}, r"thresholds\['roc_auc'\] must be a non-empty dict"),
    ("rules-list", {"rmse": [10.0]}, r"thresholds\['rmse'\] must be a non-empty dict"),
    ("unknown-key", {"roc_auc": {"minimum": 0.7}}, r"thresholds\['roc_auc'\] has unknown keys \['minimum'\]"),
    (
        "unknown-key-beside-valid",
        {"rmse": {"max": 1.0, "max_change": 0.1}},
        r"thresholds\['rmse'\] has unknown keys \['max_change'\]",
    ),
    ("no-bound", {"roc_auc": {"greater_is_better": True}}, r"thresholds\['roc_auc'\] sets no bound"),
    ("string-value", {"roc_auc": {"min": "0.7"}}, r"thresholds\['roc_auc'\]\['min'\] must be a number, got '0.7'"),
    (
        "none-value",
        {"rmse": {"min_absolute_change": None}},
        r"thresholds\['rmse'\]\['min_absolute_change'\] must be a number, got None",
    ),
    ("nan", {"rmse": {"max": float("nan")}}, r"thresholds\['rmse'\]\['max'\] must be a number, got nan"),
    ("bool", {"roc_auc": {"min": True}}, r"thresholds\['roc_auc'\]\['min'\] must be a number, got True"),
    (
        "bool-change",
        {"roc_auc": {"min_relative_change": False}},
        r"thresholds\['roc_auc'\]\['min_relative_change'\] must be a number, got False",
    ),
    (
        "second-metric-bad",
        {"roc_auc": {"min": 0.7}, "log_loss": {"max": "low"}},
        r"thresholds\['log_loss'\]\['max'\] must be a number",
    ),
]


@pytest.mark.parametrize(
    ("thresholds", "message"), [pytest.param(*case[1:], id=case[0]) for case in INVALID_THRESHOLDS]
)
def test_invalid_thresholds(thresholds, message):
    with pytest.raises(ConfigurationError, match=message):
        validate_thresholds(thresholds)


VALID_THRESHOLDS = [
    ("min", {"roc_auc": {"min": 0.7}}),
    ("max-int", {"rmse": {"max": 10}}),
    (
        "all-keys",
        {
            "cost": {
                "min": 0,
                "max": 5.5,
                "min_absolute_change": 0.1,
                "min_relative_change": 0.01,
                "greater_is_better": False,
            }
        },
    ),  # fmt: skip
    ("negative-change", {"roc_auc": {"min_absolute_change": -0.01}}),
    ("several-metrics", {"roc_auc": {"min": 0.7}, "log_loss": {"max": 0.6, "min_relative_change": 0.0}}),
]


@pytest.mark.parametrize("thresholds", [pytest.param(case[1], id=case[0]) for case in VALID_THRESHOLDS])
def test_valid_thresholds_are_returned_unchanged(thresholds):
    before = copy.deepcopy(thresholds)
    assert validate_thresholds(thresholds) is thresholds
    assert thresholds == before


def test_greater_is_better_must_be_a_bool():
    with pytest.raises(ConfigurationError, match="greater_is_better"):
        validate_thresholds({"rmse": {"max": 1.0, "greater_is_better": "false"}})


# -- primary_metric_gate -----------------------------------------------------------------------------------

PRIMARY_METRIC_CASES = [
    ("classification-default", None, 0.01, "classification", {"roc_auc": {"min_absolute_change": 0.01}}),
    ("regression-default", None, 0, "regression", {"rmse": {"min_absolute_change": 0.0}}),
    ("empty-metric-means-default", "", 0.5, "regression", {"rmse": {"min_absolute_change": 0.5}}),
    ("explicit-metric-wins", "f1_macro", 0.02, "classification", {"f1_macro": {"min_absolute_change": 0.02}}),
    ("explicit-metric-wins-regression", "mae", 1, "regression", {"mae": {"min_absolute_change": 1.0}}),
    ("explicit-metric-no-task-type", "log_loss", "0.25", None, {"log_loss": {"min_absolute_change": 0.25}}),
    ("explicit-metric-unknown-task-type", "ndcg", 0.0, "ranking", {"ndcg": {"min_absolute_change": 0.0}}),
]


@pytest.mark.parametrize(
    ("primary_metric", "min_improvement", "task_type", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in PRIMARY_METRIC_CASES],
)
def test_primary_metric_gate(primary_metric, min_improvement, task_type, expected):
    gate = primary_metric_gate(primary_metric, min_improvement, task_type)
    assert gate == expected
    (rules,) = gate.values()
    assert type(rules["min_absolute_change"]) is float
    assert validate_thresholds(gate) is gate


@pytest.mark.parametrize(
    ("task_type", "named"),
    [("clustering", "'clustering'"), (None, "None"), ("", "''")],
)
def test_primary_metric_gate_without_metric_for_unknown_task_type(task_type, named):
    with pytest.raises(ConfigurationError, match=rf"No primary metric for task type {named}; give primary_metric"):
        primary_metric_gate(None, 0.01, task_type)


def test_primary_metric_gate_feeds_the_gate():
    """The default gate of a regression task: rmse must drop by at least min_improvement."""
    gate = primary_metric_gate(None, 0.5, "regression")
    assert evaluate_gate({"rmse": 9.5}, {"rmse": 10.0}, gate).promote
    assert not evaluate_gate({"rmse": 9.75}, {"rmse": 10.0}, gate).promote
    assert math.isclose(evaluate_gate({"rmse": 9.0}, {"rmse": 10.0}, gate).checks[0].actual, 1.0)
