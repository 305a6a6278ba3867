"""Aliases and their history: where an alias points, the compare-and-set move, and the audit trail.

The history is one registered-model tag per alias move, ``mlops.history.000001`` ... (JSON: from, to, why,
who, when). Tags are only added, never rewritten, and sequence numbers are taken under the lock.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from mlops_provider.core import tags
from mlops_provider.core.identity import TaskIdentity
from mlops_provider.core.registry.lock import PromotionConflictError, _is_missing


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
