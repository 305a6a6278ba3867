"""The registry follower: reads the aliases and the canary share, loads new versions, swaps the routing snapshot.

A refresh is one ``get_registered_model`` call (aliases and tags come together). A version not loaded yet is
loaded here, in the follower's thread or the ``/refresh`` caller's, never in a request; only when every model
the new snapshot needs is loaded is the snapshot built and swapped in. A version that fails to load leaves the
previous snapshot serving and is tried again at the next refresh.
"""

from __future__ import annotations

import logging
import threading
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from mlops_provider.core.errors import ConfigurationError, ServiceUnreachableError
from mlops_provider.core.prediction import model_features
from mlops_provider.core.tags import CANARY_ALIAS, CANARY_SHARE, CHAMPION_ALIAS, SHADOW_ALIAS
from mlops_provider.serving.fastpath import fast_path
from mlops_provider.serving.routing import LoadedModel, Routing

log = logging.getLogger("mlops_provider.serving")


@dataclass(frozen=True)
class RegistryState:
    """What one read of the registered model says: alias -> version, and the canary's share."""

    champion: str | None
    canary: str | None
    shadow: str | None
    canary_share: float
    share_problem: str | None = None


def parse_share(text: str | None) -> tuple[float, str | None]:
    """The canary share from the tag's text and, when the text is not a decimal in [0, 1], why it was read as 0
    (no canary traffic is the safe reading of a tag nobody can interpret)."""
    if text is None or not str(text).strip():
        return 0.0, None
    try:
        share = float(str(text).strip())
    except ValueError:
        share = float("nan")
    if not 0.0 <= share <= 1.0:  # also NaN
        return 0.0, (
            f"the tag {CANARY_SHARE}={text!r} on the registered model is not a decimal in [0, 1]; no canary traffic "
            f"until it is one, e.g. 0.1"
        )
    return share, None


