"""``mlops-serve`` as a real process against the real MLflow server: champion moves under load, the canary share,
shadow scoring, a SIGKILL mid-load and recovery, bad requests, the start-up refusals.

The tests share one service and one registered model (starting the service costs ~15 s here, most of it
importing skops), so they run in file order: each one sets the aliases it needs first.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid

import pandas as pd
import pytest

from mlops_provider.core.prediction import score_frame
from support.services import BIN, descendants
from support.serving import (
    CHURN_ID,
    LoadClient,
    call,
    churn_records,
    load_version,
    predict,
    read_log,
    refresh,
    register_churn_versions,
    set_alias,
    set_canary_share,
    start_serving,
)

RECORDS = churn_records(500, seed=11)


def request_body(n: int, *, key: bool = False) -> dict:
    """Request n: one churn row with the unique id n (so every answer can be found in the log by id)."""
    row = {**RECORDS[n % len(RECORDS)], CHURN_ID: n}
    body: dict = {"dataframe_records": [row]}
    if key:
        body["key"] = f"caller-{n}"
    return body


@pytest.fixture(scope="module")
def registry(mlflow_server):
    name = f"serve-{uuid.uuid4().hex[:8]}"
    versions = register_churn_versions(mlflow_server.url, name, 4)
    set_alias(mlflow_server.url, name, "champion", versions[0])
    models = {v: load_version(mlflow_server.url, name, v) for v in versions}
    return mlflow_server.url, name, versions, models


@pytest.fixture(scope="module")
def service(registry, tmp_path_factory):
    url, name, _, _ = registry
    workdir = tmp_path_factory.mktemp("serve")
    process = start_serving(url, name, workdir, extra_args=["--log-rotate-seconds", "1"])
    yield process
    process.stop()


def expected(models: dict, version: str, n: int) -> pd.DataFrame:
    """What ``version`` answers for request n, scored here as the batch scoring would."""
    return score_frame(models[version], pd.DataFrame(request_body(n)["dataframe_records"]))


def logged(service, name: str, ids: set[int], *, role: str = "served", timeout: float = 20) -> pd.DataFrame:
    """The log rows of ``role`` for ``ids``, waiting for the journal's rotation to bring them all in."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            log = read_log(service.extra["log_root"], name)
        except FileNotFoundError:
            log = pd.DataFrame(columns=[CHURN_ID, "role"])
        rows = log[(log["role"] == role) & log[CHURN_ID].isin(ids)]
        if set(rows[CHURN_ID]) >= ids or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


