"""Shadow scoring off the response path: a bounded queue and one worker thread.

A request only enqueues its frame (a few microseconds); the worker waits a moment for more to queue up, then
scores everything queued in one call per shadow version, since a batch of fifty rows costs scikit-learn about
what one row costs. When the queue is full the request's shadow work is dropped and counted
(``mlops_serve_shadow_dropped_total``): shadow evidence may thin out under overload, the answers never slow down.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from mlops_provider.core.performance.log import SHADOW
from mlops_provider.core.tags import SHADOW_ALIAS
from mlops_provider.serving.payload import limit_native_threads, score
from mlops_provider.serving.routing import LoadedModel

log = logging.getLogger("mlops_provider.serving")

Item = tuple[LoadedModel, Any, dict, int]  # (shadow model, frame, ids, prediction time in epoch µs)


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
        self.model_name = model_name
        self.write = write
        self.metrics = metrics
        self.max_batch = max_batch
        self.linger_seconds = linger_seconds
        self._queue: queue.Queue[Item | None] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._run, name="mlops-serve-shadow", daemon=True)
        self._dropped = metrics.shadow_dropped.labels(model_name)

    def start(self) -> None:
        self._thread.start()

    def submit(self, model: LoadedModel, frame: Any, ids: dict, time_us: int) -> None:
        try:
            self._queue.put_nowait((model, frame, ids, time_us))
        except queue.Full:
            self._dropped.inc()

    def stop(self, timeout: float = 30.0) -> None:
        """Score what is queued, then stop (the graceful shutdown, before the journal's last flush)."""
        self._queue.put(None)
        self._thread.join(timeout=timeout)

    def _run(self) -> None:
        stopping, limited = False, set()
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            if id(first[0]) not in limited:  # a new shadow model: see payload.limit_native_threads
                limit_native_threads()
                limited.add(id(first[0]))
            time.sleep(self.linger_seconds)  # let a batch gather; the GIL is free meanwhile
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            try:
                self._score(batch)
            except Exception:  # the worker must outlive any one batch
                log.exception("Shadow scoring of %d requests failed", len(batch))

    def _score(self, batch: list[Item]) -> None:
        groups: dict[int, list[Item]] = {}
        for item in batch:
            groups.setdefault(id(item[0]), []).append(item)
        for items in groups.values():
            model = items[0][0]
            started = time.perf_counter()
            results = self._score_group(model, items)
            self.metrics.shadow_latency.labels(self.model_name, model.version).observe(time.perf_counter() - started)
            if self.write is None or not results:
                continue
            from mlops_provider.serving.journal import encode_entry

            lines = [
                encode_entry(time_us, model.version, SHADOW, SHADOW_ALIAS, ids, predictions, probabilities)
                for (_, _, ids, time_us), (predictions, probabilities) in results
            ]
            self.write(b"".join(lines), sum(len(r[1][0]) for r in results))
            self.metrics.journaled_rows.labels(self.model_name, SHADOW).inc(sum(len(r[1][0]) for r in results))

    def _score_group(self, model: LoadedModel, items: list[Item]) -> list[tuple[Item, tuple[list, dict]]]:
        """One call for the whole group; when that fails (one request lacks a column the shadow needs), one
        call per request, so that only the requests it cannot score go without shadow rows."""
        import pandas as pd

        try:
            frame = items[0][1] if len(items) == 1 else pd.concat([i[1] for i in items], ignore_index=True)
            predictions, probabilities = score(model.model, frame, model.fast)
        except Exception:
            results = []
            for item in items:
                try:
                    results.append((item, score(model.model, item[1], model.fast)))
                except Exception as error:
                    self.metrics.errors.labels(self.model_name, model.version, SHADOW_ALIAS).inc()
                    log.warning("Shadow version %s could not score a request: %s", model.version, error)
            return results
        results, start = [], 0
        for item in items:
            rows = len(item[1])
            part = {label: values[start : start + rows] for label, values in probabilities.items()}
            results.append((item, (predictions[start : start + rows], part)))
            start += rows
        return results
