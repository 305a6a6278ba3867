"""Parse time of each reference DAG file vs an empty DAG file with the same Airflow imports, fresh interpreters.

The DAG processor imports every DAG file in a fresh process (Airflow's default parse timeout is 30 s). For
each file in ``dags/`` the baseline is a generated file holding that file's ``airflow`` imports and one empty
DAG scheduled the same way (a DAG scheduled on an asset gets an ``s3://`` asset: building any asset whose
scheme is not ``file`` or ``x-...`` makes Airflow load every provider's URI handler, boto3 included, which is
Airflow's cost, not the provider's); both are executed with ``runpy`` in a new interpreter and timed in CPU
seconds of that process (so other work on the machine does not blur the comparison), from before the file
runs to after, best of ``REPEAT`` alternating runs. Target: ratio <= 1.10 for every file.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import report

REPO = Path(__file__).resolve().parents[1]
REPEAT = 5
TARGET = 1.10
DRIVER = (
    "import runpy, sys, time\n"
    "start = time.process_time()\n"
    "runpy.run_path(sys.argv[1], run_name='dag_file')\n"
    "print(time.process_time() - start)\n"
)
AIRFLOW_IMPORT = re.compile(r"^(from airflow[.\w]* import .+|import airflow[.\w]*)$", re.MULTILINE)


def baseline_source(dag_file: Path) -> str:
    source = dag_file.read_text()
    imports = AIRFLOW_IMPORT.findall(source)
    schedule = "[Asset('s3://bucket/empty')]" if "schedule=[" in source else "None"
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


def parse_seconds(path: Path, env: dict[str, str]) -> float:
    done = subprocess.run([sys.executable, "-c", DRIVER, str(path)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{path} failed to parse:\n{done.stderr[-3000:]}")
    return float(done.stdout.strip().splitlines()[-1])


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
    print(f"{'DAG file':40} {'DAG cpu s':>9} {'empty cpu s':>11} {'ratio':>6}")
    for dag_file in sorted((REPO / "dags").glob("*.py")):
        empty = home / f"empty_{dag_file.name}"
        empty.write_text(baseline_source(dag_file))
        dag_times, empty_times = [], []
        for _ in range(REPEAT):  # alternate, so load on the machine hits both alike
            dag_times.append(parse_seconds(dag_file, env))
            empty_times.append(parse_seconds(empty, env))
        dag_best, empty_best = min(dag_times), min(empty_times)
        print(f"{dag_file.name:40} {dag_best:9.3f} {empty_best:11.3f} {dag_best / empty_best:6.3f}", flush=True)
        ok &= report(f"dag_parse[{dag_file.stem}]", dag_best / empty_best, TARGET)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
