"""Progressive rollout: whether a challenger in shadow or canary should be promoted, kept longer or rolled back.

The challenger is compared with the champion with the statistics of the live-performance gate
(``core.performance.statistics``), on the prediction log joined with the labels (``labels.join_labels``):

* shadow: both versions scored the same requests (served: the champion; ``role="shadow"``: the challenger), so
  the comparison is paired on the ids both scored (``live.paired_evidence`` + ``compare_paired``);
* canary: the two versions answered different requests (``role="served"``, alias ``canary`` for a share of the
  traffic), so their estimates are compared unpaired (``compare_estimates``: a one-sided z-test on the difference).

The thresholds. With ``min_improvement`` m (the metric's units, challenger minus champion, higher is better):
"better" is "improvement > m at ``significance``" (the gate's test), "worse" is "improvement < min(m, 0) at
``significance``". m = 0 (default): promote a challenger shown better, roll back one shown worse. A negative m is
a tolerance: promote a challenger shown not worse than the champion by more than |m| (non-inferiority), roll back
one shown worse by more than |m|. The two tests cannot both pass.

Guardrails of a canary from the scoring service's Prometheus metrics (``mlops-serve``'s ``/metrics``, summed over
the replicas; a shadow answers no request, so it has none): the challenger's error rate is compared with the
champion's (``compare_proportions``: rolled back when higher by more than ``max_error_rate_increase`` at
``significance``), and its p99 latency, read from the latency histogram's buckets as Prometheus'
``histogram_quantile`` does, may be at most ``max_latency_ratio`` times the champion's. Each is judged only when
both versions answered ``min_requests`` requests.

The outcome: a breached guardrail or a challenger shown worse -> "rollback", at once (also during the soak);
too few labelled rows of either version (the test "waits") -> "extend" (insufficient evidence); the soak time not
over -> "extend"; shown better (or not worse, with a tolerance) -> "promote"; else "extend" (no difference shown
yet: a longer soak or the operator's ``max_soak`` and ``on_timeout`` end it).

Repeated looks at a growing window (each analysis of one rollout) each risk a false verdict at ``significance``:
with many looks, choose a smaller ``significance`` (e.g. 0.01).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from mlops_provider.core import tags
from mlops_provider.core.errors import ConfigurationError

if TYPE_CHECKING:
    import pandas as pd

SHADOW = "shadow"
CANARY = "canary"
MODES = (SHADOW, CANARY)
ALIASES = {SHADOW: tags.SHADOW_ALIAS, CANARY: tags.CANARY_ALIAS}
PROMOTE = "promote"
EXTEND = "extend"
ROLLBACK = "rollback"
OUTCOMES = (PROMOTE, EXTEND, ROLLBACK)
# The history actions of the rollout's alias moves (core.registry.history).
ACTION_START = "rollout_start"
ACTION_PROMOTE = "rollout_promote"
ACTION_ROLLBACK = "rollout_rollback"
# The gate decisions that let a version be rolled out (core.registry.promotion._record_decision).
GATE_PASSED = ("passed", "promoted")

REQUESTS = "mlops_serve_requests_total"
ERRORS = "mlops_serve_errors_total"
LATENCY = "mlops_serve_request_latency_seconds"


def check_mode(mode: Any) -> str:
    if mode not in MODES:
        raise ConfigurationError(
            f"mode={mode!r} is not a rollout mode; use 'shadow' (the challenger scores every request on the side, "
            "its answers are logged, not sent) or 'canary' (it answers a share of the requests)."
        )
    return str(mode)


def check_share(value: Any) -> float:
    """``canary_share`` as a float in [0, 1] (a number or decimal text such as "0.1")."""
    try:
        share = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        share = math.nan
    if not (0.0 <= share <= 1.0):
        raise ConfigurationError(
            f"canary_share={value!r} is not a share of requests in [0, 1]; give e.g. 0.1 for 10% of the requests "
            "to the canary."
        )
    return share


def share_text(share: float) -> str:
    """The CANARY_SHARE tag's text: a decimal, "0" for none."""
    return "0" if share == 0 else f"{share:.6g}"


