"""Online scoring: ``mlops-serve`` against MLflow's own scoring server (``mlflow models serve``), same model, same
requests, real processes, in the same run.

Set-up (all local, nothing downloaded, everything under one temp dir): a real ``mlflow server`` process (SQLite
backend, proxied artifacts) on a free port, the one both scoring servers read the registry from, as in production.
Two versions of ``churn`` are trained and registered with the provider's own training, the steps of
``core.training.train_and_register`` (fitted while the server migrates its database, then ``log_and_register``):
the default pipeline the lifecycle DAG registers, median imputation + scaling and most-frequent imputation +
one-hot in a ``ColumnTransformer`` before a ``HistGradientBoostingClassifier``, stored with skops, with signature
and input example, on the seeded churn table of ``include/sample_data.py``. Version 1 gets the alias
``champion``; version 2 is the ``shadow``.

* MLflow: ``mlflow models serve -m models:/churn/1 --env-manager local -w 1``: MLflow's FastAPI scoring server
  in one uvicorn worker (its default), POST ``/invocations``.
* mlops-serve: ``mlops-serve --model-name churn --id-columns customer_id``: one uvicorn process (the service has
  no workers option), POST ``/predict``, with its defaults otherwise: the prediction log on (every served row
  journaled before its answer), the registry polled every 5 s. It answers more than MLflow does: the class
  probabilities and the model version, and it writes the log; MLflow answers the predicted class only.

Both get the same single-row requests, ``{"dataframe_records": [{...}]}``, cycling through the same 64 seeded
rows in the same order: the five features, and for mlops-serve the id column too, which its prediction log
records (MLflow gets no id: a column outside the signature makes it log a warning line on every request, which
would charge it for logging, not scoring). Both must give the same predictions for all 64 before anything is
timed. The client is this process: keep-alive ``http.client`` connections, one thread each, a fixed number of
requests after one unmeasured request per connection (a phase also stops after ``PHASE_SECONDS``, so that a
server that answers a few requests a second cannot stretch the run); every request's wall time is recorded.
Two phases per side:

* latency: one connection, requests back to back (no queueing): p50 and p99 of the request time (mlops-serve,
  with and without the shadow, gets twice as many requests: see ``SERVE_LATENCY_REQUESTS``);
* load: ``CONNECTIONS`` connections at once (closed loop): throughput (requests/s), with p50/p99 under load.

The sides take turns, ``ROUNDS`` rounds, the order rotated each round so that machine noise hits all alike; the
percentiles are over the pooled requests of all rounds, the throughput is the median of the rounds. The shadow
cost is mlops-serve with the ``shadow`` alias set (and ``/refresh`` called, so it scores every request with
version 2 as well) against the same process without it, their one-connection requests in pairs of blocks next
to each other (``latency_blocks``). The shadow process scores in batches a couple of seconds apart, so before
each block of either side the last batch is waited for (``/metrics``' shadow row count stays put for 2.5 s,
longer than a batch gathers: the same pause before both), and its first batch belongs to the warm-up.

Targets: mlops-serve's p99 (one connection) <= 0.8 x MLflow's, its throughput (``CONNECTIONS`` connections)
>= 1.5 x MLflow's, and the shadow adds <= 10% to mlops-serve's p99 (one connection). The client shares the
machine's two cores with the server it measures, alike for both sides. Every process started here is stopped by
its process group, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import json
import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "include"))

from harness import report  # noqa: E402

BIN = Path(sys.executable).parent
MODEL = "churn"
ID = "customer_id"
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "plan", "contract"]
TRAIN_ROWS = 3000
PAYLOAD_ROWS = 64
WARMUP = 100  # requests per side before the first round (JIT-free Python still warms caches, pools, lazy imports)
ROUNDS = int(os.environ.get("BENCH_SERVING_ROUNDS", 4))
LATENCY_REQUESTS = int(os.environ.get("BENCH_SERVING_LATENCY_REQUESTS", 400))  # per side and round, 1 connection
# mlops-serve with and without the shadow: the shadow's cost is a ratio of two pooled p99s, each set by the
# slowest 1% of a side's requests, so both sides get more of them; a phase then also spans several shadow batches.
SERVE_LATENCY_REQUESTS = 2 * LATENCY_REQUESTS
SHADOW_PAIRS = 2  # per round, see ``latency_blocks``
LOAD_REQUESTS = int(os.environ.get("BENCH_SERVING_LOAD_REQUESTS", 450))  # per side and round, all connections
CONNECTIONS = 4
# A phase also ends after this many seconds (with the requests answered so far): a server that answers a few
# requests a second must not stretch the benchmark to a quarter of an hour.
PHASE_SECONDS = float(os.environ.get("BENCH_SERVING_PHASE_SECONDS", 10))
WORKERS = 1
TARGET_P99 = 0.8  # mlops-serve p99 / MLflow p99 <=
TARGET_THROUGHPUT = 1.5  # mlops-serve requests/s / MLflow requests/s >=
TARGET_SHADOW = 1.10  # p99 with shadow / p99 without <=

MLFLOW, SERVE, SHADOW = "mlflow models serve", "mlops-serve", "mlops-serve + shadow"


def progress(message: str) -> None:
    print(message, flush=True)


# -- processes -------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child: SIGTERM when this benchmark dies, even by SIGKILL (Linux ``PR_SET_PDEATHSIG``)."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)
    except OSError:
        pass


@dataclass
class Service:
    """A server process in its own session; ``stop`` ends its whole process group (uvicorn children too)."""

    name: str
    popen: subprocess.Popen
    log_path: Path
    url: str
    started: float = field(default_factory=time.monotonic)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is None:
            _signal_group(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(self.popen.pid, signal.SIGKILL)  # whatever of the group outlived its leader
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def start_service(name: str, command: list[str], folder: Path, url: str, env: dict[str, str]) -> Service:
    """Start ``command`` (not waiting for it to be ready: see ``wait_ready``)."""
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / f"{name.replace(' ', '-')}.log"
    with open(log_path, "ab") as log_file:
        popen = subprocess.Popen(
            command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(folder),
            env={**os.environ, **env},
            start_new_session=True,  # Ctrl-C in the terminal reaches this script only; ``stop`` ends the group
            preexec_fn=_die_with_parent,
        )
    return Service(name, popen, log_path, url)


def http_status(url: str, timeout: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


def wait_ready(service: Service, path: str, timeout: float = 180.0) -> float:
    """Seconds from the start of ``service`` until ``GET path`` answers 200; raises with the log's tail if the
    process exits or does not answer within ``timeout`` seconds of its start."""
    started = service.started
    while time.monotonic() - started < timeout:
        if service.popen.poll() is not None:
            raise RuntimeError(f"{service.name} exited with code {service.popen.returncode}:\n{service.log_tail()}")
        if http_status(service.url + path) == 200:
            return time.monotonic() - started
        time.sleep(0.2)
    raise RuntimeError(f"{service.name} did not answer 200 on {path} within {timeout:.0f} s:\n{service.log_tail()}")


def post_json(url: str, body: dict | None = None, timeout: float = 60.0) -> dict:
    data = json.dumps(body or {}).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def mlops_serve_command() -> list[str] | None:
    """The ``mlops-serve`` console script, or its module when the checkout is not reinstalled yet; None when the
    service does not exist."""
    script = BIN / "mlops-serve"
    if script.exists():
        return [str(script)]
    if (REPO / "src" / "mlops_provider" / "serving" / "cli.py").exists():
        return [sys.executable, "-c", "import sys; from mlops_provider.serving.cli import main; sys.exit(main())"]
    return None


# -- the model -------------------------------------------------------------------------------------------------


def fit_versions(home: Path) -> list:
    """Two versions of ``MODEL`` prepared and fitted as TrainModelOperator does (no server needed yet)."""
    from mlops_provider.core.training import TrainingConfig
    from mlops_provider.core.training.data import prepare_training
    from mlops_provider.core.training.fit import fit_model
    from sample_data import TARGET, churn_frame

    config = TrainingConfig(target_column=TARGET, feature_columns=FEATURES, id_columns=[ID],
                            reference_sample_rows=200, plot_sample_rows=200)  # fmt: skip
    return [fit_model(prepare_training(churn_frame(TRAIN_ROWS, seed=seed), config)) for seed in (1, 2)]


def register_versions(tracking_uri: str, fitted: list) -> list[str]:
    """Log and register the fitted versions in order (``log_and_register``, as the training operator does);
    returns their version numbers."""
    import mlflow
    from mlflow import MlflowClient

    from mlops_provider.core.training.record import log_and_register

    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    experiment_id = client.create_experiment(MODEL)
    with contextlib.redirect_stdout(sys.stderr):  # MLflow prints links to each run
        return [
            log_and_register(client, one, experiment_id=experiment_id, model_name=MODEL, tags={},
                             dataset_uri=f"sample_data.churn_frame(seed={seed})").version
            for seed, one in enumerate(fitted, start=1)
        ]  # fmt: skip


def set_alias(tracking_uri: str, alias: str, version: str | None) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    if version is None:
        client.delete_registered_model_alias(MODEL, alias)
    else:
        client.set_registered_model_alias(MODEL, alias, version)


def payloads() -> tuple[list[bytes], list[bytes], list[int]]:
    """``PAYLOAD_ROWS`` single-row request bodies with the id column and the features, the same rows without the
    id column, and the predictions the served model must give for them."""
    import mlflow.sklearn

    from sample_data import churn_frame

    frame = churn_frame(PAYLOAD_ROWS, seed=99, first_customer_id=1_000_000)[[ID, *FEATURES]]
    records = json.loads(frame.to_json(orient="records"))
    bodies = [json.dumps({"dataframe_records": [record]}).encode() for record in records]
    no_ids = [json.dumps({"dataframe_records": [{k: v for k, v in r.items() if k != ID}]}).encode() for r in records]
    model = mlflow.sklearn.load_model(f"models:/{MODEL}/1")
    expected = [int(p) for p in model.predict(frame[FEATURES])]
    return bodies, no_ids, expected


# -- the load client -------------------------------------------------------------------------------------------


@dataclass
class Side:
    name: str
    url: str
    path: str
    bodies: list[bytes]

    @property
    def host_port(self) -> tuple[str, int]:
        host, port = self.url.removeprefix("http://").split(":")
        return host, int(port)


@dataclass
class Phase:
    latencies: list[float]
    seconds: float

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds


@dataclass
class Samples:
    latency: list[float] = field(default_factory=list)  # pooled request times of the latency phases
    load: list[float] = field(default_factory=list)  # pooled request times under load
    throughput: list[float] = field(default_factory=list)  # one per round


def send(connection: http.client.HTTPConnection, path: str, body: bytes) -> bytes:
    try:
        connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
    except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
        # The server closed a connection that sat idle past its keep-alive timeout (uvicorn: 5 s), as happens
        # while the other connections of a slow server make their first request: reconnect once, as clients do.
        connection.close()
        connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"POST {path} answered {response.status}: {data[:500]!r}")
    return data


def run_phase(side: Side, requests: int, connections: int) -> Phase:
    """``requests`` POSTs over ``connections`` keep-alive connections (one thread each), all starting together,
    or as many as are answered within ``PHASE_SECONDS``."""
    host, port, bodies = *side.host_port, side.bodies
    share = [requests // connections + (i < requests % connections) for i in range(connections)]
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors: list[BaseException] = []
    ready = threading.Barrier(connections + 1)
    done = threading.Barrier(connections + 1)

    def client(index: int) -> None:
        connection = http.client.HTTPConnection(host, port, timeout=60)
        mine = latencies[index]
        offset = index * (len(bodies) // connections)
        try:
            send(connection, side.path, bodies[offset % len(bodies)])  # connect outside the measurement
            ready.wait()
            deadline = time.perf_counter() + PHASE_SECONDS
            for i in range(share[index]):
                if time.perf_counter() > deadline:
                    break
                body = bodies[(offset + i) % len(bodies)]
                started = time.perf_counter()
                send(connection, side.path, body)
                mine.append(time.perf_counter() - started)
        except BaseException as error:  # reported by the main thread
            errors.append(error)
            ready.abort()
        finally:
            connection.close()
            try:
                done.wait()
            except threading.BrokenBarrierError:
                pass

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    try:
        ready.wait()
    except threading.BrokenBarrierError:
        pass
    started = time.perf_counter()
    try:
        done.wait()
    except threading.BrokenBarrierError:
        pass
    seconds = time.perf_counter() - started
    for thread in threads:
        thread.join()
    if errors:  # the first error that is not another thread's broken barrier
        first = next((e for e in errors if not isinstance(e, threading.BrokenBarrierError)), errors[0])
        raise RuntimeError(f"{side.name}: {first}") from first
    return Phase([t for mine in latencies for t in mine], seconds)


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f}"


# -- the benchmark ---------------------------------------------------------------------------------------------


def check_answers(sides: list[Side], expected: list[int]) -> None:
    """Every side gives the registered model's predictions for every request body."""
    for side in sides:
        host, port = side.host_port
        connection = http.client.HTTPConnection(host, port, timeout=60)
        try:
            got = [json.loads(send(connection, side.path, body))["predictions"][0] for body in side.bodies]
        finally:
            connection.close()
        if [int(p) for p in got] != expected:
            raise RuntimeError(f"{side.name} predicts {got[:10]}..., the model {expected[:10]}...")


