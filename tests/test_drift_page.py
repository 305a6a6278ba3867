"""The drift page built beside the column tests: the page process gives the page the task's own process would, and
a page process that dies, or a check that is cancelled, leaves the page right and nothing behind."""

from __future__ import annotations

import glob
import os
import re
import tempfile

import pytest

from mlops_provider.core import drift_page
from mlops_provider.core.drift import DriftSettings
from mlops_provider.core.drift_page import EvidentlyReport
from mlops_provider.core.drift_wide import FrameSource, check_columns, plan_columns
from sample_data import churn_frame

SETTINGS = DriftSettings(exclude_columns=["customer_id", "churned"], report_rows=500)
RANDOM_IDS = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}")


def page_of(report: EvidentlyReport) -> str:
    """The page of a check of two churn frames (one drifted), as ``check_sources`` builds it."""
    reference = FrameSource(churn_frame(1500, seed=1))
    current = FrameSource(churn_frame(1500, seed=2, drift=True))
    types = plan_columns(reference, current, SETTINGS)
    report.plan(types)
    report.ready()
    check_columns(reference, current, types, SETTINGS, report_sample=report.submit)
    try:
        return RANDOM_IDS.sub("<id>", report.html())
    finally:
        report.cancel()


@pytest.fixture(scope="module")
def page_built_in_the_task() -> str:
    patch = pytest.MonkeyPatch()
    patch.setattr(drift_page, "page_process_pays", lambda: False)
    try:
        return page_of(EvidentlyReport(SETTINGS))
    finally:
        patch.undo()


@pytest.fixture
def page_process(monkeypatch):
    """A page process for every report, though this process has imported Evidently (``page_process_pays``)."""
    monkeypatch.setattr(drift_page, "page_process_pays", lambda: True)


def page_folders() -> set[str]:
    return set(glob.glob(f"{tempfile.gettempdir()}/mlops-drift-page-*"))


def test_the_page_process_builds_the_page_the_task_would(page_built_in_the_task, page_process, monkeypatch):
    before = page_folders()
    report = EvidentlyReport(SETTINGS)
    assert report._process is not None, "on Linux the page is built in a process of its own"

    def not_here(*_, **__):
        raise AssertionError("the page was built in the task's process, not the page process")

    monkeypatch.setattr(drift_page, "render_column_report", not_here)  # here only: the page process was forked
    page = page_of(report)
    assert report._process.process.exitcode == 0
    assert page == page_built_in_the_task
    assert "chi-square test of homogeneity" in page and "monthly_charges" in page
    assert page_folders() == before, "the samples handed to the page process are removed"


def test_a_page_process_that_dies_leaves_the_page_to_the_task(page_built_in_the_task, page_process):
    report = EvidentlyReport(SETTINGS)
    report._process.process.kill()
    assert page_of(report) == page_built_in_the_task


def test_a_page_process_that_fails_leaves_the_error_to_the_task(page_process):
    """A page that cannot be built raises in the task, with Evidently's own message, not a timeout or a blank page."""
    settings = DriftSettings(exclude_columns=["customer_id", "churned"], report_rows=500, num_method="no-such-test")
    report = EvidentlyReport(settings)
    reference, current = FrameSource(churn_frame(300, seed=1)), FrameSource(churn_frame(300, seed=2))
    report.plan(plan_columns(reference, current, settings))
    report.submit(reference.read(list(report.column_types)), current.read(list(report.column_types)))
    with pytest.raises(Exception, match="no-such-test"):
        report.html()
    report.cancel()
    assert not report._process.process.is_alive()


def test_a_cancelled_check_stops_the_page_process_and_removes_its_folder(page_process):
    before = page_folders()
    report = EvidentlyReport(SETTINGS)
    report.cancel()
    assert not report._process.process.is_alive()
    assert page_folders() == before


_TWO_CHECKS = """
from mlops_provider.core.drift_page import EvidentlyReport
from test_drift_page import SETTINGS, page_of

first, second = EvidentlyReport(SETTINGS), EvidentlyReport(SETTINGS)
print(first._process is not None, second._process is not None, page_of(first) == page_of(second))
"""


@pytest.mark.slow  # two fresh imports of Evidently (seconds each)
def test_a_process_that_checks_drift_again_imports_evidently_once():
    """The first check of a fresh process builds its page in a page process; a second check of the same process
    builds it in a thread (it imports Evidently there once, for every later check), and the pages are the same."""
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    path = os.pathsep.join([str(tests), str(tests.parent / "include"), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", _TWO_CHECKS], capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": path},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["True", "False", "True"]
