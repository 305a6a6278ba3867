"""Evidently's drift page of a narrow check, built while the columns are tested.

The page depends on the tested columns, their types and the settings, not on the verdicts, so it need not wait for
the tests. Importing Evidently is seconds of Python work: in a thread of the task's process it holds the GIL the
column tests need between their numpy and Arrow calls, and both go slower. So where the platform forks (Linux),
the page is built in a forked process of its own, which imports Evidently on the other core as soon as the check
starts and builds the page from the sample rows it is handed; elsewhere, when that process cannot start, and in a
process that checks drift more than once (``page_process_pays``), a thread of the task's process does the same.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING, Any

from mlops_provider.core.drift import DriftSettings, import_report_libraries, render_column_report

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    import pandas as pd
    import pyarrow as pa

# A page process that has not imported Evidently, or built the page, by then is given up on and the page is built
# in the task's process instead: a forked process can inherit a lock that a thread of the task's process held at the
# fork (an import of the same module under way, say), and would wait for it forever.
IMPORT_TIMEOUT_SECONDS = 120.0
PAGE_TIMEOUT_SECONDS = 600.0
SIDES = ("reference", "current")


class EvidentlyReport:
    """Evidently's drift page of a check of up to ``WIDE_COLUMNS`` columns (``core.drift_wide``), built beside the
    column tests.

    Made before the datasets are opened. A thread imports what the column tests use (the calling thread waits for
    that, ``ready()``, before it tests: a column test never uses a module that is still being imported). The page
    process (``PageProcess``, where it pays), forked before that thread starts, imports Evidently and waits for the
    sample rows ``check_columns`` hands to ``submit``; without one, the thread imports Evidently once ``plan`` names
    the columns and builds the page from the sample. ``html()`` waits for the page. ``cancel()`` (a wide check, or
    a failed one) stops the process or the thread. With ``render=False`` (the page takes a section known only after
    the tests) there is no page process, the thread only imports, and ``html(section)`` builds the page. If the page
    process or the thread fails, ``html`` builds the page in the calling thread (which raises the error, if it
    persists).
    """

    def __init__(self, settings: DriftSettings, *, render: bool = True) -> None:
        self.settings = settings
        self.column_types: dict[str, str] = {}
        self._render = render
        self._samples: tuple[pa.Table, pa.Table] | None = None
        self._test_libraries = threading.Event()
        self._planned = threading.Event()
        self._submitted = threading.Event()
        self._cancelled = False
        self._html: str | None = None
        # Forked before the thread starts: a fork copies only the calling thread, and a module the thread was still
        # importing would stay half imported in the copy.
        self._process = PageProcess.start() if render and page_process_pays() else None
        self._thread = threading.Thread(target=self._build, name="drift-report", daemon=True)
        self._thread.start()

    def ready(self) -> None:
        """Wait until the modules the column tests use are imported."""
        self._test_libraries.wait()

    def plan(self, column_types: dict[str, str]) -> None:
        """The tested columns and their types: the page is of these."""
        self.column_types = column_types
        self._planned.set()

    def submit(self, reference: pa.Table, current: pa.Table) -> None:
        """The report's sample rows of each side (all columns)."""
        self._samples = (reference, current)
        if self._process is not None:
            self._process.submit(reference, current, self.column_types, self.settings)
        self._submitted.set()

    def cancel(self) -> None:
        """Stop building the page (a wide check, or the check failed); after ``html()``, let the page process go."""
        self._cancelled = True
        self._planned.set()
        self._submitted.set()
        if self._process is not None:
            self._process.stop()

    def _frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        if self._samples is None:
            raise RuntimeError("The drift report was asked for before its sample rows were read.")
        reference, current = self._samples
        return reference.to_pandas(), current.to_pandas()

    def _build(self) -> None:
        try:
            import pyarrow.compute  # noqa: F401  # what the column tests use
            import scipy.special  # noqa: F401
            import scipy.stats  # noqa: F401
        finally:
            self._test_libraries.set()  # the calling thread imports whatever failed here, and raises there
        if self._process is not None:
            return
        try:
            self._planned.wait()
            if self._cancelled:
                return
            import_report_libraries()
            if not self._render:
                return
            self._submitted.wait()
            if self._cancelled:
                return
            reference, current = self._frames()
            self._html = render_column_report(reference, current, self.column_types, self.settings)
        except BaseException:  # noqa: BLE001  # html() builds the page again in the calling thread and raises there
            self._html = None

    def html(self, section: Any = None) -> str:
        """The page (``section``: a further section, ``core.drift.ReportSection``)."""
        self._thread.join()
        if self._process is not None:
            self._html = self._process.page() if section is None else None
            self._process.stop()
        if self._html is not None and section is None:
            return self._html
        reference, current = self._frames()
        return render_column_report(reference, current, self.column_types, self.settings, section)


