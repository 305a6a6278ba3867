"""Online scoring: ``mlops-serve`` against MLflow's own scoring server (``mlflow models serve``), same model, same
requests, real processes, in the same run.

Set-up (all local, nothing downloaded, everything under one temp dir): a real ``mlflow server`` process (SQLite
backend, proxied artifacts) on a free port, the one the scoring servers read the registry from, as in production.
Two versions are trained with the provider's own training, the steps of ``core.training.train_and_register``
(fitted while the server migrates its database, then ``log_and_register``): the default pipeline the lifecycle DAG
registers, median imputation + scaling and most-frequent imputation + one-hot in a ``ColumnTransformer`` before a
``HistGradientBoostingClassifier``, stored with skops, with signature and input example, on the seeded churn table
of ``include/sample_data.py``. They are registered as versions 1 and 2 of ``churn`` (version 1 the ``champion``)
and again of ``churn_shadowed`` (version 1 the ``champion``, version 2 the ``shadow``).

* MLflow: ``mlflow models serve -m models:/churn/1 --env-manager local -w 1``: MLflow's FastAPI scoring server
  in one uvicorn worker (its default), POST ``/invocations``.
* mlops-serve: ``mlops-serve --model-name churn --id-columns customer_id``: one uvicorn process (the service has
  no workers option), POST ``/predict``, with its defaults otherwise: the prediction log on (every served row
  journaled before its answer), the registry polled every 5 s. It answers more than MLflow does: the class
  probabilities and the model version, and it writes the log; MLflow answers the predicted class only.
* mlops-serve + shadow: the same for ``churn_shadowed``, a second process: it answers from the same model and
  scores every request with version 2 as well, off the response path.

Every side gets the same single-row requests, ``{"dataframe_records": [{...}]}``, cycling through the same 64
seeded rows in the same order: the five features, and for mlops-serve the id column too, which its prediction log
records (MLflow gets no id: a column outside the signature makes it log a warning line on every request, which
would charge it for logging, not scoring). Every side must give the same predictions for all 64 before anything is
timed. The client is this process: keep-alive ``http.client`` connections, a fixed number of requests after one
unmeasured request per connection (a phase also stops after ``PHASE_SECONDS``, so that a server that answers a few
requests a second cannot stretch the run); every request's wall time is recorded. Per round:

* latency, MLflow against mlops-serve: one connection, requests back to back (no queueing), a block per side;
* the shadow's cost: mlops-serve with and without the shadow, one connection each, their requests taking turns
  one by one (``interleave``), so that this machine's slow spells (everything on it runs up to twice as slow for
  a second or so, often) fall on both alike: measured in blocks, a side apart, the same server against itself
  differed by 10% in p99. The shadow process runs on the other core, and what it takes from a request running
  meanwhile it takes from the requests of both servers; so the requests without the shadow that ran while a child
  process of the shadowed server was on a CPU (the shadow process; also its journal's converter, whose files hold
  the shadow's rows too) are left out (``BackgroundCpu``): they would not have met that work without this
  benchmark. The requests with the shadow all count, so the ratio errs against the shadow (the whole conversion is
  charged to it, not only its rows' share). The p99s compared are over each side's pooled requests;
* load: ``CONNECTIONS`` connections at once (closed loop): throughput (requests/s), with p50/p99 under load.

The sides take turns, ``ROUNDS`` rounds, the order rotated each round so that machine noise hits all alike; the
percentiles are over the pooled requests of all rounds, the throughput is the median of the rounds. The shadow
process scores in batches a couple of seconds apart: after each phase of the shadowed server its last batch is
waited for (``/metrics``' shadow row count stays put for 2.5 s, longer than a batch gathers), so that it never
runs during another phase, and its first batch belongs to the warm-up.

Targets: mlops-serve's p99 (one connection) <= 0.8 x MLflow's, its throughput (``CONNECTIONS`` connections)
>= 1.5 x MLflow's, and the shadow adds <= 10% to mlops-serve's p99 (one connection). The client shares the
machine's two cores with the servers it measures, alike for all sides. Every process started here is stopped by
its process group, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "include"))

from harness import report  # noqa: E402
from serving_processes import BackgroundCpu, ManagedProcess, free_port, post_json, start_service, wait_ready  # noqa: E402

BIN = Path(sys.executable).parent
MODEL = "churn"
SHADOWED_MODEL = "churn_shadowed"  # the same two versions, the second under the ``shadow`` alias
ID = "customer_id"
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "plan", "contract"]
TRAIN_ROWS = 3000
PAYLOAD_ROWS = 64
WARMUP = 100  # requests per side before the first round (JIT-free Python still warms caches, pools, lazy imports)
ROUNDS = int(os.environ.get("BENCH_SERVING_ROUNDS", 4))
LATENCY_REQUESTS = int(os.environ.get("BENCH_SERVING_LATENCY_REQUESTS", 400))  # per side and round, 1 connection
# mlops-serve with and without the shadow, per side and round (see ``interleave``): the shadow's cost is a ratio of
# two pooled p99s, each set by the slowest 1% of a side's requests, so these sides get more of them.
SHADOW_REQUESTS = 2 * LATENCY_REQUESTS
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


def register_versions(tracking_uri: str, fitted: list, model_names: list[str]) -> list[str]:
    """Log and register the fitted versions in order (``log_and_register``, as the training operator does) as
    versions of each of ``model_names``; returns their version numbers (the same for every name)."""
    import mlflow
    from mlflow import MlflowClient

    from mlops_provider.core.training.record import log_and_register

    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    experiment_id = client.create_experiment(MODEL)
    versions: list[str] = []
    with contextlib.redirect_stdout(sys.stderr):  # MLflow prints links to each run
        for model_name in model_names:
            versions = [
                log_and_register(client, one, experiment_id=experiment_id, model_name=model_name, tags={},
                                 dataset_uri=f"sample_data.churn_frame(seed={seed})").version
                for seed, one in enumerate(fitted, start=1)
            ]  # fmt: skip
    return versions


def set_alias(tracking_uri: str, model_name: str, alias: str, version: str) -> None:
    from mlflow import MlflowClient

    MlflowClient(tracking_uri).set_registered_model_alias(model_name, alias, version)


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


@dataclass
class TakingTurns:
    shadowed: list[float] = field(default_factory=list)  # every request of the server with the shadow
    plain: list[float] = field(default_factory=list)  # the server without it, while the other's children did not run
    plain_left_out: int = 0  # the others

    def add(self, other: TakingTurns) -> None:
        self.shadowed += other.shadowed
        self.plain += other.plain
        self.plain_left_out += other.plain_left_out


def interleave(shadowed: Side, plain: Side, requests: int, background: BackgroundCpu) -> TakingTurns:
    """``requests`` one-connection requests to each side, taking turns one by one (which side goes first
    alternating from pair to pair), or as many as are answered within four times ``PHASE_SECONDS``."""
    sides = (shadowed, plain)
    connections = [http.client.HTTPConnection(*side.host_port, timeout=60) for side in sides]
    times: tuple[list[float], list[float]] = ([], [])
    left_out = 0
    try:
        for side, connection in zip(sides, connections, strict=True):
            send(connection, side.path, side.bodies[0])  # connect outside the measurement
        deadline = time.perf_counter() + 4 * PHASE_SECONDS
        for i in range(requests):
            if time.perf_counter() > deadline:
                break
            for index in (0, 1) if i % 2 == 0 else (1, 0):
                side = sides[index]
                body = side.bodies[i % len(side.bodies)]
                before = background.look()
                started = time.perf_counter()
                send(connections[index], side.path, body)
                seconds = time.perf_counter() - started
                ran = BackgroundCpu.ran(before, background.look())  # looked at for both sides: the same pace
                if index == 1 and ran:
                    left_out += 1
                    continue
                times[index].append(seconds)
    finally:
        for connection in connections:
            connection.close()
    return TakingTurns(times[0], times[1], left_out)


def measure(sides: dict[str, Side], background: BackgroundCpu | None) -> tuple[dict[str, Samples], TakingTurns]:
    samples = {name: Samples() for name in sides}
    shadow = TakingTurns()  # pooled over the rounds
    names = list(sides)

    def settle(name: str) -> None:  # the shadowed server's last shadow batch never runs in another phase
        if name == SHADOW:
            wait_for_shadow_work(sides[name].url)

    for name in names:  # warm-up, not counted; the shadow process's first batch is its warm-up too
        run_phase(sides[name], WARMUP, CONNECTIONS)
        settle(name)
    for round_ in range(ROUNDS):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        latency: dict[str, list[float]] = {name: [] for name in names}
        for name in order:
            if name == SHADOW:  # its one-connection requests are the interleaved ones
                continue
            latency[name] = run_phase(sides[name], LATENCY_REQUESTS, 1).latencies
        if background is not None:
            background.rescan()
            turns = interleave(sides[SHADOW], sides[SERVE], SHADOW_REQUESTS, background)
            settle(SHADOW)
            latency[SHADOW] = turns.shadowed
            shadow.add(turns)
            progress(
                f"round {round_ + 1}/{ROUNDS} shadow's cost (taking turns): p99 {ms(percentile(turns.shadowed, 99))} "
                f"ms with, {ms(percentile(turns.plain, 99))} ms without ({turns.plain_left_out} of its "
                f"{len(turns.plain) + turns.plain_left_out} requests left out: the other's children ran meanwhile)"
            )
        for name in order:
            load = run_phase(sides[name], LOAD_REQUESTS, CONNECTIONS)
            settle(name)
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
    return samples, shadow


def print_table(samples: dict[str, Samples], shadow: TakingTurns) -> None:
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
    if shadow.shadowed:
        progress(
            f"\nthe shadow's cost, the two servers taking turns (1 connection each): with the shadow "
            f"{len(shadow.shadowed)} requests, p50 {ms(percentile(shadow.shadowed, 50))} ms, p99 "
            f"{ms(percentile(shadow.shadowed, 99))} ms; without {len(shadow.plain)} requests "
            f"({shadow.plain_left_out} left out: the shadowed server's children ran meanwhile), p50 "
            f"{ms(percentile(shadow.plain, 50))} ms, p99 {ms(percentile(shadow.plain, 99))} ms"
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
    services: list[ManagedProcess] = []
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
        champion, shadow = register_versions(tracking_uri, fitted, [MODEL, SHADOWED_MODEL])
        set_alias(tracking_uri, MODEL, "champion", champion)
        set_alias(tracking_uri, SHADOWED_MODEL, "champion", champion)
        set_alias(tracking_uri, SHADOWED_MODEL, "shadow", shadow)
        progress(f"registered {MODEL} and {SHADOWED_MODEL} v{champion} (alias champion) and v{shadow} (alias shadow "
                 f"of {SHADOWED_MODEL}): {time.perf_counter() - began:.1f} s")  # fmt: skip
        bodies, feature_bodies, expected = payloads()

        child_env = {**env, "MLFLOW_TRACKING_URI": tracking_uri}
        sides: dict[str, Side] = {}
        waits: list[tuple[ManagedProcess, str]] = []
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
        serve: ManagedProcess | None = None
        shadowed: ManagedProcess | None = None
        if serve_command is not None:
            servers = []
            for name, model_name in ((SERVE, MODEL), (SHADOW, SHADOWED_MODEL)):
                port = free_port()
                server = start_service(
                    name,
                    [*serve_command, "--model-name", model_name, "--tracking-uri", tracking_uri, "--host",
                     "127.0.0.1", "--port", str(port), "--id-columns", ID, "--prediction-log-uri",
                     str(home / "prediction_log")],
                    root, f"http://127.0.0.1:{port}", child_env,
                )  # fmt: skip
                services.append(server)
                waits.append((server, "/health"))
                sides[name] = Side(name, server.url, "/predict", bodies)
                servers.append(server)
            serve, shadowed = servers
        else:
            progress("measuring MLflow only (BENCH_SERVING_MLFLOW_ONLY=1, or no src/mlops_provider/serving/cli.py)")
        for service, path in waits:  # started together, waited for in turn
            progress(f"{service.name}: ready {wait_ready(service, path):.1f} s after its start")
        check_answers(list(sides.values()), expected)
        progress(f"same predictions as the registered model for all {len(expected)} requests on every side")

        background = None
        if shadowed is not None:
            described = post_json(shadowed.url + "/refresh")  # the shadow model loaded before the warm-up
            if str((described.get("shadow") or {}).get("version")) != str(shadow):
                raise RuntimeError(f"{SHADOW} did not pick up shadow version {shadow}: /refresh answered {described}")
            background = BackgroundCpu(shadowed.popen.pid)
        progress(f"{ROUNDS} rounds of {LATENCY_REQUESTS} requests on 1 connection, {SHADOW_REQUESTS} a side for the "
                 f"shadow's cost, and {LOAD_REQUESTS} on {CONNECTIONS} connections per side, after {WARMUP} warm-up "
                 f"requests each; {WORKERS} uvicorn worker per server")  # fmt: skip
        samples, shadow_samples = measure(sides, background)
        print_table(samples, shadow_samples)
        progress(f"total benchmark time {time.perf_counter() - started:.0f} s")
        if serve is None:
            progress("no mlops-serve to compare with: no verdict")
            return 2
        mlflow_, ours = samples[MLFLOW], samples[SERVE]
        p99_ratio = percentile(ours.latency, 99) / percentile(mlflow_.latency, 99)
        rps_ratio = statistics.median(ours.throughput) / statistics.median(mlflow_.throughput)
        shadow_ratio = percentile(shadow_samples.shadowed, 99) / percentile(shadow_samples.plain, 99)
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
