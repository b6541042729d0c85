"""Garbage-collector pauses per request, in process: is the collector part of the tail?

Run: `.venv/bin/python -m bench.gc_pauses [--requests 3000]`. The app over a tiny registry,
warmed up and frozen as the worker freezes it (gc.freeze() after load); then single-image
multipart uploads through Flask's test client, every collection timed by gc.callbacks.
Prints the request latency quantiles and, per generation, collections per 1,000 requests with
their mean and largest pause.
"""

import argparse
import gc
import io
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from service.http import create_app
from service.settings import Settings
from tests.conftest import tiny_registry
from tests.images import dark_images, png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fashion-gc-") as tmp:
        app = create_app(Settings(model_dir=tiny_registry(Path(tmp)).root))
        client = app.test_client()
        image = png(dark_images(1)[0])

        def post() -> None:
            data = {"image": (io.BytesIO(image), "a.png")}
            client.post("/predict", data=data, content_type="multipart/form-data")

        for _ in range(200):
            post()
        gc.freeze()
        pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        began = [0.0]

        def timed(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                began[0] = time.perf_counter()
            else:
                pauses[info["generation"]].append(time.perf_counter() - began[0])

        gc.callbacks.append(timed)
        latencies = []
        for _ in range(args.requests):
            started = time.perf_counter()
            post()
            latencies.append(time.perf_counter() - started)
        gc.callbacks.remove(timed)
        app.extensions["fashion_serve"].close()
    cuts = statistics.quantiles(latencies, n=100)
    print(f"request ms: p50 {cuts[49] * 1e3:.3f}, p99 {cuts[98] * 1e3:.3f}")
    for generation, times in pauses.items():
        if times:
            print(
                f"generation {generation}: {len(times) * 1000 / args.requests:.1f} per 1,000 "
                f"requests, mean {statistics.mean(times) * 1e3:.3f} ms, "
                f"largest {max(times) * 1e3:.3f} ms"
            )


if __name__ == "__main__":
    main()