def check_gate_passed(model_name: str, version: str, version_tags: dict[str, str]) -> None:
    decision = version_tags.get(tags.GATE_DECISION)
    if decision not in GATE_PASSED:
        said = f"the gate decided {decision!r}" if decision else "the gate has not judged it"
        raise ConfigurationError(
            f"{model_name} v{version} cannot be rolled out: {said} (tag {tags.GATE_DECISION}). Only a version the "
            "gate passed goes to shadow or canary: run EvaluateChallengerOperator on it first and pass its "
            "output['version']."
        )


@dataclass(frozen=True)
class RolloutSettings:
    """How the challenger is judged (module docstring); ``metric`` None: accuracy, or rmse for regressors."""

    metric: str | None = None
    significance: float = 0.05
    min_improvement: float = 0.0
    min_rows: int = 200
    max_error_rate_increase: float = 0.0
    max_latency_ratio: float = 1.5
    min_requests: int = 100

    def __post_init__(self) -> None:
        from mlops_provider.core.performance.statistics import METRICS, PAIRED_METRICS

        if self.metric is not None and self.metric not in set(METRICS) | set(PAIRED_METRICS):
            raise ConfigurationError(
                f"primary_metric={self.metric!r} is not a live metric; use one of "
                f"{sorted(set(METRICS) | set(PAIRED_METRICS))}."
            )
        checks = (
            ("significance", self.significance, 0.0, 0.5, "e.g. 0.05"),
            ("max_error_rate_increase", self.max_error_rate_increase, -1e-12, 1.0, "e.g. 0.0 or 0.01"),
            ("max_latency_ratio", self.max_latency_ratio, 0.0, math.inf, "e.g. 1.5"),
        )
        for name, value, low, high, example in checks:
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low < value < high:
                raise ConfigurationError(
                    f"{name}={value!r} must be a number in ({max(low, 0):g}, {high:g}), {example}."
                )
        if isinstance(self.min_improvement, bool) or not isinstance(self.min_improvement, numbers.Real):
            raise ConfigurationError(
                f"min_improvement={self.min_improvement!r} must be a number (negative: a tolerance)."
            )
        for name, value in (("min_labelled_rows", self.min_rows), ("min_requests", self.min_requests)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 2:
                raise ConfigurationError(f"{name}={value!r} must be a whole number >= 2.")

    def metric_for(self, task_type: str, mode: str) -> str:
        from mlops_provider.core.performance import DEFAULT_LIVE_METRIC
        from mlops_provider.core.performance.live import CLASSIFICATION_METRICS, REGRESSION_METRICS
        from mlops_provider.core.performance.statistics import PAIRED_METRICS

        kind = "regression" if task_type == "regression" else "classification"
        metric = self.metric or DEFAULT_LIVE_METRIC[kind]
        allowed = [m for m in ((REGRESSION_METRICS if kind == "regression" else CLASSIFICATION_METRICS) + ("brier",))]
        allowed = (
            [m for m in allowed if m in PAIRED_METRICS] if mode == SHADOW else [m for m in allowed if m != "brier"]
        )
        if metric not in allowed:
            how = "compared row by row on the shared ids" if mode == SHADOW else "estimated per version"
            raise ConfigurationError(
                f"primary_metric={metric!r} cannot be {how} for a {kind} model in {mode} mode; use one of {allowed}."
            )
        return metric


# -- the scoring service's metrics ---------------------------------------------------------------------------


@dataclass
class VersionTraffic:
    """What the service counted for one version: requests, errors and the latency histogram (cumulative)."""

    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)

    def p99(self) -> float | None:
        return histogram_quantile(0.99, self.buckets)


