"""What cycling ?version= over every registered version costs the aliases' traffic.

`.venv/bin/python -m bench.version_cycling` (--quick): one worker, more versions than it keeps
loaded; hey sends aliased traffic while 4 clients are idle, ask ?version=1, or cycle versions.
"""

import argparse
import http.client
import io
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from bench.workload import ROOT
from service.registry import Registry
from tests.e2e.server import GunicornServer

MODEL = "fashion-mnist"
VERSIONS = 8
CYCLERS = 4
MODES = ("idle", "fixed", "cycling")


def main() -> None:
    """Parse options, run the interleaved rounds, print the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round of 4 s per mode")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="per mode and round")
    parser.add_argument("--clients", type=int, default=4, help="hey clients (aliased traffic)")
    args = parser.parse_args()
    rounds, seconds = (1, 4.0) if args.quick else (args.rounds, args.seconds)
    with tempfile.TemporaryDirectory(prefix="fashion-cycling-") as work:
        root = _registry(Path(work))
        body = Path(work) / "image.png"
        body.write_bytes(_png())
        server = GunicornServer(root, Path(work) / "server.log", workers=1).start()
        port = server.port
        try:
            results: dict[str, list[float]] = {mode: [] for mode in MODES}
            answers: dict[str, Counter[int]] = {mode: Counter() for mode in MODES}
            loads_before = _loads(port)
            for number in range(rounds):
                order = MODES[number % 3 :] + MODES[: number % 3]
                for mode in order:
                    rate, statuses = _measure(port, body, mode, seconds, args.clients)
                    results[mode].append(rate)
                    answers[mode].update(statuses)
            loads = _loads(port) - loads_before
        finally:
            server.stop()
    _report(results, answers, loads, rounds, seconds, args.clients)


def _registry(work: Path) -> Path:
    """VERSIONS copies of the shipped production model, production → 1."""
    shipped = Registry(ROOT / "models")
    source = shipped.resolve(MODEL)
    root = work / "models"
    root.mkdir()
    registry = Registry(root)
    copy = work / "model.onnx"
    shutil.copyfile(shipped.model_path(MODEL, source), copy)
    for _ in range(VERSIONS):
        registry.register(MODEL, copy, shipped.card(MODEL, source))
    registry.set_alias(MODEL, "production", 1)
    return root


def _png() -> bytes:
    pixels = np.zeros((28, 28), np.uint8)
    pixels[6:22, 8:20] = 200
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def get(port: int, path: str) -> tuple[int, bytes]:
    """GET a path from the server: (status, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _loads(port: int) -> float:
    """fashion_model_loads_total summed over models, from /metrics."""
    text = get(port, "/metrics")[1].decode()
    return sum(float(v) for v in re.findall(r"^fashion_model_loads_total\{.*\} (\S+)$", text, re.M))


def _measure(
    port: int, body: Path, mode: str, seconds: float, clients: int
) -> tuple[float, Counter[int]]:
    """Aliased req/s from hey while the 4 other clients do what ``mode`` says."""
    stop = threading.Event()
    statuses: Counter[int] = Counter()
    threads = [
        threading.Thread(target=_asker, args=(port, mode, index, stop, statuses))
        for index in range(CYCLERS if mode != "idle" else 0)
    ]
    for thread in threads:
        thread.start()
    hey = subprocess.run(
        ["hey", "-z", f"{seconds}s", "-c", str(clients), "-m", "POST", "-T", "image/png",
         "-D", str(body), f"http://127.0.0.1:{port}/predict"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    stop.set()
    for thread in threads:
        thread.join()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", hey.stdout).group(1))
    bad = re.findall(r"\[(\d{3})\]\s+(\d+) responses", hey.stdout)
    if any(code != "200" for code, _ in bad):
        raise SystemExit(f"aliased traffic got non-200 answers: {bad}")
    return rate, statuses


def _asker(port: int, mode: str, index: int, stop: threading.Event, statuses: Counter) -> None:
    body = _png()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    turn = index
    while not stop.is_set():
        version = 1 if mode == "fixed" else turn % VERSIONS + 1
        turn += 1
        try:
            connection.request(
                "POST",
                f"/models/{MODEL}/predict?version={version}",
                body,
                {"Content-Type": "image/png"},
            )
            response = connection.getresponse()
            response.read()
            statuses[response.status] += 1
        except (OSError, http.client.HTTPException):
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.close()


def _report(results, answers, loads, rounds, seconds, clients) -> None:
    idle = statistics.median(results["idle"])
    print(
        f"One worker, {VERSIONS} versions, FASHION_MAX_LOADED=4; hey -c {clients} on POST "
        f"/predict; {CYCLERS} other clients; {rounds} interleaved rounds × {seconds:g} s.\n"
    )
    print("| other clients | aliased req/s (median) | × idle | × fixed | their answers |")
    print("|---|---:|---:|---:|---|")
    fixed = statistics.median(results["fixed"])
    for mode in MODES:
        rate = statistics.median(results[mode])
        shown = ", ".join(f"{code}: {n}" for code, n in sorted(answers[mode].items())) or "-"
        print(f"| {mode} | {rate:,.0f} | {rate / idle:.2f} | {rate / fixed:.2f} | {shown} |")
    print(f"\nModel loads during the run: {loads:.0f}")


if __name__ == "__main__":
    main()
