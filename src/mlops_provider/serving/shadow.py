"""Shadow scoring off the response path: request bodies over a socket to a low-priority process of its own.

A request hands its raw body to the shadow process with one non-blocking ``send`` on a Unix ``SOCK_SEQPACKET``
socket: no pickling and no queue feeder thread competing with the answers for the service's GIL (with a
multiprocessing queue, that hand-over alone was most of what the shadow cost the p99 in ``bench_serving``). The
shadow process parses the bodies itself, lets them gather for ``linger_seconds``, then scores everything
pending in one call per shadow version (a batch of many rows costs scikit-learn about what one row costs, so
fewer, larger batches take the cores less often) and sends back the encoded log lines, which the service
journals. Scoring in a thread of the service would hold the service's GIL for the whole batch: every answer
meanwhile would wait. In a process of its own, under the kernel's idle scheduling policy (``SCHED_IDLE``;
``nice`` 10 where that is refused), the shadow takes only the CPU time the answers leave.

At most ``max_queue`` requests wait for the shadow (a semaphore the process releases as it scores); beyond that,
or when the socket's buffer is full, the request's shadow work is dropped and counted
(``mlops_serve_shadow_dropped_total``): shadow evidence may thin out under overload, the answers never slow
down. Model objects, and bodies too large for one socket message, go through a multiprocessing queue instead;
each shadow version is sent once, before its first request. When the service dies the socket closes and the
shadow process ends.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from mlops_provider.core.performance.log import SHADOW
from mlops_provider.core.tags import SHADOW_ALIAS
from mlops_provider.serving.journal import PARENT_CHECK_SECONDS
from mlops_provider.serving.routing import LoadedModel

log = logging.getLogger("mlops_provider.serving")

NICE = 10
# Asked of the kernel for the socket's send buffer; it grants at most net.core.wmem_max.
SEND_BUFFER_BYTES = 4 << 20
# The largest socket message (the shadow process reads each into a buffer of this size); larger bodies go by queue.
SOCKET_MESSAGE_BYTES = 1 << 18
# How long a request for a version waits for that version's model, which travels on the slower queue.
MODEL_WAIT_SECONDS = 30.0
# A socket message: the request's time (microseconds), the length of the version string; then the version, the body.
HEADER = struct.Struct("<qH")
END = object()  # the side queue into the shadow process has ended


class ShadowScorer:
    def __init__(
        self,
        model_name: str,
        write: Callable[[bytes, int], None] | None,
        metrics: Any,
        *,
        id_columns: tuple[str, ...] = (),
        max_queue: int = 2048,
        max_batch: int = 1024,
        linger_seconds: float = 2.0,
    ) -> None:
        import multiprocessing

        self.model_name = model_name
        self.write = write
        self.metrics = metrics
        context = multiprocessing.get_context("spawn")
        self._sender, self._receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        except OSError:  # the kernel's default buffer then
            pass
        self._sender.setblocking(False)
        self._slots = context.BoundedSemaphore(max_queue)
        self._side: Any = context.Queue()  # models, and bodies too large for one socket message
        self._results: Any = context.Queue()
        self._process = context.Process(
            target=shadow_main,
            args=(
                self._receiver,
                self._side,
                self._results,
                self._slots,
                os.getpid(),
                id_columns,
                max_batch,
                linger_seconds,
            ),
            name="mlops-serve-shadow",
            daemon=True,
        )
        self._reader = threading.Thread(target=self._read_results, name="mlops-serve-shadow-results", daemon=True)
        self._sent: set[str] = set()  # the versions the process has
        self._dropped = metrics.shadow_dropped.labels(model_name)

    def start(self) -> None:
        self._process.start()
        self._receiver.close()  # the process has its own: when this service dies, the process sees the end
        self._reader.start()

    def submit(self, model: LoadedModel, body: bytes, time_us: int) -> None:
        """Queue ``body`` (a request already answered from ``time_us``) for scoring by the shadow ``model``."""
        if not self._slots.acquire(False):
            self._dropped.inc()
            return
        if model.version not in self._sent:
            self._side.put(("model", model.version, model.model))
            self._sent.add(model.version)
        version = model.version.encode()
        message = HEADER.pack(time_us, len(version)) + version + body
        if len(message) > SOCKET_MESSAGE_BYTES:
            self._side.put(("score", model.version, body, time_us))
            return
        try:
            self._sender.send(message)
        except BlockingIOError:  # the socket's buffer is full: the shadow is behind
            self._slots.release()
            self._dropped.inc()
        except OSError:  # larger than the kernel's socket buffer allows
            self._side.put(("score", model.version, body, time_us))

    def stop(self, timeout: float = 30.0) -> None:
        """Score what is queued, journal it, then stop (the graceful shutdown, before the journal's last flush)."""
        if self._process.is_alive():
            self._side.put(None)
            try:
                self._sender.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        else:
            self._results.put(None)
        self._reader.join(timeout=timeout)
        self._process.join(timeout=timeout)
        if self._process.is_alive():
            log.warning("The shadow process did not finish its queued work in %s s; it is stopped.", timeout)
            self._process.terminate()
        self._sender.close()

    def _read_results(self) -> None:
        while True:
            message = self._results.get()
            if message is None:
                return
            version, lines, rows, seconds, errors = message
            self.metrics.shadow_latency.labels(self.model_name, version).observe(seconds)
            if errors:
                self.metrics.errors.labels(self.model_name, version, SHADOW_ALIAS).inc(errors)
            if self.write is not None and rows:
                try:
                    self.write(lines, rows)
                except Exception:  # the reader must outlive any one batch
                    log.exception("Could not journal %d shadow rows of version %s", rows, version)
                    continue
                self.metrics.journaled_rows.labels(self.model_name, SHADOW).inc(rows)


# -- the shadow process ---------------------------------------------------------------------------------------


class _Models:
    """The shadow versions' models as they arrive on the side queue; a request can arrive before its model."""

    def __init__(self) -> None:
        self._models: dict[str, tuple[Any, Any]] = {}
        self._arrived = threading.Condition()

    def add(self, version: str, model: Any) -> None:
        from mlops_provider.serving.fastpath import fast_path

        loaded = (model, fast_path(model))
        with self._arrived:
            self._models[version] = loaded
            self._arrived.notify_all()

    def get(self, version: str) -> tuple[Any, Any] | None:
        with self._arrived:
            self._arrived.wait_for(lambda: version in self._models, timeout=MODEL_WAIT_SECONDS)
            return self._models.get(version)


def shadow_main(
    receiver: socket.socket,
    side: Any,
    results: Any,
    slots: Any,
    parent_pid: int,
    id_columns: tuple[str, ...],
    max_batch: int,
    linger_seconds: float,
) -> None:
    """Score the requests that arrive on ``receiver`` and ``side``, send each batch's log lines to ``results``;
    when both channels have ended (or the socket has and the service is gone), finish and send None.

    The socket is read only here, once per batch: after the first request of a batch arrives, the process
    sleeps ``linger_seconds`` while the kernel holds what else arrives, then takes it all at once. So it wakes
    once a batch, not once a request (each wake-up takes a core from the answers for a moment)."""
    try:  # run only on CPU time nothing else wants; where that policy is refused, a lower priority
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        try:
            os.nice(NICE)
        except OSError:  # only a fairer share of the CPU without it
            pass
    from mlops_provider.serving.payload import limit_native_threads

    side_inbox: queue.Queue = queue.Queue()
    models = _Models()
    threading.Thread(target=_read_side, args=(side, side_inbox, models), daemon=True).start()
    receiver.settimeout(PARENT_CHECK_SECONDS)
    limited: set[str] = set()  # versions whose native libraries are loaded and limited in this thread
    socket_open, side_open, behind = True, True, False
    while socket_open or side_open:
        batch: list[tuple] = []
        if socket_open:
            try:
                first = receiver.recv(SOCKET_MESSAGE_BYTES)
            except TimeoutError:
                first = None
            if first == b"":  # the service shut its end, or died
                socket_open = False
            elif first is not None:
                batch.append(_request(first))
                if not behind:
                    time.sleep(linger_seconds)  # let a batch gather in the socket
                socket_open = _drain_socket(receiver, batch, max_batch)
                behind = len(batch) >= max_batch  # more is waiting: the next batch starts at once
        else:
            time.sleep(min(linger_seconds, PARENT_CHECK_SECONDS))
        side_open = _drain_side(side_inbox, batch) and side_open
        if not socket_open and side_open and os.getppid() != parent_pid:
            side_open = False  # the service is gone: its side queue will never end
        for version, items in _by_version(batch).items():
            loaded = models.get(version)
            if loaded is not None and version not in limited:
                limit_native_threads()  # once scikit-learn's OpenMP runtime is loaded (see limit_native_threads)
                limited.add(version)
            results.put(_score_version(version, loaded, items, id_columns))
        for _ in batch:
            slots.release()
    results.put(None)


def _request(message: bytes) -> tuple[str, bytes, int]:
    """A socket message as ``(version, body, time_us)``."""
    time_us, length = HEADER.unpack_from(message)
    start = HEADER.size
    return message[start : start + length].decode(), message[start + length :], time_us


def _drain_socket(receiver: socket.socket, batch: list[tuple], max_batch: int) -> bool:
    """Append what the socket holds now (up to ``max_batch`` requests in ``batch``), never waiting for more;
    False once it has ended."""
    receiver.setblocking(False)  # a socket with a timeout would wait for the next message
    try:
        while len(batch) < max_batch:
            try:
                message = receiver.recv(SOCKET_MESSAGE_BYTES)
            except BlockingIOError:
                return True
            if not message:
                return False
            batch.append(_request(message))
        return True
    finally:
        receiver.settimeout(PARENT_CHECK_SECONDS)


def _drain_side(side_inbox: queue.Queue, batch: list[tuple]) -> bool:
    """Append the requests the side queue brought; False once it has ended."""
    while True:
        try:
            message = side_inbox.get_nowait()
        except queue.Empty:
            return True
        if message is END:
            return False
        batch.append(message)


def _read_side(side: Any, side_inbox: queue.Queue, models: _Models) -> None:
    while True:
        message = side.get()
        if message is None:
            side_inbox.put(END)
            return
        if message[0] == "model":
            models.add(message[1], message[2])
        else:
            side_inbox.put(message[1:])


def _by_version(batch: list[tuple]) -> dict[str, list[tuple]]:
    groups: dict[str, list[tuple]] = {}
    for item in batch:
        groups.setdefault(item[0], []).append(item)
    return groups


def _score_version(
    version: str, loaded: tuple[Any, Any] | None, items: list[tuple], id_columns: tuple[str, ...]
) -> tuple:
    """``(version, log lines, rows, seconds, errors)`` for one version's requests (``(version, body, time_us)``):
    one call per group of requests that share one frame (``_frames``); when that fails (a request lacks a column
    the shadow needs), one call per request, so that only the requests it cannot score go without shadow rows."""
    from mlops_provider.serving.journal import encode_entry
    from mlops_provider.serving.payload import score

    started = time.perf_counter()
    if loaded is None:  # its model never arrived
        return version, b"", 0, 0.0, len(items)
    model, fast = loaded
    frames, errors = _frames(items, id_columns, version)
    lines: list[bytes] = []
    rows = 0
    for frame, parts in frames:
        try:
            answers = [score(model, frame, fast)]
            pieces = [(frame, parts)]
        except Exception:  # find the requests it cannot score
            pieces, answers = [], []
            start = 0
            for time_us, count in parts:
                piece = frame.iloc[start : start + count].reset_index(drop=True)
                start += count
                try:
                    answers.append(score(model, piece, fast))
                except Exception as error:
                    errors += 1
                    log.warning("Shadow version %s could not score a request: %s", version, error)
                    continue
                pieces.append((piece, [(time_us, count)]))
        for (piece, piece_parts), (predictions, probabilities) in zip(pieces, answers, strict=True):
            id_values = _id_values(piece, id_columns)
            start = 0
            for time_us, count in piece_parts:
                end = start + count
                ids = {column: values[start:end] for column, values in id_values.items()}
                part = {label: values[start:end] for label, values in probabilities.items()}
                lines.append(encode_entry(time_us, version, SHADOW, SHADOW_ALIAS, ids, predictions[start:end], part))
                rows += count
                start = end
    return version, b"".join(lines), rows, time.perf_counter() - started, errors


def _frames(items: list[tuple], id_columns: tuple[str, ...], version: str) -> tuple[list[tuple[Any, list]], int]:
    """The requests as few frames as can be built exactly, each with its requests' ``(time_us, rows)`` in order,
    and the number of bodies that could not be read. Records (``dataframe_records``) whose values have the same
    columns and Python types share one frame: pandas infers for them the dtypes it infers for each request
    alone, so each row is scored as it would be by itself, and one frame costs a fraction of one per request.
    Other bodies are read one by one, as the service reads them."""
    import json

    import pandas as pd

    from mlops_provider.serving.payload import parse_request

    shared: dict[tuple, tuple[list[dict], list[tuple[int, int]]]] = {}
    frames: list[tuple[Any, list]] = []
    errors = 0
    for _, body, time_us in items:
        try:
            records = _records(json.loads(body))
        except ValueError:  # parse_request names what is wrong
            records = None
        if records is not None:
            signature = _signature(records[0])
            if all(_signature(record) == signature for record in records[1:]):
                rows, parts = shared.setdefault(signature, ([], []))
                rows.extend(records)
                parts.append((time_us, len(records)))
                continue
        try:  # the service parsed and answered it already: this cannot fail but for a model of other columns
            request = parse_request(body, id_columns=id_columns, require_ids=False, header_key=None)
        except Exception as error:
            errors += 1
            log.warning("Shadow version %s could not read a request: %s", version, error)
            continue
        frames.append((request.frame, [(time_us, request.rows)]))
    for rows, parts in shared.values():
        frame = pd.DataFrame({column: [value] for column, value in rows[0].items()}) if len(rows) == 1 else None
        frames.append((frame if frame is not None else pd.DataFrame.from_records(rows), parts))
    return frames, errors


def _records(payload: Any) -> list[dict] | None:
    records = payload.get("dataframe_records") if isinstance(payload, dict) else None
    if isinstance(records, list) and records and all(isinstance(record, dict) for record in records):
        return records
    return None


def _signature(record: dict) -> tuple:
    return tuple((column, type(value)) for column, value in record.items())


def _id_values(frame: Any, id_columns: tuple[str, ...]) -> dict[str, list[Any]]:
    """The id columns' values of every row of ``frame`` (none when it lacks one), sliced per request after."""
    if not id_columns or any(column not in frame.columns for column in id_columns):
        return {}
    return {column: frame[column].tolist() for column in id_columns}
