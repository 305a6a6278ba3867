"""``PromotionLock``: mutual exclusion for the alias moves of one registered model, across processes and
machines, built on the one atomic create-if-absent MLflow has (registering a model name that exists fails).

A lock older than ``stale_after`` seconds belongs to a holder that died (a killed worker, a server restarted
under it): the next promoter breaks it and, once it holds the lock itself, records the takeover in the model's
history (action ``lock_takeover``: whose lock, held since when, how old), so the audit trail says why a lock
disappeared.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from mlops_provider.core import tags
from mlops_provider.core.errors import MlopsError

LOCK_SUFFIX = ".mlops-lock"
DEFAULT_STALE_AFTER = 1800.0

log = logging.getLogger(__name__)


class PromotionConflictError(MlopsError):
    """The alias moved (or the lock stayed held) while this promotion was deciding."""


def _is_already_exists(error: Exception) -> bool:
    return getattr(error, "error_code", "") == "RESOURCE_ALREADY_EXISTS" or "already exists" in str(error).lower()


def _is_missing(error: Exception) -> bool:
    return getattr(error, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"


class PromotionLock:
    """Mutual exclusion for the alias moves of one registered model, across processes and machines.

    :param timeout: seconds to wait for the lock before ``PromotionConflictError``.
    :param stale_after: a lock older than this many seconds is taken over (its holder is presumed dead); keep
        it well above the longest time a promotion holds the lock (a few registry calls).
    :param actor: who takes over a stale lock, for the history entry (default: ``owner``).
    """

    def __init__(
        self,
        client: Any,
        model_name: str,
        *,
        owner: str,
        timeout: float = 600.0,
        stale_after: float = DEFAULT_STALE_AFTER,
        poll: float = 0.2,
        actor: dict[str, str] | None = None,
    ) -> None:
        self.client = client
        self.model_name = model_name
        self.lock_name = f"{model_name}{LOCK_SUFFIX}"
        self.owner = f"{owner} [{uuid.uuid4().hex[:8]}]"
        self.timeout = timeout
        self.stale_after = stale_after
        self.poll = poll
        self.actor = actor
        self.held = False
        self.takeover: dict[str, Any] | None = None  # the history entry of a stale lock this lock replaced

    def acquire(self) -> None:
        from mlflow.exceptions import MlflowException

        deadline = time.monotonic() + self.timeout
        broken: dict[str, Any] | None = None
        while True:
            try:
                self.client.create_registered_model(
                    self.lock_name,
                    tags={tags.LOCK_OWNER: self.owner, tags.LOCK_OF: self.model_name},
                    description=f"Promotion lock of {self.model_name}, held by {self.owner}. Deleted on release.",
                )
                self.held = True
                break
            except MlflowException as error:
                # MLflow answers a create that lost the race with a lookup of the winner; when the winner
                # released in between, that lookup says RESOURCE_DOES_NOT_EXIST. Both mean: try again.
                if not (_is_already_exists(error) or _is_missing(error)):
                    raise
            broken = self._break_if_stale() or broken
            if time.monotonic() > deadline:
                raise PromotionConflictError(
                    f"Could not take the promotion lock of {self.model_name!r} within {self.timeout:.0f}s: "
                    f"{self._holder_description()}. If that holder is dead, delete the registered model "
                    f"{self.lock_name!r} (it is broken automatically after {self.stale_after:.0f}s)."
                )
            time.sleep(self.poll)
        if broken is not None:
            try:
                self._record_takeover(broken)
            except BaseException:
                self.release()
                raise

    def _record_takeover(self, broken: dict[str, Any]) -> None:
        """Append the takeover of a stale lock to the model's history; called holding the lock, as every
        history entry is (the sequence number is the next free one)."""
        from mlflow.exceptions import MlflowException

        from mlops_provider.core.registry.history import append_history

        entry = {
            "action": tags.LOCK_TAKEOVER_ACTION,
            "lock": self.lock_name,
            **broken,
            "stale_after": self.stale_after,
            "taken_by": self.owner,
            "by": self.actor or {"owner": self.owner},
        }
        log.warning(
            "Took over the promotion lock of %r: it was held by %s since %s (%.0f s, more than stale_after=%.0f s), "
            "so its holder is presumed dead. Recorded in the model's history.",
            self.model_name, broken["holder"], broken["held_since"], broken["age_seconds"], self.stale_after,
        )  # fmt: skip
        try:
            self.takeover = append_history(self.client, self.model_name, entry)
        except MlflowException as error:
            if not _is_missing(error):
                raise
            log.warning("%r is not a registered model: the lock takeover is not recorded.", self.model_name)

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

    def _break_if_stale(self) -> dict[str, Any] | None:
        """Delete the lock if it is older than ``stale_after``; returns who held it, since when and how long
        (None when nothing was broken)."""
        from mlflow.exceptions import MlflowException

        model = self._lock_model()
        if model is None:
            return None
        age = time.time() - model.creation_timestamp / 1000
        if age < self.stale_after:
            return None
        # Delete only the lock we judged stale: a fresh one re-created meanwhile has a new timestamp.
        current = self._lock_model()
        if current is None or current.creation_timestamp != model.creation_timestamp:
            return None
        try:
            self.client.delete_registered_model(self.lock_name)
        except MlflowException as error:
            if not _is_missing(error):
                raise
            return None  # broken by another promoter meanwhile: that one records it
        held_since = datetime.fromtimestamp(model.creation_timestamp / 1000, timezone.utc)
        return {
            "holder": model.tags.get(tags.LOCK_OWNER, "unknown"),
            "held_since": held_since.isoformat(timespec="milliseconds"),
            "age_seconds": round(age, 1),
        }

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
