"""The test harness itself: a test run stopped with SIGTERM (a CI timeout, ``kill``) stops the service processes its
fixtures started, as Ctrl-C does, instead of leaving them running in sessions of their own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

_RUN = """
import time
from pathlib import Path

import pytest

from support import services


@pytest.fixture(scope="session")
def service(tmp_path_factory):
    process = services.launch_process("sleeper", ["sleep", "300"], Path({folder!r}))
    Path({folder!r}, "pid").write_text(str(process.popen.pid))
    yield process
    process.stop()


def test_runs_until_stopped(service):
    time.sleep(300)
"""


def test_a_run_stopped_with_sigterm_stops_the_services_its_fixtures_started(tmp_path):
    (tmp_path / "test_stopped.py").write_text(_RUN.format(folder=str(tmp_path)))
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-c",
            str(REPO_ROOT / "pyproject.toml"),
            "-p",
            "no:cacheprovider",
            "-p",
            "conftest",
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    pid_file = tmp_path / "pid"
    deadline = time.monotonic() + 120
    while not pid_file.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pid_file.exists(), run.communicate(timeout=60)[0][-3000:]
    service = int(pid_file.read_text())
    run.send_signal(signal.SIGTERM)
    output = run.communicate(timeout=60)[0]
    try:
        os.killpg(service, signal.SIGKILL)  # the service's own session
        still_running = True
    except ProcessLookupError:
        still_running = False
    assert not still_running, f"the fixture's service (pid {service}) still ran after the test run was stopped"
    assert "KeyboardInterrupt" in output, output[-3000:]
