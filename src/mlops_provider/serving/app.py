"""The service object (follower, journal, shadow worker, batcher, metrics) and its FastAPI app.

``/predict`` parses and routes a request on the event loop, then hands it to the ``batching.Batcher``: its one
thread scores everything pending together (no linger: a lone request is scored at once) while the loop keeps
reading requests. The answer is sent only after its row is in the journal (the batcher appends the whole batch
before resolving any request); shadow scoring is only queued.
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

from mlops_provider.serving.batching import Batcher, Refused
from mlops_provider.serving.follower import RegistryFollower
from mlops_provider.serving.journal import Journal, converter_pool, recover
from mlops_provider.serving.metrics import ServingMetrics
from mlops_provider.serving.payload import BadRequest, missing_features, parse_request
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
    max_batch_rows: int = 256


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
            id_columns=config.id_columns,
            max_queue=config.shadow_queue,
        )
        self.batcher = Batcher(
            config.model_name,
            journal=self.journal,
            shadow_submit=self.shadow.submit,
            metrics=self.metrics,
            max_rows=config.max_batch_rows,
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
        self.batcher.start()
        self.follower.start()

    def stop(self) -> None:
        """The graceful shutdown: stop following, score what is pending and the queued shadow work, convert the
        whole journal."""
        self.follower.stop()
        self.batcher.stop()
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
    batcher = service.batcher
    logging_on = service.journal is not None
    request_errors = metrics.errors.labels(model_name, "", "")

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
            outcome = await batcher.submit(model, alias, parsed, routing.shadow)
        except Exception:  # not the request's fault: a 500, counted
            errors.inc()
            raise
        if isinstance(outcome, Refused):
            errors.inc()
            return _json(outcome.status, {"detail": outcome.detail})
        predictions, probabilities = outcome.predictions, outcome.probabilities
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
