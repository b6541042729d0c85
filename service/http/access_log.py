"""One JSON line per request, and an X-Request-ID taken from the request or made up and returned."""

import json
import logging
import re
import sys
import time
import uuid

from flask import Flask, Response, g, request

from .parsing import MODEL_VERSION_HEADER

HEADER = "X-Request-ID"
# Bounded and log-safe: an ID that could forge log lines or bloat them is replaced, not echoed.
VALID_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")

log = logging.getLogger("fashion_serve.access")


def _configure_logger() -> None:
    """Write bare JSON lines to stderr, once per process however many apps are built."""
    if log.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # the line is complete as it is: no second copy through the root logger


def init_app(app: Flask) -> None:
    """Assign every request an ID and log it as one JSON line when the response is ready."""
    _configure_logger()

    @app.before_request
    def assign_id() -> None:
        given = request.headers.get(HEADER)
        g.request_id = given if given and VALID_ID.fullmatch(given) else uuid.uuid4().hex
        g.access_started = time.perf_counter()

    @app.after_request
    def log_request(response: Response) -> Response:
        started = g.get("access_started")
        if started is None:  # a response built before routing (nothing to time or name)
            return response
        response.headers[HEADER] = g.request_id
        if log.isEnabledFor(logging.INFO):
            # handle(makeRecord(...)) is log.info without its stack walk for the caller's file
            # and line, which this bare-message line never prints.
            line = json.dumps(
                {
                    "ts": round(time.time(), 3),
                    "request_id": g.request_id,
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    "model": response.headers.get(MODEL_VERSION_HEADER),
                    "remote": request.remote_addr,
                },
                ensure_ascii=True,
            )
            log.handle(log.makeRecord(log.name, logging.INFO, __file__, 0, line, (), None))
        return response