def toggle_shadow(tracking_uri: str, serve_url: str, version: str | None) -> None:
    """Set (or remove) the ``shadow`` alias and make mlops-serve re-read it now; check that it did."""
    set_alias(tracking_uri, "shadow", version)
    state = post_json(serve_url + "/refresh")
    shadow = (state.get("shadow") or {}).get("version")
    if (shadow is None) != (version is None) or (version is not None and str(shadow) != str(version)):
        raise RuntimeError(f"mlops-serve did not pick up shadow={version}: /refresh answered {state}")


def shadow_rows(serve_url: str) -> float:
    """The shadow rows mlops-serve has journaled so far (from its ``/metrics``)."""
    with urllib.request.urlopen(serve_url + "/metrics", timeout=30) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("mlops_serve_journaled_rows_total{") and 'role="shadow"' in line
    )


def wait_for_shadow_work(serve_url: str, quiet_seconds: float = 2.5, timeout: float = 60.0) -> None:
    """Wait until the shadow process has journaled everything it was given (its count stays put for
    ``quiet_seconds``, longer than it lets a batch gather), so that one side's shadow work never runs during
    the next side's measurement, and the shadow's first batch (its warm-up) is not measured."""
    deadline = time.monotonic() + timeout
    last = shadow_rows(serve_url)
    while time.monotonic() < deadline:
        time.sleep(quiet_seconds)
        now = shadow_rows(serve_url)
        if now == last:
            return
        last = now


