"""Slow and silent clients cannot starve normal requests (real gunicorn, `make serve`'s config)."""

import socket
import threading
import time

import pytest
import requests

from tests.conftest import tiny_registry
from tests.e2e.server import GunicornServer
from tests.images import dark_images, png

pytestmark = pytest.mark.slow
SILENT, DRIPPERS = 100, 16  # per worker that is many times the old pool of 4 threads
NORMAL = 40


def test_normal_requests_succeed_while_slow_and_silent_connections_are_open(tmp_path):
    registry = tiny_registry(tmp_path)
    image = png(dark_images(1)[0])
    with GunicornServer(registry.root, tmp_path / "server.log", workers=1) as server:
        address = ("127.0.0.1", server.port)
        silent = [socket.create_connection(address, timeout=5) for _ in range(SILENT)]
        drippers = [socket.create_connection(address, timeout=5) for _ in range(DRIPPERS)]
        stop = threading.Event()

        def drip() -> None:
            request = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            for position in range(len(request)):
                for sock in drippers:
                    sock.send(request[position : position + 1])
                if stop.wait(0.2):
                    return

        dripping = threading.Thread(target=drip, daemon=True)
        dripping.start()
        try:
            started = time.monotonic()
            with requests.Session() as http:
                statuses = [
                    http.post(
                        f"{server.url}/predict",
                        data=image,
                        headers={"Content-Type": "image/png"},
                        timeout=5,
                    ).status_code
                    for _ in range(NORMAL)
                ]
                # A fresh connection per request too: accepting must not wait behind the others.
                fresh = [
                    requests.get(f"{server.url}/readyz", timeout=5).status_code for _ in range(5)
                ]
            elapsed = time.monotonic() - started
        finally:
            stop.set()
            dripping.join(timeout=5)
            for sock in silent + drippers:
                sock.close()
    assert statuses == [200] * NORMAL
    assert fresh == [200] * 5
    assert elapsed < 20, f"{NORMAL + 5} requests took {elapsed:.1f} s"
