"""The statistics of live performance: values equal scikit-learn's, bad inputs refused, and the statistical
claims of ``core/performance/statistics/`` measured on simulated traffic with fixed seeds.

The simulations assert rates over many trials (false alarms, power, promotion, coverage), vectorised so that
the file runs in a few seconds. Measured rates at the seeds used here (and, in brackets, over 20,000 trials
of the same generators, run once by hand):

* stable accuracy 0.80, 2,000 rows per window vs a sampled 3,000-row holdout: 1.0% flagged [0.9%];
* a true 5-point drop: 96.3% flagged [96.6%];
* shadow, 5,000 shared rows: a challenger 2 points better (the models disagree on 12.1% of rows) promoted in
  99.3% [99.3%]; 2 points worse (17.8% disagreement) in 0% [0%]; equally good, 5.2% [significance 5%];
* coverage of 95% intervals at 1,000 rows: accuracy 95.5% [95.2%], roc_auc 95.5% [95.1%], log_loss 95.0% [95.1%].

With 400 trials a rate is known to about +-1.1 points, so a perfect 95% interval lands outside 93-97% for
about 1 seed in 14: a failure of the coverage test after a change of seed or generator needs a look at the
rate over more trials before it is taken for a defect.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from mlops_provider.core.errors import ConfigurationError, DataStateError
from mlops_provider.core.performance.statistics import (
    METRICS,
    PAIRED_METRICS,
    InsufficientEvidenceError,
    MetricEstimate,
    PairedDecision,
    PairedEvidence,
    compare_paired,
    degradation_test,
    estimate_metric,
    threshold_breaches,
)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# ------------------------------------------------------------------------------------ generators


def binary_sample(rows, rng):
    """A logistic world (P(y=1|x) = sigmoid(-0.4 + 1.6x)) scored by a slightly miscalibrated model
    (sigmoid(-0.2 + 1.3x)); labels 0/1, the model predicts 1 when its probability is above 0.5."""
    x = rng.standard_normal(rows)
    y = (rng.random(rows) < sigmoid(-0.4 + 1.6 * x)).astype(np.int64)
    proba = sigmoid(-0.2 + 1.3 * x)
    return y, proba, (proba > 0.5).astype(np.int64)


def multiclass_sample(rows, rng, labels=("a", "b", "c")):
    """Three classes from a softmax of three features; the model's probabilities are a flattened softmax."""
    weights = np.array([[1.5, 0.0, -1.0], [0.0, 1.2, 0.4], [-0.5, -0.8, 1.0]])
    x = rng.standard_normal((rows, 3))
    truth = np.exp(x @ weights)
    truth /= truth.sum(axis=1, keepdims=True)
    codes = (truth.cumsum(axis=1) < rng.random(rows)[:, None]).sum(axis=1)
    proba = np.exp(x @ (0.8 * weights))
    proba /= proba.sum(axis=1, keepdims=True)
    return np.asarray(labels, dtype=object)[codes], proba


def regression_sample(rows, rng):
    x = rng.standard_normal(rows)
    return 2 * x + rng.standard_normal(rows), 1.8 * x + 0.1


# -------------------------------------------------------------------- values equal scikit-learn's


