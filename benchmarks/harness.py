"""Shared helpers for benchmark scripts.

Each ``bench_*.py`` measures the provider's step and the direct library call in the same process and run,
then calls ``report`` once, which prints the verdict as its last line:

    RESULT <name> ratio=<value> target<op><value> PASS|FAIL

``benchmarks/run.py`` collects those lines into a table.
"""

from __future__ import annotations

import gc
import operator
import resource
import time
from collections.abc import Callable
from pathlib import Path

OPERATORS = {"<=": operator.le, ">=": operator.ge}


def best_time(function: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time of ``repeat`` calls (seconds); the minimum is the least noisy estimate."""
    timings = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return min(timings)


def report(name: str, ratio: float, target: float, op: str = "<=") -> bool:
    ok = OPERATORS[op](ratio, target)
    print(f"RESULT {name} ratio={ratio:.3f} target{op}{target:g} {'PASS' if ok else 'FAIL'}", flush=True)
    return ok


def peak_rss_mb() -> float:
    """This process's peak resident memory (MB). Not ``getrusage``: its ``ru_maxrss`` keeps the parent's peak
    across fork and exec, and a benchmark's parent often holds the generated data; ``VmHWM`` is this process's own."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def drift_task(folder: Path) -> tuple[float, dict]:
    """``DetectDriftOperator.execute`` on ``folder``'s reference.parquet and current.parquet with a stand-in task
    context, timed from before its task-time imports: the seconds and the task's result."""
    from types import SimpleNamespace

    from mlops_provider.operators.drift import DetectDriftOperator

    operator = DetectDriftOperator(
        task_id="detect_drift",
        current_uri=str(folder / "current.parquet"),
        reference_uri=str(folder / "reference.parquet"),
        on_drift="continue",
        log_to_mlflow=False,
        reports_uri=str(folder / "reports"),
    )
    ti = SimpleNamespace(
        dag_id="bench", run_id="bench", task_id="detect_drift", map_index=-1, try_number=1, xcom_push=lambda **_: None
    )
    started = time.perf_counter()
    result = operator.execute({"ti": ti, "data_interval_start": None, "data_interval_end": None})
    return time.perf_counter() - started, result
