"""Faults survived, nothing lost or doubled: real server processes killed by pid in the middle of a task,
restarted on the same storage, and the task tried again.

* the MLflow server killed while TrainModelOperator logs its run: the try fails with a retryable error, the
  next try registers exactly one version and closes the dead try's run as FAILED;
* the MLflow server killed while a promotion holds the registry lock: the lock survives the restart, the next
  promotion takes it over after its lease, records the takeover, and the history stays gapless;
* the S3 endpoint down during a read and during a report write: a retryable error, then success once S3 is
  back, and no half-written report;
* MLflow unavailable behind its gateway (503): a retryable error that names the server, and a ModelAliasSensor
  waiting in the triggerer looks on through the outage and fires once when the alias moves.

Each test kills only a server it started on a fresh root (or switches off its own gateway in front of the
shared one), so no fault disturbs another test.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import pytest

from mlops_provider.core.errors import ServiceUnreachableError
from sample_data import churn_frame
from support import services, task_instance
from support.task_instance import OutletEventsStandIn

pytestmark = pytest.mark.system

FOREST = "sklearn.ensemble.RandomForestClassifier"
GATE = {"roc_auc": {"min": 0.55}}
LEASE = 3.0  # the promotion lock lease (stale_after) in the lock test


TaskInstanceStandIn = partial(task_instance.TaskInstanceStandIn, dag_id="fault_tests")


def context(ti: TaskInstanceStandIn) -> dict[str, Any]:
    return {"ti": ti, "run_id": ti.run_id, "outlet_events": OutletEventsStandIn()}


def started(start, *args, **kwargs) -> services.ManagedProcess:
    """A server of this test's own; a machine without it skips (fails under MLOPS_REQUIRE_SERVICES=1)."""
    try:
        return start(*args, **kwargs)
    except services.ServiceUnavailable as error:
        if os.environ.get("MLOPS_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{error} (MLOPS_REQUIRE_SERVICES=1 makes this a failure)", pytrace=False)
        pytest.skip(str(error))


@pytest.fixture
def fast_mlflow_failures(monkeypatch):
    """A refused request fails at once instead of after MLflow's retries (minutes with the defaults)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")


class OwnMlflow:
    """An MLflow server of one test's own (SQLite backend and artifacts under ``root``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.process = started(services.start_mlflow_server, root)
        self.url = self.process.url
        self.port = urlsplit(self.url).port

    def restart(self) -> None:
        """Start it again on the same root and port, after the test killed it."""
        assert self.process.popen.poll() is not None, "kill the server before restarting it"
        self.process = started(services.start_mlflow_server, self.root, port=self.port)


@pytest.fixture
def own_mlflow(tmp_path, connection_env, fast_mlflow_failures):
    """A fresh MLflow server that ``mlflow_default`` points at; stopped (by pid) at the end."""
    server = OwnMlflow(tmp_path / "mlflow-server")
    try:
        connection_env("mlflow_default", conn_type="mlflow", host="127.0.0.1", port=server.port)
        yield server
    finally:
        server.process.stop()


