"""Start ``mlops-serve`` as a real process, register models for it, and talk to it.

Used by tests/test_serving*.py and the rollout tests::

    from support.serving import register_churn_versions, start_serving, predict

    versions = register_churn_versions(mlflow_url, "churn-x", 3)        # ["1", "2", "3"], champion unset
    set_alias(mlflow_url, "churn-x", "champion", versions[0])
    service = start_serving(mlflow_url, "churn-x", tmp_path)            # a ManagedProcess, .url set, ready
    answer = predict(service.url, [row])                                # the JSON answer
    service.stop()                                                      # SIGTERM: the journal is flushed
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from support.services import BIN, ManagedProcess, free_port, start_process

CHURN_ID = "customer_id"
CHURN_FEATURES = ["tenure_months", "monthly_charges", "support_calls", "plan", "contract"]
# Each version of register_churn_versions is trained on one of these: different models, different answers.
FEATURE_SETS = [
    CHURN_FEATURES,
    ["tenure_months", "support_calls", "contract"],
    ["monthly_charges", "plan", "support_calls"],
    ["tenure_months", "monthly_charges"],
    ["support_calls", "contract", "plan"],
]


def set_alias(tracking_uri: str, model_name: str, alias: str, version: str) -> None:
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri).set_registered_model_alias(
        model_name, alias, version
    )


def set_canary_share(tracking_uri: str, model_name: str, share: float | str) -> None:
    from mlflow.tracking import MlflowClient

    from mlops_provider.core.tags import CANARY_SHARE

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    client.set_registered_model_tag(model_name, CANARY_SHARE, str(share))


def register_churn_versions(
    tracking_uri: str, model_name: str, count: int, *, rows: int = 1500, seed: int = 3
) -> list[str]:
    """``count`` versions of ``model_name`` trained by the provider on the churn table (``FEATURE_SETS`` in turn,
    logistic regressions), registered on the MLflow server at ``tracking_uri``; no alias is set."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from mlops_provider.core.training import TrainingConfig, train_and_register
    from sample_data import churn_frame

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiment = client.get_experiment_by_name(model_name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(model_name)
    frame = churn_frame(rows, seed=seed)
    versions = []
    for index in range(count):
        features = FEATURE_SETS[index % len(FEATURE_SETS)]
        config = TrainingConfig(
            target_column="churned", feature_columns=features, timestamp_column="event_timestamp",
            estimator="sklearn.linear_model.LogisticRegression", estimator_params={"max_iter": 300, "C": 0.5 + index},
        )  # fmt: skip
        result = train_and_register(
            frame, config, client, experiment_id=experiment_id, model_name=model_name, tags={},
            dataset_uri=f"memory://churn/{index}",
        )  # fmt: skip
        versions.append(result.version)
    return versions


def load_version(tracking_uri: str, model_name: str, version: str) -> Any:
    """The registered version's scikit-learn model, to score rows locally as the service should."""
    import mlflow
    import mlflow.sklearn

    mlflow.set_tracking_uri(tracking_uri)
    return mlflow.sklearn.load_model(f"models:/{model_name}/{version}")


def churn_records(rows: int, *, seed: int = 11, first_id: int = 0) -> list[dict[str, Any]]:
    """Request rows: the churn table's id and features (JSON-ready Python values)."""
    from sample_data import churn_frame

    frame = churn_frame(rows, seed=seed, first_customer_id=first_id)[[CHURN_ID, *CHURN_FEATURES]]
    return json.loads(frame.to_json(orient="records"))


def start_serving(
    tracking_uri: str,
    model_name: str,
    workdir: Path,
    *,
    id_columns: Sequence[str] = (CHURN_ID,),
    log_root: str | Path | None = None,
    journal_dir: str | Path | None = None,
    refresh_seconds: float = 1.0,
    port: int | None = None,
    extra_args: Iterable[str] = (),
    env: dict[str, str] | None = None,
    timeout: float = 90.0,
    name: str = "mlops-serve",
) -> ManagedProcess:
    """A real ``mlops-serve`` process on a free port (or ``port``), returned once ``/health`` answers 200 (its
    champion is loaded). ``log_root`` defaults to ``workdir/prediction_log`` (``"off"`` turns the log off),
    ``journal_dir`` to ``workdir/journal``: started again with the same ones, it recovers what a killed run
    left. ``process.extra`` holds ``log_root`` and ``journal_dir``. Stop it with ``.stop()`` (SIGTERM, the
    graceful flush) or ``.kill()`` (SIGKILL)."""
    workdir = Path(workdir)
    port = port or free_port()
    root = str(log_root) if log_root is not None else str(workdir / "prediction_log")
    journal = str(journal_dir) if journal_dir is not None else str(workdir / "journal")
    command = [
        str(BIN / "mlops-serve"),
        "--model-name", model_name, "--tracking-uri", tracking_uri,
        "--host", "127.0.0.1", "--port", str(port),
        "--id-columns", ",".join(id_columns),
        "--prediction-log-uri", root, "--journal-dir", journal,
        "--refresh-seconds", str(refresh_seconds), *extra_args,
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    process = start_process(
        name, command, workdir, ready=lambda: _healthy(f"{url}/health"), timeout=timeout, env=env, cwd=workdir
    )
    process.url = url
    process.extra.update(log_root=root, journal_dir=journal, port=port)
    return process


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def call(url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """(status, decoded JSON or text) of one request; HTTP errors are returned, not raised."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, payload.decode(errors="replace")


def predict(url: str, records: list[dict[str, Any]], *, key: str | None = None) -> dict[str, Any]:
    """The answer of ``POST /predict`` for ``records``; an AssertionError with the body when it is not a 200."""
    body: dict[str, Any] = {"dataframe_records": records}
    if key is not None:
        body["key"] = key
    status, answer = call(f"{url}/predict", "POST", body)
    assert status == 200, f"/predict answered {status}: {answer}"
    return answer


def refresh(url: str) -> dict[str, Any]:
    status, answer = call(f"{url}/refresh", "POST", b"")
    assert status == 200, f"/refresh answered {status}: {answer}"
    return answer


def read_log(log_root: str | Path, model_name: str) -> Any:
    """Every row of ``model_name``'s prediction log under ``log_root`` (all days)."""
    from mlops_provider.core.performance.log import read_prediction_log

    return read_prediction_log(str(log_root), model_name, "2000-01-01T00:00:00+00:00", "2100-01-01T00:00:00+00:00")


class LoadClient:
    """A bounded load: ``threads`` keep-alive HTTP connections posting ``body(n)`` for n = 0, 1, 2, ... until
    ``stop()`` (or ``limit`` requests in all). ``results`` holds ``(n, status, answer or error text)`` per request;
    a connection error is a result with status 0, never swallowed."""

    def __init__(self, url: str, body: Any, *, threads: int = 4, limit: int | None = None) -> None:
        import itertools
        import threading
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.body = body
        self.limit = limit
        self.results: list[tuple[int, int, Any]] = []
        self._counter = itertools.count()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self) -> LoadClient:
        for thread in self._threads:
            thread.start()
        return self

    def wait(self, timeout: float = 300) -> list[tuple[int, int, Any]]:
        for thread in self._threads:
            thread.join(timeout)
        return self.results

    def stop(self) -> list[tuple[int, int, Any]]:
        self._stop.set()
        return self.wait()

    def _run(self) -> None:
        import http.client

        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        while not self._stop.is_set():
            n = next(self._counter)
            if self.limit is not None and n >= self.limit:
                break
            payload = json.dumps(self.body(n)).encode()
            try:
                connection.request("POST", "/predict", payload, {"Content-Type": "application/json"})
                response = connection.getresponse()
                data = response.read()
                self.results.append((n, response.status, json.loads(data)))
            except Exception as error:  # a failed request is a result the test must see
                self.results.append((n, 0, f"{type(error).__name__}: {error}"))
                connection.close()
                connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        connection.close()