def service_traffic(texts: list[str], model_name: str) -> dict[str, VersionTraffic]:
    """Per version, the requests, errors and request-latency buckets in the Prometheus texts of the service's
    replicas, summed."""
    from prometheus_client.parser import text_string_to_metric_families

    traffic: dict[str, VersionTraffic] = {}
    for text in texts:
        try:
            families = list(text_string_to_metric_families(text))
        except ValueError as error:
            raise ConfigurationError(
                f"A service's /metrics is not Prometheus text ({error}); check service_urls."
            ) from None
        for family in families:
            for sample in family.samples:
                labels = sample.labels
                if labels.get("model", model_name) != model_name or "version" not in labels:
                    continue
                entry = traffic.setdefault(str(labels["version"]), VersionTraffic())
                if sample.name == REQUESTS:
                    entry.requests += sample.value
                elif sample.name == ERRORS:
                    entry.errors += sample.value
                elif sample.name == f"{LATENCY}_bucket" and "le" in labels:
                    bound = float(labels["le"])
                    entry.buckets[bound] = entry.buckets.get(bound, 0.0) + sample.value
    return traffic


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The ``q`` quantile of a cumulative histogram ``{upper bound: count}`` as Prometheus estimates it: linear
    within the bucket that holds it (from 0 for the first), the highest finite bound when it falls in +Inf."""
    if not buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    previous_bound, previous_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return previous_bound
            if count == previous_count:
                return bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / (count - previous_count)
        previous_bound, previous_count = bound, count
    return previous_bound


def guardrails(
    traffic: dict[str, VersionTraffic], champion: str, challenger: str, settings: RolloutSettings
) -> tuple[dict[str, Any], list[str]]:
    """The error-rate and latency checks of a canary: their numbers, and a sentence per breach (empty: none)."""
    from mlops_provider.core.performance.statistics import compare_proportions

    ours, theirs = traffic.get(challenger, VersionTraffic()), traffic.get(champion, VersionTraffic())
    numbers_: dict[str, Any] = {"challenger_requests": int(ours.requests), "champion_requests": int(theirs.requests)}
    breaches: list[str] = []
    if min(ours.requests, theirs.requests) < settings.min_requests:
        numbers_["note"] = (
            f"error rate and latency not judged: {int(ours.requests):,} challenger and {int(theirs.requests):,} "
            f"champion requests, fewer than min_requests={settings.min_requests}"
        )
        return numbers_, breaches
    errors = compare_proportions(
        int(ours.errors), int(ours.requests), int(theirs.errors), int(theirs.requests),
        max_increase=settings.max_error_rate_increase, significance=settings.significance,
    )  # fmt: skip
    numbers_["error_rate"] = errors.to_dict()
    if errors.higher:
        breaches.append(
            f"error rate {errors.rate_a:.3%} of {errors.total_a:,} challenger requests vs {errors.rate_b:.3%} of "
            f"{errors.total_b:,} champion requests: higher by more than {settings.max_error_rate_increase:g} "
            f"({errors.test}, z = {errors.z:.2f}, one-sided p = {errors.p_value:.2g} < {settings.significance:g})"
        )
    ours_p99, theirs_p99 = ours.p99(), theirs.p99()
    if ours_p99 is not None and theirs_p99:
        ratio = ours_p99 / theirs_p99
        numbers_["latency_p99"] = {"challenger": ours_p99, "champion": theirs_p99, "ratio": ratio,
                                   "max_ratio": settings.max_latency_ratio}  # fmt: skip
        if ratio > settings.max_latency_ratio:
            breaches.append(
                f"p99 latency {ours_p99 * 1000:.1f} ms vs the champion's {theirs_p99 * 1000:.1f} ms: {ratio:.2f} "
                f"times, above max_latency_ratio={settings.max_latency_ratio:g}"
            )
    return numbers_, breaches


# -- the decision --------------------------------------------------------------------------------------------


@dataclass
class RolloutDecision:
    outcome: str
    statement: str
    mode: str
    model_name: str
    champion_version: str
    challenger_version: str
    metric: str
    test: str
    significance: float
    min_improvement: float
    challenger_rows: int
    champion_rows: int
    better: dict[str, Any] | None = None
    worse: dict[str, Any] | None = None
    guardrails: dict[str, Any] = field(default_factory=dict)
    soak_elapsed_seconds: float = 0.0
    soak_time_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _negated(evidence: Any) -> Any:
    from mlops_provider.core.performance.statistics import PairedEvidence

    return PairedEvidence(evidence.metric, evidence.rows, evidence.windows, -evidence.sum_diff, evidence.sum_sq_diff)


def _compare(joined: pd.DataFrame, mode: str, champion: str, challenger: str, task_type: str, id_columns: list[str],
             metric: str, settings: RolloutSettings) -> tuple[Any, Any, int, int, str]:  # fmt: skip
    """(better, worse, challenger rows, champion rows, test): the two one-sided decisions (or None without rows)."""
    from mlops_provider.core.performance import live
    from mlops_provider.core.performance import statistics as stats
    from mlops_provider.core.performance.statistics.unpaired import UNPAIRED_Z

    versions = joined["model_version"].astype(str) if len(joined) else joined.get("model_version")
    champion_rows = joined[(versions == champion) & (joined["role"] == "served")] if len(joined) else joined
    role = "shadow" if mode == SHADOW else "served"
    challenger_rows = joined[(versions == challenger) & (joined["role"] == role)] if len(joined) else joined
    tolerance = abs(min(settings.min_improvement, 0.0))
    if mode == SHADOW:
        test = "paired z-test on the ids both versions scored"
        if champion_rows.empty or challenger_rows.empty:
            return None, None, len(challenger_rows), len(champion_rows), test
        evidence = live.paired_evidence(champion_rows, challenger_rows, id_columns, task_type).get(metric)
        if evidence is None:
            return None, None, 0, 0, test
        common: dict[str, Any] = {"significance": settings.significance, "min_rows": settings.min_rows}
        better: Any = stats.compare_paired(evidence, min_improvement=settings.min_improvement, **common)
        worse: Any = stats.compare_paired(_negated(evidence), min_improvement=tolerance, **common)
        return better, worse, evidence.rows, evidence.rows, test
    test = UNPAIRED_Z
    estimates = {}
    for name, rows in (("challenger", challenger_rows), ("champion", champion_rows)):
        if len(rows) < 2:
            return None, None, len(challenger_rows), len(champion_rows), test
        found, note = live._estimates(rows, task_type, [metric], 0.95)
        if metric not in found:
            return None, None, len(challenger_rows), len(champion_rows), test + f" ({name}: {note})"
        estimates[name] = found[metric]
    common = {"significance": settings.significance, "min_rows": settings.min_rows}
    better = stats.compare_estimates(estimates["challenger"], estimates["champion"],
                                     min_improvement=settings.min_improvement, **common)  # fmt: skip
    worse = stats.compare_estimates(estimates["champion"], estimates["challenger"], min_improvement=tolerance, **common)
    return better, worse, len(challenger_rows), len(champion_rows), test


def decide_rollout(
    joined: pd.DataFrame,
    *,
    mode: str,
    model_name: str,
    champion_version: str,
    challenger_version: str,
    task_type: str,
    id_columns: list[str],
    settings: RolloutSettings,
    soak_elapsed: timedelta,
    soak_time: timedelta,
    service_metrics: list[str] | None = None,
    window: str = "",
) -> RolloutDecision:
    """Promote, extend or roll back the challenger (module docstring). ``joined``: ``labels.join_labels`` of the
    window's prediction log (may be empty); ``service_metrics``: the Prometheus texts of the service replicas."""
    mode = check_mode(mode)
    if str(champion_version) == str(challenger_version):
        raise ConfigurationError(
            f"{model_name} v{challenger_version} is the champion itself; roll out another version."
        )
    metric = settings.metric_for(task_type, mode)
    better, worse, challenger_rows, champion_rows, test = _compare(
        joined, mode, str(champion_version), str(challenger_version), task_type, id_columns, metric, settings
    )
    checks: dict[str, Any] = {}
    breaches: list[str] = []
    if service_metrics and mode == SHADOW:
        # A shadow answers no request: the service counts no request or error of it, and times it per batch.
        checks = {"note": "error rate and latency are judged in canary: a shadow answers no request"}
    elif service_metrics:
        traffic = service_traffic(service_metrics, model_name)
        checks, breaches = guardrails(traffic, str(champion_version), str(challenger_version), settings)
    head = (
        f"{model_name}: {mode} of version {challenger_version} against champion {champion_version}"
        f"{' on predictions made in ' + window if window else ''}, {metric} by {test} at level "
        f"{settings.significance:g} (min_improvement {settings.min_improvement:g})"
    )
    soak = f"soak {_hours(soak_elapsed)} of {_hours(soak_time)}"
    if breaches:
        outcome, why = ROLLBACK, "guardrail breached: " + "; ".join(breaches)
    elif worse is not None and worse.outcome == "promote":
        outcome, why = ROLLBACK, _worse_text(worse, settings, challenger_rows, champion_rows)
    elif better is None or better.outcome == "wait":
        reason = (
            better.reason.removeprefix("wait: ")
            if better is not None
            else (f"{challenger_rows:,} labelled rows of the challenger and {champion_rows:,} of the champion")
        )
        outcome, why = EXTEND, f"insufficient evidence: {reason} (min_labelled_rows={settings.min_rows})"
    elif soak_elapsed < soak_time:
        outcome, why = EXTEND, f"the soak time is not over ({soak}); so far: {better.reason}"
    elif better.outcome == "promote":
        outcome, why = PROMOTE, better.reason.removeprefix("promote: ")
    else:
        outcome, why = EXTEND, f"no difference shown yet: {better.reason.removeprefix('reject: ')}"
    statement = f"{head}; {soak}: {outcome.upper()}, {why}"
    if checks.get("note"):
        statement += f". Note: {checks['note']}"
    elif checks and not breaches:
        statement += f". Guardrails held ({_guardrail_text(checks)})"
    return RolloutDecision(
        outcome=outcome,
        statement=statement.rstrip(".") + ".",
        mode=mode,
        model_name=model_name,
        champion_version=str(champion_version),
        challenger_version=str(challenger_version),
        metric=metric,
        test=test,
        significance=settings.significance,
        min_improvement=settings.min_improvement,
        challenger_rows=int(challenger_rows),
        champion_rows=int(champion_rows),
        better=better.to_dict() if better is not None else None,
        worse=worse.to_dict() if worse is not None else None,
        guardrails=checks,
        soak_elapsed_seconds=soak_elapsed.total_seconds(),
        soak_time_seconds=soak_time.total_seconds(),
    )


