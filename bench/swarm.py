"""Requests/s through the Swarm stack with 1 and 2 api replicas, in interleaved rounds.

`.venv/bin/python -m bench.swarm [--rounds 3 --requests 3000]` deploys deploy/swarm/stack.yml on
a one-node swarm made for the run (dismantled after it) and runs hey against its balancer.
"""

import argparse
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from tests.docker.engine import prepare_engine
from tests.docker.test_compose import png, real_test_images
from tests.docker.test_swarm import Stack

COUNTS = (1, 2)


def hey(url: str, image: Path, requests: int, clients: int) -> tuple[float, int]:
    """Requests/s and the number of requests that did not answer 200."""
    output = subprocess.run(
        [
            *("hey", "-n", str(requests), "-c", str(clients)),
            *("-m", "POST", "-T", "image/png", "-D", str(image), f"{url}/predict"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    ok = sum(int(n) for n in re.findall(r"\[200\]\s+(\d+) responses", output))
    return rate, requests - ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    prepare_engine()
    work = Path(tempfile.mkdtemp(prefix="bench-swarm-"))
    image = work / "image.png"
    image.write_bytes(png(real_test_images()[0][0]))
    stack = Stack(work)
    stack.build()
    rates: dict[int, list[float]] = {n: [] for n in COUNTS}
    failed = 0
    stack.refuse_a_swarm_not_ours()
    try:
        stack.create_swarm()
        stack.deploy(stack.tag)
        stack.wait_serving()
        for round_ in range(args.rounds):
            order = COUNTS if round_ % 2 == 0 else COUNTS[::-1]
            for replicas in order:
                stack.docker("service", "scale", "--detach", f"{stack.service('api')}={replicas}")
                stack.wait_serving(replicas=replicas)
                hey(stack.url, image, max(100, args.requests // 10), args.clients)  # warm-up
                started = time.monotonic()
                rate, errors = hey(stack.url, image, args.requests, args.clients)
                failed += errors
                rates[replicas].append(rate)
                print(
                    f"round {round_ + 1}, {replicas} replica(s): {rate:.0f} req/s, "
                    f"{errors} failed ({time.monotonic() - started:.1f} s)",
                    flush=True,
                )
    finally:
        stack.dismantle()
    one, two = (statistics.median(rates[n]) for n in COUNTS)
    print(f"\n| api replicas | requests/s (median of {args.rounds}) | × 1 replica |")
    print("|---:|---:|---:|")
    print(f"| 1 | {one:,.0f} | 1.00× |")
    print(f"| 2 | {two:,.0f} | {two / one:.2f}× |")
    print(f"\n{args.clients} hey clients, {args.requests} requests per run; {failed} failed in all")


if __name__ == "__main__":
    main()
