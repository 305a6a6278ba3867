"""Adaptive micro-batching of ``/predict``: one scikit-learn call for every request that arrived meanwhile.

A scikit-learn call on N rows costs about what it costs on one row (validation and per-call overhead dominate),
so under concurrent load the service scores requests together. There is no linger: the batcher thread takes
everything pending (up to ``max_rows`` rows, at least one request) the moment the previous batch is done, so a
lone request is scored at once, and requests that arrive while a batch is being scored wait for the next one. At
most one batch is in flight per process; scoring runs on this one thread, so the event loop keeps accepting and
parsing requests meanwhile.

Per batch: requests are grouped by the model they were routed to (each request was routed by its own key, from
the one routing snapshot it read: champion and canary rows never share a call) and by their columns' names and
dtypes (so concatenating never changes a request's values); each group is scored in one
``payload.score`` call on the concatenated frames and the answers are split back per request, in order. When the
batched call raises, the group's requests are scored one by one, so only a request the model cannot read gets
its 400. Then the whole batch's served rows are journaled with one ``Journal.append`` (one line per request, so
the log is the same as unbatched) *before* any of its futures is resolved: an acknowledged answer is logged.
Shadow work is queued per request, as before.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlops_provider.core.errors import MlopsError
from mlops_provider.core.performance.log import SERVED
from mlops_provider.serving.journal import Journal, encode_entry
from mlops_provider.serving.payload import ParsedRequest, limit_native_threads, score
from mlops_provider.serving.routing import LoadedModel

log = logging.getLogger("mlops_provider.serving")

MAX_ROWS = 256


@dataclass(frozen=True)
class Scored:
    """A request's answer: its predictions and class probabilities (``{class: [...]}``, empty for regressors)."""

    predictions: list[Any]
    probabilities: dict[str, list[Any]]


@dataclass(frozen=True)
class Refused:
    """A request that gets no answer: its HTTP status (400: the model cannot read its rows; 503: the journal
    cannot be written) and the detail."""

    status: int
    detail: str


Outcome = Scored | Refused


@dataclass(eq=False)
class Pending:
    model: LoadedModel
    alias: str
    parsed: ParsedRequest
    shadow: LoadedModel | None
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future


