"""The durable prediction journal and its conversion into prediction log files.

Why a journal: a served row must survive the process dying right after its answer went out, yet writing a
parquet file per request would cost more than the scoring. So each answered request appends one JSON line to
the current *segment* with a single ``os.write`` on an ``O_APPEND`` descriptor before the answer is returned:
once ``os.write`` returns the bytes are in the kernel's page cache and survive a SIGKILL of the process (not a
crash of the machine: there is no fsync per request). A flusher thread rotates segments every ``rotate_rows``
rows or ``rotate_seconds`` seconds and turns each closed segment into log files with ``core.performance.log``
(``prediction_log_file`` + ``write_prediction_log``; one file per UTC day of its rows), deleting the segment only
after the files are written. A segment left behind by a killed process is converted when the service starts again.

Segment ``{instance_id}__{seq:06d}.journal``: a header line ``{"segment": {...}}`` (model, id columns, log root,
instance, number) then one line per answered (or shadow-scored) request:
``{"t": <epoch µs>, "v": version, "r": role, "a": alias, "ids": {col: [..]}, "p": [..], "pr": {class: [..]}}``.
A live instance holds an exclusive ``flock`` on each of its segments until it is converted, so a second instance
recovering the same folder never takes a segment that is still being written.

Conversion runs in a separate process (a one-worker pool) when one can be started: building and writing
parquet holds the GIL for tens of milliseconds, which would otherwise land on the answers' latency.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("mlops_provider.serving")

DAG_ID = "mlops-serve"
SUFFIX = ".journal"

# How often a helper process of the service (converter, shadow) checks that the service is still there.
PARENT_CHECK_SECONDS = 1.0


def encode_entry(
    time_us: int,
    version: str,
    role: str,
    alias: str,
    ids: dict[str, list[Any]],
    predictions: list[Any],
    probabilities: dict[str, list[Any]] | None,
) -> bytes:
    """One journal line (with its newline) for one request's rows as scored by one version."""
    entry: dict[str, Any] = {"t": time_us, "v": version, "r": role, "a": alias, "ids": ids, "p": predictions}
    if probabilities:
        entry["pr"] = probabilities
    return (json.dumps(entry, separators=(",", ":"), default=_json_default) + "\n").encode("utf-8")


def _json_default(value: Any) -> Any:
    item = getattr(value, "item", None)  # numpy scalars
    if item is not None:
        return item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


class CorruptSegmentError(ValueError):
    """A journal file without its header: nothing in it can be attributed to a model and instance."""


@dataclass
class Segment:
    path: Path
    seq: int
    fd: int
    rows: int = 0
    opened: float = field(default_factory=time.monotonic)


