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
