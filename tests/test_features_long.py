"""Long windows materialised in time slices (``slice_length``) on copies of the sample repository, SQLite online.

What must hold: slices put the same online values as one window, memory follows a slice, a killed run
resumes where it stopped and ends as an uninterrupted one, the backfill guard holds across slices, and bad
slice arguments fail clearly.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mlops_provider.core import features as core
from mlops_provider.core.errors import MaterializationWindowError
from support.feature_repo import make_feature_repo, newest_values, online_values, source_frame

pytestmark = pytest.mark.scale  # memory and size: make test runs it, make test-fast does not

UTC = timezone.utc
START = datetime(2026, 1, 1, tzinfo=UTC)
VIEWS = {
    "customer_profile": ["tenure_months", "monthly_charges", "support_calls", "plan", "contract"],
    "customer_activity": ["sessions_7d", "sessions_30d", "minutes_7d", "data_gb_7d", "days_since_last_login"],
}


def window(first_day: int, days: int) -> core.MaterializationWindow:
    """``days`` whole days from day ``first_day`` (1 = 2026-01-01), half-open."""
    start = START + timedelta(days=first_day - 1)
    return core.MaterializationWindow(start, start + timedelta(days=days))


def open_store(repo: Path):
    from feast import FeatureStore

    return FeatureStore(repo_path=str(repo))


def applied(root: Path, **kwargs) -> Path:
    repo = make_feature_repo(root, project="churn_long", **kwargs)
    core.apply_repository(open_store(repo), repo)
    return repo


def online_rows(repo: Path) -> dict[str, list]:
    """Every row of every online table, as stored (bytes, text, timestamps)."""
    with sqlite3.connect(repo / "data" / "online_store.db") as conn:
        tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {name: sorted(conn.execute(f'SELECT * FROM "{name}"').fetchall()) for name in tables}


def served(repo: Path, customers) -> dict:
    """Every feature of every customer as Feast's get_online_features serves it."""
    store = open_store(repo)
    return {f"{v}:{f}": online_values(store, v, f, customers) for v, names in VIEWS.items() for f in names}


def test_slices_write_the_same_online_values_as_one_window(tmp_path):
    whole, sliced = applied(tmp_path / "whole", days=5), applied(tmp_path / "sliced", days=5)
    core.materialize_window(open_store(whole), window(1, 5))
    result = core.materialize_in_slices(open_store(sliced), window(1, 5), slice_length=timedelta(hours=12))
    assert result.slices == 10 and result.slices_resumed == 0
    assert online_rows(sliced) == online_rows(whole), "the same bytes, text and timestamps in the online tables"
    assert served(sliced, range(40)) == served(whole, range(40))
    expected = newest_values(sliced, "customer_profile", "monthly_charges")
    assert served(sliced, range(40))["customer_profile:monthly_charges"] == expected
    profile = {view.name: view for view in result.views}["customer_profile"]
    assert profile.rows == 200 and profile.rows_superseded == 160 and profile.values_written == 200
    intervals = open_store(sliced).get_feature_view("customer_profile").materialization_intervals
    assert len(intervals) == 10, "each slice is recorded as it finishes"
    assert "10 time slices" in result.summary()


def distinct_entities_per_day(repo: Path, days: int) -> None:
    """Rewrite the sample data so that every day has its own customers: nothing a later slice supersedes, so
    every row of the window is converted and written (the case where memory would grow with the window)."""
    for view in VIEWS:
        frame = source_frame(repo, view)
        day = (frame["event_timestamp"] - START).dt.days
        frame["customer_id"] = frame["customer_id"] + day * 1_000_000
        frame.to_parquet(repo / "data" / f"{view}.parquet", index=False)


def traced_peak(function) -> int:
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_follows_the_slice_not_the_window(tmp_path):
    """4 days x 800 new customers a day, in one piece and in daily slices (the same code path).

    The rows a slice holds (its arrow table, the dedup index, the encoded keys, timestamps and sort order)
    grow with the rows in the slice; written rows stream into SQLite. What is kept from slice to slice is
    the arrow array of entity keys already written, 8 bytes per entity (not traced here). So the sliced peak
    is one slice's, about a quarter of the one-piece peak plus fixed costs; a half leaves room for those.
    """
    days = 4
    one, daily = (applied(tmp_path / name, customers=800, days=days) for name in ("one", "daily"))
    for repo in (one, daily):
        distinct_entities_per_day(repo, days)
    core.materialize_in_slices(open_store(applied(tmp_path / "warm", customers=20, days=1)), window(1, 1),
                               slice_length="1d")  # fmt: skip
    one_store, daily_store = open_store(one), open_store(daily)
    whole = traced_peak(lambda: core.materialize_in_slices(one_store, window(1, days), slice_length=f"{days}d"))
    sliced = traced_peak(lambda: core.materialize_in_slices(daily_store, window(1, days), slice_length="1d"))
    print(f"traced peak: {sliced / 1e6:.2f} MB in daily slices, {whole / 1e6:.2f} MB in one piece")
    assert sliced < whole / 2, f"peak {sliced / 1e6:.1f} MB in daily slices vs {whole / 1e6:.1f} MB in one piece"
    assert online_rows(daily) == online_rows(one)


