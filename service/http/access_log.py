"""The request wrapper: an X-Request-ID, one JSON access line, the request metrics.

A WSGI middleware rather than Flask's before/after hooks: fewer calls per request. It runs when
the app starts its response, still inside Flask's request context, and writes each line with one
os.write (atomic up to PIPE_BUF), so lines from processes sharing stderr never interleave.
"""

import itertools
import os
import re
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask, request

from .json_provider import encode
from .metrics import EXTENSION as METRICS_EXTENSION
from .predict import MODEL_VERSION_HEADER, REQUEST_ID_KEY

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from .metrics import Metrics

HEADER = "X-Request-ID"
ENVIRON_HEADER = "HTTP_X_REQUEST_ID"
# Bounded and log-safe: an ID that could forge log lines or bloat them is replaced, not echoed.
VALID_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")
STDERR = 2


class RequestIds:
    """32 hex digits: a random per-process prefix and a counter (unique, cheaper than uuid4)."""

    def __init__(self) -> None:
        self.reset()
        # A forked worker must not repeat its parent's IDs.
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count(1)

    def next(self) -> str:
        """A fresh ID."""
        return f"{self.prefix}{next(self.counter):016x}"


ids = RequestIds()


class AccessLog:
    """WSGI middleware: time the request, tag it with an ID, log it and count it."""

    def __init__(self, app: "WSGIApplication", metrics: "Metrics | None") -> None:
        self.app, self.metrics = app, metrics

    def __call__(
        self, environ: "WSGIEnvironment", start_response: "StartResponse"
    ) -> Iterable[bytes]:
        started = time.perf_counter()
        given = environ.get(ENVIRON_HEADER)
        request_id = given if given and VALID_ID.fullmatch(given) else ids.next()
        environ[REQUEST_ID_KEY] = request_id  # for the routes that remember it

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seconds = time.perf_counter() - started
            model = None
            for key, value in headers:  # the answering version, as the response names it
                if key == MODEL_VERSION_HEADER:
                    model = value
                    break
            headers.append((HEADER, request_id))
            self.finished(environ, request_id, int(status[:3]), seconds, model)
            return start_response(status, headers, exc_info)

        return self.app(environ, start)

    def finished(
        self,
        environ: "WSGIEnvironment",
        request_id: str,
        status: int,
        seconds: float,
        model: str | None,
    ) -> None:
        """Count the request and write its access line (its response is about to start)."""
        method = environ["REQUEST_METHOD"]
        # Resolved once: every attribute read through Flask's proxy would resolve it again.
        current = request._get_current_object()  # type: ignore[attr-defined]  # Flask types the proxy as a Request
        if self.metrics is not None:
            rule = current.url_rule
            endpoint = rule.rule if rule is not None else None
            self.metrics.observe_request(endpoint, method, status, seconds)
        line = {
            "ts": round(time.time(), 3),
            "request_id": request_id,
            "method": method,
            "path": current.path,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "model": model,
            "remote": environ.get("REMOTE_ADDR"),
        }
        os.write(STDERR, encode(line))


def init_app(app: Flask) -> None:
    """Wrap the app; the metrics (if set up) are observed from the same wrapper."""
    wrapped: Callable[..., Iterable[bytes]] = app.wsgi_app
    app.wsgi_app = AccessLog(wrapped, app.extensions.get(METRICS_EXTENSION))  # type: ignore[method-assign]
