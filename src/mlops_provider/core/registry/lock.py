"""``PromotionLock``: mutual exclusion for the alias moves of one registered model, across processes and
machines, built on the one atomic create-if-absent MLflow has (registering a model name that exists fails)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from mlops_provider.core import tags
from mlops_provider.core.errors import MlopsError

LOCK_SUFFIX = ".mlops-lock"


class PromotionConflictError(MlopsError):
    """The alias moved (or the lock stayed held) while this promotion was deciding."""


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
