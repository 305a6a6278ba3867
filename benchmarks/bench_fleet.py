"""The model catalogue's cost per model (issue #15, item 4): parse time of the generated DAGs, lifecycle run time of
a growing fleet, and the registry calls of one promotion as a model's versions pile up.

1. Parse. The DAG processor keeps Airflow imported in its manager process and forks one child per DAG file; the
   child builds the file's DAGs (``BundleDagBag``) and serialises them. This script does the same with Airflow's
   own functions: a fresh interpreter of this Python plays the manager (``_pre_import_airflow_modules`` on each
   file, as the manager does before forking), forks one child per file, and the child runs the processor's
   ``_parse_file`` (stability check, DagBag, ``DagSerialization.to_dict`` of every DAG) and encodes the result as
   it would send it. Each child reports its own CPU seconds (so other work on the machine blurs little), best of
   ``--parse-repeat`` fresh managers.

   * generated: ``dags/mlops_fleet.py`` with a catalogue of 50 models, plus ``dags/mlops_fleet_catalogue.py`` (it
     reads and checks the same catalogue on every parse, so the catalogue pays for it too); the fleet file also
     builds the fleet's report DAG (``mlops_fleet_report``), which the hand-written side has no copy of;
   * hand-written: 50 copies of ``dags/mlops_lifecycle.py``, each with its own dag_id, model name, dataset and
     experiment, as a user would copy it per model; one file each, as users keep them.

   Target: generated <= 1.10 x hand-written. The slope between a 5-model and a 50-model catalogue is the parse
   CPU one more model adds; target <= 25 ms. For comparison the script also parses the 50 hand-written files in
   one child (imports paid once), whose slope is what one more hand-written DAG costs without its imports.

2. Run. The lifecycle (validate -> features -> train -> gate -> promote -> score) of every model of a catalogue
   of 5 and of 25 small models (``include/sample_data.py``, ``--days`` x ``--rows-per-day`` rows each), on the
   embedded default: SQLite metadata, the embedded MLflow store (SQLite + local artifacts), local files. Each
   size runs in its own process on its own fresh stores, as ``make demo`` runs DAGs: ``dag.test()`` of each
   generated ``mlops_fleet_<model>`` DAG, which runs the tasks in that process with Airflow's scheduling
   decisions on the metadata DB (no scheduler, no executor). Why not a scheduler with the LocalExecutor: tried
   once on this 2-core machine (``make up``'s shape: api-server, scheduler, dag-processor, parallelism 2, an MLflow
   server on SQLite), 3 catalogued models took 194 s, ~65 s of wall time per model, nearly all of it the
   start-up of one process per task (each imports Airflow, MLflow, scikit-learn, Great Expectations): 25 models
   would take ~25 minutes. (Without an MLflow server, two task processes opening the embedded store at once
   race MLflow's own schema migration and fail, which is why ``make up`` runs one.)

   Both processes are started together, warm up on one extra model each (the first lifecycle of a process pays
   its imports), then run their lifecycles interleaved in time (one run of the small fleet for every five of
   the large one), so that load from other processes on the machine falls on both alike. Per-model wall time
   = the sum of the lifecycle runs / the number of models. Target: 25 models / 5 models <= 1.30.

3. Registry calls per promotion. In the small fleet's process, after its runs: one model gets a second version,
   another 29 more (each but the last promoted in turn, so its history grows with them); then the newest
   version of each is promoted by a DAG holding just ``PromoteModelOperator`` as the lifecycle configures it
   (the gate on the stored holdout, the lock, the compare-and-set move, the history, the decision tags), run
   with ``dag.test()``. Every call into MLflow's tracking and registry stores during that run is counted (the
   store methods are wrapped, counting only the outermost call: with an MLflow server each is one REST
   request), and the ``MlflowClient`` calls behind them. Target: calls with 30 versions / with 2 versions <= 1.

Sizes: ``--parse-models`` (env ``BENCH_FLEET_PARSE_MODELS``, 50), ``--parse-small`` (5), ``--parse-repeat`` (3),
``--run-models`` (``BENCH_FLEET_RUN_MODELS``, "5,25"), ``--days`` (2), ``--rows-per-day`` (300), ``--versions``
(``BENCH_FLEET_VERSIONS``, "2,30"); ``--only parse|run`` runs one half. Everything is generated in a temporary
folder, removed at the end (``--keep`` keeps it, with the task logs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "include"))
from harness import report  # noqa: E402

DAGS = REPO / "dags"
FLEET_FILE = DAGS / "mlops_fleet.py"
CHECK_FILE = DAGS / "mlops_fleet_catalogue.py"
LIFECYCLE_FILE = DAGS / "mlops_lifecycle.py"
AIRFLOW = Path(sys.executable).parent / "airflow"

PARSE_TARGET = 1.10
MS_PER_MODEL_TARGET = 25.0
RUN_TARGET = 1.30
CALLS_TARGET = 1.0
WARMUP_MODEL = "warmup"
PROMOTE_DAG_ID = "bench_fleet_promote"

# The DAG processor's manager, for one repeat: Airflow imported, one forked child per job, as in
# airflow.dag_processing.processor (DagFileProcessorProcess.start -> _parse_file_entrypoint -> _parse_file).
PARSE_MANAGER = r"""
import gc, json, os, sys, time
from pathlib import Path