class RegistryFollower:
    """Holds ``routing``, the current snapshot (None until the champion is loaded), and keeps it current."""

    def __init__(self, model_name: str, tracking_uri: str, *, refresh_seconds: float = 5.0, metrics: Any = None):
        self.model_name = model_name
        self.tracking_uri = tracking_uri
        self.refresh_seconds = refresh_seconds
        self.metrics = metrics
        self.routing: Routing | None = None
        self.last_error: str | None = None
        self._loaded: dict[str, LoadedModel] = {}
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: Any = None

    # -- the registry ---------------------------------------------------------------------------------------

    def client(self) -> Any:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._client

    def read_registry(self) -> RegistryState:
        """The aliases and the share now. Refused with the fix: a model the registry does not have, a server
        that does not answer."""
        from mlflow.exceptions import MlflowException

        try:
            registered = self.client().get_registered_model(self.model_name)
        except MlflowException as error:
            if getattr(error, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
                raise ConfigurationError(
                    f"The registered model {self.model_name!r} does not exist at {self.tracking_uri}; check "
                    "--model-name (and --tracking-uri), or register a version of it first (TrainModelOperator)."
                ) from None
            raise ServiceUnreachableError(
                f"The MLflow registry at {self.tracking_uri} did not answer for {self.model_name!r}: "
                f"{error.message}; check --tracking-uri and that the server is running."
            ) from None
        except Exception as error:  # requests' connection errors, timeouts
            raise ServiceUnreachableError(
                f"The MLflow registry at {self.tracking_uri} is unreachable ({type(error).__name__}: {error}); "
                "check --tracking-uri and that the server is running."
            ) from None
        aliases = {str(k): str(v) for k, v in (registered.aliases or {}).items()}
        share, problem = parse_share((registered.tags or {}).get(CANARY_SHARE))
        return RegistryState(
            champion=aliases.get(CHAMPION_ALIAS),
            canary=aliases.get(CANARY_ALIAS),
            shadow=aliases.get(SHADOW_ALIAS),
            canary_share=share,
            share_problem=problem,
        )

    def check_champion(self) -> RegistryState:
        """The registry state at start, refused (``ConfigurationError``) when the model has no champion."""
        state = self.read_registry()
        if state.champion is None:
            raise ConfigurationError(
                f"The registered model {self.model_name!r} at {self.tracking_uri} has no {CHAMPION_ALIAS!r} alias, "
                f"so there is nothing to serve; promote a version first (PromoteModelOperator, or "
                f"MlflowClient().set_registered_model_alias({self.model_name!r}, {CHAMPION_ALIAS!r}, <version>))."
            )
        return state

    def load(self, version: str) -> LoadedModel:
        """The version's scikit-learn model, loaded once and kept while a snapshot uses it."""
        cached = self._loaded.get(version)
        if cached is not None:
            return cached
        import mlflow.sklearn

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            model = mlflow.sklearn.load_model(f"models:/{self.model_name}/{version}")
        loaded = LoadedModel(
            version=version,
            model=model,
            features=tuple(model_features(model)),
            loaded_at=datetime.now(timezone.utc),
            classes=tuple(str(c) for c in getattr(model, "classes_", ())) if hasattr(model, "predict_proba") else (),
            fast=fast_path(model),
        )
        self._loaded[version] = loaded
        return loaded

    # -- refreshing -----------------------------------------------------------------------------------------

    def refresh(self) -> Routing | None:
        """Read the registry, load what is new and swap the snapshot; returns the snapshot in force afterwards.

        Errors are logged and kept in ``last_error`` (the previous snapshot keeps serving); only one refresh
        runs at a time.
        """
        with self._refresh_lock:
            self.last_error = None
            try:
                self._refresh()
            except Exception as error:
                self.last_error = f"{type(error).__name__}: {error}"
                log.error("Refresh of %s failed, the previous models keep serving: %s", self.model_name, error)
                if self.metrics is not None:
                    self.metrics.refresh_errors.labels(self.model_name).inc()
            return self.routing

    def _refresh(self) -> None:
        state = self.read_registry()
        if state.share_problem:
            log.warning("%s", state.share_problem)
        current = self.routing
        if state.champion is None:
            if current is not None:
                log.warning(
                    "%s has no %r alias any more; version %s keeps serving until one is set.",
                    self.model_name, CHAMPION_ALIAS, current.champion.version,
                )  # fmt: skip
                return
            raise ConfigurationError(f"{self.model_name!r} has no {CHAMPION_ALIAS!r} alias; promote a version.")
        champion = self.load(state.champion)
        canary = self._optional(state.canary, CANARY_ALIAS)
        shadow = self._optional(state.shadow, SHADOW_ALIAS)
        routing = Routing(
            model_name=self.model_name,
            champion=champion,
            canary=canary,
            canary_share=state.canary_share if canary is not None else 0.0,
            shadow=shadow,
            resolved_at=datetime.now(timezone.utc),
        )
        changed = _changes(current, routing)
        self.routing = routing  # the swap: one reference, seen whole by every request after this line
        in_use = {m.version for m in (champion, canary, shadow) if m is not None}
        for version in [v for v in self._loaded if v not in in_use]:
            del self._loaded[version]
        for alias, old, new in changed:
            log.info("%s@%s: version %s -> %s", self.model_name, alias, old, new)
            if self.metrics is not None:
                self.metrics.swaps.labels(self.model_name, alias).inc()
        if self.metrics is not None:
            self.metrics.canary_share.labels(self.model_name).set(routing.canary_share)

    def _optional(self, version: str | None, alias: str) -> LoadedModel | None:
        """A canary or shadow model; one that fails to load is left out (logged) rather than holding back a
        champion move, and is tried again at the next refresh."""
        if version is None:
            return None
        try:
            return self.load(version)
        except Exception as error:
            log.error(
                "Could not load %s version %s (@%s); serving without it: %s", self.model_name, version, alias, error
            )
            self.last_error = f"{alias} version {version}: {error}"
            return None

    def start(self) -> None:
        """Refresh now and then every ``refresh_seconds`` in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="mlops-serve-follower", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.refresh()
        while not self._stop.wait(self.refresh_seconds if self.routing is not None else min(self.refresh_seconds, 1)):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()


def _changes(old: Routing | None, new: Routing) -> list[tuple[str, str | None, str | None]]:
    def version(routing: Routing | None, alias: str) -> str | None:
        model = getattr(routing, alias, None) if routing is not None else None
        return model.version if model is not None else None

    return [
        (alias, version(old, alias), version(new, alias))
        for alias in (CHAMPION_ALIAS, CANARY_ALIAS, SHADOW_ALIAS)
        if version(old, alias) != version(new, alias)
    ]
