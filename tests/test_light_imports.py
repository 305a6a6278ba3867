"""Parsing a DAG that uses the provider must not import the heavy ML libraries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("mlflow", "great_expectations", "evidently", "feast", "sklearn")
REPO = Path(__file__).resolve().parents[1]

# One interpreter for both checks (each would otherwise spend seconds importing Airflow): first every provider
# module, then every reference DAG file. A heavy library the provider modules pulled in is still reported for the
# DAG files, so a failure of the first check can only make the second fail too, never pass.
PROBE = f"""
import importlib, json, pkgutil, runpy, sys, traceback
report = {{}}
try:
    import mlops_provider
    import mlops_provider.get_provider_info
    imported = []
    for sub in ("hooks", "operators", "sensors", "triggers", "links", "fleet"):
        package = importlib.import_module("mlops_provider." + sub)
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(module.name)
            imported.append(module.name)
    report["provider"] = {{"imported": imported, "heavy": [h for h in {HEAVY!r} if h in sys.modules]}}
    for path in sys.argv[1:]:
        runpy.run_path(path, run_name="dag_file")
    report["dags"] = {{"parsed": sys.argv[1:], "heavy": [h for h in {HEAVY!r} if h in sys.modules]}}
except Exception:
    report["error"] = traceback.format_exc()
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def parse_report() -> dict:
    dags = sorted(str(p) for p in (REPO / "dags").glob("*.py"))
    # dags/mlops_fleet.py builds its DAGs from the sample catalogue, so its parse is measured too.
    env = {**os.environ, "MLOPS_MODEL_CATALOG": str(REPO / "include" / "model_catalog.yaml")}
    result = subprocess.run([sys.executable, "-c", PROBE, *dags], capture_output=True, text=True, timeout=180, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_provider_modules_import_no_heavy_library(parse_report):
    assert "provider" in parse_report, parse_report.get("error")
    report = parse_report["provider"]
    assert "mlops_provider.hooks.mlflow" in report["imported"]
    assert "mlops_provider.hooks.feast" in report["imported"]
    assert report["heavy"] == [], f"imported at parse time: {report['heavy']}"


def test_reference_dag_files_import_no_heavy_library(parse_report):
    assert "dags" in parse_report, parse_report.get("error")
    report = parse_report["dags"]
    assert len(report["parsed"]) >= 6
    assert report["heavy"] == [], "a DAG file imports a heavy library at parse time"
