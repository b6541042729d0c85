"""Issue 22's flood and amplification cases, measured on our worker and on gunicorn's gthread.

Run: `.venv/bin/python -m bench.http_abuse`. For each worker (one, as `tests/http1` starts it):
the pipelining flood (3000 × GET /metrics in one send: seconds until the last answer, and
whether the worker survived), and the amplification cases (one client pipelining 150 requests
for Swagger UI's 1.7 MB bundle, 50 clients pipelining 5 each, none reading): the worker's RSS
idle, at its peak over 3 s, and 10 s after the clients left. The pass/fail of every case is
`tests/http1`; this prints the figures behind bench/README.md's table.
"""

import tempfile
import threading
import time
from pathlib import Path

import requests

from tests.conftest import tiny_registry
from tests.e2e.server import GunicornServer
from tests.http1.client import Client, pipelined, rss_mb, worker_pids

ASSET = "/docs/swagger-ui-bundle.js"
WORKERS = {"BufferedWorker": "service.gunicorn_worker.BufferedWorker", "gthread": "gthread"}


def flood(server: GunicornServer, count: int = 3000) -> str:
    """Seconds until every pipelined answer arrived, or what went wrong."""
    (pid,) = worker_pids(server.process.pid)
    started = time.monotonic()
    try:
        with Client(server.port, timeout=60) as client:
            request = b"GET /metrics HTTP/1.1\r\nHost: p\r\n\r\n" * count
            threading.Thread(target=client.send, args=(request,), daemon=True).start()
            for _ in range(count):
                client.response()
    except (AssertionError, OSError) as error:
        return f"failed after {time.monotonic() - started:.1f} s: {error!s:.60}"
    survived = worker_pids(server.process.pid) == [pid]
    return f"{time.monotonic() - started:.1f} s" + ("" if survived else ", worker replaced")


def amplification(server: GunicornServer, clients: int, each: int) -> str:
    """The worker's RSS (MB): idle → peak while clients hold unread answers → after they left."""
    (pid,) = worker_pids(server.process.pid)
    requests.get(server.url + ASSET, timeout=10)  # the asset's code paths warmed up
    idle = rss_mb(pid)
    socks = pipelined(server.port, f"GET {ASSET} HTTP/1.1\r\nHost: x\r\n\r\n", clients, each)
    peak, stop, starved = idle, time.monotonic() + 3, 0
    while time.monotonic() < stop:
        try:
            requests.get(server.url + "/healthz", timeout=3)
        except requests.RequestException:
            starved += 1  # other clients got no answer meanwhile
        peak = max(peak, rss_mb(pid))
    for sock in socks:
        sock.close()
    after = rss_mb(pid)
    settle = time.monotonic() + 10
    while time.monotonic() < settle and after > idle + 10:
        time.sleep(0.2)
        after = rss_mb(pid)
    note = f" ({starved} /healthz timed out meanwhile)" if starved else ""
    return f"{idle:.0f} → {peak:.0f} → {after:.0f}{note}"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="fashion-abuse-") as tmp:
        print("| worker | 3000 pipelined /metrics | RSS MB, 1 client × 150 | RSS MB, 50 × 5 |")
        print("|---|---|---|---|")
        for name, worker_class in WORKERS.items():
            work = Path(tmp) / name
            work.mkdir()
            registry = tiny_registry(work)
            with GunicornServer(
                registry.root, work / "server.log", workers=1, FASHION_WORKER_CLASS=worker_class
            ) as server:
                row = [flood(server), amplification(server, 1, 150), amplification(server, 50, 5)]
            print(f"| {name} | " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
