"""MLflow hook: an Airflow ``mlflow`` connection -> an authenticated ``MlflowClient``.

Connection fields:

* ``host`` / ``port`` / ``schema``: the tracking server (``schema`` is the URL scheme, ``http`` by default);
* ``login`` / ``password``: MLflow basic auth (``mlflow server --app-name basic-auth``);
* ``extra``: ``tracking_uri`` (overrides host/port, e.g. ``sqlite:////data/mlflow.db``), ``registry_uri``,
  ``ui_url`` (what links in the Airflow UI open), ``token`` (bearer token), ``insecure_tls``.

Without a ``mlflow_default`` connection the hook uses the embedded store under ``$MLOPS_HOME`` and says so
once in the log. A missing connection with any other id is an error: a task that names a server must not
quietly register models somewhere else.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from mlops_provider.core.errors import ConfigurationError, ServiceUnreachableError
from mlops_provider.core.tracking import (
    TrackingSettings,
    embedded_settings,
    embedded_store_first_use,
    redact_uri,
    server_uri,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient


ARTIFACT_URI_PREFIXES = ("runs:/", "models:/", "mlflow-artifacts:")
MISSING_CODES = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")


class MlflowHook(BaseHook):
    """Talks to an MLflow tracking server and model registry through an Airflow connection.

    :param mlflow_conn_id: the ``mlflow`` connection; ``mlflow_default`` falls back to the embedded store.
    """

    conn_name_attr = "mlflow_conn_id"
    default_conn_name = "mlflow_default"
    conn_type = "mlflow"
    hook_name = "MLflow"

    def __init__(self, mlflow_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mlflow_conn_id = mlflow_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": [],
            "relabeling": {
                "host": "Tracking server host",
                "schema": "URL scheme (http or https)",
                "login": "Username (MLflow basic auth)",
                "password": "Password (MLflow basic auth)",
            },
            "placeholders": {
                "host": "mlflow.example.com",
                "port": "5000",
                "schema": "https",
                "login": "leave empty when the server has no authentication",
                "extra": json.dumps(
                    {
                        "tracking_uri": "optional, overrides host/port, e.g. postgresql://... or sqlite:////...",
                        "registry_uri": "optional, defaults to the tracking URI",
                        "ui_url": "optional, the URL people open the MLflow UI at",
                    },
                    indent=2,
                ),
            },
        }

    @cached_property
    def settings(self) -> TrackingSettings:
        """Where the server is and how to authenticate; resolved once per hook."""
        try:
            conn = self.get_connection(self.mlflow_conn_id)
        except AirflowNotFoundException:
            if self.mlflow_conn_id != self.default_conn_name:
                raise ConfigurationError(
                    f"The Airflow connection {self.mlflow_conn_id!r} is not defined; create an 'mlflow' "
                    "connection with that id (Admin > Connections, or AIRFLOW_CONN_"
                    f"{self.mlflow_conn_id.upper()}), or leave mlflow_conn_id unset to use the embedded store."
                ) from None
            settings = embedded_settings()
            self.log.info(
                "No Airflow connection %r: using the embedded MLflow store at %s (artifacts in %s). "
                "Define the connection to use a tracking server.",
                self.mlflow_conn_id,
                settings.tracking_uri,
                settings.artifact_root,
            )
            return settings
        return settings_from_connection(conn)

    def get_conn(self) -> MlflowClient:
        """An ``MlflowClient`` whose every call runs with this connection's URI and credentials; made once per
        hook, so every call of a task shares one client (and its HTTP session)."""
        return self._client

    @cached_property
    def _client(self) -> MlflowClient:
        from mlflow import MlflowClient

        settings = self.settings
        with settings.environment(), embedded_store_first_use(settings) as first_use:
            client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)
            if first_use:
                client.search_registered_models(max_results=1)  # the registry store, created under the same lock
        return _AuthenticatedClient(client, settings, self.mlflow_conn_id)  # type: ignore[return-value]

    @contextmanager
    def session(self) -> Iterator[MlflowClient]:
        """A block in which MLflow's fluent API (``mlflow.start_run``, ``mlflow.sklearn.log_model``) and the
        returned client use this connection. Threads may share a session's settings; the previous tracking
        URIs and environment come back when the last block using them ends."""
        client = self.get_conn()
        with self.settings.environment():
            try:
                yield client
            except Exception as error:  # MLflow's fluent API (log_model, register_model) talks to the server too
                unreachable = _unreachable_error(error, self.settings, self.mlflow_conn_id)
                if unreachable is None:
                    raise
                raise unreachable from error

    def load_sklearn_model(self, model_uri: str) -> Any:
        """The scikit-learn model at ``model_uri`` (``models:/name/version``, ``runs:/...``).

        skops, which reads the model, walks ``sys.modules`` and touches every deprecated Airflow alias on the
        way; in a task that is a thousand warnings in the log and seconds of time, so they are muted here.
        """
        import warnings

        import mlflow.sklearn

        with self.session(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)  # Airflow's DeprecatedImportWarning is one
            return mlflow.sklearn.load_model(model_uri)

    def get_or_create_experiment(self, name: str) -> str:
        """Id of the experiment called ``name``, created if missing (embedded: artifacts under ``$MLOPS_HOME``)."""
        from mlflow.exceptions import MlflowException

        if not name or not name.strip():
            raise ConfigurationError("The MLflow experiment name is empty; give experiment_name a value.")
        client = self.get_conn()
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                raise ConfigurationError(
                    f"The MLflow experiment {name!r} is deleted; restore it in the MLflow UI "
                    "(or `mlflow experiments restore`) or choose another experiment_name."
                )
            return experiment.experiment_id
        artifact_location = None
        if self.settings.artifact_root:
            artifact_location = f"{self.settings.artifact_root.rstrip('/')}/{_path_safe(name)}"
        try:
            return client.create_experiment(name, artifact_location=artifact_location)
        except MlflowException as error:
            if "already exists" not in str(error).lower():  # created concurrently by another task
                raise
            experiment = client.get_experiment_by_name(name)
            if experiment is None:  # created and deleted for good meanwhile
                raise ConfigurationError(
                    f"MLflow reported the experiment {name!r} as existing but cannot find it; it was probably "
                    "deleted meanwhile. Retry the task, or choose another experiment_name."
                ) from error
            return experiment.experiment_id

    def get_version_by_alias(self, model_name: str, alias: str) -> Any | None:
        """The ``ModelVersion`` that ``model_name@alias`` points to, or None when the model or alias is absent."""
        from mlflow.exceptions import MlflowException

        try:
            return self.get_conn().get_model_version_by_alias(model_name, alias)
        except MlflowException as error:
            if error.error_code in MISSING_CODES:
                return None
            raise

    def get_model_version(self, model_name: str, version: str) -> Any:
        """The ``ModelVersion``; a missing model or version is a ConfigurationError that says which."""
        from mlflow.exceptions import MlflowException

        self.get_registered_model(model_name)
        try:
            return self.get_conn().get_model_version(model_name, str(version))
        except MlflowException as error:
            if error.error_code not in MISSING_CODES:
                raise
            versions = self.get_conn().search_model_versions(f"name = '{model_name}'", max_results=1000)
            newest = sorted((int(v.version) for v in versions), reverse=True)[:5]
            raise ConfigurationError(
                f"{model_name!r} has no version {version!r} in the registry (newest: {newest or 'none'}); pass a "
                "version of this model, e.g. the training task's output['version']."
            ) from None

    def get_registered_model(self, model_name: str) -> Any:
        """The ``RegisteredModel``; a name that is not registered is a ConfigurationError."""
        from mlflow.exceptions import MlflowException

        try:
            return self.get_conn().get_registered_model(model_name)
        except MlflowException as error:
            if error.error_code not in MISSING_CODES:
                raise
            raise ConfigurationError(
                f"{model_name!r} is not a registered model in MLflow at {self.settings.safe_tracking_uri}; check "
                "model_name (and mlflow_conn_id), or train it first."
            ) from None

    def download_artifact(self, artifact_uri: str, dst_path: str) -> str:
        """Download ``runs:/...``, ``models:/...`` or ``mlflow-artifacts:/...`` content to ``dst_path``."""
        import mlflow

        with self.session():
            return mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri, dst_path=dst_path)

    def read_dataset(self, uri: str, storage: Any) -> Any:
        """The dataset at ``uri``: an MLflow artifact (``runs:/``, ``models:/``, ``mlflow-artifacts:``) is
        downloaded to a temporary folder first; any other URI is read by ``storage`` (a ``DatasetHook``)."""
        import tempfile

        if not uri.startswith(ARTIFACT_URI_PREFIXES):
            return storage.read(uri)
        with tempfile.TemporaryDirectory(prefix="mlops-artifact-") as folder:
            return storage.read(self.download_artifact(uri, folder))

    def test_connection(self) -> tuple[bool, str]:
        """Check that the tracking server and the model registry answer with these credentials."""
        try:
            settings = self.settings
            client = self.get_conn()
            client.search_experiments(max_results=1)
            client.search_registered_models(max_results=1)
        except ServiceUnreachableError as error:
            return False, str(error)
        except Exception as error:
            message = redact_uri(str(error))
            if self.settings_or_none and self.settings_or_none.password:
                message = message.replace(self.settings_or_none.password, "***")
            target = self.settings_or_none.safe_tracking_uri if self.settings_or_none else self.mlflow_conn_id
            return False, f"MLflow at {target} did not answer: {type(error).__name__}: {message}"
        return True, f"Connected to MLflow at {settings.safe_tracking_uri} (tracking and model registry)."

    @property
    def settings_or_none(self) -> TrackingSettings | None:
        return self.__dict__.get("settings")


def settings_from_connection(conn: Any) -> TrackingSettings:
    """Turn an Airflow connection's fields into tracking settings (no network calls)."""
    extra = conn.extra_dejson or {}
    tracking_uri = extra.get("tracking_uri")
    if not tracking_uri:
        if not conn.host:
            raise ConfigurationError(
                f"The MLflow connection {conn.conn_id!r} has neither a host nor extra.tracking_uri; "
                "set the tracking server's host (and port), or extra.tracking_uri."
            )
        tracking_uri = server_uri(conn.host, conn.port, conn.schema)
    insecure = extra.get("insecure_tls", False)
    return TrackingSettings(
        tracking_uri=tracking_uri,
        registry_uri=extra.get("registry_uri") or tracking_uri,
        username=conn.login or None,
        password=conn.password or None,
        token=extra.get("token") or None,
        ui_url=extra.get("ui_url") or None,
        artifact_root=extra.get("artifact_root") or None,
        insecure_tls=str(insecure).lower() in ("1", "true", "yes"),
    )


