"""Drift check on 1M rows x 20 numeric columns (drift in 5): the provider's check vs Evidently's report.

Measured in one process on the same frames:
* time: the operator's check (``detect_drift`` + the HTML report from a bounded sample) against
  ``Report([DataDriftPreset()]).run(current, reference)``; target ratio <= 1/20;
* peak memory the check allocates (tracemalloc, beyond the input frames); target <= 0.6 GB;
* drifted columns: the same set as Evidently's report run with the same methods (``ks``, p < 0.01) on the
  full frames.
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import report  # noqa: E402

ROWS, COLUMNS, DRIFTED = 1_000_000, 20, 5


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


def main() -> int:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    from mlops_provider.core.drift import DEFAULT_THRESHOLD, DriftSettings, detect_drift, render_html_report

    reference, current = frames()
    settings = DriftSettings()

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

    started = time.perf_counter()
    Report([DataDriftPreset()]).run(current, reference)
    evidently_seconds = time.perf_counter() - started

    same_methods = Report([DataDriftPreset(num_method="ks", num_threshold=DEFAULT_THRESHOLD)]).run(current, reference)
    plain_drifted = evidently_drifted(same_methods)

    peak_gb = peak / 1e9
    print(f"provider check: {provider_seconds:.2f} s, peak {peak_gb:.3f} GB, drifted {result.drifted_columns}")
    print(f"Evidently DataDriftPreset(): {evidently_seconds:.2f} s")
    print(f"Evidently with the same methods (ks, p<{DEFAULT_THRESHOLD}) drifted: {plain_drifted}")
    same = result.drifted_columns == plain_drifted
    print(f"same drifted columns: {same}")
    report("drift_peak_memory_gb", peak_gb, 0.6)
    report("drift_same_columns", 1.0 if same else 0.0, 1.0, ">=")
    ok = report("drift_time_vs_evidently", provider_seconds / evidently_seconds, 1 / 20)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