class Journal:
    """Appends entries durably, rotates segments and has them converted into log files.

    ``append`` is safe from any thread; its ``os.write`` holds a lock only against rotation swapping the
    descriptor. ``close`` converts everything still journaled (the graceful shutdown's flush).
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        model_name: str,
        id_columns: list[str],
        log_root: str,
        instance_id: str,
        rotate_rows: int = 50_000,
        rotate_seconds: float = 60.0,
        executor: Executor | None = None,
        on_logged: Callable[[dict[str, int]], None] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.header = {
            "model_name": model_name,
            "id_columns": list(id_columns),
            "log_root": log_root,
            "instance_id": instance_id,
        }
        self.rotate_rows = rotate_rows
        self.rotate_seconds = rotate_seconds
        self.executor = executor
        self.on_logged = on_logged
        self._lock = threading.Lock()
        self._seq = 0
        self._current: Segment | None = None
        self._pending: list[Segment] = []  # rotated, not yet converted (a failed conversion is retried)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- writing ------------------------------------------------------------------------------------------

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._current = self._new_segment()
        self._thread = threading.Thread(target=self._run, name="mlops-serve-journal", daemon=True)
        self._thread.start()

    def _new_segment(self) -> Segment:
        self._seq += 1
        path = self.directory / f"{self.header['instance_id']}__{self._seq:06d}{SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        header = {"segment": {**self.header, "seq": self._seq}}
        os.write(fd, (json.dumps(header) + "\n").encode("utf-8"))
        return Segment(path=path, seq=self._seq, fd=fd)

    def append(self, data: bytes, rows: int) -> None:
        """Write ``data`` (whole lines) to the current segment; durable against a process kill on return."""
        with self._lock:
            segment = self._current
            if segment is None:
                raise RuntimeError("the prediction journal is closed; the service is shutting down")
            written = os.write(segment.fd, data)
            while written < len(data):  # a regular file takes it all at once; a full disk raises instead
                written += os.write(segment.fd, data[written:])
            segment.rows += rows

    # -- rotating and converting --------------------------------------------------------------------------

    def rotate(self, *, reopen: bool = True) -> None:
        """Close the current segment for conversion (when it holds rows) and start the next one."""
        with self._lock:
            segment = self._current
            if segment is None or (segment.rows == 0 and reopen):
                return
            self._current = self._new_segment() if reopen else None
        self._pending.append(segment)

    def convert_pending(self) -> None:
        """Convert the rotated segments, oldest first; one that fails stays for the next try (or the next start)."""
        while self._pending:
            segment = self._pending[0]
            try:
                if self.executor is not None:
                    counts = self.executor.submit(convert_segment, str(segment.path)).result()
                else:
                    counts = convert_segment(str(segment.path))
            except Exception as error:
                log.error("Could not convert %s into the prediction log (kept, retried later): %s", segment.path, error)
                return
            self._pending.pop(0)
            os.close(segment.fd)  # releases the flock only now that the segment is gone
            if self.on_logged is not None:
                self.on_logged(counts)

    def _due(self) -> bool:
        segment = self._current
        if segment is None or segment.rows == 0:
            return False
        return segment.rows >= self.rotate_rows or time.monotonic() - segment.opened >= self.rotate_seconds

    def _run(self) -> None:
        while not self._stop.wait(min(0.5, self.rotate_seconds)):
            if self._due():
                self.rotate()
            if self._pending:
                self.convert_pending()

    def close(self) -> None:
        """Stop the flusher, convert every row journaled so far and release the segments."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self.rotate(reopen=False)
        self.executor = None  # in this process: the pool may already be going down with the service
        self.convert_pending()
        for segment in self._pending:  # left for the next start to recover
            os.close(segment.fd)
        self._pending.clear()


# -- conversion (also run in the converter process) ---------------------------------------------------------