KILLED_RUN = """
import os, signal, sys
from datetime import datetime, timedelta, timezone
from feast import FeatureStore
from mlops_provider.core.features import MaterializationWindow, materialize_in_slices, sliced

repo, kill_at = sys.argv[1], int(sys.argv[2])
recorded = sliced.record_materialization
calls = []

def record_then_maybe_die(store, view_name, part):
    if len(calls) == kill_at:  # slice written for this view, not yet recorded: the worst moment to die
        os.kill(os.getpid(), signal.SIGKILL)
    calls.append(view_name)
    return recorded(store, view_name, part)

sliced.record_materialization = record_then_maybe_die
start = datetime(2026, 1, 1, tzinfo=timezone.utc)
materialize_in_slices(FeatureStore(repo_path=repo), MaterializationWindow(start, start + timedelta(days=5)),
                      slice_length=timedelta(days=1))
"""


def test_a_killed_run_resumes_at_the_first_unfinished_slice(tmp_path):
    """A worker killed with SIGKILL after 2 of 5 slices (in the middle of the third) is retried: the retry
    skips the 2 recorded slices, redoes the third and ends identical to an uninterrupted run."""
    killed, clean = applied(tmp_path / "killed", days=5), applied(tmp_path / "clean", days=5)
    finished = 2
    script = tmp_path / "killed_run.py"
    script.write_text(textwrap.dedent(KILLED_RUN))
    process = subprocess.run(
        [sys.executable, str(script), str(killed), str(finished * len(VIEWS))],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert process.returncode == -signal.SIGKILL, process.stderr[-3000:]
    intervals = open_store(killed).get_feature_view("customer_profile").materialization_intervals
    assert sorted(end for _, end in intervals) == [START + timedelta(days=4), START + timedelta(days=5)]

    ran = []
    retry = core.materialize_in_slices(
        open_store(killed), window(1, 5), slice_length="1d", on_slice=lambda i, part, views: ran.append(part)
    )
    assert retry.slices_resumed == finished
    assert ran == [window(3, 1), window(2, 1), window(1, 1)], "the newest unfinished slice first, then older"
    core.materialize_in_slices(open_store(clean), window(1, 5), slice_length="1d")
    assert online_rows(killed) == online_rows(clean)

    again = core.materialize_in_slices(open_store(killed), window(1, 5), slice_length="1d")
    assert again.slices_resumed == 5 and sum(v.values for v in again.views) == 0, "a finished window writes nothing"
    assert online_rows(killed) == online_rows(clean)
    rewrite = core.materialize_in_slices(open_store(killed), window(1, 5), slice_length="1d", resume=False)
    assert rewrite.slices_resumed == 0 and online_rows(killed) == online_rows(clean)


def test_the_backfill_guard_holds_across_slices(tmp_path):
    repo = applied(tmp_path, days=5)
    core.materialize_window(open_store(repo), window(3, 1))  # day 3 is online
    newest_by_day3 = served(repo, range(40))
    older = core.materialize_in_slices(open_store(repo), window(1, 2), slice_length="1d")
    assert older.values_kept_out == 400, "day 2's values (older than day 3's) are kept out"
    assert sum(view.rows_superseded for view in older.views) == 80, "day 1 is superseded by day 2"
    assert served(repo, range(40)) == newest_by_day3

    wider = core.materialize_in_slices(open_store(repo), window(1, 5), slice_length="1d")
    assert wider.values_kept_out == 0 and served(repo, range(40)) == served_newest(repo)


def served_newest(repo: Path) -> dict:
    return {f"{v}:{f}": newest_values(repo, v, f) for v, names in VIEWS.items() for f in names}


@pytest.mark.parametrize("bad", ["soon", 0, -3600, timedelta(0), timedelta(hours=-1), [1], True])
def test_bad_slice_length_names_the_input_and_the_fix(bad):
    with pytest.raises(MaterializationWindowError, match=r"slice_length=.* is not a positive duration.*timedelta"):
        core.check_slice_length(bad)


def test_the_operator_checks_slice_length_before_writing(tmp_path):
    from mlops_provider.operators.features import MaterializeFeaturesOperator

    repo = applied(tmp_path, days=2)
    operator = MaterializeFeaturesOperator(
        task_id="materialize", repo_path=str(repo), window_start="2026-01-01T00:00:00+00:00",
        window_end="2026-01-03T00:00:00+00:00", slice_length="one day",
    )  # fmt: skip
    with pytest.raises(MaterializationWindowError, match="slice_length='one day'"):
        operator.execute({})
    assert all(not rows for rows in online_rows(repo).values())

    operator.slice_length = "1d"
    result = operator.execute({})
    assert result["slices"] == 2 and result["values_written"] == 400 and result["project"] == "churn_long"
    assert served(repo, range(40)) == served_newest(repo)