def value_cases():
    rng = np.random.default_rng(7)
    y, proba, pred = binary_sample(3000, rng)
    tied = np.round(proba, 2)  # many ties: the rank computation must count them half, as scikit-learn does
    extreme = proba.copy()
    extreme[:20] = 0.0  # log_loss clips these to [eps, 1 - eps], as scikit-learn does
    extreme[20:40] = 1.0
    names = np.where(y == 1, "yes", "no").astype(object)
    two_columns = np.column_stack([1 - proba, proba])
    labels, matrix = multiclass_sample(3000, rng)
    labels_pred = np.array(["a", "b", "c"], dtype=object)[matrix.argmax(axis=1)]
    shuffled = ["c", "a", "b"]  # proba columns in a non-sorted class order
    shuffled_matrix = matrix[:, [2, 0, 1]]
    pred_with_extra = pred.copy()
    pred_with_extra[:5] = 2  # a label predicted but never true: f1_macro averages over it too
    truth, estimate = regression_sample(3000, rng)
    return [
        ("accuracy", y, {"y_pred": pred}, skm.accuracy_score(y, pred)),
        ("accuracy-strings", names, {"y_pred": np.where(pred == 1, "yes", "no")}, skm.accuracy_score(y, pred)),
        ("accuracy-from-proba", y, {"proba": proba}, skm.accuracy_score(y, (proba > 0.5).astype(int))),
        (
            "accuracy-multiclass-from-proba",
            labels,
            {"proba": shuffled_matrix, "classes": shuffled},
            skm.accuracy_score(labels, labels_pred),
        ),
        ("f1_macro", y, {"y_pred": pred}, skm.f1_score(y, pred, average="macro")),
        ("f1_macro-extra-label", y, {"y_pred": pred_with_extra}, skm.f1_score(y, pred_with_extra, average="macro")),
        ("f1_macro-multiclass", labels, {"y_pred": labels_pred}, skm.f1_score(labels, labels_pred, average="macro")),
        ("roc_auc", y, {"proba": proba}, skm.roc_auc_score(y, proba)),
        ("roc_auc-ties", y, {"proba": tied}, skm.roc_auc_score(y, tied)),
        ("roc_auc-strings-2d", names, {"proba": two_columns, "classes": ["no", "yes"]}, skm.roc_auc_score(y, proba)),
        ("roc_auc-bool", y.astype(bool), {"proba": tied}, skm.roc_auc_score(y, tied)),
        (
            "roc_auc-multiclass",
            labels,
            {"proba": shuffled_matrix, "classes": shuffled},
            skm.roc_auc_score(labels, matrix, multi_class="ovr", labels=["a", "b", "c"]),
        ),
        ("roc_auc-multiclass-sorted", labels, {"proba": matrix}, skm.roc_auc_score(labels, matrix, multi_class="ovr")),
        ("log_loss", y, {"proba": proba}, skm.log_loss(y, proba)),
        ("log_loss-clipped", y, {"proba": extreme}, skm.log_loss(y, extreme)),
        ("log_loss-2d", names, {"proba": two_columns, "classes": ["no", "yes"]}, skm.log_loss(names, two_columns)),
        (
            "log_loss-multiclass",
            labels,
            {"proba": shuffled_matrix, "classes": shuffled},
            skm.log_loss(labels, matrix, labels=["a", "b", "c"]),
        ),
        ("rmse", truth, {"y_pred": estimate}, skm.root_mean_squared_error(truth, estimate)),
        ("mae", truth, {"y_pred": estimate}, skm.mean_absolute_error(truth, estimate)),
        ("r2", truth, {"y_pred": estimate}, skm.r2_score(truth, estimate)),
    ]


VALUE_CASES = value_cases()


@pytest.mark.parametrize(("case", "y_true", "inputs", "expected"), VALUE_CASES, ids=[c[0] for c in VALUE_CASES])
def test_values_equal_scikit_learn(case, y_true, inputs, expected):
    metric = case.split("-")[0]
    estimate = estimate_metric(metric, y_true, **inputs)
    assert estimate.value == pytest.approx(expected, abs=1e-9)
    assert estimate.low <= estimate.value <= estimate.high
    assert estimate.rows == len(y_true)
    assert estimate.standard_error > 0


def test_every_metric_is_covered_and_intervals_narrow_with_rows():
    assert {case.split("-")[0] for case, *_ in VALUE_CASES} == set(METRICS)
    rng = np.random.default_rng(3)
    y, proba, pred = binary_sample(40_000, rng)
    small = estimate_metric("roc_auc", y[:1000], proba=proba[:1000])
    large = estimate_metric("roc_auc", y, proba=proba)
    ratio = (small.high - small.low) / (large.high - large.low)
    assert ratio == pytest.approx(math.sqrt(40), rel=0.15)  # width shrinks as 1/sqrt(rows)
    narrow = estimate_metric("accuracy", y, y_pred=pred, confidence=0.8)
    wide = estimate_metric("accuracy", y, y_pred=pred, confidence=0.99)
    assert wide.low < narrow.low < narrow.high < wide.high


