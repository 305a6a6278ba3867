"""The service object (follower, journal, shadow worker, metrics) and its FastAPI app.

``/predict`` runs on the event loop without a thread hop: scoring one row is CPU work of about a millisecond,
and one worker process scoring inline answers faster than one handing every request to a thread pool. The
answer is sent only after its row is in the journal (``journal.Journal.append``); shadow scoring is only queued.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from mlops_provider.core.errors import MlopsError
from mlops_provider.core.performance.log import SERVED
from mlops_provider.serving.follower import RegistryFollower
from mlops_provider.serving.journal import Journal, converter_pool, encode_entry, recover
from mlops_provider.serving.metrics import ServingMetrics
from mlops_provider.serving.payload import BadRequest, missing_features, parse_request, score
from mlops_provider.serving.shadow import ShadowScorer

log = logging.getLogger("mlops_provider.serving")


@dataclass(frozen=True)
class ServeConfig:
    model_name: str
    tracking_uri: str
    instance_id: str
    journal_dir: str
    id_columns: tuple[str, ...] = ()
    log_root: str | None = None  # None: no prediction log
    refresh_seconds: float = 5.0
    rotate_rows: int = 50_000
    rotate_seconds: float = 60.0
    shadow_queue: int = 2048


class Service:
    """Everything one ``mlops-serve`` process runs besides the HTTP server."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.metrics = ServingMetrics()
        self.follower = RegistryFollower(
            config.model_name, config.tracking_uri, refresh_seconds=config.refresh_seconds, metrics=self.metrics
        )
        self.journal: Journal | None = None
        self._pool: Any = None
        if config.log_root is not None:
            self.journal = Journal(
                config.journal_dir,
                model_name=config.model_name,
                id_columns=list(config.id_columns),
                log_root=config.log_root,
                instance_id=config.instance_id,
                rotate_rows=config.rotate_rows,
                rotate_seconds=config.rotate_seconds,
                on_logged=self._count_logged,
            )
        self.shadow = ShadowScorer(
            config.model_name,
            self.journal.append if self.journal is not None else None,
            self.metrics,
            max_queue=config.shadow_queue,
        )

    def _count_logged(self, counts: dict[str, int]) -> None:
        for role, rows in counts.items():
            self.metrics.logged_rows.labels(self.config.model_name, role).inc(rows)

    def start(self) -> None:
        """Recover a killed run's journal, then start the journal, the shadow worker and the follower (which
        loads the champion in the background: ``/health`` answers 503 until it is in)."""
        if self.journal is not None:
            for name, counts in recover(self.config.journal_dir):
                log.info("Recovered journal segment %s into the prediction log: %s", name, counts)
                self._count_logged(counts)
            self._pool = converter_pool()
            self.journal.executor = self._pool
            self.journal.open()
        self.shadow.start()
        self.follower.start()

    def stop(self) -> None:
        """The graceful shutdown: stop following, score the queued shadow work, convert the whole journal."""
        self.follower.stop()
        self.shadow.stop()
        if self.journal is not None:
            self.journal.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        log.info("mlops-serve stopped; every journaled row is in the prediction log.")


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return Response(
        json.dumps(body).encode("utf-8"), status_code=status, media_type="application/json", headers=headers
    )


def create_app(service: Service) -> Any:
    config = service.config
    model_name = config.model_name
    follower = service.follower
    metrics = service.metrics
    journal = service.journal
    shadow = service.shadow
    logging_on = journal is not None
    request_errors = metrics.errors.labels(model_name, "", "")
    served_journaled = metrics.journaled_rows.labels(model_name, SERVED)

    @asynccontextmanager
    async def lifespan(app: Any):
        service.start()
        try:
            yield
        finally:
            service.stop()

    app = FastAPI(title="mlops-serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    def not_ready() -> Any:
        detail = f"No champion of {model_name!r} is loaded yet"
        if follower.last_error:
            detail += f" (last attempt: {follower.last_error})"
        return _json(503, {"status": "loading", "detail": detail + "; retry shortly."})

    @app.post("/predict")
    async def predict(request: Request) -> Any:
        started = time.perf_counter()
        routing = follower.routing  # read once: this request uses this snapshot only
        if routing is None:
            request_errors.inc()
            return not_ready()
        body = await request.body()
        try:
            parsed = parse_request(
                body,
                id_columns=config.id_columns,
                require_ids=logging_on,
                header_key=request.headers.get("x-request-key"),
            )
        except BadRequest as error:
            request_errors.inc()
            return _json(400, {"detail": str(error)})
        model, alias = routing.route(parsed.key)
        requests, rows, latency, errors = metrics.for_route(model_name, model.version, alias)
        missing = missing_features(model.features, parsed.frame)
        if missing:
            errors.inc()
            return _json(
                400,
                {
                    "detail": f"The rows lack the input columns {missing} of {model_name} version {model.version}; "
                    f"they have {list(parsed.frame.columns)[:20]}. Send every feature the model was trained on."
                },
            )
        try:
            predictions, probabilities = score(model.model, parsed.frame, model.fast)
        except (MlopsError, ValueError, TypeError) as error:  # values the model cannot read, e.g. text for a number
            errors.inc()
            return _json(400, {"detail": f"{model_name} version {model.version} could not score the rows: {error}"})
        now_us = time.time_ns() // 1000
        if journal is not None:
            try:
                journal.append(
                    encode_entry(now_us, model.version, SERVED, alias, parsed.ids, predictions, probabilities),
                    parsed.rows,
                )
            except Exception as error:  # no answer that is not in the log
                errors.inc()
                log.error("Could not journal a served prediction: %s", error)
                return _json(503, {"detail": f"The prediction log cannot be written ({error}); nothing was answered."})
            served_journaled.inc(parsed.rows)
        if routing.shadow is not None:
            shadow.submit(routing.shadow, parsed.frame, parsed.ids, now_us)
        answer: dict[str, Any] = {"predictions": predictions}
        if probabilities:
            answer["probabilities"] = probabilities
        answer.update(model_name=model_name, model_version=model.version, alias=alias)
        requests.inc()
        rows.inc(parsed.rows)
        latency.observe(time.perf_counter() - started)
        return Response(
            json.dumps(answer).encode("utf-8"),
            media_type="application/json",
            headers={"X-Model-Version": model.version},
        )

    @app.get("/health")
    def health() -> Any:
        routing = follower.routing
        if routing is None:
            return not_ready()
        return _json(200, {"status": "ok", "model_name": model_name, "champion": routing.champion.version})

    @app.get("/version")
    def version() -> Any:
        routing = follower.routing
        return not_ready() if routing is None else _json(200, routing.describe())

    @app.post("/refresh")
    def refresh() -> Any:
        # A plain def: FastAPI runs it in a worker thread, so a slow model load never blocks the answers.
        routing = follower.refresh()
        return not_ready() if routing is None else _json(200, routing.describe())

    @app.get("/metrics")
    def prometheus() -> Any:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return app
