"""Time to answer hostile compressed bodies on /v2 infer, over one real gunicorn worker.

`.venv/bin/python -m bench.hostile_bodies` (--samples N): each body sent N times, interleaved;
status, median and slowest wall time, and the worker's peak RSS.
"""

import argparse
import gzip
import http.client
import json
import statistics
import tempfile
import time
from pathlib import Path

from bench.workload import ROOT
from tests.e2e.server import GunicornServer

LIMIT = 16 * 1024 * 1024
INFER = "/v2/models/fashion-mnist/infer"
HEAD = b'{"inputs":[{"name":"image","datatype":"FP32","shape":[1,28,28],"data":['


def bodies() -> dict[str, tuple[bytes, dict[str, str]]]:
    """Name → (body, headers) of every case."""
    zeros = HEAD + b"0," * ((LIMIT - len(HEAD) - 8) // 2) + b"0]}]}"
    spaces = HEAD + b"0," * 783 + b"0]}]" + b" " * (LIMIT - len(HEAD) - 1600) + b"}"
    one = json.dumps(
        {"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 28, 28],
                     "data": [0] * 784}]}
    ).encode()  # fmt: skip
    gz = {"Content-Encoding": "gzip"}
    return {
        "one image, plain JSON (reference)": (one, {}),
        f"gzip → {len(zeros):,} B of JSON zeros (the issue's body)": (gzip.compress(zeros, 9), gz),
        f"gzip → {len(spaces):,} B, one image + spaces": (gzip.compress(spaces, 9), gz),
        "gzip → 64 MiB of zeros (past the limit)": (gzip.compress(b"0" * 4 * LIMIT, 9), gz),
    }


def post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, float]:
    """(status, seconds from sending to the whole answer)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        started = time.perf_counter()
        connection.request("POST", INFER, body, {"Content-Type": "application/json", **headers})
        response = connection.getresponse()
        response.read()
        return response.status, time.perf_counter() - started
    finally:
        connection.close()


def main() -> None:
    """Send every body N times, interleaved; print the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=15)
    args = parser.parse_args()
    cases = bodies()
    times: dict[str, list[float]] = {name: [] for name in cases}
    statuses: dict[str, set[int]] = {name: set() for name in cases}
    with tempfile.TemporaryDirectory(prefix="fashion-hostile-") as work:
        server = GunicornServer(ROOT / "models", Path(work) / "server.log", workers=1).start()
        port = server.port
        try:
            for _ in range(args.samples):
                for name, (body, headers) in cases.items():
                    status, seconds = post(port, body, headers)
                    statuses[name].add(status)
                    times[name].append(seconds)
            pid = server.process.pid
            worker = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()[0]
            peak = next(
                line.split()[1]
                for line in Path(f"/proc/{worker}/status").read_text().splitlines()
                if line.startswith("VmHWM")
            )
        finally:
            server.stop()
    print(f"One worker, FASHION_MAX_UPLOAD_BYTES={LIMIT}; {args.samples} interleaved samples.\n")
    print("| body (sent size) | status | median ms | slowest ms |")
    print("|---|---|---:|---:|")
    for name, (body, _) in cases.items():
        shown = "/".join(map(str, sorted(statuses[name])))
        print(
            f"| {name} ({len(body):,} B) | {shown} | {statistics.median(times[name]) * 1000:.1f}"
            f" | {max(times[name]) * 1000:.1f} |"
        )
    print(f"\nWorker peak RSS (VmHWM) after all samples: {int(peak) / 1024:.0f} MB")


if __name__ == "__main__":
    main()
