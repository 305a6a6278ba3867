"""The test environment from tests/conftest.py's ``pytest_configure`` reaches Airflow's configuration, and the
``pythonpath`` of pyproject.toml makes ``support``, ``conftest``, ``sample_data`` and ``dags.*`` importable."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from conftest import REPO_ROOT, TEST_ROOT


def test_airflow_reads_the_test_settings():
    from airflow.configuration import conf

    assert os.environ["AIRFLOW_HOME"] == str(TEST_ROOT / "airflow")
    assert Path(conf.get("core", "dags_folder")) == REPO_ROOT / "dags"
    assert conf.get("database", "sql_alchemy_conn") == os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert conf.getboolean("core", "load_examples") is False
    assert os.environ["MLOPS_HOME"] == str(TEST_ROOT / "mlops_home")


def test_test_helpers_are_importable():
    for name, where in (
        ("support.services", REPO_ROOT / "tests" / "support" / "services.py"),
        ("sample_data", REPO_ROOT / "include" / "sample_data.py"),
        ("dags.mlops_test_registry", REPO_ROOT / "tests" / "dags" / "mlops_test_registry.py"),
    ):
        spec = importlib.util.find_spec(name)
        assert spec is not None and Path(spec.origin) == where, f"{name} resolves to {spec and spec.origin}"