def read_segment(path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header and the entries of a segment. A line that does not decode (the tail of a write cut short) is
    skipped with a warning: its request was never answered, since the answer waits for the whole write."""
    header: dict[str, Any] | None = None
    entries: list[dict[str, Any]] = []
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            try:
                item = json.loads(line)
            except ValueError:
                log.warning("%s line %d is not a whole entry; skipped", path, number)
                continue
            if header is None:
                if not isinstance(item, dict) or "segment" not in item:
                    raise CorruptSegmentError(f"{path} does not start with a journal header")
                header = item["segment"]
            else:
                entries.append(item)
    if header is None:
        raise CorruptSegmentError(f"{path} is empty: no journal header")
    return header, entries


def entries_frame(entries: Iterable[dict[str, Any]], id_columns: list[str], model_name: str) -> Any:
    """The log rows of journal entries, with the columns (and their order) of ``prediction_log_rows``."""
    import pandas as pd

    from mlops_provider.core.prediction import PREDICTION_COLUMN, PROBABILITY_PREFIX

    ids: dict[str, list[Any]] = {c: [] for c in id_columns}
    times: list[int] = []
    versions: list[str] = []
    roles: list[str] = []
    aliases: list[str] = []
    predictions: list[Any] = []
    probabilities: dict[str, list[Any]] = {}
    count = 0
    for entry in entries:
        rows = len(entry["p"])
        for column in id_columns:
            ids[column].extend(entry["ids"].get(column) or [None] * rows)
        times.extend([entry["t"]] * rows)
        versions.extend([str(entry["v"])] * rows)
        roles.extend([entry["r"]] * rows)
        aliases.extend([entry.get("a") or ""] * rows)
        predictions.extend(entry["p"])
        for label, values in (entry.get("pr") or {}).items():
            probabilities.setdefault(label, [None] * count).extend(values)
        count += rows
        for values in probabilities.values():
            values.extend([None] * (count - len(values)))
    columns: dict[str, Any] = dict(ids)
    columns["prediction_time"] = pd.to_datetime(pd.Series(times, dtype="int64"), unit="us", utc=True)
    columns["model_name"] = [model_name] * count
    columns["model_version"] = versions
    columns["role"] = roles
    columns["alias"] = aliases
    columns[PREDICTION_COLUMN] = predictions
    for label, values in probabilities.items():
        columns[f"{PROBABILITY_PREFIX}{label}"] = pd.Series(values, dtype="float64")
    return pd.DataFrame(columns)


def convert_segment(path: str) -> dict[str, int]:
    """Write a segment's rows as prediction log files (one per UTC day) and delete it; returns rows per role.

    Idempotent: the file names come from the segment's instance and number, so converting a segment again
    (the process died between writing the files and deleting the segment) replaces the same files.
    """
    from mlops_provider.core.performance.log import prediction_log_file, write_prediction_log

    header, entries = read_segment(path)
    counts: dict[str, int] = {}
    if entries:
        frame = entries_frame(entries, header["id_columns"], header["model_name"])
        root = header["log_root"]
        s3_client = _s3_client() if str(root).startswith("s3://") else None
        days = frame["prediction_time"].dt.floor("D")
        for day, rows in frame.groupby(days, sort=True):
            uri = prediction_log_file(
                root,
                header["model_name"],
                day,
                dag_id=DAG_ID,
                run_id=header["instance_id"],
                task_id=f"{header['seq']:06d}",
            )
            write_prediction_log(rows.reset_index(drop=True), uri, s3_client=s3_client)
        counts = {str(role): int(n) for role, n in frame["role"].value_counts().items()}
    os.unlink(path)
    return counts


def _s3_client() -> Any:
    """An S3 client from the standard AWS settings of the environment (``AWS_*``, ``AWS_ENDPOINT_URL``)."""
    import boto3

    return boto3.client("s3")


def recover(directory: str | Path) -> list[tuple[str, dict[str, int]]]:
    """Convert the segments a stopped or killed instance left in ``directory``; skips those a live instance
    holds. Returns (segment, rows per role) for each converted; a segment that cannot be read is renamed
    ``*.bad`` (kept for a person to look at) rather than blocking every start."""
    folder = Path(directory)
    done: list[tuple[str, dict[str, int]]] = []
    if not folder.is_dir():
        return done
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        try:
            if path.stat().st_size == 0:  # killed between creating it and writing its header: nothing in it
                path.unlink()
                continue
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live instance is still writing or converting it
            try:
                done.append((path.name, convert_segment(str(path))))
            except CorruptSegmentError as error:
                log.error("Journal segment %s cannot be read (%s); renamed to %s.bad", path, error, path.name)
                path.rename(path.with_name(path.name + ".bad"))
            except Exception as error:  # e.g. the log root unwritable now: keep the rows for the next start
                log.error(
                    "Could not convert the leftover journal segment %s (kept for the next start): %s", path, error
                )
        finally:
            os.close(fd)
    return done


def converter_pool() -> Executor | None:
    """A one-process pool for conversions, or None (convert in this process) when none can be started."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    try:
        return ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_converter,
            initargs=(os.getpid(),),
        )
    except (OSError, ValueError) as error:
        log.warning("No converter process (%s); the journal is converted in the service process.", error)
        return None


def _start_converter(service_pid: int) -> None:
    """The converter outlives a Ctrl-C or SIGTERM to the process group (the service shuts it down when done),
    not the service: when the service is killed, the converter ends too (a conversion it was in the middle of
    is written whole or not at all, and its segment is recovered at the service's next start)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def end_with_the_service() -> None:
        while os.getppid() == service_pid:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=end_with_the_service, name="mlops-serve-converter-watch", daemon=True).start()