class _AuthenticatedClient:
    """Wraps an ``MlflowClient`` so that each method call runs with the connection's credentials."""

    def __init__(self, client: MlflowClient, settings: TrackingSettings, conn_id: str) -> None:
        self._client = client
        self._settings = settings
        self._conn_id = conn_id

    @property
    def tracking_uri(self) -> str:
        return self._settings.tracking_uri

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def call(*args: Any, **kwargs: Any) -> Any:
            from mlflow.exceptions import MlflowException

            try:
                with self._settings.environment():
                    return attribute(*args, **kwargs)
            except Exception as error:
                unreachable = _unreachable_error(error, self._settings, self._conn_id)
                if unreachable is not None:
                    raise unreachable from error
                if not isinstance(error, MlflowException) or not _is_refused(error):
                    raise
                raise ConfigurationError(
                    f"MLflow at {self._settings.safe_tracking_uri} refused the credentials of the connection "
                    f"{self._conn_id!r} ({error.error_code}); check its login and password (or token) and the "
                    "user's permissions on this experiment or model."
                ) from None

        return call

    def __repr__(self) -> str:
        return f"<MlflowClient {self._settings.safe_tracking_uri}>"


def _is_refused(error: Any) -> bool:
    """The server said who you are is not allowed (HTTP 401/403), as opposed to a missing object or an outage."""
    text = str(error)
    return error.error_code in ("UNAUTHENTICATED", "PERMISSION_DENIED") or any(
        f"error code {status}" in text for status in (401, 403)
    )