class Batcher:
    """Collects routed requests from the event loop and scores them in batches on its own thread."""

    def __init__(
        self,
        model_name: str,
        *,
        journal: Journal | None,
        shadow_submit: Callable[[LoadedModel, bytes, int], None],
        metrics: Any,
        max_rows: int = MAX_ROWS,
    ) -> None:
        self.model_name = model_name
        self.journal = journal
        self.shadow_submit = shadow_submit
        self.max_rows = max_rows
        self._metrics = metrics
        self._batch_rows = metrics.batch_rows.labels(model_name)
        self._journaled = metrics.journaled_rows.labels(model_name, SERVED)
        self._pending: deque[Pending] = deque()
        self._condition = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="mlops-serve-batcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Score what is pending, then stop (the graceful shutdown, before the shadow worker and the journal)."""
        with self._condition:
            self._stopping = True
            self._condition.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    def submit(
        self, model: LoadedModel, alias: str, parsed: ParsedRequest, shadow: LoadedModel | None
    ) -> asyncio.Future:
        """Queue one routed request (from the event loop); the future resolves to its ``Outcome`` once its rows
        are scored and journaled, or to the exception that scoring it raised (a 500, as unbatched)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        item = Pending(model, alias, parsed, shadow, loop, future)
        with self._condition:
            if self._stopping:
                raise RuntimeError("the service is shutting down")
            self._pending.append(item)
            self._condition.notify()
        return future

    # -- the batcher thread -------------------------------------------------------------------------------------

    def _take(self) -> list[Pending]:
        """Everything pending up to ``max_rows`` rows (at least one request, however large); under the lock."""
        batch = [self._pending.popleft()]
        rows = batch[0].parsed.rows
        while self._pending and rows + self._pending[0].parsed.rows <= self.max_rows:
            item = self._pending.popleft()
            rows += item.parsed.rows
            batch.append(item)
        return batch

    def _run(self) -> None:
        limited: set[int] = set()  # the models whose native libraries are loaded and limited
        while True:
            with self._condition:
                while not self._pending and not self._stopping:
                    self._condition.wait()
                if not self._pending:
                    return
                batch = self._take()
            if any(id(item.model) not in limited for item in batch):
                # a model seen for the first time: the OpenMP runtime it uses is loaded by now
                limit_native_threads()
                limited.update(id(item.model) for item in batch)
            try:
                results: list[Any] = self.process(batch)
            except BaseException as error:  # the thread must outlive any one batch; each request gets the error
                log.exception("Scoring a batch of %d requests failed", len(batch))
                results = [error] * len(batch)
            self._batch_rows.observe(sum(item.parsed.rows for item in batch))
            _deliver(batch, results)

    def process(self, batch: list[Pending]) -> list[Outcome | BaseException]:
        """Score, journal (one append) and queue the shadow work of ``batch``; one result per request, in order."""
        results: list[Outcome | BaseException] = [Refused(500, "not scored")] * len(batch)
        groups: dict[tuple, list[int]] = {(): [0]}  # a lone request: no key to compute
        if len(batch) > 1:
            groups = {}
            for index, item in enumerate(batch):
                groups.setdefault(_group_key(item), []).append(index)
        for indices in groups.values():
            for index, result in zip(indices, self._score_group([batch[i] for i in indices]), strict=True):
                results[index] = result
        now_us = time.time_ns() // 1000
        served = [(item, result) for item, result in zip(batch, results, strict=True) if isinstance(result, Scored)]
        if self.journal is not None and served:
            lines = [
                encode_entry(
                    now_us, item.model.version, SERVED, item.alias, item.parsed.ids, r.predictions, r.probabilities
                )
                for item, r in served
            ]
            rows = sum(item.parsed.rows for item, _ in served)
            try:
                self.journal.append(b"".join(lines), rows)
            except Exception as error:  # no answer that is not in the log
                log.error("Could not journal %d served predictions: %s", len(served), error)
                refused = Refused(503, f"The prediction log cannot be written ({error}); nothing was answered.")
                return [refused if isinstance(result, Scored) else result for result in results]
            self._journaled.inc(rows)
        for item, _ in served:
            if item.shadow is not None:
                self.shadow_submit(item.shadow, item.parsed.body, now_us)
        return results

    def _score_group(self, items: list[Pending]) -> list[Outcome | BaseException]:
        """One ``score`` call for requests routed to one model; one call per request when that one raises."""
        if len(items) == 1:
            return [self._score_one(items[0])]
        import pandas as pd

        model = items[0].model
        try:
            frame = pd.concat([item.parsed.frame for item in items], ignore_index=True)
            predictions, probabilities = score(model.model, frame, model.fast)
        except Exception:  # some request the model cannot read: find it, answer the others
            return [self._score_one(item) for item in items]
        results: list[Outcome | BaseException] = []
        start = 0
        for item in items:
            end = start + item.parsed.rows
            part = {label: values[start:end] for label, values in probabilities.items()}
            results.append(Scored(predictions[start:end], part))
            start = end
        return results

    def _score_one(self, item: Pending) -> Outcome | BaseException:
        model = item.model
        try:
            predictions, probabilities = score(model.model, item.parsed.frame, model.fast)
        except (MlopsError, ValueError, TypeError) as error:  # values the model cannot read, e.g. text for a number
            return Refused(400, f"{self.model_name} version {model.version} could not score the rows: {error}")
        except Exception as error:  # anything else is the service's fault: a 500, as unbatched
            return error
        return Scored(predictions, probabilities)


def _group_key(item: Pending) -> tuple:
    """Requests scored in one call: routed to the same model, with the same columns of the same dtypes, so the
    concatenated frame holds each request's values exactly as its own frame does (no int column turned float or
    object by another request's values) and every step sees what it would see for the request alone."""
    frame = item.parsed.frame
    return (id(item.model), tuple(frame.columns), tuple(frame.dtypes))


def _deliver(batch: list[Pending], results: list[Any]) -> None:
    """Hand the results to the requests' event loop (one wake-up per loop and batch)."""
    by_loop: dict[int, tuple[asyncio.AbstractEventLoop, list[tuple[Pending, Any]]]] = {}
    for item, result in zip(batch, results, strict=True):
        by_loop.setdefault(id(item.loop), (item.loop, []))[1].append((item, result))
    for loop, pairs in by_loop.values():
        try:
            loop.call_soon_threadsafe(_resolve, pairs)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass


def _resolve(pairs: list[tuple[Pending, Any]]) -> None:
    for item, result in pairs:
        if item.future.done():  # the request was cancelled (client gone)
            continue
        if isinstance(result, BaseException):
            item.future.set_exception(result)
        else:
            item.future.set_result(result)