def watcher(url: str):
    """A client of the test's own, to watch the server from outside the task."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=url, registry_uri=url)


def train_operator(data: Path, model_name: str, **overrides: Any):
    from mlops_provider.operators.training import TrainModelOperator

    settings = {
        "task_id": "train",
        "dataset_uri": str(data),
        "target_column": "churned",
        "id_columns": ["customer_id"],
        "model_name": model_name,
        "estimator": FOREST,
        "estimator_params": {"n_estimators": 25, "max_depth": 6},
        **overrides,
    }
    return TrainModelOperator(**settings)


def versions_of(client, model_name: str) -> list:
    return list(client.search_model_versions(f"name = '{model_name}'"))


# -- 1. the MLflow server killed while TrainModelOperator logs ------------------------------------------------


def test_mlflow_killed_while_training_logs_then_the_retry_registers_exactly_one_version(own_mlflow, tmp_path):
    from mlflow.entities import ViewType

    model_name = f"churn-fault-{uuid.uuid4().hex[:8]}"
    data = tmp_path / "churn.parquet"
    churn_frame(2500, seed=41).to_parquet(data, index=False)
    dag_run = "scheduled__2026-02-01T00:00:00+00:00"
    outside = watcher(own_mlflow.url)

    outcome: dict[str, Any] = {}

    def first_try() -> None:
        try:
            outcome["result"] = train_operator(data, model_name).execute(
                {"ti": TaskInstanceStandIn(run_id=dag_run, try_number=1)}
            )
        except BaseException as error:  # noqa: BLE001 - the test inspects whatever the try raised
            outcome["error"] = error

    task = threading.Thread(target=first_try, name="train-try-1")
    task.start()
    # The trigger: the run and its logged model exist, so the model's files are being written; then the
    # server dies at once, in the middle of log_model (before the version is registered).
    logged_model = None
    deadline = time.monotonic() + 60
    while logged_model is None and task.is_alive() and time.monotonic() < deadline:
        experiment = outside.get_experiment_by_name(model_name)
        if experiment is not None:
            models = outside.search_logged_models([experiment.experiment_id])
            logged_model = models[0] if models else None
        if logged_model is None:
            time.sleep(0.02)
    assert logged_model is not None, f"the first try never started logging its model: {outcome}"
    own_mlflow.process.kill()
    first_run_id = logged_model.source_run_id
    killed = time.monotonic()
    task.join(timeout=60)
    assert not task.is_alive(), "the first try hung after the server died"
    failed_after = time.monotonic() - killed

    # What the user sees: a retryable error that names the server, not a raw requests/MLflow error.
    error = outcome.get("error")
    assert isinstance(error, ServiceUnreachableError), f"expected ServiceUnreachableError, got {outcome!r}"
    assert error.retryable and f"MLflow at http://127.0.0.1:{own_mlflow.port} did not answer" in str(error)
    from airflow.sdk.exceptions import AirflowFailException

    assert not isinstance(error, AirflowFailException)  # Airflow spends a retry on it
    assert failed_after < 20, f"the first try took {failed_after:.1f}s to notice the dead server"

    # A retry while the server is still down fails the same way, before it trains or writes anything.
    with pytest.raises(ServiceUnreachableError, match="did not answer"):
        train_operator(data, model_name).execute({"ti": TaskInstanceStandIn(run_id=dag_run, try_number=2)})

    own_mlflow.restart()
    outside = watcher(own_mlflow.url)
    left = outside.get_run(first_run_id)
    assert left.info.status == "RUNNING"  # the crash left it open; the server kept it across the restart
    assert versions_of(outside, model_name) == []

    result = train_operator(data, model_name).execute({"ti": TaskInstanceStandIn(run_id=dag_run, try_number=3)})
    assert (result["outcome"], result["version"]) == ("trained", "1")
    assert result["run_id"] != first_run_id

    versions = versions_of(outside, model_name)
    assert len(versions) == 1
    assert versions[0].tags["airflow.run_id"] == dag_run and versions[0].tags["airflow.try_number"] == "3"
    assert versions[0].source != f"models:/{logged_model.model_id}"  # not the half-logged model of the dead try
    abandoned = outside.get_run(first_run_id)
    assert abandoned.info.status == "FAILED"
    assert "superseded by try 3" in abandoned.data.tags["mlops.abandoned"]
    assert outside.get_run(result["run_id"]).info.status == "FINISHED"
    runs = outside.search_runs([logged_model.experiment_id], run_view_type=ViewType.ALL)
    assert sorted(run.info.status for run in runs) == ["FAILED", "FINISHED"]

    # And a clear of the task in that DAG run returns the same version: nothing doubled.
    again = train_operator(data, model_name).execute({"ti": TaskInstanceStandIn(run_id=dag_run, try_number=4)})
    assert (again["outcome"], again["version"], again["run_id"]) == ("reused", "1", result["run_id"])
    assert len(versions_of(outside, model_name)) == 1


# -- 2. the MLflow server killed while a promotion holds the registry lock -----------------------------------


def promote_operator(model_name: str, version: str, **overrides: Any):
    from mlops_provider.operators.registry import PromoteModelOperator

    return PromoteModelOperator(
        task_id="promote", model_name=model_name, version=version, thresholds=GATE, on_reject="fail", **overrides
    )


def assert_consistent(history: list[dict[str, Any]], alias: str = "champion") -> None:
    """Sequence numbers 1..n without gaps; each move of the alias starts where the one before it ended."""
    assert [entry["seq"] for entry in history] == list(range(1, len(history) + 1)), history
    moves = [entry for entry in history if entry.get("alias") == alias]
    for before, after in zip([None, *moves[:-1]], moves, strict=True):
        assert after["from_version"] == (before["to_version"] if before else None), history


def test_mlflow_killed_while_a_promotion_holds_the_lock_then_the_next_takes_it_over(own_mlflow, tmp_path):
    from mlops_provider.core.identity import TaskIdentity
    from mlops_provider.core.registry import PromotionConflictError, PromotionLock, alias_version, read_history
    from mlops_provider.operators.registry import RollbackModelOperator

    model_name = f"churn-lock-{uuid.uuid4().hex[:8]}"
    for day, seed in (("01", 51), ("02", 52)):
        path = tmp_path / f"churn-{day}.parquet"
        churn_frame(1200, seed=seed).to_parquet(path, index=False)
        train_operator(path, model_name).execute(
            {"ti": TaskInstanceStandIn(run_id=f"scheduled__2026-03-{day}T00:00:00+00:00")}
        )
    first = promote_operator(model_name, "1").execute(
        context(TaskInstanceStandIn(run_id="scheduled__2026-03-01T00:00:00+00:00", task_id="promote"))
    )
    assert first["promoted"] and first["history_seq"] == 1

    # A promotion of v2 takes the lock and dies holding it; the server is killed while the lock exists.
    day2 = "scheduled__2026-03-02T00:00:00+00:00"
    dead = TaskIdentity(dag_id="fault_tests", run_id=day2, task_id="promote", try_number=1)
    outside = watcher(own_mlflow.url)
    dead_lock = PromotionLock(outside, model_name, owner=dead.owner)
    dead_lock.acquire()  # never released: its holder is gone
    own_mlflow.process.kill()

    # The retry while the server is down: a retryable error, nothing taken.
    with pytest.raises(ServiceUnreachableError, match="did not answer"):
        promote_operator(model_name, "2").execute(
            context(TaskInstanceStandIn(run_id=day2, task_id="promote", try_number=2))
        )

    own_mlflow.restart()
    outside = watcher(own_mlflow.url)
    lock_model = outside.get_registered_model(f"{model_name}.mlops-lock")  # the lock survived the restart
    assert lock_model.tags["mlops.lock_owner"] == dead_lock.owner
    # Within its lease (the default 1800 s) a lock is respected, dead holder or not.
    with pytest.raises(PromotionConflictError, match="held by fault_tests/"):
        PromotionLock(outside, model_name, owner="a probe", timeout=0.5).acquire()

    taken = time.monotonic()
    result = promote_operator(model_name, "2", lock_stale_after=LEASE, lock_timeout=30).execute(
        context(TaskInstanceStandIn(run_id=day2, task_id="promote", try_number=3))
    )
    assert time.monotonic() - taken < 20
    assert result["promoted"] and result["champion_version"] == "1"
    assert "took over the stale promotion lock held by fault_tests/" in result["note"]
    assert alias_version(outside, model_name, "champion") == "2"
    assert alias_version(outside, model_name, "previous_champion") == "1"

    history = read_history(outside, model_name)
    assert [entry["action"] for entry in history] == ["promote", "lock_takeover", "promote"]
    takeover = history[1]
    assert takeover["holder"] == dead_lock.owner and takeover["lock"] == f"{model_name}.mlops-lock"
    assert takeover["age_seconds"] >= LEASE and takeover["stale_after"] == LEASE
    assert takeover["by"]["run_id"] == day2 and takeover["by"]["try_number"] == "3"
    assert (history[2]["from_version"], history[2]["to_version"], history[2]["seq"]) == ("1", "2", 3)
    assert result["history_seq"] == 3
    assert_consistent(history)

    # The history still answers a rollback, the takeover entry in it notwithstanding.
    rollback = RollbackModelOperator(task_id="rollback", model_name=model_name, lock_stale_after=LEASE).execute(
        context(TaskInstanceStandIn(run_id="manual__2026-03-03T00:00:00+00:00", task_id="rollback"))
    )
    assert (rollback["from_version"], rollback["to_version"], rollback["history_seq"]) == ("2", "1", 4)
    history = read_history(outside, model_name)
    assert [entry["action"] for entry in history] == ["promote", "lock_takeover", "promote", "rollback"]
    assert_consistent(history)
    assert not [m.name for m in outside.search_registered_models() if m.name.endswith(".mlops-lock")]
    assert outside.get_model_version(model_name, "2").tags["mlops.gate.decision"] == "promoted"


# -- 3. the S3 endpoint unreachable during a read and during a report write ----------------------------------


def test_s3_unreachable_during_a_read_and_a_report_write_then_the_retry_succeeds(tmp_path, connection_env):
    import boto3
    from botocore.exceptions import ClientError

    from mlops_provider.core.reports import report_uri
    from mlops_provider.hooks.datasets import DatasetHook
    from mlops_provider.operators.context import report_location
    from mlops_provider.operators.drift import DetectDriftOperator

    root = tmp_path / "moto"
    moto = started(services.start_moto_server, root, durable=True)
    port = urlsplit(moto.url).port
    try:
        conn_id = connection_env(
            "aws_faults", conn_type="aws", login="testing", password="testing",
            extra={"endpoint_url": moto.url, "region_name": "us-east-1"},
        )  # fmt: skip
        s3 = boto3.client(
            "s3", endpoint_url=moto.url, aws_access_key_id="testing", aws_secret_access_key="testing",
            region_name="us-east-1",
        )  # fmt: skip
        bucket = f"mlops-faults-{uuid.uuid4().hex[:10]}"
        s3.create_bucket(Bucket=bucket)
        frame = churn_frame(1000, seed=61)
        data = tmp_path / "churn.parquet"
        frame.to_parquet(data, index=False)
        s3.upload_file(str(data), bucket, "datasets/churn.parquet")
        uri = f"s3://{bucket}/datasets/churn.parquet"
        assert len(DatasetHook(aws_conn_id=conn_id).read(uri)) == 1000

        # The drift check reads local data and stores its report on S3.
        reference, current = tmp_path / "reference.parquet", tmp_path / "current.parquet"
        frame.to_parquet(reference, index=False)
        churn_frame(1000, seed=62).to_parquet(current, index=False)

        def drift_check():
            return DetectDriftOperator(
                task_id="drift", current_uri=str(current), reference_uri=str(reference), on_drift="continue",
                exclude_columns=["customer_id", "event_timestamp"], reports_uri=f"s3://{bucket}",
                aws_conn_id=conn_id, log_to_mlflow=False,
            )  # fmt: skip

        drift_ti = TaskInstanceStandIn(task_id="drift")
        report = report_uri("drift", "drift_report.html", **report_location(context(drift_ti)), root=f"s3://{bucket}")
        report_key = report.removeprefix(f"s3://{bucket}/")
        assert report_key.startswith("drift/fault_tests/")

        moto.kill()  # S3 goes away
        began = time.monotonic()
        with pytest.raises(ServiceUnreachableError, match=re.escape(f"S3 did not answer for '{uri}'")):
            DatasetHook(aws_conn_id=conn_id).read(uri)
        read_failed_after = time.monotonic() - began
        began = time.monotonic()
        with pytest.raises(ServiceUnreachableError, match=re.escape(f"S3 did not answer while writing {report}")):
            drift_check().execute(context(drift_ti))
        write_failed_after = time.monotonic() - began
        assert read_failed_after < 30 and write_failed_after < 60

        moto = started(services.start_moto_server, root, port=port, durable=True)  # back, with what it stored
        with pytest.raises(ClientError) as missing:
            s3.head_object(Bucket=bucket, Key=report_key)
        assert missing.value.response["Error"]["Code"] in ("404", "NoSuchKey")  # no half-written report

        pd.testing.assert_frame_equal(DatasetHook(aws_conn_id=conn_id).read(uri), frame)  # the retry reads it all
        result = drift_check().execute(context(TaskInstanceStandIn(task_id="drift", try_number=2)))
        assert result["report_uri"] == report
        stored = s3.get_object(Bucket=bucket, Key=report_key)["Body"].read()
        assert len(stored) > 10_000 and stored.rstrip().endswith(b"</html>")  # whole: one PUT, all or nothing
        keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        assert sorted(keys) == sorted(["datasets/churn.parquet", report_key])
    finally:
        moto.stop()


# -- 4. MLflow unavailable behind its gateway (503) while a sensor waits in the triggerer -----------------------


@pytest.fixture
def gateway(mlflow_server, connection_env, fast_mlflow_failures):
    """``mlflow_gateway`` reaches the session's MLflow server through a gateway the test can switch off."""
    front = services.Gateway(mlflow_server.url)
    connection_env("mlflow_gateway", conn_type="mlflow", host="127.0.0.1", port=front.port)
    try:
        yield front
    finally:
        front.close()