def _worse_text(worse: Any, settings: RolloutSettings, challenger_rows: int, champion_rows: int) -> str:
    """Why the challenger is worse, from the test with the sides swapped (its improvement is the champion's)."""
    level = f"{(1 - 2 * settings.significance) * 100:g}%"
    tolerance = abs(min(settings.min_improvement, 0.0))
    return (
        f"the challenger is worse than the champion by more than {tolerance:g}: {worse.metric} improvement "
        f"{-worse.improvement:.4g} ({level} interval {-worse.high:.4g} to {-worse.low:.4g}) on {challenger_rows:,} "
        f"challenger and {champion_rows:,} champion labelled rows, one-sided p = {worse.p_value:.2g} < "
        f"{settings.significance:g}"
    )


def _guardrail_text(checks: dict[str, Any]) -> str:
    parts = []
    if "error_rate" in checks:
        e = checks["error_rate"]
        parts.append(f"error rate {e['rate_a']:.3%} vs {e['rate_b']:.3%}, {e['test']} p = {e['p_value']:.2g}")
    if "latency_p99" in checks:
        lat = checks["latency_p99"]
        parts.append(f"p99 latency ratio {lat['ratio']:.2f} <= {lat['max_ratio']:g}")
    return "; ".join(parts)


def _hours(value: timedelta) -> str:
    seconds = value.total_seconds()
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"
