"""gunicorn settings for fashion-serve, from the service's one Settings (FASHION_* variables)."""

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from service import settings as service_settings
from service.logs import logging_config

if TYPE_CHECKING:
    from gunicorn.arbiter import Arbiter
    from gunicorn.workers.base import Worker

# Read and validated once, here in the master: a bad value stops the start before any fork.
settings = service_settings.load()
bind = settings.bind
workers = settings.workers
# No preload_app: each worker imports the app after fork, so each builds its own onnxruntime
# session (sessions and their thread pools must not cross a fork).
preload_app = False
timeout = settings.timeout
graceful_timeout = 20
# One event loop per worker that buffers each request whole before the app runs it
# (service/gunicorn_worker.py): slow or silent clients hold no thread, and a request costs no
# thread hand-off (bench/README.md compares it with gthread).
# FASHION_WORKER_CLASS=gthread (with FASHION_WORKER_THREADS) brings back gunicorn's threads.
worker_class = settings.worker_class
threads = settings.worker_threads
keepalive = settings.keepalive
# The app writes one JSON line per request (service/http/access_log.py); with gthread,
# FASHION_ACCESS_LOG=- (or a file) adds gunicorn's own access log (BufferedWorker writes none).
accesslog = settings.access_log
errorlog = "-"
# gunicorn's control socket defaults to one path per user: two instances would fight over it.
control_socket_disable = True
loglevel = settings.log_level
# Every line as JSON on stderr: gunicorn's own, the service's (loads, switches, refusals).
logconfig_dict = logging_config(loglevel, gunicorn_access=accesslog is not None)

METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"
_made_metrics_dir: str | None = None  # removed at exit when this master created it


def on_starting(server: "Arbiter") -> None:
    """Say what the master serves. It must not import onnxruntime (a child forked from a process
    that loaded it aborts at exit): each worker resolves FASHION_DEVICE itself (service/wsgi.py).
    """
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
