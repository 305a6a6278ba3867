"""Parse time of each reference DAG file vs an empty DAG file with the same Airflow imports, fresh interpreters.

The DAG processor imports every DAG file in a fresh process (Airflow's default parse timeout is 30 s). For
each file in ``dags/`` the baseline is a generated file holding that file's ``airflow`` imports and one empty
DAG; when the DAG file builds an asset whose scheme is not ``file`` or ``x-...`` (``mlops://`` outlets and
schedules, ``s3://`` landings), so does the baseline (an ``s3://`` asset): building one makes Airflow load every
provider's URI handler, boto3 included, which is Airflow's cost, not the provider's. Both are executed with
``runpy`` in a new interpreter and timed in CPU seconds of that process (so other work on the machine does not
blur the comparison), from before the file runs to after. They run in ``PAIRS`` consecutive pairs (the order
alternating), and the ratio is the median of the pairs' ratios: a slow spell of the machine lasts seconds and
falls on both runs of a pair. Target: ratio <= 1.10 for every file.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import report

REPO = Path(__file__).resolve().parents[1]
PAIRS = 5
TARGET = 1.10
DRIVER = (
    "import runpy, sys, time\n"
    "start = time.process_time()\n"
    "runpy.run_path(sys.argv[1], run_name='dag_file')\n"
    "seconds = time.process_time() - start\n"
    # Whether the file made Airflow load the providers' asset URI handlers (it built an asset of another scheme
    # than file or x-): the cache that records it has no public accessor.
    "from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime\n"
    "print(seconds, bool(ProvidersManagerTaskRuntime()._initialized_cache.get('asset_uris')))\n"
)
AIRFLOW_IMPORT = re.compile(r"^(from airflow[.\w]* import .+|import airflow[.\w]*)$", re.MULTILINE)


def baseline_source(dag_file: Path, builds_assets: bool) -> str:
    imports = AIRFLOW_IMPORT.findall(dag_file.read_text())
    schedule = "[Asset('s3://bucket/empty')]" if builds_assets else "None"
    return "\n".join(
        [
            "from datetime import datetime, timezone",
            *imports,
            "from airflow.sdk import DAG, Asset",
            f"with DAG(dag_id='empty', schedule={schedule}, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc)):",
            "    pass",
            "",
        ]
    )


def parse(path: Path, env: dict[str, str]) -> tuple[float, bool]:
    """CPU seconds of running ``path`` in a fresh interpreter, and whether it built assets Airflow resolves."""
    done = subprocess.run([sys.executable, "-c", DRIVER, str(path)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{path} failed to parse:\n{done.stderr[-3000:]}")
    seconds, builds_assets = done.stdout.strip().splitlines()[-1].split()
    return float(seconds), builds_assets == "True"


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="bench-dag-parse-"))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home / "airflow"),
        "MLOPS_HOME": str(home / "mlops"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "PYTHONWARNINGS": "ignore",
    }
    ok = True
    print(f"{'DAG file':40} {'DAG cpu s':>9} {'empty cpu s':>11} {'ratio':>6}  (median of {PAIRS} pairs)")
    for dag_file in sorted((REPO / "dags").glob("*.py")):
        empty = home / f"empty_{dag_file.name}"
        dag_times, empty_times = [], []
        for pair in range(PAIRS):  # the order alternates; the first pair runs the DAG first: it picks the baseline
            for path in (dag_file, empty) if pair % 2 == 0 else (empty, dag_file):
                seconds, builds_assets = parse(path, env)
                if path == empty:
                    empty_times.append(seconds)
                    continue
                dag_times.append(seconds)
                if pair == 0:
                    empty.write_text(baseline_source(dag_file, builds_assets))
        ratio = statistics.median(d / e for d, e in zip(dag_times, empty_times, strict=True))
        dag_median, empty_median = statistics.median(dag_times), statistics.median(empty_times)
        print(f"{dag_file.name:40} {dag_median:9.3f} {empty_median:11.3f} {ratio:6.3f}", flush=True)
        ok &= report(f"dag_parse[{dag_file.stem}]", ratio, TARGET)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
