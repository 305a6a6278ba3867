"""The service's Prometheus metrics, in a registry of its own (the process-global one would mix in whatever else
the process imports, and two services in one test process would clash)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Single-row scoring takes about a millisecond: the buckets resolve that, and the tail up to seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class ServingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("model", "version", "alias")
        self.requests = Counter("mlops_serve_requests", "Answered prediction requests.", labels, registry=self.registry)
        self.errors = Counter(
            "mlops_serve_errors",
            "Prediction requests refused (400) or failed; version and alias are empty when no model was chosen.",
            labels,
            registry=self.registry,
        )
        self.latency = Histogram(
            "mlops_serve_request_latency_seconds",
            "Time from reading a prediction request to its answer, inside the service.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rows = Counter("mlops_serve_rows", "Rows answered.", labels, registry=self.registry)
        self.batch_rows = Histogram(
            "mlops_serve_batch_rows",
            "Rows per scoring batch of /predict (requests that arrived while the previous batch was scored).",
            ("model",),
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.shadow_latency = Histogram(
            "mlops_serve_shadow_latency_seconds",
            "Time the shadow version took to score one batch of queued requests (off the response path).",
            ("model", "version"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.shadow_dropped = Counter(
            "mlops_serve_shadow_dropped",
            "Requests the shadow version did not score because its queue was full (answers are never slowed).",
            ("model",),
            registry=self.registry,
        )
        self.swaps = Counter(
            "mlops_serve_model_swaps",
            "Routing changes: a new version swapped in for an alias (or an alias dropped).",
            ("model", "alias"),
            registry=self.registry,
        )
        self.refresh_errors = Counter(
            "mlops_serve_refresh_errors", "Registry refreshes that failed.", ("model",), registry=self.registry
        )
        self.canary_share = Gauge(
            "mlops_serve_canary_share", "The canary's share of request keys now.", ("model",), registry=self.registry
        )
        self.journaled_rows = Counter(
            "mlops_serve_journaled_rows",
            "Rows written to the journal (durable).",
            ("model", "role"),
            registry=self.registry,
        )
        self.logged_rows = Counter(
            "mlops_serve_logged_rows",
            "Rows written into prediction log files.",
            ("model", "role"),
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, str], tuple] = {}

    def for_route(self, model: str, version: str, alias: str) -> tuple:
        """The (requests, rows, latency, errors) children of one route, cached: ``labels()`` costs a lock and a
        dict lookup per call, and this is on every request."""
        key = (model, version, alias)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(*key),
                self.rows.labels(*key),
                self.latency.labels(*key),
                self.errors.labels(*key),
            )
            self._children[key] = children
        return children

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
