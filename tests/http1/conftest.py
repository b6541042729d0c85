"""The real service under real gunicorn for the HTTP/1.1 conformance and abuse suite.

FASHION_WORKER_CLASS=gthread runs the same suite against gunicorn's stock threaded worker, for
comparison (bench/README.md lists which cases each worker passes).
"""

import os

import pytest

from tests.conftest import tiny_registry
from tests.e2e.server import GunicornServer
from tests.images import dark_images, png

LIMIT = 1024 * 1024  # FASHION_MAX_UPLOAD_BYTES for these servers
WORKER = os.environ.get("FASHION_WORKER_CLASS", "service.gunicorn_worker.BufferedWorker")


def start(tmp, workers: int = 1, command: list[str] | None = None, **env: str) -> GunicornServer:
    """A started server over a tiny registry (stop it, or use it as a context manager)."""
    registry = tiny_registry(tmp)
    return GunicornServer(
        registry.root,
        tmp / "server.log",
        workers=workers,
        command=command,
        FASHION_MAX_UPLOAD_BYTES=str(LIMIT),
        FASHION_WORKER_CLASS=WORKER,
        **env,
    ).start()


@pytest.fixture(scope="package")
def server(tmp_path_factory):
    running = start(tmp_path_factory.mktemp("http1"))
    yield running
    running.stop()


@pytest.fixture(scope="package")
def image() -> bytes:
    return png(dark_images(1)[0])
