"""Promotion: the gate, the lock, the compare-and-set move and the audit, together; replayed on a retry."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from mlops_provider.core import tags
from mlops_provider.core.identity import TaskIdentity
from mlops_provider.core.registry.gate import evaluate_gate, validate_thresholds
from mlops_provider.core.registry.history import alias_version, move_alias, utc_now
from mlops_provider.core.registry.lock import DEFAULT_STALE_AFTER, PromotionConflictError, PromotionLock
from mlops_provider.core.slicing import is_group_metric


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
    waiting: bool = False  # the holdout gate passed, but the live evidence is not enough yet to decide
    live_evidence: dict[str, Any] | None = None  # the shadow comparison behind a live-evidence decision

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
    lock_stale_after: float = DEFAULT_STALE_AFTER,
    log: Any = None,
    move: bool = True,
    live_evidence: Any = None,
    explain: Any = None,
) -> PromotionOutcome:
    """Gate ``version`` against the current ``alias`` holder and move the alias if it passes.

    ``score(version) -> metrics`` scores a version on the evaluation data (called once per version). The
    alias moves under ``PromotionLock`` and only if it still points at the champion the challenger was
    compared with; otherwise the challenger is compared again with the new champion, up to
    ``max_conflict_retries`` times. A lock older than ``lock_stale_after`` seconds (its holder died) is taken
    over, and the takeover recorded in the history. The decision is recorded on the challenger version's tags
    with ``actor``
    (default: ``identity.actor()``); a call from the same task (a retry: same ``identity.key``) returns that
    recorded decision.

    With ``move=False`` only the gate runs (for a human approval step before the move): the decision is
    recorded as ``passed`` or ``rejected`` and the alias stays where it is.

    ``live_evidence(champion_version) -> dict`` (optional) judges the challenger on live traffic after it
    passed the holdout gate: ``{"outcome": "promote" | "reject" | "wait", "reason": ...}``. "wait" records the
    decision ``waiting`` and moves nothing; with no champion (cold start) there is nothing to compare with.

    ``explain(version) -> {metric: text}`` (optional, called after ``score(version)``) gives the groups and
    numbers behind slice and fairness metrics, which a rejection's reasons then name.
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

    def explained(v: str) -> dict[str, str] | None:
        return explain(v) if explain is not None else None

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
            # Nothing to move, but the version is still held to the value thresholds (min/max).
            itself = evaluate_gate(
                scored(str(version)), None, thresholds, champion_version=None, explanations=explained(str(version))
            )
            if itself.promote:
                return outcome(True, [], None, None, note=f"already {alias}")
            result = outcome(
                False, itself.reasons, None, None,
                note=f"already {alias}, and it fails the gate: it stays {alias} until another version replaces it "
                "(RollbackModelOperator or a better challenger)",
            )  # fmt: skip
            _record_decision(client, result, thresholds, actor)
            return result
        decision = evaluate_gate(
            scored(str(version)), scored(champion) if champion else None, thresholds, champion_version=champion,
            explanations=explained(str(version)),
        )  # fmt: skip
        if log is not None:
            log.info("Gate for %s v%s (attempt %d):\n%s", model_name, version, attempt + 1, decision.summary())
        if not decision.promote:
            result = outcome(False, decision.reasons, champion, None)
            _record_decision(client, result, thresholds, actor)
            return result
        live = live_evidence(champion) if live_evidence is not None and champion is not None else None
        if live is not None and live["outcome"] != "promote":
            result = outcome(False, [live["reason"]], champion, None)
            result.waiting = live["outcome"] == "wait"
            result.live_evidence = live
            if log is not None:
                log.info("Live evidence for %s v%s: %s", model_name, version, live["reason"])
            _record_decision(client, result, thresholds, actor)
            return result
        if not move:
            result = outcome(False, [], champion, None, note="gate passed; the alias moves after approval", passed=True)
            _record_decision(client, result, thresholds, actor)
            return result
        lock = PromotionLock(
            client, model_name, owner=identity.owner, timeout=lock_timeout, stale_after=lock_stale_after, actor=actor
        )
        try:
            with lock:
                entry = move_alias(
                    client, model_name, alias, str(version), expected_from=champion,
                    action="promote", reason=decision.summary()[:4000], actor=actor,
                )  # fmt: skip
        except PromotionConflictError as conflict:
            if log is not None:
                log.warning("%s Comparing again with the new champion.", conflict)
            continue
        note = ""
        if lock.takeover is not None:
            note = (
                f"took over the stale promotion lock held by {lock.takeover['holder']} for "
                f"{lock.takeover['age_seconds']:.0f}s (history #{lock.takeover['seq']})"
            )
        result = outcome(True, [], champion, entry["seq"], note=note)
        result.live_evidence = live
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
    decision = (
        "promoted"
        if result.promoted
        else "passed"
        if result.gate_passed
        else "waiting"
        if result.waiting
        else "rejected"
    )
    client.set_model_version_tag(result.model_name, result.version, tags.GATE_DECISION, decision)
    client.set_model_version_tag(result.model_name, result.version, tags.GATE_DETAIL, _detail_text(detail, thresholds))
    client.set_model_version_tag(result.model_name, result.version, tags.GATE_BY, json.dumps(actor))


def _detail_text(detail: dict[str, Any], thresholds: dict, limit: int = 5000) -> str:
    """The decision as JSON within MLflow's tag limit: when the per-slice and fairness metrics make it too long,
    only those the gate names stay (the full set is in the task's XCom and the training run)."""
    text = json.dumps(detail, default=str)
    if len(text) <= limit:
        return text
    compact = dict(detail)
    for key in ("challenger_metrics", "champion_metrics"):
        if compact.get(key):
            compact[key] = {k: v for k, v in compact[key].items() if not is_group_metric(k) or k in thresholds}
    return json.dumps(compact, default=str)[:limit]


def _recorded_decision(challenger: Any, identity: TaskIdentity) -> PromotionOutcome | None:
    by = challenger.tags.get(tags.GATE_BY)
    if not by or not identity.same_task(json.loads(by)):
        return None
    detail = json.loads(challenger.tags.get(tags.GATE_DETAIL, "{}"))
    fields = {k: detail[k] for k in PromotionOutcome.__dataclass_fields__ if k in detail}
    fields["replayed"] = True
    return PromotionOutcome(**fields)
