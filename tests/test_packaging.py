"""The provider as a user installs it, and the README section that tells them how ("Use it in your own Airflow").

Once per module: build the wheel from the checkout with ``uv build``, create a fresh virtual environment on the
Python of the project's ``.venv``, and install the wheel there with every dependency constrained to ``uv.lock``
(``uv export --locked``); uv installs from its cache (offline first, the index only if the cache lacks something).
Then, in that environment, started from a temporary directory with no ``PYTHONPATH`` (so nothing comes from
``src/`` of the checkout): the package imports with the pyproject version, Airflow discovers the provider
through its entry point, and the README's minimal DAG, taken from the README itself, loads in Airflow's DagBag
without a metadata database and serialises as the DAG processor would.

A missing uv or a failed build is a failure, not a skip: this is part of ``make test``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from conftest import REPO_ROOT

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest brings tomli
    import tomli as tomllib

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(600)]

README = REPO_ROOT / "README.md"
SECTION_TITLE = "## Use it in your own Airflow"
DISTRIBUTION = "airflow-provider-mlops"
HEAVY = ("mlflow", "great_expectations", "evidently", "feast", "sklearn")
# The interpreter of the project's .venv (the one running this test), not the venv's own symlink.
PYTHON = getattr(sys, "_base_executable", None) or sys.executable


def readme_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.find(f"\n{SECTION_TITLE}\n")
    assert start >= 0, f"README.md has no section {SECTION_TITLE!r}"
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def readme_dag() -> str:
    blocks = re.findall(r"^```python\n(.*?)^```", readme_section(), flags=re.S | re.M)
    assert len(blocks) == 1, f"expected one python block in {SECTION_TITLE!r} of README.md, found {len(blocks)}"
    return blocks[0]


def run(command: list[str], *, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)


def output(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"


def find_uv() -> list[str]:
    """uv as `make install` finds it (`python3 -m uv`), from this interpreter, its base Python or PATH."""
    candidates = [[sys.executable, "-m", "uv"], [PYTHON, "-m", "uv"]]
    python3 = shutil.which("python3")
    if python3:
        candidates.append([python3, "-m", "uv"])
    uv = shutil.which("uv")
    if uv:
        candidates.append([uv])
    for command in candidates:
        try:
            if run([*command, "--version"], timeout=60).returncode == 0:
                return command
        except OSError:
            continue
    pytest.fail(
        "uv is missing: tried "
        + ", ".join(" ".join(c) for c in candidates)
        + ". `make install` installs it (`python3 -m pip install uv`).",
        pytrace=False,
    )


def uv_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return env


def run_uv(uv: list[str], *args: str, what: str, timeout: float = 300, cwd: Path = REPO_ROOT) -> str:
    """Run uv from its cache (--offline); only if the cache lacks something, again with the index."""
    attempts = []
    for mode in (["--offline"], []):
        result = run([*uv, *args, *mode], timeout=timeout, cwd=cwd, env=uv_env())
        if result.returncode == 0:
            return result.stdout
        attempts.append(f"$ uv {' '.join([*args, *mode])}\n{output(result)}")
    pytest.fail(f"{what} failed:\n" + "\n\n".join(attempts), pytrace=False)


class CleanInstall:
    def __init__(self, root: Path, wheel: Path, constraints: Path, venv: Path):
        self.root, self.wheel, self.constraints, self.venv = root, wheel, constraints, venv
        self.python = venv / "bin" / "python"
        self.dags = root / "dags"
        self.dags.mkdir(exist_ok=True)

    def env(self) -> dict[str, str]:
        """Only what a fresh shell would have: no PYTHONPATH, no settings of the test session."""
        home = self.root / "home"
        return {
            "PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "AIRFLOW_HOME": str(home / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "MLOPS_HOME": str(self.root / "mlops"),
            "GX_ANALYTICS_ENABLED": "false",
        }

    def python_probe(self, code: str, *args: str) -> dict:
        """Run ``code`` in the clean venv (isolated mode, cwd outside the checkout); it prints one JSON line."""
        result = run([str(self.python), "-I", "-c", textwrap.dedent(code), *args], timeout=180, cwd=self.root,
                     env=self.env())  # fmt: skip
        assert result.returncode == 0, output(result)
        return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def clean_install(tmp_path_factory) -> CleanInstall:
    root = tmp_path_factory.mktemp("packaging")
    uv = find_uv()

    run_uv(uv, "build", "--wheel", "--python", PYTHON, "--out-dir", str(root / "dist"), str(REPO_ROOT),
           what="Building the wheel (uv build --wheel)")  # fmt: skip
    wheels = sorted((root / "dist").glob("*.whl"))
    assert len(wheels) == 1, f"uv build wrote {wheels}"

    constraints = root / "constraints.txt"
    run_uv(uv, "export", "--locked", "--no-dev", "--no-hashes", "--no-emit-project", "--output-file", str(constraints),
           what="Exporting uv.lock as constraints (uv export --locked)")  # fmt: skip

    venv = root / "venv"
    run_uv(uv, "venv", "--python", PYTHON, str(venv), what=f"Creating a virtual environment on {PYTHON}", cwd=root)
    python = str(venv / "bin" / "python")
    run_uv(uv, "pip", "install", "--python", python, str(wheels[0]), "--constraint", str(constraints),
           what="Installing the wheel with the locked versions", cwd=root)  # fmt: skip
    return CleanInstall(root, wheels[0], constraints, venv)


def test_the_wheel_installs_with_the_locked_versions_and_imports_from_the_new_environment(clean_install):
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    version = pyproject["project"]["version"]
    assert clean_install.wheel.name == f"airflow_provider_mlops-{version}-py3-none-any.whl"
    names = zipfile.ZipFile(clean_install.wheel).namelist()
    assert "mlops_provider/get_provider_info.py" in names
    strays = [n for n in names if not n.startswith(("mlops_provider/", f"airflow_provider_mlops-{version}.dist-info/"))]
    assert strays == [], f"the wheel carries files outside the package: {strays}"

    report = clean_install.python_probe(
        """
        import importlib.metadata, json, sys
        import mlops_provider
        print(json.dumps({
            "file": mlops_provider.__file__,
            "module_version": mlops_provider.__version__,
            "version": importlib.metadata.version("airflow-provider-mlops"),
            "airflow": importlib.metadata.version("apache-airflow"),
            "python": list(sys.version_info[:3]),
            "prefix": sys.prefix,
            "path": sys.path,
        }))
        """
    )
    assert report["version"] == version and report["module_version"] == version, report
    assert report["python"] == list(sys.version_info[:3]), "the clean venv runs another Python than .venv"
    assert Path(report["prefix"]).resolve() == clean_install.venv.resolve(), report["prefix"]
    installed = Path(report["file"]).resolve()
    assert installed.is_relative_to(clean_install.venv.resolve()), f"mlops_provider came from {installed}"
    from_checkout = [p for p in report["path"] if p and Path(p).resolve().is_relative_to(REPO_ROOT)]
    assert from_checkout == [], f"the clean venv's sys.path reaches into the checkout: {from_checkout}"

    # The README names the Airflow version of the lock as the tested combination: keep the two in step.
    locked = re.search(r"^apache-airflow==([^\s;]+)", clean_install.constraints.read_text(), flags=re.M)
    assert locked, "uv export lists no apache-airflow"
    assert report["airflow"] == locked.group(1)
    assert f"Apache Airflow {locked.group(1)}" in readme_section(), (
        f"README's {SECTION_TITLE!r} should name the Airflow version in uv.lock ({locked.group(1)})"
    )


def test_airflow_discovers_the_provider_through_its_entry_point(clean_install):
    report = clean_install.python_probe(
        """
        import importlib.metadata, json
        points = [p for p in importlib.metadata.entry_points(group="apache_airflow_provider")
                  if p.dist is not None and p.dist.name == "airflow-provider-mlops"]
        info = points[0].load()() if points else {}
        print(json.dumps({"points": [p.value for p in points], "package": info.get("package-name"),
                          "versions": info.get("versions")}))
        """
    )
    assert report["points"] == ["mlops_provider.get_provider_info:get_provider_info"], report
    assert report["package"] == DISTRIBUTION, report

    # The command the README gives, in the clean venv.
    result = run([str(clean_install.venv / "bin" / "airflow"), "providers", "get", DISTRIBUTION, "--output", "json"],
                 timeout=180, cwd=clean_install.root, env=clean_install.env())  # fmt: skip
    assert result.returncode == 0, output(result)
    assert f"airflow providers get {DISTRIBUTION}" in readme_section()
    listed = json.loads(result.stdout[result.stdout.index("[") :])
    assert listed and listed[0]["Provider"] == DISTRIBUTION and listed[0]["Version"] in report["versions"], listed


def test_the_readme_dag_loads_in_airflow(clean_install):
    code = readme_dag()
    (clean_install.dags / "readme_dag.py").write_text(code, encoding="utf-8")
    report = clean_install.python_probe(
        f"""
        import json, sys
        from airflow.dag_processing.dagbag import DagBag
        try:
            from airflow.serialization.serialized_objects import DagSerialization
        except ImportError:  # Airflow < 3.2
            from airflow.serialization.serialized_objects import SerializedDAG as DagSerialization

        bag = DagBag(sys.argv[1])
        dags = {{}}
        for dag_id, dag in bag.dags.items():
            back = DagSerialization.from_dict(DagSerialization.to_dict(dag))  # what the DAG processor stores
            dags[dag_id] = {{
                "tasks": {{t.task_id: t.task_type for t in back.tasks}},
                "module": {{t.task_id: type(t).__module__ for t in dag.tasks}},
                "schedule": repr(dag.schedule),
                "start_date_tz": str(dag.start_date.tzinfo) if dag.start_date else None,
            }}
        print(json.dumps({{"errors": bag.import_errors, "dags": dags,
                          "heavy": [h for h in {HEAVY!r} if h in sys.modules]}}))
        """,
        str(clean_install.dags),
    )
    assert report["errors"] == {}, "the README's DAG does not load:\n" + "\n".join(report["errors"].values())
    assert len(report["dags"]) == 1, report["dags"]
    ((dag_id, dag),) = report["dags"].items()
    assert f"airflow dags trigger {dag_id}" in readme_section(), f"the README should trigger its DAG, {dag_id}"
    assert list(dag["tasks"].values()) == ["TrainModelOperator"], dag
    assert set(dag["module"].values()) == {"mlops_provider.operators.training"}, dag
    assert dag["start_date_tz"], "the README's DAG should give its start_date a timezone"
    assert dag["schedule"] == "None", "the README's DAG runs when triggered (schedule=None)"
    assert report["heavy"] == [], f"parsing the README's DAG imported {report['heavy']}"