def measure(sides: dict[str, Side], prepare: dict[str, Callable[[], None]]) -> dict[str, Samples]:
    samples = {name: Samples() for name in sides}
    names = list(sides)
    for name in names:  # warm-up, not counted
        prepare[name]()
        run_phase(sides[name], WARMUP, CONNECTIONS)
        if name == SHADOW:  # the shadow process's first batch is its warm-up too
            wait_for_shadow_work(sides[name].url)
    for round_ in range(ROUNDS):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        latency: dict[str, list[float]] = {name: [] for name in names}
        for block in latency_blocks(order):
            prepare[block]()
            requests = LATENCY_REQUESTS if block == MLFLOW else SERVE_LATENCY_REQUESTS // SHADOW_PAIRS
            latency[block] += run_phase(sides[block], requests, 1).latencies
        for name in order:
            prepare[name]()
            load = run_phase(sides[name], LOAD_REQUESTS, CONNECTIONS)
            kept = samples[name]
            kept.latency += latency[name]
            kept.load += load.latencies
            kept.throughput.append(load.throughput)
            progress(
                f"round {round_ + 1}/{ROUNDS} {name:<22} 1 conn: {len(latency[name]):4d} req p50 "
                f"{ms(percentile(latency[name], 50))} ms"
                f"  p99 {ms(percentile(latency[name], 99))} ms | {CONNECTIONS} conns: "
                f"{len(load.latencies):4d} req {load.throughput:6.0f} req/s  "
                f"p99 {ms(percentile(load.latencies, 99))} ms"
            )
    return samples