@pytest.mark.parametrize(
    ("metric", "make"),
    [
        (
            "roc_auc",
            lambda y, labels, matrix: estimate_metric("roc_auc", labels, proba=matrix, classes=["0", "1", "2"]),
        ),
        (
            "f1_macro",
            lambda y, labels, matrix: estimate_metric("f1_macro", labels, y_pred=matrix.argmax(axis=1).astype(str)),
        ),
        ("r2", lambda y, labels, matrix: estimate_metric("r2", y[:, 0], y_pred=y[:, 1])),
    ],
    ids=["roc_auc-multiclass", "f1_macro", "r2"],
)
def test_analytic_standard_errors_match_the_bootstrap(metric, make):
    """The delta-method and one-vs-rest DeLong standard errors against 300 bootstrap resamples of 1,000 rows
    (the bootstrap's own error is about 4%)."""
    rng = np.random.default_rng(11)
    labels, matrix = multiclass_sample(1000, rng, labels=("0", "1", "2"))
    labels = np.asarray(labels, dtype=object)
    truth, estimate = regression_sample(1000, rng)
    y = np.column_stack([truth, estimate])
    analytic = make(y, labels, matrix)
    values = []
    for _ in range(300):
        take = rng.integers(0, 1000, 1000)
        values.append(make(y[take], labels[take], matrix[take]).value)
    assert analytic.standard_error == pytest.approx(np.std(values, ddof=1), rel=0.15)


# ----------------------------------------------------------------------------------- bad inputs

Y4 = np.array([0, 1, 0, 1])
P4 = np.array([0.2, 0.7, 0.4, 0.9])