@pytest.mark.parametrize("mlflow_retries", [0, 1])
def test_mlflow_unavailable_is_a_retryable_error_naming_the_server(gateway, monkeypatch, mlflow_retries):
    """With MLflow's own retries (the 5xx outlasts them: 'too many 503 error responses') or without."""
    from mlops_provider.hooks.mlflow import MlflowHook

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(mlflow_retries))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    gateway.available = False
    with pytest.raises(ServiceUnreachableError) as raised:
        MlflowHook(mlflow_conn_id="mlflow_gateway").get_conn().search_registered_models(max_results=1)
    message = str(raised.value)
    assert raised.value.retryable
    assert f"MLflow at {gateway.url} did not answer or was unavailable" in message and "503" in message, message
    assert gateway.requests["refused"] == 1 + mlflow_retries


def test_alias_wait_in_the_triggerer_outlives_an_mlflow_outage_and_fires_once(gateway, mlflow_server):
    import asyncio

    from mlops_provider.triggers.registry import ModelAliasTrigger

    model_name = f"churn-outage-{uuid.uuid4().hex[:8]}"
    outside = watcher(mlflow_server.url)
    outside.create_registered_model(model_name)
    run = outside.create_run(outside.create_experiment(model_name))
    version = outside.create_model_version(model_name, f"runs:/{run.info.run_id}/model", run.info.run_id)
    trigger = ModelAliasTrigger(
        model_name=model_name, alias="champion", after_version=None, mlflow_conn_id="mlflow_gateway",
        poll_interval=0.2,
    )  # fmt: skip

    async def wait_through_an_outage() -> list:
        events: list = []

        async def collect() -> None:
            async for event in trigger.run():
                events.append(event.payload)

        waiting = asyncio.create_task(collect())
        await asyncio.sleep(1.0)  # looking, the alias not set yet
        gateway.available = False
        await asyncio.sleep(1.5)  # MLflow unavailable: the trigger keeps looking
        outside.set_registered_model_alias(model_name, "champion", version.version)
        await asyncio.sleep(1.0)  # the alias moved, but nobody can see it through the gateway
        assert not events and not waiting.done(), events
        refused = gateway.requests["refused"]
        gateway.available = True
        await asyncio.wait_for(waiting, timeout=20)
        assert refused >= 3, gateway.requests  # it did look during the outage
        return events

    events = asyncio.run(wait_through_an_outage())
    assert events == [{"status": "success", "model_name": model_name, "alias": "champion", "version": "1"}]
