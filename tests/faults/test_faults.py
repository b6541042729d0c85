"""Faults injected into a real registry under real gunicorn processes, as issue 12 reproduced them.

Each scenario asserts on every answer: no 5xx, and each answer names a version that verifies.
Bounded in time (FAULT_SECONDS) and loopback only.
"""

import gzip
import os
import shutil
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from service.registry import Registry
from tests.conftest import MODEL
from tests.e2e.server import GunicornServer
from tests.images import dark_images, png
from tests.shipped import copy_shipped
from tests.waiting import wait_for

pytestmark = pytest.mark.slow
FAULT_SECONDS = float(os.environ.get("FASHION_FAULT_SECONDS", "20"))
KILL_EVERY = 2.0
ATTEMPTS = 3  # per request, against connections cut by a kill
ADMIN_TOKEN = "fault-token"


def workers(server: GunicornServer) -> list[int]:
    """The pids of the gunicorn master's worker processes (children of the server we started)."""
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


class Load:
    """Clients posting one image in a loop; every answer (or failure) is recorded."""

    def __init__(self, url: str, clients: int = 4) -> None:
        self.url = url
        self.image = png(dark_images(1)[0])
        self.statuses: Counter[int] = Counter()
        self.versions: Counter[str] = Counter()
        self.retried = 0
        self.lost: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client) for _ in range(clients)]

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _client(self) -> None:
        http = requests.Session()
        while not self._stop.is_set():
            response = None
            # A worker killed mid-request drops its connection: that is no answer (no status,
            # nothing wrong said), so the client asks again, as any client behind a load
            # balancer would; the master's other worker or its replacement answers.
            for attempt in range(ATTEMPTS):
                try:
                    response = http.post(
                        f"{self.url}/predict", files={"image": self.image}, timeout=30
                    )
                    break
                except requests.RequestException as error:
                    self.retried += 1
                    http.close()
                    http = requests.Session()
                    if attempt == ATTEMPTS - 1:
                        self.lost.append(repr(error)[:200])
            if response is not None:
                self.statuses[response.status_code] += 1
                self.versions[response.headers.get("X-Model-Version", "")] += 1
        http.close()


def broken_production(tmp_path: Path, fault: str) -> Registry:
    """production moved 1 → 2 (both verified), then version 2 broke on disk."""
    root = tmp_path / "models"
    copy_shipped(root)
    registry = Registry(root)
    first = registry.resolve(MODEL)
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(registry.model_path(MODEL, first).read_bytes())
    second = registry.register(MODEL, copy, registry.card(MODEL, first))
    registry.set_alias(MODEL, "production", second)
    if fault == "corrupt":
        path = registry.model_path(MODEL, second)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        shutil.rmtree(registry.version_dir(MODEL, second))
    return registry


@pytest.mark.parametrize("fault", ["corrupt", "missing"])
def test_workers_killed_under_load_with_a_broken_target_lose_no_answer(tmp_path, fault):
    """Issue 12.1 and its "done when": 0 × 5xx, every answer from a verified version."""
    registry = broken_production(tmp_path, fault)
    first = registry.alias_history(MODEL)["production"][-1]
    server = GunicornServer(registry.root, tmp_path / "log", workers=2)
    with server, Load(server.url) as load:
        kills = 0
        started = time.monotonic()
        while time.monotonic() - started < FAULT_SECONDS:
            time.sleep(KILL_EVERY)  # the fault's own rhythm, not a wait for a condition
            os.kill(workers(server)[0], signal.SIGKILL)
            kills += 1
        ready = requests.get(f"{server.url}/readyz", timeout=10)
    assert kills >= FAULT_SECONDS // KILL_EVERY - 1
    assert sum(load.statuses.values()) > 100
    assert set(load.statuses) == {200}, load.statuses
    assert load.lost == []
    assert set(load.versions) == {f"{MODEL}:{first}"}
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    # One refusal line per worker start, not one per request (1,888 lines in 5 s before).
    refusals = server.log().count("refused fashion-mnist v")
    assert 1 <= refusals <= kills + 2, refusals
    print(f"\n{fault}: {dict(load.statuses)} over {kills} kills, {load.retried} retried")


def test_a_full_restart_with_a_bad_aliases_file_serves_the_last_good_version(tmp_path):
    registry = broken_production(tmp_path, "missing")
    first = registry.alias_history(MODEL)["production"][-1]
    (registry.root / MODEL / "aliases.json").write_text('{"production": ')
    with GunicornServer(registry.root, tmp_path / "log", workers=2) as server:
        for _ in range(20):
            response = requests.post(
                f"{server.url}/predict", files={"image": png(dark_images(1)[0])}, timeout=30
            )
            assert response.status_code == 200, response.text
            assert response.json()["model"]["version"] == first
        ready = requests.get(f"{server.url}/readyz", timeout=10).json()
        assert ready["status"] == "degraded"
        assert "corrupt JSON in fashion-mnist/aliases.json" in ready["refused"][0]["reason"]
        assert str(registry.root) not in str(ready)


def test_rollback_over_http_when_the_target_is_missing(tmp_path):
    """Issue 12.2: DELETE answered 404 and /readyz stayed green with nothing refused."""
    registry = broken_production(tmp_path, "missing")
    first = registry.alias_history(MODEL)["production"][-1]
    with GunicornServer(
        registry.root, tmp_path / "log", workers=1, FASHION_ADMIN_TOKEN=ADMIN_TOKEN
    ) as server:
        assert requests.get(f"{server.url}/readyz", timeout=10).json()["status"] == "degraded"
        response = requests.delete(
            f"{server.url}/models/{MODEL}/aliases/production",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert response.json()["version"] == first
        wait_for(
            lambda: requests.get(f"{server.url}/readyz", timeout=10).json()["status"] == "ready",
            "the rolled-back alias to serve its target",
            timeout=10,
        )


def test_hostile_bodies_get_413_and_the_service_keeps_serving(tmp_path):
    """Issue 12.3 and 12.6 over real HTTP: gzip bombs and chunked floods."""
    registry = broken_production(tmp_path, "corrupt")
    limit = 1 << 20
    with GunicornServer(
        registry.root, tmp_path / "log", workers=1, FASHION_MAX_UPLOAD_BYTES=str(limit)
    ) as server:
        infer = f"{server.url}/v2/models/{MODEL}/infer"
        bomb = gzip.compress(b"0," * (32 * limit), 9)
        response = requests.post(infer, data=bomb, headers={"Content-Encoding": "gzip"}, timeout=30)
        assert response.status_code == 413, response.text

        def flood():
            for _ in range(2 * limit // 65536):
                yield b"\0" * 65536

        response = requests.post(
            f"{server.url}/predict",
            data=flood(),  # a generator: sent chunked, without Content-Length
            headers={"Content-Type": "image/png"},
            timeout=30,
        )
        assert response.status_code == 413, response.text
        good = requests.post(
            f"{server.url}/predict", files={"image": png(dark_images(1)[0])}, timeout=30
        )
        assert good.status_code == 200
    assert "Traceback" not in server.log()