def latency_blocks(order: list[str]) -> list[str]:
    """One round's one-connection blocks in ``order``: MLflow's in one; mlops-serve without and with the shadow in
    ``SHADOW_PAIRS`` pairs of blocks next to each other, which of the two goes first alternating. This machine has
    slow spells of several seconds: a pair is short enough for a spell to hit both sides alike."""
    blocks: list[str] = []
    for name in order:
        if name == MLFLOW:
            blocks.append(name)
        elif len(blocks) == blocks.count(MLFLOW):  # the first mlops-serve side: both sides' pairs go here
            pair = [name, SHADOW if name == SERVE else SERVE]
            for index in range(SHADOW_PAIRS):
                blocks += pair if index % 2 == 0 else pair[::-1]
    return blocks


def print_table(samples: dict[str, Samples]) -> None:
    progress(
        f"\n{'side':<22} {'p50 ms':>8} {'p99 ms':>8}   {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8}\n"
        f"{'':<22} {'(1 connection)':>17}   {f'({CONNECTIONS} connections, median round)':>25}"
    )
    for name, kept in samples.items():
        progress(
            f"{name:<22} {ms(percentile(kept.latency, 50)):>8} {ms(percentile(kept.latency, 99)):>8}   "
            f"{statistics.median(kept.throughput):7.0f} {ms(percentile(kept.load, 50)):>8} "
            f"{ms(percentile(kept.load, 99)):>8}"
        )