BAD_INPUTS = [
    ("unknown-metric", lambda: estimate_metric("precision", Y4, y_pred=Y4), ConfigurationError,
     "metric='precision' is not supported; use one of ['accuracy', 'roc_auc'"),
    ("one-row", lambda: estimate_metric("accuracy", [1], y_pred=[1]), InsufficientEvidenceError,
     "accuracy needs at least 2 labelled rows in the window; found 1"),
    ("no-rows", lambda: estimate_metric("log_loss", [], proba=[]), InsufficientEvidenceError, "found 0"),
    ("one-class-auc", lambda: estimate_metric("roc_auc", [1, 1, 1, 1], proba=P4, classes=[0, 1]),
     InsufficientEvidenceError, "roc_auc needs at least 2 labelled rows of each class in the window; of 4 rows, 0 of class 0, 4 of class 1"),
    ("multiclass-missing-class", lambda: estimate_metric("roc_auc", ["a", "b", "a", "b"], proba=np.full((4, 3), 1 / 3),
     classes=["a", "b", "c"]), InsufficientEvidenceError, "0 of class 'c'"),
    ("nan-label", lambda: estimate_metric("accuracy", [0.0, np.nan, 1.0, 1.0], y_pred=Y4), ConfigurationError,
     "y_true has 1 missing (NaN/None) values out of 4"),
    ("none-label", lambda: estimate_metric("f1_macro", np.array(["a", None, "b", "a"], dtype=object),
     y_pred=np.array(["a", "b", "b", "a"], dtype=object)), ConfigurationError, "y_true has 1 missing"),
    ("nan-prediction", lambda: estimate_metric("mae", [1.0, 2.0, 3.0], y_pred=[1.0, np.nan, 2.0]), ConfigurationError,
     "y_pred has 1 missing"),
    ("nan-proba", lambda: estimate_metric("roc_auc", Y4, proba=[0.1, np.nan, 0.3, 0.4]), ConfigurationError,
     "proba has 1 row(s) with missing (NaN) or infinite probabilities out of 4"),
    ("short-y_pred", lambda: estimate_metric("accuracy", Y4, y_pred=[0, 1, 0]), ConfigurationError,
     "y_pred has 3 rows but y_true has 4"),
    ("short-proba", lambda: estimate_metric("log_loss", Y4, proba=P4[:3]), ConfigurationError,
     "proba has shape (3,) but y_true has 4 rows"),
    ("auc-without-proba", lambda: estimate_metric("roc_auc", Y4, y_pred=Y4), ConfigurationError,
     "roc_auc needs proba, the predicted probabilities"),
    ("auc-without-proba-lists-choices", lambda: estimate_metric("log_loss", Y4, y_pred=Y4), ConfigurationError,
     "Metrics from predicted labels alone: ['accuracy', 'f1_macro']"),
    ("accuracy-without-predictions", lambda: estimate_metric("accuracy", Y4), ConfigurationError,
     "accuracy needs y_pred (the predicted labels), or proba"),
    ("rmse-without-predictions", lambda: estimate_metric("rmse", [1.0, 2.0]), ConfigurationError,
     "rmse needs y_pred (the predicted values)"),
    ("scores-not-probabilities", lambda: estimate_metric("roc_auc", Y4, proba=[-2.0, 1.5, 0.3, 3.0]), ConfigurationError,
     "proba must hold probabilities in [0, 1]; found values from -2 to 3"),
    ("rows-not-summing-to-one", lambda: estimate_metric("log_loss", Y4, proba=np.full((4, 2), 0.7), classes=[0, 1]),
     ConfigurationError, "proba's rows must sum to 1"),
    ("label-not-a-class", lambda: estimate_metric("log_loss", [0, 1, 2, 1], proba=P4, classes=[0, 1]), ConfigurationError,
     "y_true holds label(s) [2] that are not among classes [0, 1]"),
    ("classes-per-column", lambda: estimate_metric("log_loss", Y4, proba=np.full((4, 2), 0.5), classes=[0, 1, 2]),
     ConfigurationError, "classes has 3 entries but proba has 2 columns"),
    ("classes-needed", lambda: estimate_metric("log_loss", [0, 1, 2, 1], proba=P4), ConfigurationError,
     "give classes, the class of each column"),
    ("label-types-differ", lambda: estimate_metric("accuracy", ["0", "1", "0", "1"], y_pred=Y4), ConfigurationError,
     "y_true holds strings but y_pred numbers"),
    ("constant-target-r2", lambda: estimate_metric("r2", [3.0, 3.0, 3.0], y_pred=[1.0, 2.0, 3.0]),
     InsufficientEvidenceError, "r2 needs y_true to vary in the window; all 3 labels equal 3"),
    ("text-target-rmse", lambda: estimate_metric("rmse", ["a", "b"], y_pred=[1.0, 2.0]), ConfigurationError,
     "y_true must hold numbers for rmse"),
    ("two-dimensional-labels", lambda: estimate_metric("accuracy", [[0, 1], [1, 0]], y_pred=[0, 1]), ConfigurationError,
     "y_true must be one column (1-D), got shape (2, 2)"),
    ("confidence", lambda: estimate_metric("accuracy", Y4, y_pred=Y4, confidence=95), ConfigurationError,
     "confidence=95 must be between 0 and 1"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "call", "error", "message"), BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS])
def test_bad_inputs_raise_and_name_the_input(case, call, error, message):
    with pytest.raises(error) as raised:
        call()
    assert message in str(raised.value)


def test_insufficient_evidence_is_a_retryable_data_state():
    assert issubclass(InsufficientEvidenceError, DataStateError)
    assert InsufficientEvidenceError.retryable


def live_accuracy(right=1600, rows=2000):
    return estimate_metric("accuracy", np.ones(rows, dtype=int), y_pred=np.r_[np.ones(right), np.zeros(rows - right)])


