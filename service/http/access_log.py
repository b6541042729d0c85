"""The one before/after hook pair: an X-Request-ID, one JSON access line, the request metrics.

The hot path costs a few microseconds (bench/README.md): the request is resolved from its proxy
once per hook, state lives in the WSGI environ rather than `g`, IDs come from a per-process
random prefix and a counter instead of uuid4, and the line is encoded with orjson and written
with one os.write, without logging's record machinery (a line up to PIPE_BUF bytes is one atomic
write, so lines from threads and processes sharing stderr never interleave).
"""

import itertools
import os
import re
import time

import orjson
from flask import Flask, Response, request

from .metrics import EXTENSION as METRICS_EXTENSION
from .parsing import MODEL_VERSION_HEADER

HEADER = "X-Request-ID"
ENVIRON_HEADER = "HTTP_X_REQUEST_ID"
STARTED = "fashion_serve.started"  # environ keys: when the request reached the app, and its ID
REQUEST_ID = "fashion_serve.request_id"
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


def init_app(app: Flask) -> None:
    """Register the hook pair; the metrics (if set up) are observed from the same hooks."""
    metrics = app.extensions.get(METRICS_EXTENSION)

    @app.before_request
    def begin() -> None:
        environ = request.environ
        environ[STARTED] = time.perf_counter()
        given = environ.get(ENVIRON_HEADER)
        environ[REQUEST_ID] = given if given and VALID_ID.fullmatch(given) else ids.next()

    @app.after_request
    def end(response: Response) -> Response:
        # One proxy look-up instead of one per attribute; Flask types `request` as the object.
        req = request._get_current_object()  # type: ignore[attr-defined]
        environ = req.environ
        started = environ.get(STARTED)
        if started is None:  # a response built before routing (nothing to time or name)
            return response
        seconds = time.perf_counter() - started
        request_id = environ[REQUEST_ID]
        response.headers[HEADER] = request_id
        status = response.status_code
        method = environ["REQUEST_METHOD"]
        if metrics is not None:
            rule = req.url_rule
            metrics.observe_request(rule and rule.rule, method, status, seconds)
        line = {
            "ts": round(time.time(), 3),
            "request_id": request_id,
            "method": method,
            "path": req.path,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "model": response.headers.get(MODEL_VERSION_HEADER),
            "remote": environ.get("REMOTE_ADDR"),
        }
        os.write(STDERR, orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
        return response