def test_bad_requests_are_400_naming_the_input_and_nothing_is_logged(service, registry):
    url = service.url
    cases = [
        (b"{not json", "not JSON"),
        ({"rows": []}, "neither dataframe_records nor dataframe_split"),
        ({"dataframe_records": []}, "non-empty list"),
        ({"dataframe_records": [[1, 2]]}, "not an object"),
        ({"dataframe_records": [{"tenure_months": 3}]}, "id columns ['customer_id']"),
        ({"dataframe_records": [{CHURN_ID: 999_001, "tenure_months": 3}]}, "lack the input columns"),
        ({"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}, "one value per column"),
        ({"dataframe_records": [{**RECORDS[0], CHURN_ID: 999_002, "tenure_months": "many"}]}, "'tenure_months'"),
    ]
    for body, text in cases:
        status, answer = call(f"{url}/predict", "POST", body)
        assert status == 400, (body, status, answer)
        assert text in answer["detail"], (text, answer["detail"])
    status, answer = call(f"{url}/predict", "POST", request_body(999_003))
    assert status == 200 and answer["model_version"] == registry[2][0]

    rows = logged(service, registry[1], {999_003})
    assert list(rows[CHURN_ID]) == [999_003]
    assert not read_log(service.extra["log_root"], registry[1])[CHURN_ID].isin([999_001, 999_002]).any()

    assert call(f"{url}/health") == (200, {"status": "ok", "model_name": registry[1], "champion": registry[2][0]})
    metrics = call(f"{url}/metrics")[1]
    version = registry[2][0]
    assert f'mlops_serve_requests_total{{alias="champion",model="{registry[1]}",version="{version}"}}' in metrics
    assert f'mlops_serve_errors_total{{alias="champion",model="{registry[1]}",version="{version}"}} 2.0' in metrics
    assert "mlops_serve_request_latency_seconds_bucket{" in metrics
    assert "mlops_serve_model_swaps_total" in metrics and "mlops_serve_logged_rows_total" in metrics


def test_champion_moves_three_times_under_load_without_a_failed_request(service, registry):
    url, name, versions, models = registry
    load = LoadClient(service.url, lambda n: request_body(n + 10_000), threads=3).start()
    try:
        for version in versions[1:]:
            time.sleep(1.5)
            set_alias(url, name, "champion", version)
            assert refresh(service.url)["champion"]["version"] == version
        time.sleep(1.5)
    finally:
        results = load.stop()
    failures = [r for r in results if r[1] != 200]
    assert not failures, failures[:5]
    assert len(results) > 50
    by_version: dict[str, list[int]] = {}
    for n, _, answer in results:
        assert answer["alias"] == "champion"
        by_version.setdefault(answer["model_version"], []).append(n + 10_000)
    assert set(by_version) == set(versions), {v: len(ns) for v, ns in by_version.items()}
    # Every answer is what the version it names predicts for that row.
    for n, _, answer in results[:: max(1, len(results) // 200)]:
        want = expected(models, answer["model_version"], n + 10_000)
        assert answer["predictions"] == want["prediction"].tolist()
        assert answer["probabilities"]["1"] == pytest.approx(want["probability_1"].tolist())
    # ... and the log holds every answered row, with the version that answered it.
    ids = {n + 10_000 for n, _, _ in results}
    rows = logged(service, name, ids)
    assert len(rows) == len(ids) and set(rows[CHURN_ID]) == ids
    answered = {n + 10_000: (a["model_version"], a["predictions"][0]) for n, _, a in results}
    assert {
        i: (v, p) for i, v, p in zip(rows[CHURN_ID], rows["model_version"], rows["prediction"], strict=True)
    } == answered
    assert set(rows["alias"]) == {"champion"}


def test_canary_gets_its_share_by_a_stable_hash_of_the_key(service, registry):
    url, name, versions, _ = registry
    champion, canary = versions[3], versions[1]
    set_alias(url, name, "champion", champion)  # where the swap test leaves it; so this test also runs alone
    set_alias(url, name, "canary", canary)
    set_canary_share(url, name, "0.2")
    state = refresh(service.url)
    assert state["canary"] == {"version": canary, "share": 0.2} and state["champion"]["version"] == champion
    results = (
        LoadClient(service.url, lambda n: request_body(n + 20_000, key=True), threads=4, limit=5000).start().wait()
    )
    assert [r for r in results if r[1] != 200] == []
    routed = {n: answer["model_version"] for n, _, answer in results}
    share = sum(v == canary for v in routed.values()) / len(routed)
    assert abs(share - 0.2) <= 0.02, share
    assert {a["alias"] for _, _, a in results} == {"champion", "canary"}
    # The same key lands on the same version every time.
    again = LoadClient(service.url, lambda n: request_body(n + 20_000, key=True), threads=2, limit=300).start().wait()
    assert all(answer["model_version"] == routed[n] for n, _, answer in again)
    set_canary_share(url, name, "0")
    assert refresh(service.url)["canary"] == {"version": canary, "share": 0.0}


def test_shadow_scores_every_request_and_is_only_logged(service, registry):
    url, name, versions, models = registry
    shadow = versions[2]
    set_alias(url, name, "shadow", shadow)
    assert refresh(service.url)["shadow"] == {"version": shadow}
    ids = set(range(30_000, 30_060))
    answers = [predict(service.url, request_body(n)["dataframe_records"]) for n in sorted(ids)]
    assert {a["model_version"] for a in answers} == {versions[3]}  # never the shadow's
    rows = logged(service, name, ids, role="shadow")
    assert len(rows) == len(ids) and set(rows["model_version"]) == {shadow} and set(rows["alias"]) == {"shadow"}
    for n, prediction, probability in zip(rows[CHURN_ID], rows["prediction"], rows["probability_1"], strict=True):
        want = expected(models, shadow, n)
        assert prediction == want["prediction"].iloc[0] and probability == pytest.approx(want["probability_1"].iloc[0])
    metrics = call(f"{service.url}/metrics")[1]
    assert f'mlops_serve_shadow_latency_seconds_count{{model="{name}",version="{shadow}"}}' in metrics
    # A body larger than one socket message reaches the shadow by the slower queue, scored all the same.
    large = [request_body(n)["dataframe_records"][0] for n in range(31_000, 33_500)]
    assert len(predict(service.url, large)["predictions"]) == len(large)
    rows = logged(service, name, set(range(31_000, 33_500)), role="shadow")
    assert len(rows) == len(large) and set(rows["model_version"]) == {shadow}


def test_a_killed_service_loses_no_answered_prediction(service, registry, tmp_path):
    """SIGKILL mid-load (journal segments not yet converted), start again: every 200 is in the log."""
    url, name, _, _ = registry
    load = LoadClient(service.url, lambda n: request_body(n + 40_000), threads=3).start()
    time.sleep(2.5)
    children = descendants(service.pid)  # the shadow process and multiprocessing's resource tracker
    assert children
    os.kill(service.pid, signal.SIGKILL)  # the service process alone, as the kernel's OOM killer would
    service.popen.wait(timeout=15)
    results = load.stop()
    answered = {n + 40_000 for n, status, _ in results if status == 200}
    assert len(answered) > 20
    journal = service.extra["journal_dir"]
    assert any(p.endswith(".journal") for p in os.listdir(journal)), "nothing left to recover: kill came too late"
    again = start_serving(
        url, name, tmp_path, log_root=service.extra["log_root"], journal_dir=journal, name="mlops-serve-restarted"
    )
    try:
        rows = logged(again, name, answered, timeout=1)  # recovered at start, before /health said ok
        assert set(rows[CHURN_ID]) == answered
        assert "Recovered journal segment" in again.log_tail(200)
    finally:
        again.stop()
    deadline = time.monotonic() + 10  # the killed service leaves no process behind
    while any(map(running, children)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in children if running(pid)]


def running(pid: int) -> bool:
    """Whether ``pid`` is a living process (not gone, not a zombie waiting for its new parent to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_an_unknown_model_or_no_champion_exits_with_the_fix(registry):
    url, name, _, _ = registry
    from mlflow.tracking import MlflowClient

    bare = f"bare-{uuid.uuid4().hex[:8]}"
    MlflowClient(tracking_uri=url, registry_uri=url).create_registered_model(bare)
    runs = {
        model: subprocess.Popen(
            [str(BIN / "mlops-serve"), "--model-name", model, "--tracking-uri", url, "--prediction-log-uri", "off"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for model in ("no-such-model", bare)
    }
    outputs = {model: process.communicate(timeout=120) for model, process in runs.items()}
    assert runs["no-such-model"].returncode == 2
    assert (
        "'no-such-model' does not exist" in outputs["no-such-model"][1]
        and "--model-name" in outputs["no-such-model"][1]
    )
    assert runs[bare].returncode == 2
    assert f"{bare!r}" in outputs[bare][1] and "no 'champion' alias" in outputs[bare][1]
    assert "set_registered_model_alias" in outputs[bare][1]