import structlog
from airflow.dag_processing.dagbag import BundleDagBag
from airflow.dag_processing.processor import (
    DagFileParseRequest, DagFileParsingResult, _parse_file, _pre_import_airflow_modules, _serialize_dags,
)

log = structlog.get_logger()
gc.freeze()  # as DagFileProcessorManager.before_run does before its parsing loop: children skip the frozen heap


def parse(job):
    if not job["folder"]:
        request = DagFileParseRequest(file=job["file"], bundle_path=Path(job["bundle"]), bundle_name="bench")
        return _parse_file(request, log)
    bag = BundleDagBag(dag_folder=job["file"], bundle_path=Path(job["bundle"]), bundle_name="bench",
                       load_op_links=False)
    dags, errors = _serialize_dags(bag, log)
    return DagFileParsingResult(fileloc=job["file"], serialized_dags=dags, import_errors={**bag.import_errors, **errors})


results = []
for job in json.loads(Path(sys.argv[1]).read_text()):
    for file in job["preimport"]:
        _pre_import_airflow_modules(file, log)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            os.environ.update(job["env"])
            start = time.process_time()
            result = parse(job)
            sent = result.model_dump_json()  # what the child sends up to the manager
            answer = {"cpu": time.process_time() - start, "dags": len(result.serialized_dags), "bytes": len(sent),
                      "errors": {str(k): str(v)[-2000:] for k, v in result.import_errors.items()}}
        except BaseException as error:
            answer = {"failed": repr(error)}
        os.write(write, json.dumps(answer).encode())
        os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 1 << 16):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    results.append(json.loads(b"".join(chunks)))
# Airflow's providers manager reads every provider's get_provider_info in the manager too; nothing more.
known = {"mlops_provider", "mlops_provider.get_provider_info"}
leaked = sorted(m for m in sys.modules if m.split(".")[0] == "mlops_provider" and m not in known)
print(json.dumps({"results": results, "manager_imported_provider": leaked}))
"""

# A DAG with only the lifecycle's promotion step, configured as lifecycle_task_group does (the gate by task type),
# except that a rejection fails the run instead of skipping, so it cannot pass unnoticed.
PROMOTE_DAG = f'''
from airflow.sdk import DAG

from mlops_provider.operators.registry import PromoteModelOperator

with DAG(dag_id="{PROMOTE_DAG_ID}", schedule=None, params={{"model": "", "version": ""}}):
    PromoteModelOperator(
        task_id="promote", model_name="{{{{ params.model }}}}", version="{{{{ params.version }}}}", on_reject="fail"
    )
'''


def catalogue_entry(name: str, dataset_uri: str) -> dict[str, Any]:
    """A lifecycle-only entry on the sample churn data's columns, as a platform team would write it."""
    return {
        "description": f"Churn model {name}, one of the benchmark's fleet.",
        "dataset_uri": dataset_uri,
        "target_column": "churned",
        "id_columns": ["customer_id", "dt"],
        "timestamp_column": "event_timestamp",
        "primary_metric": "roc_auc",
        "min_improvement": 0.0,
        "schedule": None,
        "owners": ["team-bench"],
        "tags": ["churn", "bench"],
    }


