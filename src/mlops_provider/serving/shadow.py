"""Shadow scoring off the response path: a bounded queue to a low-priority process of its own.

A request only enqueues its frame (a few microseconds; the pickling happens in the queue's feeder thread). The
shadow process waits a moment for more to queue up, then scores everything queued in one call per shadow version,
since a batch of fifty rows costs scikit-learn about what one row costs, and sends back the encoded log lines,
which the service journals. Scoring in a thread of the service would hold the service's GIL for the whole
batch: every answer that arrives meanwhile waits (measured by ``bench_serving``: twice the p99). In a process of
its own, under the kernel's idle scheduling policy (``SCHED_IDLE``; ``nice`` 10 where that is refused), the shadow
takes only the CPU time the answers leave.

When the queue is full the request's shadow work is dropped and counted (``mlops_serve_shadow_dropped_total``):
shadow evidence may thin out under overload, the answers never slow down. Each shadow version is sent to the
process once, before its first request.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from mlops_provider.core.performance.log import SHADOW
from mlops_provider.core.tags import SHADOW_ALIAS
from mlops_provider.serving.routing import LoadedModel

log = logging.getLogger("mlops_provider.serving")

NICE = 10
# The shadow process checks this often that the service is still there (a killed service leaves no orphan).
PARENT_CHECK_SECONDS = 1.0


class ShadowScorer:
    def __init__(
        self,
        model_name: str,
        write: Callable[[bytes, int], None] | None,
        metrics: Any,
        *,
        max_queue: int = 2048,
        max_batch: int = 256,
        linger_seconds: float = 0.05,
    ) -> None:
        import multiprocessing

        self.model_name = model_name
        self.write = write
        self.metrics = metrics
        context = multiprocessing.get_context("spawn")
        self._requests: Any = context.Queue(maxsize=max_queue)
        self._results: Any = context.Queue()
        self._process = context.Process(
            target=shadow_main,
            args=(self._requests, self._results, os.getpid(), max_batch, linger_seconds),
            name="mlops-serve-shadow",
            daemon=True,
        )
        self._reader = threading.Thread(target=self._read_results, name="mlops-serve-shadow-results", daemon=True)
        self._sent: set[str] = set()  # the versions the process has
        self._dropped = metrics.shadow_dropped.labels(model_name)

    def start(self) -> None:
        self._process.start()
        self._reader.start()

    def submit(self, model: LoadedModel, frame: Any, ids: dict, time_us: int) -> None:
        try:
            if model.version not in self._sent:
                self._requests.put_nowait(("model", model.version, model.model))
                self._sent.add(model.version)
            self._requests.put_nowait(("score", model.version, frame, ids, time_us))
        except queue.Full:
            self._dropped.inc()

    def stop(self, timeout: float = 30.0) -> None:
        """Score what is queued, journal it, then stop (the graceful shutdown, before the journal's last flush)."""
        if self._process.is_alive():
            try:
                self._requests.put(None, timeout=timeout)
            except queue.Full:
                log.warning("The shadow queue stayed full for %s s; its pending work is dropped.", timeout)
                self._process.terminate()
                self._results.put(None)
        else:
            self._results.put(None)
        self._reader.join(timeout=timeout)
        self._process.join(timeout=timeout)
        if self._process.is_alive():
            self._process.terminate()

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


def shadow_main(requests: Any, results: Any, parent_pid: int, max_batch: int, linger_seconds: float) -> None:
    """Score what ``requests`` brings, send each batch's log lines to ``results``; on None, finish and send None."""
    try:  # run only on CPU time nothing else wants; where that policy is refused, a lower priority
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        try:
            os.nice(NICE)
        except OSError:  # only a fairer share of the CPU without it
            pass
    from mlops_provider.serving.fastpath import fast_path
    from mlops_provider.serving.payload import limit_native_threads

    models: dict[str, tuple[Any, Any]] = {}
    stopping = False
    while not stopping:
        try:
            first = requests.get(timeout=PARENT_CHECK_SECONDS)
        except queue.Empty:
            if os.getppid() != parent_pid:
                return  # the service is gone
            continue
        if first is None:
            break
        batch: list[tuple] = []
        for message in _with_pending(requests, first, max_batch, linger_seconds):
            if message is None:
                stopping = True
            elif message[0] == "model":
                models[message[1]] = (message[2], fast_path(message[2]))
                limit_native_threads()  # once scikit-learn's OpenMP runtime is loaded (see limit_native_threads)
            else:
                batch.append(message)
        for version, items in _by_version(batch).items():
            results.put(_score_version(version, models.get(version), items))
    results.put(None)


def _with_pending(requests: Any, first: Any, max_batch: int, linger_seconds: float) -> list[Any]:
    """``first`` and what else is queued after a short wait, up to ``max_batch`` requests (and up to a None)."""
    if first[0] == "score":
        time.sleep(linger_seconds)  # let a batch gather
    messages = [first]
    while sum(1 for m in messages if m is not None and m[0] == "score") < max_batch and messages[-1] is not None:
        try:
            messages.append(requests.get_nowait())
        except queue.Empty:
            break
    return messages


def _by_version(batch: list[tuple]) -> dict[str, list[tuple]]:
    groups: dict[str, list[tuple]] = {}
    for item in batch:
        groups.setdefault(item[1], []).append(item)
    return groups


def _score_version(version: str, loaded: tuple[Any, Any] | None, items: list[tuple]) -> tuple:
    """``(version, log lines, rows, seconds, errors)`` for one version's requests: one call for all of them; when
    that fails (one request lacks a column the shadow needs), one call per request, so that only the requests it
    cannot score go without shadow rows."""
    import pandas as pd

    from mlops_provider.serving.journal import encode_entry
    from mlops_provider.serving.payload import score

    started = time.perf_counter()
    if loaded is None:  # cannot happen: a version's model is sent before its first request
        return version, b"", 0, 0.0, len(items)
    model, fast = loaded
    scored: list[tuple[tuple, tuple[list, dict]]] = []
    errors = 0
    try:
        frame = items[0][2] if len(items) == 1 else pd.concat([i[2] for i in items], ignore_index=True)
        predictions, probabilities = score(model, frame, fast)
        start = 0
        for item in items:
            rows = len(item[2])
            part = {label: values[start : start + rows] for label, values in probabilities.items()}
            scored.append((item, (predictions[start : start + rows], part)))
            start += rows
    except Exception:
        for item in items:
            try:
                scored.append((item, score(model, item[2], fast)))
            except Exception as error:
                errors += 1
                log.warning("Shadow version %s could not score a request: %s", version, error)
    lines = b"".join(
        encode_entry(time_us, version, SHADOW, SHADOW_ALIAS, ids, predictions, probabilities)
        for (_, _, _, ids, time_us), (predictions, probabilities) in scored
    )
    rows = sum(len(answer[0]) for _, answer in scored)
    return version, lines, rows, time.perf_counter() - started, errors