BAD_DECISION_INPUTS = [
    ("degradation-significance", lambda: degradation_test(live_accuracy(), baseline=0.8, baseline_rows=3000,
     significance=0), "significance=0 must be between 0 and 0.5"),
    ("degradation-baseline", lambda: degradation_test(live_accuracy(), baseline=float("nan"), baseline_rows=3000),
     "baseline must be a finite number, got nan"),
    ("degradation-baseline-rows", lambda: degradation_test(live_accuracy(), baseline=0.8, baseline_rows=1),
     "baseline_rows=1 must be the holdout's row count"),
    ("degradation-min-drop", lambda: degradation_test(live_accuracy(), baseline=0.8, baseline_rows=None, min_drop=-0.1),
     "min_drop=-0.1 must be >= 0"),
    ("degradation-live", lambda: degradation_test({"metric": "accuracy"}, baseline=0.8, baseline_rows=None),
     "live must be a MetricEstimate"),
    ("threshold-key", lambda: threshold_breaches(live_accuracy(), {"minimum": 0.7}),
     "rules for accuracy have unknown keys ['minimum']; use 'min' and/or 'max'"),
    ("threshold-value", lambda: threshold_breaches(live_accuracy(), {"min": "0.7"}),
     "rules['min'] for accuracy must be a finite number, got '0.7'"),
    ("threshold-empty", lambda: threshold_breaches(live_accuracy(), {}), "must be a non-empty dict"),
    ("paired-metric", lambda: PairedEvidence.from_rows("roc_auc", Y4, champion_pred=Y4, challenger_pred=Y4),
     "metric='roc_auc' is not supported; use one of ['accuracy', 'log_loss', 'brier', 'rmse', 'mae']"),
    ("paired-missing-proba", lambda: PairedEvidence.from_rows("log_loss", Y4, champion_proba=P4, challenger_pred=Y4),
     "Paired log_loss needs challenger_proba"),
    ("paired-short", lambda: PairedEvidence.from_rows("mae", [1.0, 2.0], champion_pred=[1.0, 2.0],
     challenger_pred=[1.0]), "challenger_pred has 1 rows but y_true has 2"),
    ("paired-add-metrics", lambda: PairedEvidence("accuracy", 10, 1, 1.0, 3.0) + PairedEvidence("mae", 10, 1, 1.0, 3.0),
     "Cannot add evidence on mae to evidence on accuracy"),
    ("paired-from-dict", lambda: PairedEvidence.from_dict({"metric": "accuracy", "rows": 10}),
     "Paired evidence needs the keys ['metric', 'rows', 'windows', 'sum_diff', 'sum_sq_diff']"),
    ("paired-min-rows", lambda: compare_paired(PairedEvidence("accuracy", 10, 1, 1.0, 3.0), min_rows=0),
     "min_rows=0 must be a whole number >= 1"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "call", "message"), BAD_DECISION_INPUTS, ids=[c[0] for c in BAD_DECISION_INPUTS])
def test_bad_decision_inputs_raise_and_name_the_input(case, call, message):
    with pytest.raises(ConfigurationError) as raised:
        call()
    assert message in str(raised.value)


def test_paired_evidence_needs_shared_rows():
    with pytest.raises(InsufficientEvidenceError, match="No labelled rows shared by the champion and the challenger"):
        PairedEvidence.from_rows("accuracy", [], champion_pred=[], challenger_pred=[])


# -------------------------------------------------------------------------------------- degradation


def accuracy_windows(accuracy, windows, rows, rng):
    """Labelled windows of a binary classifier that is right on each row with probability ``accuracy``."""
    y = rng.integers(0, 2, size=(windows, rows))
    right = rng.random((windows, rows)) < accuracy
    return y, np.where(right, y, 1 - y)


