"""The serve image: its size over its base, by layer and by package, and start → ready.

    .venv/bin/python -m bench.image fashion-serve:e2e [other images…] [--runs 5]

Each run starts a container of each image in turn (interleaved, so the machine's load falls on
all alike), publishes it on a free loopback port and polls /readyz every 20 ms; start → ready is
counted from Docker's StartedAt. Images are built beforehand (`make test-docker` builds
fashion-serve:e2e; `docker build --target serve .` any other).
"""

import argparse
import datetime
import json
import statistics
import subprocess
import time
import urllib.request

from tests.e2e.server import free_port

READY_TIMEOUT = 60.0
SITE = "/opt/venv/lib/python3.11/site-packages"


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def start_to_ready(image: str) -> float:
    """Seconds from the container's start to its first 200 on /readyz."""
    port = free_port()
    container = docker("run", "--detach", "--rm", "--publish", f"127.0.0.1:{port}:8000", image)
    container = container.strip()
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        ready = datetime.datetime.now(datetime.UTC)
        started = docker("inspect", "--format", "{{.State.StartedAt}}", container).strip()
        # RFC 3339 with nanoseconds: datetime reads microseconds.
        return (ready - datetime.datetime.fromisoformat(started[:26] + "+00:00")).total_seconds()
    finally:
        subprocess.run(["docker", "rm", "--force", container], capture_output=True, check=False)


def breakdown(image: str) -> None:
    """The image's layers over its base, and the largest packages in its venv."""
    size = json.loads(docker("image", "inspect", image))[0]["Size"]
    print(f"\n{image}: {size / 1e6:.0f} MB")
    print(docker("history", "--format", "{{.Size}}\t{{.CreatedBy}}", image)[:2000])
    print(
        docker(
            "run", "--rm", "--entrypoint", "sh", image, "-c",
            f"du -sk /opt/venv; du -sk {SITE}/* | sort -rn | head -12",
        )
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for image in args.images:
        breakdown(image)
    seconds: dict[str, list[float]] = {image: [] for image in args.images}
    for _ in range(args.runs):
        for image in args.images:
            seconds[image].append(start_to_ready(image))
    print("| image | start → ready, median | runs |\n| --- | ---: | --- |")
    for image, values in seconds.items():
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"| `{image}` | {statistics.median(values):.2f} s | {runs} |")


if __name__ == "__main__":
    main()
