"""Wide drift: 200k rows x 1,000 columns (800 numeric, 200 categorical; 20% drifted) from parquet files.

* time per column: ``DetectDriftOperator``'s task (read the parquet files, test every column, write the report)
  on all 1,000 columns, against Evidently's ``Report([DataDriftPreset(...)])`` with the same pinned methods
  (``ks`` and ``chi2_homogeneity``, p < 0.01) on the first 100 columns of the same files (read included):
  Evidently's time is scaled linearly to per column, as is the provider's; target ratio <= 1/20;
* peak RSS of the provider's task, measured in a child process of its own (interpreter and Airflow imports
  included) so that Evidently's memory does not count; target <= 2 GB;
* drifted columns: the same set as Evidently's on the 100 shared columns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import drift_task, peak_rss_mb, report  # noqa: E402

ROWS, COLUMNS, ROW_GROUP = 200_000, 1_000, 20_000
EVIDENTLY_COLUMNS = 100
CATEGORIES = [f"cat_{i:02d}" for i in range(12)]


def column_names() -> list[str]:
    return [f"c{i:04d}" if i % 5 == 4 else f"n{i:04d}" for i in range(COLUMNS)]


def drift_of(index: int) -> float:
    """Two columns in ten drift (one numeric, one categorical), by a shift from small to clear; 0 for the others."""
    return 0.0 if index % 10 not in (3, 9) else (0.05, 0.1, 0.2, 0.4)[(index // 10) % 4]


def write_side(path: Path, seed: int, drifted: bool) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    base = np.linspace(2, 1, len(CATEGORIES))
    writer = None
    for _ in range(0, ROWS, ROW_GROUP):
        arrays = []
        for index, _ in enumerate(column_names()):
            shift = drift_of(index) if drifted else 0.0
            if index % 5 == 4:
                weights = base + shift * np.linspace(0, 2, len(CATEGORIES))
                codes = rng.choice(len(CATEGORIES), ROW_GROUP, p=weights / weights.sum()).astype(np.int32)
                arrays.append(pa.DictionaryArray.from_arrays(codes, pa.array(CATEGORIES)))
            else:
                arrays.append(pa.array(rng.normal(shift, 1.0, ROW_GROUP)))
        table = pa.Table.from_arrays(arrays, names=column_names())
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


def provider_task(folder: Path) -> None:
    """The child process: DetectDriftOperator's execute on the files, with a stand-in task context."""
    seconds, result = drift_task(folder)
    html = Path(result["report_uri"]).read_bytes()
    print(json.dumps({"seconds": seconds, "columns": len(result["columns"]), "drifted": result["drifted_columns"],
                      "html_bytes": len(html), "peak_gb": peak_rss_mb() * 1024**2 / 1e9}), flush=True)  # fmt: skip


def evidently_check(folder: Path) -> tuple[float, list[str]]:
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    from mlops_provider.core.drift import CHI2_HOMOGENEITY, DEFAULT_THRESHOLD, register_stattests

    register_stattests()
    columns = column_names()[:EVIDENTLY_COLUMNS]
    categorical = [c for c in columns if c.startswith("c")]
    definition = DataDefinition(
        numerical_columns=[c for c in columns if c not in categorical], categorical_columns=categorical
    )
    started = time.perf_counter()
    reference = pd.read_parquet(folder / "reference.parquet", columns=columns)
    current = pd.read_parquet(folder / "current.parquet", columns=columns)
    for frame in (reference, current):
        frame[categorical] = frame[categorical].astype(str)
    snapshot = Report([DataDriftPreset(
        columns=columns, num_method="ks", cat_method=CHI2_HOMOGENEITY,
        num_threshold=DEFAULT_THRESHOLD, cat_threshold=DEFAULT_THRESHOLD,
    )]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )  # fmt: skip
    seconds = time.perf_counter() - started
    drifted = []
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift") and metric["value"] < config["threshold"]:
            drifted.append(config["column"])
    return seconds, sorted(drifted)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-drift-wide-") as tmp:
        folder = Path(tmp)
        for name, seed, drifted in (("reference", 1, False), ("current", 2, True)):
            started = time.perf_counter()
            print(f"writing {name}.parquet ({ROWS} rows x {COLUMNS} columns)...", flush=True)
            write_side(folder / f"{name}.parquet", seed, drifted)
            size = (folder / f"{name}.parquet").stat().st_size / 1e9
            print(f"  {size:.2f} GB in {time.perf_counter() - started:.1f} s", flush=True)

        print("provider: DetectDriftOperator on all columns, in a child process...", flush=True)
        child = subprocess.run(
            [sys.executable, __file__, "--provider", str(folder)],
            capture_output=True, text=True, env={**os.environ, "GX_ANALYTICS_ENABLED": "false"},
        )  # fmt: skip
        if child.returncode != 0:
            sys.stderr.write(child.stderr[-4000:])
            return 1
        provider = json.loads(child.stdout.strip().splitlines()[-1])
        provider_per_column = provider["seconds"] / provider["columns"]
        print(f"  {provider['seconds']:.1f} s for {provider['columns']} columns ({provider_per_column * 1000:.1f} ms "
              f"a column), peak RSS {provider['peak_gb']:.2f} GB, report {provider['html_bytes'] / 1e3:.0f} kB, "
              f"{len(provider['drifted'])} drifted", flush=True)  # fmt: skip

        print(f"Evidently DataDriftPreset (same methods) on the first {EVIDENTLY_COLUMNS} columns...", flush=True)
        evidently_seconds, evidently_drifted = evidently_check(folder)
        evidently_per_column = evidently_seconds / EVIDENTLY_COLUMNS
        print(f"  {evidently_seconds:.1f} s ({evidently_per_column * 1000:.1f} ms a column; scaled linearly: "
              f"{evidently_per_column * COLUMNS:.0f} s for {COLUMNS})", flush=True)  # fmt: skip

    shared = set(column_names()[:EVIDENTLY_COLUMNS])
    ours = sorted(c for c in provider["drifted"] if c in shared)
    same = ours == evidently_drifted
    print(f"drifted among the first {EVIDENTLY_COLUMNS}: provider {ours}", flush=True)
    print(f"                              Evidently {evidently_drifted}; same: {same}", flush=True)
    report("drift_wide_peak_rss_gb", provider["peak_gb"], 2.0)
    report("drift_wide_same_columns", 1.0 if same else 0.0, 1.0, ">=")
    ok = report("drift_wide_time_per_column_vs_evidently", provider_per_column / evidently_per_column, 1 / 20)
    return 0 if ok and same and provider["peak_gb"] <= 2.0 else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--provider":
        provider_task(Path(sys.argv[2]))
        sys.exit(0)
    sys.exit(main())