def main() -> int:
    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that ``finally`` stops the servers
    started = time.perf_counter()
    # BENCH_SERVING_MLFLOW_ONLY=1: MLflow's side alone, to check the set-up and the client (no verdict).
    serve_command = None if os.environ.get("BENCH_SERVING_MLFLOW_ONLY") == "1" else mlops_serve_command()
    root = Path(tempfile.mkdtemp(prefix="mlops-bench-serving-"))
    home = root / "home"
    home.mkdir()
    services: list[Service] = []
    env = {
        "MLOPS_HOME": str(home),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # mlflow models serve execs ``uvicorn``
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "MLFLOW_TRACKING_USERNAME": "",
        "MLFLOW_TRACKING_PASSWORD": "",
    }
    os.environ.update(env)
    try:
        port = free_port()
        tracking = start_service(
            "mlflow-server",
            [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
             "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"],
            root, f"http://127.0.0.1:{port}",
            {**env, "MLFLOW_TRACKING_URI": "", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )  # fmt: skip
        services.append(tracking)
        began = time.perf_counter()  # fitting needs no server: it runs while the server migrates its database
        fitted = fit_versions(home)
        progress(f"fitted two versions of {MODEL} in {time.perf_counter() - began:.1f} s (imports included)")
        progress(f"mlflow server: ready {wait_ready(tracking, '/health'):.1f} s after its start ({tracking.url}, "
                 "SQLite backend)")  # fmt: skip
        tracking_uri = tracking.url
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
        began = time.perf_counter()
        champion, shadow = register_versions(tracking_uri, fitted)
        set_alias(tracking_uri, "champion", champion)
        progress(f"registered {MODEL} v{champion} (alias champion) and v{shadow}: {time.perf_counter() - began:.1f} s")
        bodies, feature_bodies, expected = payloads()

        child_env = {**env, "MLFLOW_TRACKING_URI": tracking_uri}
        sides: dict[str, Side] = {}
        waits: list[tuple[Service, str]] = []
        port = free_port()
        baseline = start_service(
            "mlflow-models-serve",
            [str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{MODEL}/{champion}", "--env-manager", "local",
             "-h", "127.0.0.1", "-p", str(port), "-w", str(WORKERS)],
            root, f"http://127.0.0.1:{port}", child_env,
        )  # fmt: skip
        services.append(baseline)
        waits.append((baseline, "/ping"))
        sides[MLFLOW] = Side(MLFLOW, baseline.url, "/invocations", feature_bodies)
        serve: Service | None = None
        if serve_command is not None:
            port = free_port()
            serve = start_service(
                "mlops-serve",
                [*serve_command, "--model-name", MODEL, "--tracking-uri", tracking_uri, "--host", "127.0.0.1",
                 "--port", str(port), "--id-columns", ID, "--prediction-log-uri", str(home / "prediction_log")],
                root, f"http://127.0.0.1:{port}", child_env,
            )  # fmt: skip
            services.append(serve)
            waits.append((serve, "/health"))
            sides[SERVE] = Side(SERVE, serve.url, "/predict", bodies)
            sides[SHADOW] = Side(SHADOW, serve.url, "/predict", bodies)
        else:
            progress("measuring MLflow only (BENCH_SERVING_MLFLOW_ONLY=1, or no src/mlops_provider/serving/cli.py)")
        for service, path in waits:  # started together, waited for in turn
            progress(f"{service.name}: ready {wait_ready(service, path):.1f} s after its start")
        check_answers(list(sides.values()), expected)
        progress(f"same predictions as the registered model for all {len(expected)} requests on every side")

        prepare: dict[str, Callable[[], None]] = {MLFLOW: lambda: None}
        if serve is not None:
            serve_url = serve.url
            prepare[SERVE] = lambda: (toggle_shadow(tracking_uri, serve_url, None), wait_for_shadow_work(serve_url))
            # The same pause before both sides: a side measured straight after a request-free wait must not be
            # compared with one measured straight after a /refresh.
            prepare[SHADOW] = lambda: (toggle_shadow(tracking_uri, serve_url, shadow), wait_for_shadow_work(serve_url))
            toggle_shadow(tracking_uri, serve_url, shadow)  # load the shadow model once before the warm-up
        progress(f"{ROUNDS} rounds of {LATENCY_REQUESTS} requests on 1 connection ({SERVE_LATENCY_REQUESTS} for "
                 f"mlops-serve) and {LOAD_REQUESTS} on "
                 f"{CONNECTIONS} connections per side, after {WARMUP} warm-up requests each; "
                 f"{WORKERS} uvicorn worker per server")  # fmt: skip
        samples = measure(sides, prepare)
        print_table(samples)
        progress(f"total benchmark time {time.perf_counter() - started:.0f} s")
        if serve is None:
            progress("no mlops-serve to compare with: no verdict")
            return 2
        mlflow_, ours, shadowed = samples[MLFLOW], samples[SERVE], samples[SHADOW]
        p99_ratio = percentile(ours.latency, 99) / percentile(mlflow_.latency, 99)
        rps_ratio = statistics.median(ours.throughput) / statistics.median(mlflow_.throughput)
        shadow_ratio = percentile(shadowed.latency, 99) / percentile(ours.latency, 99)
        progress(f"ratios: p99 {p99_ratio:.3f} of MLflow's, throughput {rps_ratio:.3f} x MLflow's, "
                 f"shadow p99 {shadow_ratio:.3f} x without")  # fmt: skip
        verdicts = [
            report("serving_p99_vs_mlflow", p99_ratio, TARGET_P99),
            report("serving_throughput_vs_mlflow", rps_ratio, TARGET_THROUGHPUT, ">="),
            report("serving_shadow_p99_cost", shadow_ratio, TARGET_SHADOW),
        ]
        return 0 if all(verdicts) else 1
    finally:
        for service in reversed(services):
            service.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