def write_catalogue(path: Path, models: dict[str, str]) -> Path:
    import yaml

    entries = {name: catalogue_entry(name, uri) for name, uri in models.items()}
    path.write_text(yaml.safe_dump({"models": entries}, sort_keys=False))
    return path


def model_names(count: int) -> list[str]:
    return [f"fleet_{i:03d}" for i in range(count)]


def handwritten_copy(source: str, model: str, dataset_uri: str) -> str:
    """``dags/mlops_lifecycle.py`` as a user copies it for one model: its own DAG id, model, data and experiment."""
    replacements = [
        ('dag_id="mlops_lifecycle"', f'dag_id="lifecycle_{model}"'),
        ("settings.model_name,", f'"{model}",'),
        ("settings.data_uri,", f'"{dataset_uri}",'),
        ('experiment_name="mlops_lifecycle"', f'experiment_name="lifecycle_{model}"'),
    ]
    for old, new in replacements:
        if source.count(old) != 1:
            raise SystemExit(f"{LIFECYCLE_FILE} changed: expected {old!r} once; update handwritten_copy().")
        source = source.replace(old, new)
    return source


def base_env(home: Path) -> dict[str, str]:
    """This environment without anything that would point Airflow, MLflow or the provider elsewhere."""
    dropped = ("AIRFLOW__", "AIRFLOW_CONN_MLFLOW", "MLFLOW_TRACKING", "MLFLOW_REGISTRY", "MLOPS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update(
        {
            "AIRFLOW_HOME": str(home / "airflow"),
            "MLOPS_HOME": str(home / "mlops"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "MLOPS_FEAST_REPO": str(REPO / "include" / "feature_repo"),
            "GX_ANALYTICS_ENABLED": "false",
            "PYTHONWARNINGS": "ignore",
        }
    )
    return env


# ---------------------------------------------------------------------------------------------------- 1. parse


def measure_parse(root: Path, big: int, small: int, repeat: int) -> bool:
    work = root / "parse"
    hand = work / "handwritten"
    hand.mkdir(parents=True)
    catalogues = {
        size: write_catalogue(work / f"catalog_{size}.yaml", {m: f"/data/churn/{m}" for m in model_names(size)})
        for size in (small, big)
    }
    source = LIFECYCLE_FILE.read_text()
    for model in model_names(big):
        (hand / f"lifecycle_{model}.py").write_text(handwritten_copy(source, model, f"/data/churn/{model}"))
    hand_files = sorted(hand.glob("*.py"))

    jobs: list[dict[str, Any]] = []
    for size, catalogue in catalogues.items():
        for file in (FLEET_FILE, CHECK_FILE):
            jobs.append({"label": f"{file.name}@{size}", "file": str(file), "bundle": str(DAGS), "folder": False,
                         "env": {"MLOPS_MODEL_CATALOG": str(catalogue)}, "preimport": [str(file)]})  # fmt: skip
    for file in hand_files:
        jobs.append({"label": file.name, "file": str(file), "bundle": str(hand), "folder": False, "env": {},
                     "preimport": [str(file)]})  # fmt: skip
    jobs.append({"label": "handwritten-folder", "file": str(hand), "bundle": str(hand), "folder": True, "env": {},
                 "preimport": [str(hand_files[0])]})  # fmt: skip
    jobs_file = work / "jobs.json"
    jobs_file.write_text(json.dumps(jobs))
    env = {**base_env(work), "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS)}

    best: dict[str, float] = {}
    for attempt in range(repeat):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", PARSE_MANAGER, str(jobs_file)], capture_output=True, text=True, env=env
        )
        if done.returncode != 0:
            raise SystemExit(f"The parse manager failed:\n{done.stderr[-4000:]}")
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        if answer["manager_imported_provider"]:
            raise SystemExit(
                f"The manager imported {answer['manager_imported_provider'][:5]}: children would share it."
            )
        for job, result in zip(jobs, answer["results"], strict=True):
            if "failed" in result or result["errors"]:
                raise SystemExit(f"{job['label']} did not parse: {result.get('failed') or result['errors']}")
            expected = {f"{FLEET_FILE.name}@{small}": small + 1, f"{FLEET_FILE.name}@{big}": big + 1,  # + report
                        f"{CHECK_FILE.name}@{small}": 0, f"{CHECK_FILE.name}@{big}": 0,
                        "handwritten-folder": big}.get(job["label"], 1)  # fmt: skip
            if result["dags"] != expected:
                raise SystemExit(f"{job['label']} gave {result['dags']} DAGs, expected {expected}.")
            best[job["label"]] = min(best.get(job["label"], float("inf")), result["cpu"])
        print(f"   parse repeat {attempt + 1}/{repeat}: {len(jobs)} files in {time.perf_counter() - started:.0f} s",
              flush=True)  # fmt: skip

    generated = {size: best[f"{FLEET_FILE.name}@{size}"] + best[f"{CHECK_FILE.name}@{size}"] for size in (small, big)}
    singles = [best[file.name] for file in hand_files]
    handwritten = sum(singles)
    slope_ms = (generated[big] - generated[small]) / (big - small) * 1000
    folder_slope_ms = (best["handwritten-folder"] - statistics.median(singles)) / (big - 1) * 1000
    print(f"\n   parse CPU seconds, best of {repeat} (each file in its own forked child, as the DAG processor does):")
    for size in (small, big):
        print(f"   generated, {size:3d} models: {FLEET_FILE.name} {best[f'{FLEET_FILE.name}@{size}']:.3f} + "
              f"{CHECK_FILE.name} {best[f'{CHECK_FILE.name}@{size}']:.3f} = {generated[size]:.3f}")  # fmt: skip
    print(f"   hand-written, {big} files: {handwritten:.3f} (per file: median {statistics.median(singles):.3f}, "
          f"min {min(singles):.3f}, max {max(singles):.3f})")  # fmt: skip
    print(f"   generated / hand-written at {big} models: {generated[big] / handwritten:.3f}")
    print(f"   one more model: generated {slope_ms:.1f} ms of parse CPU; a hand-written DAG {statistics.median(singles) * 1000:.0f} ms"
          f" as its own file, {folder_slope_ms:.1f} ms beside the others in one file's process "
          f"(all {big} in one child: {best['handwritten-folder']:.3f} s)\n", flush=True)  # fmt: skip
    ok = report(f"fleet_parse_{big}_models_vs_{big}_handwritten", generated[big] / handwritten, PARSE_TARGET)
    ok &= report("fleet_parse_ms_per_model", slope_ms, MS_PER_MODEL_TARGET)
    return ok


# ---------------------------------------------------------------------------------------------------- 2. run


def prepare_run(root: Path, size: int, days: int, rows_per_day: int) -> tuple[Path, dict[str, str]]:
    from sample_data import write_partitions

    home = root / f"run_{size}"
    dags = home / "dags"
    dags.mkdir(parents=True)
    shutil.copy(FLEET_FILE, dags / FLEET_FILE.name)  # dag.test() runs DAGs of the configured DAGs folder only
    (dags / f"{PROMOTE_DAG_ID}.py").write_text(PROMOTE_DAG)
    models = {}
    for seed, name in enumerate([WARMUP_MODEL, *model_names(size)]):  # model i has the same data in every fleet
        folder = home / "data" / name
        write_partitions(folder, start="2026-01-01", days=days, rows_per_day=rows_per_day, seed=seed)
        models[name] = str(folder)
    catalogue = write_catalogue(home / "catalog.yaml", models)
    env = {
        **base_env(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow' / 'airflow.db'}",
        "MLOPS_MODEL_CATALOG": str(catalogue),
    }
    return home, env


class Child:
    """One fleet's process: sends commands, reads one JSON answer per command."""

    def __init__(self, size: int, home: Path, env: dict[str, str]) -> None:
        self.size, self.home = size, home
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--child", str(home)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"The {self.size}-model process died; task logs in {self.home / 'tasks.log'}")
        message = json.loads(line)
        if "error" in message:
            raise SystemExit(f"The {self.size}-model process failed:\n{message['error']}\ntask logs: {self.home}")
        return message

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self.answer()

    def stop(self) -> None:
        """Ends the process: it finishes at the end of its input; killed if it does not within a minute."""
        if self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except OSError:
                pass
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def measure_runs(root: Path, fleets: list[int], days: int, rows_per_day: int, versions: list[int]) -> bool:
    small, big = min(fleets), max(fleets)
    children: dict[int, Child] = {}
    print(f"   starting one process per fleet: a fresh metadata DB and MLflow store, {days} days x {rows_per_day} rows "
          "per model, the DAGs parsed, one warm-up lifecycle ...", flush=True)  # fmt: skip
    try:
        for size in (small, big):
            home, env = prepare_run(root, size, days, rows_per_day)
            children[size] = Child(size, home, env)
        for size, child in children.items():
            ready = child.answer()
            print(f"   {size:2d}-model fleet ready: {ready['dags']} DAGs parsed in {ready['parse_seconds']:.1f} s, "
                  f"warm-up lifecycle {ready['warmup']['wall']:.1f} s", flush=True)  # fmt: skip
        # Interleaved in time: each fleet's k-th run sits at (k + 0.5) / size of the whole.
        order = sorted(
            ((k + 0.5) / size, size, model) for size in (small, big) for k, model in enumerate(model_names(size))
        )
        runs: dict[int, list[dict[str, Any]]] = {small: [], big: []}
        for position, size, model in order:
            run = children[size].ask(cmd="run", model=model)
            if run["state"] != "success" or not run["promoted"]:
                raise SystemExit(f"mlops_fleet_{model} ({size} models) ended {run['state']}: {run['tasks']}; "
                                 f"task logs in {children[size].home / 'tasks.log'}")  # fmt: skip
            runs[size].append(run)
            print(f"   [{position:4.0%}] {size:2d}-model fleet: {model} {run['wall']:5.2f} s wall, {run['cpu']:5.2f} s CPU",
                  flush=True)  # fmt: skip
        per_model = {size: sum(r["wall"] for r in runs[size]) / size for size in (small, big)}
        cpu_per_model = {size: sum(r["cpu"] for r in runs[size]) / size for size in (small, big)}
        print(f"\n   lifecycle per model (dag.test, embedded stores), {days} days x {rows_per_day} rows each:")
        for size in (small, big):
            walls = [r["wall"] for r in runs[size]]
            print(f"   {size:3d} models: {sum(walls):6.1f} s in all, {per_model[size]:.2f} s wall per model "
                  f"(median {statistics.median(walls):.2f}), {cpu_per_model[size]:.2f} s CPU per model")  # fmt: skip
        tail = min(5, big)
        first, last = runs[big][:tail], runs[big][-tail:]
        print(f"   {big} models: first {tail} {sum(r['wall'] for r in first) / tail:.2f} s, last {tail} "
              f"{sum(r['wall'] for r in last) / tail:.2f} s wall per model; CPU ratio {big} / {small}: "
              f"{cpu_per_model[big] / cpu_per_model[small]:.3f}\n", flush=True)  # fmt: skip
        ok = report(f"fleet_run_per_model_{big}_vs_{small}", per_model[big] / per_model[small], RUN_TARGET)

        few, many = min(versions), max(versions)
        print(f"   promotions with {few} and with {many} versions ...", flush=True)
        counted = children[small].ask(
            cmd="promotions", cases=[[model_names(small)[0], few], [model_names(small)[1], many]]
        )
        rows = {row["versions"]: row for row in counted["cases"]}
        for row in counted["cases"]:
            store = sum(row["store"].values())
            print(f"   {row['model']}: {row['versions']:2d} versions, {row['history']:2d} history entries: "
                  f"{store} store calls, {sum(row['client'].values())} MlflowClient calls, promote task "
                  f"{row['task_seconds']:.2f} s")  # fmt: skip
            print(f"      store: {json.dumps(dict(sorted(row['store'].items())))}")
        ratio = sum(rows[many]["store"].values()) / sum(rows[few]["store"].values())
        few_calls, many_calls = rows[few]["store"], rows[many]["store"]
        for name in sorted(set(few_calls) | set(many_calls)):
            if few_calls.get(name, 0) != many_calls.get(name, 0):
                print(
                    f"      {name}: {few_calls.get(name, 0)} with {few} versions, {many_calls.get(name, 0)} with {many}"
                )
        print()
        ok &= report(f"fleet_promotion_registry_calls_{many}_vs_{few}_versions", ratio, CALLS_TARGET)
        return ok
    except BaseException:
        for child in children.values():
            child.process.kill()  # our own processes, by pid
        raise
    finally:
        for child in children.values():
            child.stop()


# ---------------------------------------------------------------------------------------------------- the child


class StoreCalls:
    """Counts calls into MLflow's stores (one REST request each against a server) and into ``MlflowClient``.

    Wraps the public methods of the classes; a call made inside another counted call of the same kind is not
    counted again."""

    def __init__(self) -> None:
        import threading
        from collections import Counter

        self.active = False
        self.counts: dict[str, Counter[str]] = {"store": Counter(), "client": Counter()}
        self.depth = threading.local()

    def wrap(self, cls: type, kind: str, prefix: str) -> None:
        import functools
        import inspect

        seen: set[str] = set()
        for klass in cls.__mro__[:-1]:
            for name, attribute in vars(klass).items():
                if name.startswith("_") or name in seen or not inspect.isfunction(attribute):
                    continue
                seen.add(name)
                setattr(cls, name, functools.wraps(attribute)(self._counted(attribute, kind, f"{prefix}{name}")))

    def _counted(self, function: Any, kind: str, name: str) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            depth = getattr(self.depth, kind, 0)
            if self.active and depth == 0:
                self.counts[kind][name] += 1
            setattr(self.depth, kind, depth + 1)
            try:
                return function(*args, **kwargs)
            finally:
                setattr(self.depth, kind, depth)

        return counted

    def reset(self) -> None:
        for counter in self.counts.values():
            counter.clear()


def child_main(home: Path) -> int:
    """One fleet on its own stores: warm up, then answer commands on stdin (one JSON line each)."""
    import traceback

    answers = os.fdopen(os.dup(1), "w", buffering=1)
    log = open(home / "tasks.log", "ab")  # the task output, for the process's lifetime
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)

    def send(message: dict[str, Any]) -> None:
        answers.write(json.dumps(message, default=str) + "\n")
        answers.flush()

    try:
        migrated = subprocess.run([str(AIRFLOW), "db", "migrate"], capture_output=True, text=True)
        if migrated.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{migrated.stderr[-3000:]}")
        from airflow.dag_processing.dagbag import DagBag
        from airflow.models.pool import Pool

        from mlops_provider.fleet.dags import TRAINING_POOL

        Pool.create_or_update_pool(TRAINING_POOL, slots=4, description="bench_fleet", include_deferred=False)
        started = time.perf_counter()
        bag = DagBag(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
        parse_seconds = time.perf_counter() - started
        if bag.import_errors:
            raise RuntimeError(f"DAG import errors: {bag.import_errors}")
        warmup = run_lifecycle(bag, WARMUP_MODEL)
        if warmup["state"] != "success":
            raise RuntimeError(f"the warm-up lifecycle ended {warmup['state']}: {warmup['tasks']}")
        send({"ready": True, "dags": len(bag.dags), "parse_seconds": parse_seconds, "warmup": warmup})
        for line in sys.stdin:
            command = json.loads(line)
            if command["cmd"] == "run":
                send(run_lifecycle(bag, command["model"]))
            elif command["cmd"] == "promotions":
                send({"cases": [promotion_calls(bag, model, versions) for model, versions in command["cases"]]})
            else:
                raise ValueError(f"unknown command {command!r}")
    except BaseException:
        send({"error": traceback.format_exc()[-6000:]})
        return 1
    return 0


def run_lifecycle(bag: Any, model: str) -> dict[str, Any]:
    dag = bag.dags[f"mlops_fleet_{model}"]
    wall, cpu = time.perf_counter(), time.process_time()
    run = dag.test()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    tasks = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    return {"model": model, "wall": wall, "cpu": cpu, "state": str(run.state), "tasks": tasks,
            "promoted": tasks.get("lifecycle.promote") == "success"}  # fmt: skip


_CALLS: StoreCalls | None = None


def store_calls() -> StoreCalls:
    global _CALLS
    if _CALLS is None:
        from mlflow import MlflowClient
        from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

        _CALLS = StoreCalls()
        _CALLS.wrap(RegistryStore, "store", "registry.")
        _CALLS.wrap(TrackingStore, "store", "tracking.")
        _CALLS.wrap(MlflowClient, "client", "")
    return _CALLS


def promotion_calls(bag: Any, model: str, versions: int) -> dict[str, Any]:
    """Give ``model`` (trained once by its lifecycle: version 1, champion) ``versions`` versions, each new one
    but the last promoted in turn; then count the MLflow calls of the promotion of the last one."""
    from mlops_provider.core.identity import TaskIdentity
    from mlops_provider.core.registry import alias_version, promote_version, read_history
    from mlops_provider.hooks.mlflow import MlflowHook

    client = MlflowHook().get_conn()
    first = client.get_model_version(model, "1")
    copied = {k: v for k, v in first.tags.items() if not k.startswith("mlops.gate.")}
    metrics = {"roc_auc": 0.75, "accuracy": 0.8, "f1_macro": 0.7, "log_loss": 0.5}
    newest = first
    for number in range(2, versions + 1):
        newest = client.create_model_version(
            model, first.source, run_id=first.run_id, tags=copied, model_id=getattr(first, "model_id", None)
        )
        if number < versions:  # an earlier promotion, recorded as the real ones are
            promote_version(client, model, str(newest.version), thresholds={"roc_auc": {"min_absolute_change": 0.0}},
                            score=lambda _: metrics, identity=TaskIdentity("bench_fleet_history", f"h{number}", "promote"))  # fmt: skip
    if str(newest.version) != str(versions):
        raise RuntimeError(f"{model} has version {newest.version} as its newest, expected {versions}")
    calls = store_calls()
    calls.reset()
    calls.active = True
    try:
        run = bag.dags[PROMOTE_DAG_ID].test(run_conf={"model": model, "version": str(versions)})
    finally:
        calls.active = False
    (task,) = run.get_task_instances()
    if str(run.state) != "success" or alias_version(client, model, "champion") != str(versions):
        raise RuntimeError(f"promoting {model} v{versions} ended {run.state}; see the task log")
    return {
        "model": model,
        "versions": versions,
        "history": len(read_history(client, model)),
        "store": dict(calls.counts["store"]),
        "client": dict(calls.counts["client"]),
        "task_seconds": task.duration,
    }


# ---------------------------------------------------------------------------------------------------- main


def sizes(text: str) -> list[int]:
    values = sorted({int(part) for part in text.split(",") if part.strip()})
    if len(values) != 2 or values[0] < 1:
        raise argparse.ArgumentTypeError(f"give two different positive sizes, e.g. 5,25 (got {text!r})")
    return values


def main() -> int:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parse-models", type=int, default=int(env("BENCH_FLEET_PARSE_MODELS", "50")))
    parser.add_argument("--parse-small", type=int, default=int(env("BENCH_FLEET_PARSE_SMALL", "5")))
    parser.add_argument("--parse-repeat", type=int, default=int(env("BENCH_FLEET_PARSE_REPEAT", "3")))
    parser.add_argument("--run-models", type=sizes, default=sizes(env("BENCH_FLEET_RUN_MODELS", "5,25")))
    parser.add_argument("--versions", type=sizes, default=sizes(env("BENCH_FLEET_VERSIONS", "2,30")))
    parser.add_argument("--days", type=int, default=int(env("BENCH_FLEET_DAYS", "2")))
    parser.add_argument("--rows-per-day", type=int, default=int(env("BENCH_FLEET_ROWS_PER_DAY", "300")))
    parser.add_argument("--only", choices=("parse", "run"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (data, stores, task logs)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_main(args.child)
    if min(args.run_models) < 2:
        parser.error("--run-models: the smaller fleet needs two models (the promotion count uses two)")

    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    ok = True
    try:
        if args.only in (None, "parse"):
            print(f"== parse: {args.parse_models} catalogued models vs {args.parse_models} hand-written lifecycle DAGs",
                  flush=True)  # fmt: skip
            ok &= measure_parse(root, args.parse_models, args.parse_small, args.parse_repeat)
        if args.only in (None, "run"):
            small, big = args.run_models
            print(f"\n== run: the lifecycle of {small} and of {big} catalogued models (dag.test, embedded stores)",
                  flush=True)  # fmt: skip
            ok &= measure_runs(root, args.run_models, args.days, args.rows_per_day, args.versions)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(f"took {time.perf_counter() - started:.0f} s", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
