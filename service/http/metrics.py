"""Prometheus metrics at /metrics: requests, latency, classified images, model loads, aliases
and payload capture.

Under gunicorn (PROMETHEUS_MULTIPROC_DIR set by gunicorn.conf.py) a scrape of any worker adds
up all of them through prometheus-client's multiprocess files; without it, one process's own.
"""

import os
from collections.abc import Callable

import numpy as np
from flask import Blueprint, Flask, Response, current_app
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from service.contract import CLASS_NAMES
from service.events import Observer

from . import spec
from .current import EXTENSION as CORE_EXTENSION

EXTENSION = "fashion_serve.metrics"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Single-image requests take ~1 ms; batches and cold loads take longer.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
LOAD_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UNMATCHED = "<unmatched>"  # every unknown path shares one label value: bounded cardinality
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"))

bp = Blueprint("metrics", __name__)


class Metrics(Observer):
    """The service's metric families, registered on one registry, fed by requests and the core."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "fashion_http_requests",
            "HTTP requests answered, by route (the URL rule, not the raw path), method and status.",
            ("endpoint", "method", "status"),
            registry=registry,
        )
        self.latency = Histogram(
            "fashion_http_request_duration_seconds",
            "Time from the request reaching the app to its response, by route, method and status.",
            ("endpoint", "method", "status"),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.images = Counter(
            "fashion_images_classified",
            "Images classified, by model and predicted class.",
            ("model", "label"),
            registry=registry,
        )
        # An image judged not in distribution (issue 21) by a version that judges its inputs.
        self.flagged = Counter(
            "fashion_predictions_flagged",
            "Predictions judged not in distribution (not clothing), by model and version.",
            ("model", "version"),
            registry=registry,
        )
        # Which version answered: under a canary, the candidate's share of an alias's images.
        self.version_images = Counter(
            "fashion_version_images_classified",
            "Images classified, by model and the version that answered.",
            ("model", "version"),
            registry=registry,
        )
        # Payload capture (opt-in): what it kept, and what it dropped and why.
        self.captured = Counter(
            "fashion_capture_images",
            "Images written by payload capture (FASHION_CAPTURE_RATE), by model.",
            ("model",),
            registry=registry,
        )
        self.capture_dropped = Counter(
            "fashion_capture_dropped_images",
            "Captured images deleted (age: past FASHION_CAPTURE_KEEP; size: over"
            " FASHION_CAPTURE_MAX_BYTES) or sampled but not written (batch: past one file;"
            " unwritable: the registry).",
            ("reason",),
            registry=registry,
        )
        self.loads = Counter(
            "fashion_model_loads",
            "Model versions loaded, verified and warmed up.",
            ("model",),
            registry=registry,
        )
        self.load_seconds = Histogram(
            "fashion_model_load_duration_seconds",
            "Time to read, verify, load and warm up one model version.",
            ("model",),
            buckets=LOAD_BUCKETS,
            registry=registry,
        )
        self.refusals = Counter(
            "fashion_model_refusals",
            "Alias targets refused (missing, corrupt, unloadable); the previous version serves on.",
            ("model", "alias"),
            registry=registry,
        )
        # Across workers the most recent switch wins, and an exited worker's value goes away.
        self.alias_version = Gauge(
            "fashion_alias_version",
            "The model version each alias serves.",
            ("model", "alias"),
            multiprocess_mode="livemostrecent",
            registry=registry,
        )
        # 1 while any live worker answers for the alias with a version other than its verified
        # target (refused: corrupt, missing, unloadable), so an alert can fire on it.
        self.degraded = Gauge(
            "fashion_alias_degraded",
            "1 while an alias's target is refused and another verified version answers.",
            ("model", "alias"),
            multiprocess_mode="livemax",
            registry=registry,
        )
        # labels() validates and locks on every call; the label sets are few, so their children
        # are looked up once and kept (a measurable share of a single-image request).
        self._request_children: dict[tuple[str | None, str, int], tuple[Counter, Histogram]] = {}
        self._image_children: dict[tuple[str, int], Counter] = {}
        self._version_children: dict[tuple[str, int], Counter] = {}
        # Gauges read from shared files (live accuracy, drift) are set just before a scrape.
        self.before_scrape: list[Callable[[], None]] = []

    def version_gauges(self, *described: tuple[str, str]) -> list[Gauge]:
        """Gauges per (model, version) read from shared files: any live worker's latest wins."""
        return [
            Gauge(name, documentation, ("model", "version"), multiprocess_mode="livemostrecent",
                  registry=self.registry)
            for name, documentation in described
        ]  # fmt: skip

    def on_load(self, name: str, version: int, seconds: float) -> None:
        self.loads.labels(name).inc()
        self.load_seconds.labels(name).observe(seconds)

    def on_switch(self, name: str, alias: str, version: int) -> None:
        self.alias_version.labels(name, alias).set(version)

    def on_refusal(self, name: str, alias: str, version: int | None, reason: str) -> None:
        self.refusals.labels(name, alias).inc()

    def on_degraded(self, name: str, alias: str, degraded: bool) -> None:
        self.degraded.labels(name, alias).set(1 if degraded else 0)

    def on_result(self, name: str, version: int, classes: np.ndarray) -> None:
        self._version_child(name, version).inc(len(classes))
        if len(classes) == 1:  # the common case, without bincount's array round trip
            self._image_child(name, int(classes[0])).inc()
            return
        counts = np.bincount(classes, minlength=len(CLASS_NAMES)).tolist()
        for class_id, count in enumerate(counts):
            if count:
                self._image_child(name, class_id).inc(count)

    def on_flagged(self, name: str, version: int, count: int) -> None:
        self.flagged.labels(name, str(version)).inc(count)

    def on_captured(self, name: str, images: int) -> None:
        self.captured.labels(name).inc(images)

    def on_capture_dropped(self, reason: str, images: int) -> None:
        self.capture_dropped.labels(reason).inc(images)

    def _version_child(self, name: str, version: int) -> Counter:
        child = self._version_children.get((name, version))
        if child is None:
            child = self.version_images.labels(name, str(version))
            self._version_children[(name, version)] = child
        return child

    def _image_child(self, name: str, class_id: int) -> Counter:
        child = self._image_children.get((name, class_id))
        if child is None:
            child = self.images.labels(name, CLASS_NAMES[class_id])
            self._image_children[(name, class_id)] = child
        return child

    def observe_request(self, rule: str | None, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency (rule None: no route matched)."""
        key = (rule, method if method in METHODS else "OTHER", status)
        children = self._request_children.get(key)
        if children is None:
            labels = (rule or UNMATCHED, key[1], str(status))
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def exposition(self) -> bytes:
        """The text format of every worker's metrics (multiprocess mode) or this process's."""
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


def init_app(app: Flask) -> None:
    """Create this app's metrics and observe the core's events.

    Requests are counted and timed by access_log's WSGI wrapper, which also writes the log.
    """
    metrics = Metrics(CollectorRegistry())
    app.extensions[EXTENSION] = metrics
    app.extensions[CORE_EXTENSION].observers.append(metrics)
    app.extensions[CORE_EXTENSION].capture.observers.append(metrics)


@bp.get("/metrics")
def metrics_endpoint() -> Response:
    """Prometheus text exposition format."""
    metrics: Metrics = current_app.extensions[EXTENSION]
    for update in metrics.before_scrape:
        update()
    body = metrics.exposition()
    return Response(body, content_type=CONTENT_TYPE_LATEST)


PATHS: spec.Paths = {
    "/metrics": {
        "get": {
            "tags": ["operations"],
            "summary": "Prometheus metrics (text exposition format), summed over all workers.",
            "responses": {
                "200": spec.ok("Prometheus text format 0.0.4.", spec.STRING, "text/plain")
            },
        }
    }
}
