"""Slow clients: 16 connections dripping a request a byte a second and 500 silent ones, under load.

`python -m bench.slow_clients --port 8000` against any server (or the last section of
bench.bench): 8 hey clients' req/s, p50, p99 and failures while the attack holds.
"""

import argparse
import re
import selectors
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.load import hey, parse_hey
from bench.stacks import request
from bench.workload import shapes, test_image

DRIPPERS, SILENT = 16, 500
DRIP = b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"


@dataclass
class Attack:
    """Keep `drippers` connections sending one byte a second and `silent` ones open and mute."""

    host: str
    port: int
    drippers: int = DRIPPERS
    silent: int = SILENT
    reopened: int = 0

    def __post_init__(self) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)

    def __enter__(self) -> "Attack":
        self.thread.start()
        time.sleep(1.0)  # connections opened and the first bytes sent before the load starts
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=10)

    def _open(self, poller: selectors.BaseSelector, kind: str, position: int = 0) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=5)
        except OSError:
            return  # the server refused for now; the next tick tries again
        sock.setblocking(False)
        poller.register(sock, selectors.EVENT_READ, [kind, position])

    def _run(self) -> None:
        poller = selectors.DefaultSelector()
        for _ in range(self.silent):
            self._open(poller, "silent")
        for _ in range(self.drippers):
            self._open(poller, "drip")
        next_drip = time.monotonic()
        while not self.stop.is_set():
            for key, _ in poller.select(0.1):
                # Readable means closed by the server (or answered): reopen to keep the pressure.
                try:
                    data = key.fileobj.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    poller.unregister(key.fileobj)
                    key.fileobj.close()
                    self.reopened += 1
                    self._open(poller, key.data[0])
            counts = {"silent": 0, "drip": 0}
            for key in poller.get_map().values():
                counts[key.data[0]] += 1
            for kind, wanted in (("silent", self.silent), ("drip", self.drippers)):
                for _ in range(wanted - counts[kind]):
                    self._open(poller, kind)
            if time.monotonic() >= next_drip:
                next_drip += 1.0
                for key in list(poller.get_map().values()):
                    if key.data[0] == "drip":
                        position = key.data[1] % len(DRIP)
                        try:
                            key.fileobj.send(DRIP[position : position + 1])
                        except OSError:
                            continue
                        key.data[1] += 1
        for key in list(poller.get_map().values()):
            key.fileobj.close()
        poller.close()


def wait_for_workers(host: str, port: int, workers: int, timeout: float = 120) -> None:
    """Wait until every worker has loaded its model (/metrics adds up all workers' loads).

    /readyz answers from whichever worker takes the connection: a load that starts as soon as
    the first one is ready sends every kept-alive connection to that worker alone.
    """
    deadline = time.monotonic() + timeout
    pattern = re.compile(rb"^fashion_model_loads_total\{[^}]*\} ([0-9.e+]+)$", re.MULTILINE)
    while time.monotonic() < deadline:
        try:
            status, body = request(port, "GET", "/metrics", host=host)
        except OSError:
            status, body = 0, b""
        if status == 200 and sum(float(v) for v in pattern.findall(body)) >= workers:
            return
        time.sleep(0.2)
    raise RuntimeError(f"fewer than {workers} workers loaded a model after {timeout:.0f} s")


def scenario(host: str, port: int, seconds: float, clients: int, work: Path) -> dict:
    """Normal traffic alone, then under attack: req/s, p50, p99 and failures of each."""
    shape = next(s for s in shapes(test_image()) if s.name == "multipart")
    quiet = parse_hey(hey(port, shape, work, clients, seconds=seconds, host=host))
    with Attack(host, port) as attack:
        attacked = parse_hey(hey(port, shape, work, clients, seconds=seconds, host=host))
    attacked["reopened"] = attack.reopened
    return {"quiet": quiet, "attacked": attacked}


def report(results: dict[str, dict], seconds: float, clients: int) -> list[str]:
    """A Markdown table: each server's normal traffic, quiet and under the attack."""
    lines = [
        f"Slow clients: {DRIPPERS} connections dripping a request one byte a second and {SILENT} "
        f"silent ones (reopened as soon as the server closes them), while hey sends single-image "
        f"multipart requests from {clients} clients for {seconds:.0f} s; the same load without "
        "the attack first.",
        "",
        "| server | traffic | requests | req/s | p50 ms | p99 ms | failed | attack reconnects |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, result in results.items():
        for phase in ("quiet", "attacked"):
            m = result[phase]
            lines.append(
                f"| {name} | {phase} | {m['requests']:,} | {m['rps']:,.0f} | {m['p50']:.1f} "
                f"| {m['p99']:.1f} | {m['errors']} | {m.get('reopened', '–')} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--seconds", type=float, default=15.0, help="of load, per phase")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--name", default="server")
    parser.add_argument("--workers", type=int, default=2, help="wait until this many loaded")
    args = parser.parse_args()
    wait_for_workers(args.host, args.port, args.workers)
    with tempfile.TemporaryDirectory(prefix="fashion-slow-") as tmp:
        result = scenario(args.host, args.port, args.seconds, args.clients, Path(tmp))
    print("\n".join(report({args.name: result}, args.seconds, args.clients)))


if __name__ == "__main__":
    main()
