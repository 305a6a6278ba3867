"""Drift check on 1M rows x 20 numeric columns (drift in 5): the provider's task vs the same steps with Evidently.

* time, end to end, each side in a fresh interpreter on the same two parquet files: everything inside
  ``DetectDriftOperator.execute`` (its task-time imports, reading both files, the tests, the HTML report written)
  against the same steps done with Evidently (import, ``pd.read_parquet`` of both files,
  ``Report([DataDriftPreset()]).run(current, reference)``, ``save_html``); target ratio <= 1/20. The provider's
  task runs before and after Evidently's and the faster of the two counts; Evidently's runs once (its run of
  a hundred seconds or so varies by about 1% between runs, the provider's few seconds by more);
* time of the check alone, hot, in this process (``detect_drift`` + the report) against the preset's ``run``
  call inside the Evidently tasks (the fastest of the two): printed for comparison;
* peak memory the check allocates (tracemalloc, beyond the input frames); target <= 0.6 GB;
* drifted columns: the same set as Evidently's report run with the same methods (``ks``, p < 0.01) on the
  full frames.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import drift_task, report  # noqa: E402

ROWS = int(os.environ.get("BENCH_DRIFT_ROWS", 1_000_000))  # smaller for a quick try; the target is at 1M
METHOD, THRESHOLD = "ks", 0.01  # the provider's defaults (checked in main), pinned for the same-columns check
COLUMNS, DRIFTED = 20, 5


def frames(seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    reference = pd.DataFrame({f"f{i:02d}": rng.normal(0, 1, ROWS) for i in range(COLUMNS)})
    current = pd.DataFrame({f"f{i:02d}": rng.normal(0.2 if i < DRIFTED else 0.0, 1, ROWS) for i in range(COLUMNS)})
    return reference, current


def evidently_drifted(snapshot) -> list[str]:
    drifted = []
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift") and metric["value"] < config["threshold"]:
            drifted.append(config["column"])
    return sorted(drifted)


def provider_task(folder: Path) -> None:
    """A fresh interpreter: the operator's ``execute`` on the two files, timed from before its task-time imports."""
    seconds, result = drift_task(folder)
    print(json.dumps({"seconds": seconds, "drifted": result["drifted_columns"]}), flush=True)


def evidently_task(folder: Path) -> None:
    """A fresh interpreter: the same steps with Evidently's preset, timed from before its imports."""
    started = time.perf_counter()
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    reference = pd.read_parquet(folder / "reference.parquet")
    current = pd.read_parquet(folder / "current.parquet")
    running = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current, reference)
    run_seconds = time.perf_counter() - running
    snapshot.save_html(str(folder / "evidently.html"))
    print(json.dumps({"seconds": time.perf_counter() - started, "run_seconds": run_seconds}), flush=True)


def in_child(role: str, folder: Path) -> dict:
    child = subprocess.run([sys.executable, __file__, role, str(folder)], capture_output=True, text=True)
    if child.returncode != 0:
        raise RuntimeError(f"{role} failed:\n{child.stderr[-4000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def end_to_end(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[float, float]:
    """The provider's task time (the faster of a run before and one after Evidently's) over Evidently's same steps;
    and the preset's ``run`` call alone (inside the Evidently task, after its imports and reads)."""
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
        folder = Path(tmp)
        reference.to_parquet(folder / "reference.parquet", index=False)
        current.to_parquet(folder / "current.parquet", index=False)
        provider_runs: list[float] = []
        for role in ("--provider", "--evidently", "--provider"):
            measured = in_child(role, folder)
            if role == "--evidently":
                evidently, preset_run = measured["seconds"], measured["run_seconds"]
            else:
                provider_runs.append(measured["seconds"])
            print(f"{role[2:]} task: {measured['seconds']:.1f} s", flush=True)
    provider = min(provider_runs)
    print(f"end to end: provider task {provider:.1f} s, Evidently's same steps {evidently:.1f} s", flush=True)
    return provider / evidently, preset_run


def main() -> int:
    from mlops_provider.core.drift import DriftSettings, detect_drift, render_html_report

    reference, current = frames()
    settings = DriftSettings()
    assert (settings.num_method, settings.num_threshold) == (METHOD, THRESHOLD), "pin Evidently to the defaults"
    task_ratio, evidently_seconds = end_to_end(reference, current)

    def provider_check():
        result = detect_drift(reference, current, settings)
        render_html_report(reference, current, result, settings)
        return result

    provider_check()  # warm imports so both sides are timed hot
    started = time.perf_counter()
    result = provider_check()
    provider_seconds = time.perf_counter() - started
    # Memory in a separate run: tracing every allocation slows the code it watches several-fold.
    tracemalloc.start()
    provider_check()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    from evidently import Report
    from evidently.presets import DataDriftPreset

    same_methods = Report([DataDriftPreset(num_method=METHOD, num_threshold=THRESHOLD)]).run(current, reference)
    plain_drifted = evidently_drifted(same_methods)

    peak_gb = peak / 1e9
    print(f"provider check: {provider_seconds:.2f} s, peak {peak_gb:.3f} GB, drifted {result.drifted_columns}")
    print(f"Evidently DataDriftPreset().run, in its task: {evidently_seconds:.2f} s")
    print(f"Evidently with the same methods ({METHOD}, p<{THRESHOLD}) drifted: {plain_drifted}")
    same = result.drifted_columns == plain_drifted
    print(f"same drifted columns: {same}")
    report("drift_peak_memory_gb", peak_gb, 0.6)
    report("drift_same_columns", 1.0 if same else 0.0, 1.0, ">=")
    print(f"check alone, hot: {provider_seconds / evidently_seconds:.3f} of the preset's run")
    ok = report("drift_task_time_vs_evidently_end_to_end", task_ratio, 1 / 20)
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--provider":
        provider_task(Path(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "--evidently":
        evidently_task(Path(sys.argv[2]))
    else:
        sys.exit(main())