_page_process_started = False


def page_process_pays() -> bool:
    """Whether a page process would save time: Evidently is not imported in this process yet, and no page process
    was started here before. A process that checks drift again and again (a notebook, ``dag.test()``, a test run)
    imports Evidently once, in the thread, and builds every later page without importing it; page processes
    would each import it anew."""
    return not _page_process_started and "evidently" not in sys.modules


class PageProcess:
    """A forked process that imports Evidently at once and builds the page of the sample rows it is sent.

    The samples go through two Arrow files in a folder of its own (a pipe holds 64 KiB: sending them would block
    the column tests until the process is done importing); the page comes back through the pipe.
    """

    def __init__(self, process: BaseProcess, connection: Connection, folder: str) -> None:
        self.process = process
        self._connection = connection
        self._folder = folder
        self._submitted = False

    @classmethod
    def start(cls) -> PageProcess | None:
        """A started page process; None where the platform does not fork safely (not Linux) or it cannot start."""
        if not sys.platform.startswith("linux"):
            return None
        import multiprocessing
        import shutil
        import tempfile

        context = multiprocessing.get_context("fork")
        ours, theirs = context.Pipe()
        folder = tempfile.mkdtemp(prefix="mlops-drift-page-")
        for stream in (sys.stdout, sys.stderr):  # what is buffered would be written twice, once by each process
            try:
                stream.flush()
            except (AttributeError, OSError, ValueError):
                pass
        process = context.Process(target=_serve_page, args=(theirs, ours), name="mlops-drift-page", daemon=True)
        try:
            process.start()
        except (AssertionError, OSError):  # a daemonic process may not have children; or no memory, no processes
            ours.close()
            theirs.close()
            shutil.rmtree(folder, ignore_errors=True)
            return None
        theirs.close()
        global _page_process_started
        _page_process_started = True
        return cls(process, ours, folder)

    def submit(
        self, reference: pa.Table, current: pa.Table, column_types: dict[str, str], settings: DriftSettings
    ) -> None:
        import pyarrow as pa

        try:
            for side, table in zip(SIDES, (reference, current), strict=True):
                with pa.OSFile(os.path.join(self._folder, f"{side}.arrow"), "wb") as sink:
                    with pa.ipc.new_file(sink, table.schema) as writer:
                        writer.write_table(table)
            self._connection.send((column_types, settings, self._folder))
            self._submitted = True
        except OSError:  # the process is gone: page() says so and the page is built here
            pass

    def page(self) -> str | None:
        """The page; None if the process failed, died or took too long (the caller builds the page itself)."""
        if not self._submitted or self._receive(IMPORT_TIMEOUT_SECONDS) != ("imported", None):
            return None
        message = self._receive(PAGE_TIMEOUT_SECONDS)
        return message[1] if message is not None and message[0] == "page" else None

    def _receive(self, timeout: float) -> tuple[str, Any] | None:
        try:
            return self._connection.recv() if self._connection.poll(timeout) else None
        except (EOFError, OSError):
            return None

    def stop(self) -> None:
        """End the process (at once, if it is still working), close the pipe and remove the samples."""
        import shutil

        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self._connection.close()
        shutil.rmtree(self._folder, ignore_errors=True)


def _serve_page(connection: Connection, parents_end: Connection) -> None:
    """The page process: import Evidently, say so, wait for the samples, send the page back."""
    import logging
    import warnings

    # Only the task's process may write to its log: the task runner's log channel is not for two writers.
    parents_end.close()  # the parent's end stays open only in the parent: its exit ends a recv() here
    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), 1)
        os.dup2(devnull.fileno(), 2)
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    try:
        import_report_libraries()
        connection.send(("imported", None))
        column_types, settings, folder = connection.recv()
        import pyarrow as pa

        reference, current = (
            pa.ipc.open_file(pa.memory_map(os.path.join(folder, f"{side}.arrow"))).read_all().to_pandas()
            for side in SIDES
        )
        connection.send(("page", render_column_report(reference, current, column_types, settings)))
    except EOFError:  # the check was cancelled, or the task's process is gone
        return
    except BaseException as error:  # noqa: BLE001  # the task's process builds the page again and raises there
        try:
            connection.send(("failed", repr(error)))
        except OSError:
            pass
