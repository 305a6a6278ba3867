"""Which loaded model answers a request: one immutable snapshot of the registry, swapped whole.

A request reads ``follower.routing`` once and uses only that object, so a swap by the follower (one reference
assignment, atomic in CPython) is seen entirely or not at all: no request ever mixes two snapshots or meets a
model that is still loading.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlops_provider.core.tags import CANARY_ALIAS, CHAMPION_ALIAS


def stable_hash(key: str) -> float:
    """A number in ``[0, 1)`` from ``key``: the same in every process and run (blake2b, not ``hash()``, which
    Python salts per process), so one caller lands on one side of the canary split on every replica."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """One registered version, loaded and ready to score; never changed after it is built."""

    version: str
    model: Any
    features: tuple[str, ...]
    loaded_at: datetime
    classes: tuple[str, ...] = ()
    fast: Any = None  # fastpath.ColumnFastPath for the model's first step, when it has that shape


@dataclass(frozen=True, eq=False)
class Routing:
    """What the registry said at one refresh: the champion, the canary with its share, the shadow."""

    model_name: str
    champion: LoadedModel
    canary: LoadedModel | None = None
    canary_share: float = 0.0
    shadow: LoadedModel | None = None
    resolved_at: datetime | None = None

    def route(self, key: str | None) -> tuple[LoadedModel, str]:
        """The model that answers a request with routing ``key`` and the alias it came from. Without a key, a
        random draw: the canary still gets its share of requests, only not the same callers each time."""
        if self.canary is not None and self.canary_share > 0.0:
            draw = stable_hash(key) if key is not None else random.random()
            if draw < self.canary_share:
                return self.canary, CANARY_ALIAS
        return self.champion, CHAMPION_ALIAS

    def describe(self) -> dict[str, Any]:
        """The body of ``GET /version``."""
        return {
            "model_name": self.model_name,
            "champion": {"version": self.champion.version, "loaded_at": self.champion.loaded_at.isoformat()},
            "canary": (
                {"version": self.canary.version, "share": self.canary_share} if self.canary is not None else None
            ),
            "shadow": {"version": self.shadow.version} if self.shadow is not None else None,
        }
