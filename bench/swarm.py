"""The Swarm stack under hey: 1 against 2 api replicas, or 2 replicas with and without a shadow.

`.venv/bin/python -m bench.swarm [--rounds 3 --requests 3000]` deploys deploy/swarm/stack.yml on
a one-node swarm made for the run (dismantled after it) and runs hey against its balancer at 1
and 2 replicas, alternating. `--shadow 2` instead keeps 2 replicas and alternates rounds without
and with version 2 shadowing production (set and cleared over the admin API, order swapped
every round, each mode warmed up past the replicas' reload interval): medians of req/s, p50 and
p99 per mode and the with ÷ without ratios, with the images the shadow compared (the shared
journal) and the batches it dropped (each replica's /metrics), so that a run where the shadow
did nothing cannot pass for one where it ran. `--control` sets no shadow in either mode (A/A:
the noise).
"""

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from bench.load import hey, parse_hey
from bench.shadow import table
from bench.workload import MODEL_NAME, Shape
from tests.docker.engine import prepare_engine
from tests.docker.test_compose import real_test_images
from tests.docker.test_swarm import REPLICAS, Stack
from tests.images import png

COUNTS = (1, 2)
WARM_UP_SECONDS = 3  # longer than the replicas' poll of shadows.json (FASHION_RELOAD_INTERVAL 1)


@contextlib.contextmanager
def deployed() -> Iterator[tuple[Stack, Shape]]:
    """The stack serving on a swarm of its own, and the request hey sends (a raw PNG body)."""
    base_image = prepare_engine()
    work = Path(tempfile.mkdtemp(prefix="bench-swarm-"))
    shape = Shape("raw body", png(real_test_images()[0][0]), "image/png", 1)
    stack = Stack(work, base_image)
    stack.build()
    stack.refuse_a_swarm_not_ours()
    try:
        stack.create_swarm()
        stack.deploy(stack.tag)
        stack.wait_serving()
        yield stack, shape
    finally:
        stack.dismantle()


def measure(stack: Stack, shape: Shape, requests_: int, clients: int) -> dict:
    """A warm-up, then `requests_` requests: req/s, p50 and p99 ms, errors."""
    port = int(stack.url.rsplit(":", 1)[1])
    work = stack.work
    hey(port, shape, work, clients, seconds=WARM_UP_SECONDS)
    return parse_hey(hey(port, shape, work, clients, count=requests_), requests_)


def replicas_rounds(args: argparse.Namespace, stack: Stack, shape: Shape) -> None:
    rates: dict[int, list[float]] = {n: [] for n in COUNTS}
    failed = 0
    for round_ in range(args.rounds):
        for replicas in COUNTS if round_ % 2 == 0 else COUNTS[::-1]:
            stack.docker("service", "scale", "--detach", f"{stack.service('api')}={replicas}")
            stack.wait_serving(replicas=replicas)
            run = measure(stack, shape, args.requests, args.clients)
            failed += run["errors"]
            rates[replicas].append(run["rps"])
            print(f"round {round_ + 1}, {replicas} replica(s): {run['rps']:.0f} req/s, "
                  f"{run['errors']} failed", flush=True)  # fmt: skip
    one, two = (statistics.median(rates[n]) for n in COUNTS)
    print(f"\n| api replicas | requests/s (median of {args.rounds}) | × 1 replica |")
    print("|---:|---:|---:|")
    print(f"| 1 | {one:,.0f} | 1.00× |")
    print(f"| 2 | {two:,.0f} | {two / one:.2f}× |")
    print(f"\n{args.clients} hey clients, {args.requests} requests per run; {failed} failed in all")


def compared(stack: Stack, shadow: int) -> int:
    """Images the shadow compared on every replica (the shared journal)."""
    summary = requests.get(f"{stack.url}/models/{MODEL_NAME}/shadows", timeout=30).json()
    return sum(row["compared"] for row in summary["comparisons"] if row["version"] == shadow)


def dropped(stack: Stack, shadow: int) -> float:
    """Batches not copied to the shadow, summed over the replicas."""
    return sum(stack.per_replica("fashion_shadow_dropped_total", version=str(shadow)).values())


def shadow_rounds(args: argparse.Namespace, stack: Stack, shape: Shape) -> None:
    shadow, url = args.shadow, f"{stack.url}/models/{MODEL_NAME}/aliases/production/shadow"
    admin = {"Authorization": f"Bearer {stack.token}"}
    production = stack.production()
    results: dict[bool, list[dict]] = {False: [], True: []}
    for round_ in range(args.rounds):
        for shadowed in (False, True) if round_ % 2 == 0 else (True, False):
            if shadowed and not args.control:
                answer = requests.put(url, json={"version": shadow}, headers=admin, timeout=60)
            else:
                answer = requests.delete(url, headers=admin, timeout=60)
            assert answer.status_code == 200, answer.text
            before = compared(stack, shadow), dropped(stack, shadow)
            run = measure(stack, shape, args.requests, args.clients)
            run["compared"] = compared(stack, shadow) - before[0]
            run["dropped"] = dropped(stack, shadow) - before[1]
            results[shadowed].append(run)
            print(
                f"# round {round_ + 1} {'with' if shadowed else 'without'} shadow: "
                f"{run['rps']:.0f} req/s, p50 {run['p50']:.1f} ms, p99 {run['p99']:.1f} ms, "
                f"compared {run['compared']}, dropped {run['dropped']:.0f}, "
                f"errors {run['errors']}",
                flush=True,
            )
    print(f"\n{REPLICAS} replicas, production v{production}, v{shadow} shadowing\n")
    table(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="per mode")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--shadow", type=int, help="compare with and without this shadow")
    parser.add_argument(
        "--control", action="store_true", help="with --shadow: no shadow in either mode (A/A)"
    )
    args = parser.parse_args()
    args.requests -= args.requests % args.clients  # hey sends count // clients per client
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    with deployed() as (stack, shape):
        (shadow_rounds if args.shadow else replicas_rounds)(args, stack, shape)
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    print(
        f"\n{args.rounds} interleaved rounds per mode from {started} UTC, {args.requests} raw PNG"
        f" requests each, {args.clients} hey clients; load average"
        f" {' '.join(load_before)} → {' '.join(load_after)}"
    )


if __name__ == "__main__":
    main()
