"""MLflow tracking settings: where the tracking server and registry are and how to authenticate.

MLflow reads credentials from environment variables at every request (``MLFLOW_TRACKING_USERNAME`` and
``MLFLOW_TRACKING_PASSWORD``), including when the fluent API logs a model. ``TrackingSettings.environment()``
puts them there only for the duration of a block and restores the previous environment afterwards, so a
password never outlives the call that needed it. Blocks that need the same values share one lease;
a block that needs different values waits until the others are done.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mlops_provider.core.errors import ConfigurationError

MLOPS_HOME_ENV = "MLOPS_HOME"
DEFAULT_MLOPS_HOME = ".mlops"


def mlops_home() -> Path:
    """Root of the embedded state (MLflow database, artifacts, reports): ``$MLOPS_HOME`` or ``./.mlops``."""
    return Path(os.environ.get(MLOPS_HOME_ENV) or DEFAULT_MLOPS_HOME).expanduser().resolve()


@dataclass(frozen=True)
class TrackingSettings:
    tracking_uri: str
    registry_uri: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    ui_url: str | None = None
    artifact_root: str | None = None
    insecure_tls: bool = False
    embedded: bool = False

    @property
    def safe_tracking_uri(self) -> str:
        return redact_uri(self.tracking_uri)

    @property
    def base_ui_url(self) -> str | None:
        """Where a person opens the MLflow UI: ``ui_url`` when given, else an HTTP tracking URI."""
        if self.ui_url:
            return self.ui_url.rstrip("/")
        if self.tracking_uri.startswith(("http://", "https://")):
            return redact_uri(self.tracking_uri).rstrip("/")
        return None

    def environment_values(self) -> dict[str, str | None]:
        """The MLflow variables a block runs with; ``None`` means the variable must be unset."""
        return {
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "MLFLOW_REGISTRY_URI": self.registry_uri,
            "MLFLOW_TRACKING_USERNAME": self.username,
            "MLFLOW_TRACKING_PASSWORD": self.password,
            "MLFLOW_TRACKING_TOKEN": self.token,
            "MLFLOW_TRACKING_INSECURE_TLS": "true" if self.insecure_tls else None,
            # Download progress bars go to stderr, which Airflow's task log shows as ERROR lines.
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"),
        }

    @contextmanager
    def environment(self) -> Iterator[None]:
        with _ENVIRONMENT.lease(self.environment_values()):
            yield

    def with_ui_url(self, ui_url: str | None) -> TrackingSettings:
        return replace(self, ui_url=ui_url)


def embedded_settings(home: Path | None = None) -> TrackingSettings:
    """The one-machine default: a SQLite tracking and registry store with artifacts under ``$MLOPS_HOME``."""
    root = (home or mlops_home()) / "mlflow"
    root.mkdir(parents=True, exist_ok=True)
    (root / "artifacts").mkdir(exist_ok=True)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    return TrackingSettings(
        tracking_uri=uri, registry_uri=uri, artifact_root=(root / "artifacts").as_uri(), embedded=True
    )


@contextmanager
def embedded_store_first_use(settings: TrackingSettings) -> Iterator[bool]:
    """Around creating a client: on the embedded store's first use, hold a file lock and yield True (the caller
    then touches the registry too), so the store is created exactly once.

    MLflow creates and migrates a new SQLite store when a client is made; task processes that start together (a
    LocalExecutor's first tasks) would race that migration and fail ("table _alembic_tmp_tags already exists").
    A marker file beside the database makes every later use a single ``stat``.
    """
    if not settings.embedded or not settings.tracking_uri.startswith("sqlite:///"):
        yield False
        return
    database = Path(settings.tracking_uri[len("sqlite:///") :])
    ready = database.with_name(f"{database.name}.ready")
    if ready.exists():
        yield False
        return
    import fcntl

    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(f"{database.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        first = not ready.exists()
        yield first
        if first:
            ready.touch()


def server_uri(host: str, port: int | None = None, scheme: str | None = None, path: str = "") -> str:
    """Build ``scheme://host:port/path`` from connection fields; ``host`` may already carry a scheme."""
    host = host.strip()
    if "://" in host:
        parts = urlsplit(host)
        netloc = parts.netloc if port is None or parts.port else f"{parts.netloc}:{port}"
        return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    netloc = f"{host}:{port}" if port else host
    return f"{(scheme or 'http').lower()}://{netloc}{path}".rstrip("/")


def redact_uri(uri: str) -> str:
    """Hide a password embedded in a URI (``http://user:secret@host`` -> ``http://user:***@host``)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class _EnvironmentLeases:
    """Sets environment variables for the lifetime of overlapping blocks that agree on their values."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._holders = 0
        self._values: dict[str, str | None] | None = None
        self._saved: dict[str, str | None] = {}
        self._saved_fluent: dict[str, Any] = {}
        self._threads: dict[int, int] = {}

    @contextmanager
    def lease(self, values: dict[str, str | None]) -> Iterator[None]:
        me = threading.get_ident()
        with self._condition:
            if self._threads.get(me) and self._values != values:
                raise ConfigurationError(
                    "Two MLflow connections with different servers or credentials are used inside one "
                    "another in the same thread; finish the calls on one before starting the other."
                )
            while self._holders and self._values != values:
                self._condition.wait()
            if not self._holders:
                self._values = dict(values)
                self._saved = {name: os.environ.get(name) for name in values}
                self._saved_fluent = _take_fluent_uris()
                _apply(values)
            self._holders += 1
            self._threads[me] = self._threads.get(me, 0) + 1
        try:
            yield
        finally:
            with self._condition:
                self._holders -= 1
                self._threads[me] -= 1
                if not self._threads[me]:
                    del self._threads[me]
                if not self._holders:
                    _apply(self._saved)
                    _restore_fluent_uris(self._saved_fluent)
                    self._values, self._saved = None, {}
                    self._condition.notify_all()


_FLUENT_URI_GLOBALS = (
    ("mlflow.tracking._tracking_service.utils", "_tracking_uri"),
    ("mlflow.tracking._model_registry.utils", "_registry_uri"),
)


def _take_fluent_uris() -> dict[str, Any]:
    """Clear URIs set with ``mlflow.set_tracking_uri``/``set_registry_uri`` so the leased environment
    variables decide where MLflow's fluent API goes; returns what was there. MLflow not imported yet: no-op."""
    import sys

    saved = {}
    for module_name, attribute in _FLUENT_URI_GLOBALS:
        module = sys.modules.get(module_name)
        if module is not None:
            saved[f"{module_name}.{attribute}"] = getattr(module, attribute, None)
            setattr(module, attribute, None)
    return saved


def _restore_fluent_uris(saved: dict[str, Any]) -> None:
    import sys

    for module_name, attribute in _FLUENT_URI_GLOBALS:
        module = sys.modules.get(module_name)
        key = f"{module_name}.{attribute}"
        if module is not None:
            setattr(module, attribute, saved.get(key))


def _apply(values: dict[str, Any]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = str(value)


_ENVIRONMENT = _EnvironmentLeases()
