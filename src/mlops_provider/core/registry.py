"""Gated, serialised, audited and reversible alias moves in the MLflow model registry.

MLflow moves an alias atomically but offers no compare-and-set and keeps no alias history. This module adds:

* ``evaluate_gate``: the decision, from the challenger's and the champion's metrics on the same data;
* ``PromotionLock``: a mutex per registered model that holds across processes and machines. It uses the one
  atomic create-if-absent MLflow has: registering a model name that already exists fails. Holding the lock
  means owning the registered model ``<name>.mlops-lock``; releasing it deletes that model. A lock older than
  ``stale_after`` seconds (its holder died) may be broken by the next promoter;
* ``move_alias``: under the lock, checks that the alias still points where the caller read it (the
  compare-and-set MLflow lacks), keeps the old target under ``previous_<alias>`` and appends the move to the
  model's history;
* the history: one registered-model tag per alias move, ``mlops.history.000001`` ... (JSON: from, to, why,
  who, when). Tags are only added, never rewritten, and sequence numbers are taken under the lock.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from mlops_provider.core import tags
from mlops_provider.core.errors import ConfigurationError, MlopsError
from mlops_provider.core.identity import TaskIdentity

LOCK_SUFFIX = ".mlops-lock"
LOWER_IS_BETTER = {"rmse", "mae", "mse", "log_loss", "mape", "max_error", "brier_score"}
VALUE_KEYS = {"min", "max"}
CHANGE_KEYS = {"min_absolute_change", "min_relative_change"}
ALLOWED_KEYS = VALUE_KEYS | CHANGE_KEYS | {"greater_is_better"}


class PromotionConflictError(MlopsError):
    """The alias moved (or the lock stayed held) while this promotion was deciding."""


# -- the gate ----------------------------------------------------------------------------------------


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
    return metric.lower() not in LOWER_IS_BETTER


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
    return thresholds


def evaluate_gate(
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    thresholds: dict[str, dict[str, Any]],
    *,
    champion_version: str | None = None,
) -> GateDecision:
    """Decide on metrics both models got on the same evaluation data.

    Value thresholds (``min``/``max``) always apply. Change thresholds compare with the champion
    (``min_absolute_change``: challenger must beat it by at least this much; ``min_relative_change``: by this
    fraction of the champion's value), in the metric's better direction (``greater_is_better``, inferred from
    the name: rmse, mae, mse, log_loss... are better lower). With no champion (cold start) they are skipped.
    """
    validate_thresholds(thresholds)
    checks: list[GateCheck] = []
    for metric, rules in thresholds.items():
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
    reasons = [
        f"{c.metric} {c.kind} {c.required:g} not met ({'n/a' if c.actual is None else f'{c.actual:.6g}'})"
        for c in checks
        if not c.passed
    ]
    return GateDecision(
        promote=not reasons,
        checks=checks,
        challenger_metrics=dict(challenger),
        champion_metrics=dict(champion) if champion is not None else None,
        champion_version=champion_version,
        cold_start=champion is None,
        reasons=reasons,
    )


# -- the lock ----------------------------------------------------------------------------------------


def _is_already_exists(error: Exception) -> bool:
    return getattr(error, "error_code", "") == "RESOURCE_ALREADY_EXISTS" or "already exists" in str(error).lower()


def _is_missing(error: Exception) -> bool:
    return getattr(error, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"


class PromotionLock:
    """Mutual exclusion for the alias moves of one registered model, across processes and machines."""

    def __init__(
        self,
        client: Any,
        model_name: str,
        *,
        owner: str,
        timeout: float = 600.0,
        stale_after: float = 1800.0,
        poll: float = 0.2,
    ) -> None:
        self.client = client
        self.model_name = model_name
        self.lock_name = f"{model_name}{LOCK_SUFFIX}"
        self.owner = f"{owner} [{uuid.uuid4().hex[:8]}]"
        self.timeout = timeout
        self.stale_after = stale_after
        self.poll = poll
        self.held = False

    def acquire(self) -> None:
        from mlflow.exceptions import MlflowException

        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self.client.create_registered_model(
                    self.lock_name,
                    tags={tags.LOCK_OWNER: self.owner, tags.LOCK_OF: self.model_name},
                    description=f"Promotion lock of {self.model_name}, held by {self.owner}. Deleted on release.",
                )
                self.held = True
                return
            except MlflowException as error:
                # MLflow answers a create that lost the race with a lookup of the winner; when the winner
                # released in between, that lookup says RESOURCE_DOES_NOT_EXIST. Both mean: try again.
                if not (_is_already_exists(error) or _is_missing(error)):
                    raise
            self._break_if_stale()
            if time.monotonic() > deadline:
                raise PromotionConflictError(
                    f"Could not take the promotion lock of {self.model_name!r} within {self.timeout:.0f}s: "
                    f"{self._holder_description()}. If that holder is dead, delete the registered model "
                    f"{self.lock_name!r} (it is broken automatically after {self.stale_after:.0f}s)."
                )
            time.sleep(self.poll)

    def _lock_model(self) -> Any | None:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_registered_model(self.lock_name)
        except MlflowException as error:
            if _is_missing(error):
                return None
            raise

    def _holder_description(self) -> str:
        model = self._lock_model()
        if model is None:
            return "the lock was released meanwhile"
        return f"held by {model.tags.get(tags.LOCK_OWNER, 'unknown')} since {model.creation_timestamp} ms"

    def _break_if_stale(self) -> None:
        from mlflow.exceptions import MlflowException

        model = self._lock_model()
        if model is None:
            return
        age = time.time() - model.creation_timestamp / 1000
        if age < self.stale_after:
            return
        # Delete only the lock we judged stale: a fresh one re-created meanwhile has a new timestamp.
        current = self._lock_model()
        if current is None or current.creation_timestamp != model.creation_timestamp:
            return
        try:
            self.client.delete_registered_model(self.lock_name)
        except MlflowException as error:
            if not _is_missing(error):
                raise

    def release(self) -> None:
        from mlflow.exceptions import MlflowException

        if not self.held:
            return
        self.held = False
        model = self._lock_model()
        if model is not None and model.tags.get(tags.LOCK_OWNER) != self.owner:
            return  # broken as stale and taken by someone else: not ours to delete
        try:
            self.client.delete_registered_model(self.lock_name)
        except MlflowException as error:
            if not _is_missing(error):
                raise

    def __enter__(self) -> PromotionLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# -- aliases and history -----------------------------------------------------------------------------


def alias_version(client: Any, model_name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException as error:
        if _is_missing(error) or getattr(error, "error_code", "") == "INVALID_PARAMETER_VALUE":
            return None
        raise


def read_history(client: Any, model_name: str) -> list[dict[str, Any]]:
    """Every recorded alias move of ``model_name``, oldest first."""
    model_tags = client.get_registered_model(model_name).tags
    entries = [json.loads(value) for key, value in model_tags.items() if key.startswith(tags.HISTORY_PREFIX)]
    return sorted(entries, key=lambda entry: entry["seq"])


def append_history(client: Any, model_name: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Add one entry (call under the lock: the sequence number is the next free one)."""
    history = read_history(client, model_name)
    record = {"seq": (history[-1]["seq"] + 1) if history else 1, "time": utc_now(), **entry}
    client.set_registered_model_tag(model_name, f"{tags.HISTORY_PREFIX}{record['seq']:06d}", json.dumps(record))
    return record


def move_alias(
    client: Any,
    model_name: str,
    alias: str,
    to_version: str,
    *,
    expected_from: str | None,
    action: str,
    reason: str,
    actor: dict[str, str],
) -> dict[str, Any]:
    """Point ``model_name@alias`` at ``to_version`` if it still points at ``expected_from``; record the move.

    Call under ``PromotionLock``. The old target keeps the alias ``previous_<alias>``.
    """
    current = alias_version(client, model_name, alias)
    if current != expected_from:
        raise PromotionConflictError(
            f"{model_name}@{alias} points at version {current}, not {expected_from} as read before deciding."
        )
    client.get_model_version(model_name, to_version)  # fails clearly for an unknown version
    if current is not None:
        client.set_registered_model_alias(model_name, f"previous_{alias}", current)
    client.set_registered_model_alias(model_name, alias, to_version)
    return append_history(
        client,
        model_name,
        {
            "action": action,
            "alias": alias,
            "from_version": current,
            "to_version": str(to_version),
            "reason": reason,
            "by": actor,
        },
    )


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def find_own_move(history: list[dict[str, Any]], identity: TaskIdentity, action: str) -> dict[str, Any] | None:
    """The alias move ``identity``'s task already made in its DAG run (found again by a retry), if any."""
    for entry in reversed(history):
        if entry.get("action") == action and identity.same_task(entry.get("by")):
            return entry
    return None


# -- promotion: gate + lock + compare-and-set + audit -------------------------------------------------------


@dataclass
class PromotionOutcome:
    model_name: str
    version: str
    alias: str
    promoted: bool
    reasons: list[str]
    challenger_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    champion_version: str | None
    history_seq: int | None
    note: str = ""
    replayed: bool = False  # True when a retry returned the decision an earlier try recorded
    gate_passed: bool = False  # with move=False the alias stays put even when this is True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def promote_version(
    client: Any,
    model_name: str,
    version: str,
    *,
    thresholds: dict[str, dict[str, Any]],
    score: Any,
    alias: str = "champion",
    identity: TaskIdentity,
    actor: dict[str, str] | None = None,
    max_conflict_retries: int = 10,
    lock_timeout: float = 600.0,
    log: Any = None,
    move: bool = True,
) -> PromotionOutcome:
    """Gate ``version`` against the current ``alias`` holder and move the alias if it passes.

    ``score(version) -> metrics`` scores a version on the evaluation data (called once per version). The
    alias moves under ``PromotionLock`` and only if it still points at the champion the challenger was
    compared with; otherwise the challenger is compared again with the new champion, up to
    ``max_conflict_retries`` times. The decision is recorded on the challenger version's tags with ``actor``
    (default: ``identity.actor()``); a call from the same task (a retry: same ``identity.key``) returns that
    recorded decision.

    With ``move=False`` only the gate runs (for a human approval step before the move): the decision is
    recorded as ``passed`` or ``rejected`` and the alias stays where it is.
    """
    validate_thresholds(thresholds)
    actor = actor or identity.actor()
    challenger = client.get_model_version(model_name, version)
    earlier = _recorded_decision(challenger, identity)
    if earlier is not None:
        return earlier
    scores: dict[str, dict[str, float]] = {}

    def scored(v: str) -> dict[str, float]:
        if v not in scores:
            scores[v] = score(v)
        return scores[v]

    def outcome(
        promoted: bool, reasons: list[str], champion: str | None, seq: int | None, note: str = "", passed: bool = False
    ) -> PromotionOutcome:
        return PromotionOutcome(
            model_name=model_name,
            version=str(version),
            alias=alias,
            promoted=promoted,
            reasons=reasons,
            challenger_metrics=scored(str(version)),
            champion_metrics=scores.get(champion) if champion else None,
            champion_version=champion,
            history_seq=seq,
            note=note,
            gate_passed=promoted or passed,
        )

    for attempt in range(max_conflict_retries + 1):
        champion = alias_version(client, model_name, alias)
        if champion == str(version):
            return outcome(True, [], None, None, note=f"already {alias}")
        decision = evaluate_gate(
            scored(str(version)), scored(champion) if champion else None, thresholds, champion_version=champion
        )
        if log is not None:
            log.info("Gate for %s v%s (attempt %d):\n%s", model_name, version, attempt + 1, decision.summary())
        if not decision.promote:
            result = outcome(False, decision.reasons, champion, None)
            _record_decision(client, result, thresholds, actor)
            return result
        if not move:
            result = outcome(False, [], champion, None, note="gate passed; the alias moves after approval", passed=True)
            _record_decision(client, result, thresholds, actor)
            return result
        try:
            with PromotionLock(client, model_name, owner=identity.owner, timeout=lock_timeout):
                entry = move_alias(
                    client, model_name, alias, str(version), expected_from=champion,
                    action="promote", reason=decision.summary()[:4000], actor=actor,
                )  # fmt: skip
        except PromotionConflictError as conflict:
            if log is not None:
                log.warning("%s Comparing again with the new champion.", conflict)
            continue
        result = outcome(True, [], champion, entry["seq"])
        _record_decision(client, result, thresholds, actor)
        return result
    result = outcome(
        False, [f"the {alias} alias moved {max_conflict_retries + 1} times while this promotion was deciding"],
        None, None,
    )  # fmt: skip
    _record_decision(client, result, thresholds, actor)
    return result


def _record_decision(client: Any, result: PromotionOutcome, thresholds: dict, actor: dict[str, str]) -> None:
    detail = {**result.to_dict(), "thresholds": thresholds, "time": utc_now()}
    decision = "promoted" if result.promoted else "passed" if result.gate_passed else "rejected"
    client.set_model_version_tag(result.model_name, result.version, tags.GATE_DECISION, decision)
    client.set_model_version_tag(
        result.model_name, result.version, tags.GATE_DETAIL, json.dumps(detail, default=str)[:5000]
    )
    client.set_model_version_tag(result.model_name, result.version, tags.GATE_BY, json.dumps(actor))


def _recorded_decision(challenger: Any, identity: TaskIdentity) -> PromotionOutcome | None:
    by = challenger.tags.get(tags.GATE_BY)
    if not by or not identity.same_task(json.loads(by)):
        return None
    detail = json.loads(challenger.tags.get(tags.GATE_DETAIL, "{}"))
    fields = {k: detail[k] for k in PromotionOutcome.__dataclass_fields__ if k in detail}
    fields["replayed"] = True
    return PromotionOutcome(**fields)
