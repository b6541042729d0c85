"""What a shadow version costs the served requests: p99 and req/s with and without one.

Run: `.venv/bin/python -m bench.shadow [--rounds 6] [--requests 3000] [--shadow 2]`. One
fashion-serve with `make serve`'s two workers serves a copy of the registry (production:
its version 3); hey (8 clients, pinned to CPU 1) sends single-image multipart requests. Rounds
alternate without and with version --shadow shadowing production (set in the registry, which
the workers follow), in the same server, the order swapped every round; each mode is warmed up
before it is measured. Prints medians and the with ÷ without ratios, and how many images the
shadows compared and dropped, so that a cheap run cannot pass for one where the shadow ran.
"""

import argparse
import json
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench.load import hey, parse_hey
from bench.slow_clients import wait_for_workers
from bench.stacks import ours, request, running
from bench.workload import ALIAS, MODEL_NAME, ROOT, shapes, test_image
from service.registry import Registry

WORKERS = 2
DROPPED = re.compile(r"^fashion_shadow_dropped_total\{.*\} ([0-9.e+]+)$", re.M)


def compared(port: int) -> int:
    """Images the shadows compared so far, from every worker (the shared journal)."""
    status, body = request(port, "GET", f"/models/{MODEL_NAME}/shadows")
    assert status == 200, body
    return sum(row["compared"] for row in json.loads(body)["comparisons"])


def dropped(port: int) -> int:
    """Batches not copied because a shadow queue was full, summed over the workers."""
    status, body = request(port, "GET", "/metrics")
    assert status == 200, body
    return int(sum(float(n) for n in DROPPED.findall(body.decode())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="per mode")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--shadow", type=int, default=2, help="the shadow version")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument(
        "--control", action="store_true", help="an A/A run: no shadow in either mode (the noise)"
    )
    args = parser.parse_args()
    args.requests -= args.requests % args.concurrency  # hey sends count // clients per client
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    shape = next(s for s in shapes(test_image()) if s.name == "multipart")
    results: dict[bool, list[dict]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="fashion-shadow-") as tmp:
        work = Path(tmp)
        shutil.copytree(args.model_dir, work / "models", ignore=shutil.ignore_patterns(".live"))
        registry = Registry(work / "models")
        served = registry.resolve(MODEL_NAME, alias=ALIAS)
        stack = ours(registry.root, work, FASHION_WORKERS=str(WORKERS),
                     FASHION_RELOAD_INTERVAL="0.2")  # fmt: skip
        with running(stack, work / "server.log", cpus=None):
            wait_for_workers("127.0.0.1", stack.port, WORKERS)
            for round_ in range(args.rounds):
                for shadowed in (False, True) if round_ % 2 == 0 else (True, False):
                    if shadowed and not args.control:
                        registry.set_shadow(MODEL_NAME, ALIAS, args.shadow)
                    else:
                        registry.clear_shadow(MODEL_NAME, ALIAS, "bench round without")
                    # The warm-up outlasts the workers' poll of shadows.json (0.2 s).
                    hey(stack.port, shape, work, args.concurrency, count=args.requests // 5)
                    before = compared(stack.port), dropped(stack.port)
                    run = parse_hey(
                        hey(stack.port, shape, work, args.concurrency, count=args.requests),
                        args.requests,
                    )
                    run["compared"] = compared(stack.port) - before[0]
                    run["dropped"] = dropped(stack.port) - before[1]
                    results[shadowed].append(run)
                    print(
                        f"# round {round_ + 1} {'with' if shadowed else 'without'} shadow: "
                        f"{run['rps']:.0f} req/s, p50 {run['p50']:.1f} ms, "
                        f"p99 {run['p99']:.1f} ms, compared {run['compared']}, "
                        f"dropped {run['dropped']}, errors {run['errors']}",
                        flush=True,
                    )
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    print(
        f"\n{args.rounds} interleaved rounds per mode from {started} UTC, {args.requests} "
        f"multipart requests each, {args.concurrency} clients, {WORKERS} workers, version "
        f"{served} served, version {args.shadow} as the shadow; load average "
        f"{' '.join(load_before)} → {' '.join(load_after)}\n"
    )
    table(results)


def table(results: dict[bool, list[dict]]) -> None:
    """Print the medians of the runs without and with a shadow, and the with ÷ without ratios
    (bench/swarm.py prints its rounds with it too)."""
    print("| shadow | req/s | p50 ms | p99 ms | images compared | batches dropped | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    medians = {}
    for shadowed, runs in results.items():
        m = {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99")}
        medians[shadowed] = m
        print(
            f"| {'with' if shadowed else 'without'} | {m['rps']:,.0f} | {m['p50']:.1f} | "
            f"{m['p99']:.1f} | {sum(r['compared'] for r in runs):,} | "
            f"{sum(r['dropped'] for r in runs):,.0f} | {sum(r['errors'] for r in runs)} |"
        )
    on, off = medians[True], medians[False]
    print(
        f"\nwith ÷ without: p99 {on['p99'] / off['p99']:.2f}×, p50 {on['p50'] / off['p50']:.2f}×,"
        f" req/s {on['rps'] / off['rps']:.2f}×"
    )
    # Each round's two runs are neighbours: their ratio cancels the load that moved meanwhile.
    for key in ("p99", "rps"):
        pairs = [w[key] / wo[key] for wo, w in zip(results[False], results[True], strict=True)]
        shown = ", ".join(f"{ratio:.2f}" for ratio in pairs)
        print(f"{key} with ÷ without per round: {shown}; median {statistics.median(pairs):.2f}×")


if __name__ == "__main__":
    main()
