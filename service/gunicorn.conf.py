"""gunicorn settings for fashion-serve; every value can be overridden from the environment."""

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from service.settings import Settings

if TYPE_CHECKING:
    from gunicorn.arbiter import Arbiter
    from gunicorn.workers.base import Worker

bind = os.environ.get("FASHION_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("FASHION_WORKERS", "2"))
# No preload_app: each worker imports the app after fork, so each builds its own onnxruntime
# session (sessions and their thread pools must not cross a fork).
preload_app = False
timeout = int(os.environ.get("FASHION_TIMEOUT", "30"))
graceful_timeout = 20
# gthread keeps client connections open between requests; the sync worker closes every one
# after its response, so each request paid a TCP accept and close. Measured side by side (one
# worker on one core, 8 clients, bench/README.md): median latency 0.5-0.7× the sync worker's.
# A few threads let one slow upload not stall the others; inference releases the GIL.
worker_class = "gthread"
threads = int(os.environ.get("FASHION_WORKER_THREADS", "4"))
keepalive = 5
# The app writes one JSON line per request (service/http/access_log.py); FASHION_ACCESS_LOG=-
# (or a file) adds gunicorn's own access log as well.
accesslog = os.environ.get("FASHION_ACCESS_LOG") or None
errorlog = "-"
# gunicorn's control socket defaults to one path per user: two instances would fight over it.
control_socket_disable = True
loglevel = os.environ.get("FASHION_LOG_LEVEL", "info")

METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"
_made_metrics_dir: str | None = None  # removed at exit when this master created it


def on_starting(server: "Arbiter") -> None:
    """Validate the settings once in the master, so a bad value stops the start cleanly.

    The master must not import onnxruntime: a child forked from a process that loaded it aborts
    (SIGABRT, std::system_error) when it exits. Each worker resolves FASHION_DEVICE itself and
    stops the server if it cannot be honoured (service/wsgi.py).
    """
    settings = Settings.from_env()
    server.log.info(  # type: ignore[union-attr]  # the arbiter has its log before any hook
        "fashion-serve: registry %s, default %s:%s, device %s",
        settings.model_dir.resolve(),
        settings.default_model,
        settings.default_alias,
        settings.device,
    )
    _prepare_metrics_dir(server)


def _prepare_metrics_dir(server: "Arbiter") -> None:
    """Give the workers an empty folder to share Prometheus metrics through (multiprocess mode).

    Set before any worker is forked, so every worker imports prometheus-client in that mode.
    A given folder is emptied of a previous run's files, which would otherwise add up.
    """
    global _made_metrics_dir
    given = os.environ.get(METRICS_DIR)
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
    else:
        _made_metrics_dir = tempfile.mkdtemp(prefix="fashion-serve-metrics-")
        os.environ[METRICS_DIR] = _made_metrics_dir
    server.log.info(  # type: ignore[union-attr]  # the arbiter has its log before any hook
        "fashion-serve: metrics shared through %s", os.environ[METRICS_DIR]
    )


def child_exit(server: "Arbiter", worker: "Worker") -> None:
    """Drop an exited worker's live gauges (the alias versions) from the shared metrics."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: "Arbiter") -> None:
    """Remove the metrics folder this master made."""
    if _made_metrics_dir:
        shutil.rmtree(_made_metrics_dir, ignore_errors=True)