def flag_rate(accuracy, rng, windows=400, rows=2000, holdout_rows=3000, holdout_accuracy=0.80):
    """Share of windows flagged, each against a holdout accuracy that was itself measured on a sample."""
    y, pred = accuracy_windows(accuracy, windows, rows, rng)
    baselines = rng.binomial(holdout_rows, holdout_accuracy, size=windows) / holdout_rows
    flagged = 0
    for i in range(windows):
        live = estimate_metric("accuracy", y[i], y_pred=pred[i])
        flagged += degradation_test(live, baseline=float(baselines[i]), baseline_rows=holdout_rows).degraded
    return flagged / windows


def test_stable_performance_is_rarely_flagged():
    rate = flag_rate(0.80, np.random.default_rng(2024))
    assert rate <= 0.05, rate  # expected about 1% at significance 0.01


def test_a_five_point_drop_is_flagged():
    rate = flag_rate(0.75, np.random.default_rng(2025))
    assert rate >= 0.90, rate  # expected about 96.6%


def test_degradation_result_reads_and_orients_by_metric():
    result = degradation_test(live_accuracy(1500), baseline=0.8, baseline_rows=3000)
    assert result.degraded and result.drop == pytest.approx(0.05) and result.p_value < 1e-4
    assert result.statement.startswith(
        "accuracy 0.75 on 2,000 labelled rows vs baseline 0.8 (3,000-row holdout): 0.05 worse"
    )
    assert result.statement.endswith("degraded (p < 0.01 and the drop exceeds min_drop 0).")
    json.dumps(result.to_dict())

    ignored = degradation_test(live_accuracy(1500), baseline=0.8, baseline_rows=3000, min_drop=0.06)
    assert not ignored.degraded and "the drop does not exceed min_drop 0.06" in ignored.statement
    noise = degradation_test(live_accuracy(1590), baseline=0.8, baseline_rows=3000)
    assert not noise.degraded and "within the noise at significance 0.01" in noise.statement
    exact = degradation_test(live_accuracy(1590), baseline=0.8, baseline_rows=None)
    assert exact.z > noise.z  # an exact baseline adds no sampling error

    # lower is better: a higher rmse is a positive drop
    rng = np.random.default_rng(5)
    truth, estimate = regression_sample(5000, rng)
    live = estimate_metric("rmse", truth, y_pred=estimate)
    worse = degradation_test(live, baseline=live.value - 0.1, baseline_rows=5000)
    assert worse.drop == pytest.approx(0.1) and worse.degraded
    better = degradation_test(live, baseline=live.value + 0.1, baseline_rows=5000)
    assert better.drop == pytest.approx(-0.1) and not better.degraded and "0.1 better" in better.statement


def test_threshold_breaches_only_beyond_doubt():
    near = live_accuracy(1390)  # 0.695 on 2,000 rows: below 0.7, but within noise
    assert threshold_breaches(near, {"min": 0.7}) == []
    far = live_accuracy(1300)  # 0.65
    [sentence] = threshold_breaches(far, {"min": 0.7, "max": 0.99})
    assert sentence.startswith("accuracy 0.65 on 2,000 labelled rows is below the minimum 0.7: even its one-sided 99%")
    rng = np.random.default_rng(6)
    y, proba, _ = binary_sample(5000, rng)
    loss = estimate_metric("log_loss", y, proba=proba)
    [sentence] = threshold_breaches(loss, {"max": loss.value - 0.05})
    assert "is above the maximum" in sentence and "lower bound" in sentence
    assert threshold_breaches(loss, {"max": loss.value - 0.001}) == []


# ------------------------------------------------------------------------------------ shadow comparison

LATENT_NOISE = 0.6  # the label's own noise around the latent score: the best any model can do is 82.8%


def model_noise(accuracy):
    """The noise sd that gives a model ``accuracy``: for y = [L + 0.6 e > 0] and prediction [L + s f > 0], with
    L, e, f standard normal, P(agree) = 1/2 + arcsin(rho)/pi, rho = 1 / sqrt((1 + 0.6^2)(1 + s^2))."""
    rho = math.sin((accuracy - 0.5) * math.pi)
    return math.sqrt(1 / (rho * rho * (1 + LATENT_NOISE**2)) - 1)