# How MLflow words a request that never got a usable answer: it wraps requests' ConnectionError/Timeout in an
# MlflowException ("API request to ... failed with exception ..."), sometimes (artifact transfers in a pool)
# only as text; an overloaded or restarting server answers with a 5xx status.
_UNREACHABLE_TEXT = (
    "Failed to establish a new connection",
    "Connection refused",
    "Connection aborted",
    "Connection broken",
    "Connection reset by peer",
    "RemoteDisconnected",
    "Read timed out",
    "ConnectTimeoutError",
    "failed with timeout exception",
    # A proxy or the server itself answered "not now" (502/503/504, or 5xx until MLflow's retries ran out).
    "error code 502",
    "error code 503",
    "error code 504",
    "too many 50",
    # The tracking server lost its backend database (restarted, failed over): a 500 that names the cause.
    "server closed the connection unexpectedly",
    "terminating connection due to administrator command",
    "the database system is starting up",
    "the database system is shutting down",
)


def _unreachable_types() -> tuple[type[BaseException], ...]:
    import requests

    # Refused or dropped connections and timeouts, as requests raises them; a response cut off mid-body (the
    # server died while answering) is ChunkedEncodingError; the socket's own errors are builtin ConnectionErrors.
    return (
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        requests.exceptions.ChunkedEncodingError,
        ConnectionError,
    )


def _unreachable_error(
    error: BaseException, settings: TrackingSettings, conn_id: str
) -> ServiceUnreachableError | None:
    """A retryable ServiceUnreachableError when ``error`` means the tracking server did not answer (refused
    connection, dropped connection, timeout) or answered "unavailable" (502/503/504, a lost backend database),
    after MLflow's own retries; None for any other error."""
    from mlflow.exceptions import MlflowException

    if isinstance(error, ServiceUnreachableError):
        return None  # already said (a client call inside a session block)
    kinds = _unreachable_types()
    seen: set[int] = set()
    cause: BaseException | None = error
    unreachable = False
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, kinds):
            unreachable = True
            break
        cause = cause.__cause__ or (None if cause.__suppress_context__ else cause.__context__)
    if not unreachable and isinstance(error, MlflowException):
        unreachable = any(text in str(error) for text in _UNREACHABLE_TEXT)
    if not unreachable:
        return None
    text = str(error)
    reason = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    status = re.search(r"too many (5\d\d) error responses|error code (5\d\d)", text)
    if reason:
        shown = reason.group(1)
    elif status:
        shown = f"HTTP {status.group(1) or status.group(2)}"
    else:
        shown = next((t for t in _UNREACHABLE_TEXT if t in text), type(error).__name__)
    request = re.search(r"API request to (\S+) failed", text)
    if request:
        shown += f", on {urlsplit(request.group(1)).path}"
    return ServiceUnreachableError(
        f"MLflow at {settings.safe_tracking_uri} did not answer or was unavailable ({shown}; connection "
        f"{conn_id!r}). Check that the tracking server and its database are running and reachable from the "
        "worker; the task's retries will try again."
    )


def _path_safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