def shadow_trials(champion_accuracy, challenger_accuracy, trials, rows, rng):
    """Two models trained on similar data: both read the same latent score, each with its own noise, so they
    are right and wrong on mostly the same rows (not independent)."""
    latent = rng.standard_normal((trials, rows))
    y = (latent + LATENT_NOISE * rng.standard_normal((trials, rows)) > 0).astype(np.int8)
    champion = (latent + model_noise(champion_accuracy) * rng.standard_normal((trials, rows)) > 0).astype(np.int8)
    challenger = (latent + model_noise(challenger_accuracy) * rng.standard_normal((trials, rows)) > 0).astype(np.int8)
    return y, champion, challenger


def promotion_rate(challenger_accuracy, rng, trials=400, rows=5000):
    y, champion, challenger = shadow_trials(0.80, challenger_accuracy, trials, rows, rng)
    outcomes = [
        compare_paired(
            PairedEvidence.from_rows("accuracy", y[i], champion_pred=champion[i], challenger_pred=challenger[i])
        ).outcome
        for i in range(trials)
    ]
    accuracies = ((champion == y).mean(), (challenger == y).mean())
    return outcomes.count("promote") / trials, float((champion != challenger).mean()), accuracies


def test_a_better_challenger_is_promoted():
    rate, disagreement, (champion, challenger) = promotion_rate(0.82, np.random.default_rng(31))
    assert champion == pytest.approx(0.80, abs=0.002) and challenger == pytest.approx(0.82, abs=0.002)
    assert 0.10 <= disagreement <= 0.20, disagreement  # about 12%: correlated models, as in practice
    assert rate >= 0.95, rate  # expected about 99.3%


def test_a_worse_challenger_is_not_promoted():
    rate, disagreement, (champion, challenger) = promotion_rate(0.78, np.random.default_rng(32))
    assert champion == pytest.approx(0.80, abs=0.002) and challenger == pytest.approx(0.78, abs=0.002)
    assert 0.10 <= disagreement <= 0.20, disagreement  # about 18%
    assert rate <= 0.01, rate


def test_paired_evidence_adds_up_over_windows():
    rng = np.random.default_rng(8)
    y, champion, challenger = shadow_trials(0.80, 0.82, 1, 6000, rng)
    whole = PairedEvidence.from_rows("accuracy", y[0], champion_pred=champion[0], challenger_pred=challenger[0])
    parts = [
        PairedEvidence.from_rows("accuracy", y[0, s], champion_pred=champion[0, s], challenger_pred=challenger[0, s])
        for s in (slice(0, 1000), slice(1000, 3500), slice(3500, 6000))
    ]
    total = sum(parts)
    assert (total.rows, total.windows) == (6000, 3)
    assert (total.sum_diff, total.sum_sq_diff) == (whole.sum_diff, whole.sum_sq_diff)
    assert total.sum_diff == int((challenger == y).sum() - (champion == y).sum())
    stored = json.loads(json.dumps(total.to_dict()))
    assert PairedEvidence.from_dict(stored) == total

    waiting = compare_paired(parts[0], min_rows=2000)
    assert waiting.outcome == "wait"
    assert waiting.reason.startswith(
        "wait: 1,000 shared labelled rows over 1 window(s); the decision needs at least 2,000 rows"
    )
    assert compare_paired(parts[0] + parts[1], min_rows=2000, min_windows=3).outcome == "wait"
    decision = compare_paired(total, min_rows=2000, min_windows=3)
    assert isinstance(decision, PairedDecision) and decision.outcome in ("promote", "reject")
    assert decision.improvement == pytest.approx(total.sum_diff / 6000)
    assert decision.low < decision.improvement < decision.high
    assert (decision.low > 0) == (decision.outcome == "promote")  # the (1 - 2 * significance) interval agrees
    json.dumps(decision.to_dict())


def test_paired_scores_follow_the_metrics():
    """Mean differences are the metrics' differences (champion minus challenger for losses)."""
    rng = np.random.default_rng(9)
    y, proba, _ = binary_sample(4000, rng)
    other = np.clip(proba + rng.normal(0, 0.1, proba.shape), 0.01, 0.99)
    for metric, loss in (("log_loss", skm.log_loss), ("brier", skm.brier_score_loss)):
        evidence = PairedEvidence.from_rows(metric, y, champion_proba=proba, challenger_proba=other)
        assert evidence.sum_diff / 4000 == pytest.approx(loss(y, proba) - loss(y, other), abs=1e-9)
    labels, matrix = multiclass_sample(4000, rng)
    flat = (matrix + 0.2) / 1.6
    evidence = PairedEvidence.from_rows(
        "log_loss", labels, champion_proba=matrix, challenger_proba=flat, classes=["a", "b", "c"]
    )
    assert evidence.sum_diff / 4000 == pytest.approx(
        skm.log_loss(labels, matrix) - skm.log_loss(labels, flat), abs=1e-9
    )
    truth, estimate = regression_sample(4000, rng)
    for metric, loss in (("rmse", skm.mean_squared_error), ("mae", skm.mean_absolute_error)):
        evidence = PairedEvidence.from_rows(metric, truth, champion_pred=estimate, challenger_pred=estimate * 1.05)
        assert evidence.sum_diff / 4000 == pytest.approx(loss(truth, estimate) - loss(truth, estimate * 1.05), abs=1e-9)
    decision = compare_paired(evidence)
    assert "reduction in mean absolute error" in decision.reason
    rmse = compare_paired(PairedEvidence.from_rows("rmse", truth, champion_pred=estimate, challenger_pred=estimate))
    assert rmse.outcome == "reject" and "the test is on the MSE, not the RMSE" in rmse.reason
    assert set(PAIRED_METRICS) == {"accuracy", "log_loss", "brier", "rmse", "mae"}


# ---------------------------------------------------------------------------------------------- coverage


def test_intervals_cover_the_true_value():
    """95% intervals of 400 samples of 1,000 rows cover the value of a 1M-row draw of the same generator."""
    rng = np.random.default_rng(41)
    y, proba, pred = binary_sample(1_000_000, rng)
    metrics = ("accuracy", "roc_auc", "log_loss")
    truth = {m: estimate_metric(m, y, y_pred=pred, proba=proba).value for m in metrics}
    covered = dict.fromkeys(metrics, 0)
    for _ in range(400):
        y, proba, pred = binary_sample(1000, rng)
        for metric in metrics:
            estimate = estimate_metric(metric, y, y_pred=pred, proba=proba)
            covered[metric] += estimate.low <= truth[metric] <= estimate.high
    rates = {m: c / 400 for m, c in covered.items()}
    assert all(0.93 <= rate <= 0.97 for rate in rates.values()), rates


# ------------------------------------------------------------------------------------------- round trips


def test_results_are_json_safe_and_rounded():
    estimate = estimate_metric("accuracy", [1, 1, 0], y_pred=[1, 0, 0])
    data = json.loads(json.dumps(estimate.to_dict()))
    assert data["value"] == 0.666667 and data["method"] == "wilson" and data["rows"] == 3
    assert MetricEstimate.from_dict(data).interval(0.95) == pytest.approx((data["low"], data["high"]), abs=1e-5)
    perfect = estimate_metric("accuracy", [1, 0, 1], y_pred=[1, 0, 1])
    assert perfect.high == 1.0 and perfect.low < 1.0 and perfect.standard_error > 0  # Wilson, not zero-width
    unknown = MetricEstimate("rmse", 1.0, 0.9, 1.1, 100, 0.95, "clt-mse")
    assert unknown.to_dict()["standard_error"] is None
    assert unknown.se == pytest.approx(0.1 / 1.959964, rel=1e-5)
    wait = compare_paired(PairedEvidence("accuracy", 1, 1, 1.0, 1.0))
    assert wait.outcome == "wait" and json.loads(json.dumps(wait.to_dict()))["improvement"] is None
