"""Tail latency with `make serve`'s two workers: fashion-serve against FastAPI+uvicorn, interleaved.

Run: `.venv/bin/python -m bench.tail [--rounds 5] [--requests 3000] [--workers 1]`. Each round
starts each stack afresh with two workers on every core (as `make serve` and `uvicorn --workers
2` run; with `--workers 1`, one worker pinned to CPU 0 as in bench.bench),
warms it up, then sends single-image multipart requests from 8 hey clients pinned to CPU 1;
halfway through, `ss` counts each worker's connections (their spread is one source of the tail).
Prints medians of req/s, p50, p99, CPU µs per request and the spread, and the ratios.
"""

import argparse
import re
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from bench.load import hey, parse_hey
from bench.slow_clients import wait_for_workers
from bench.stacks import FASTAPI, OURS, Stack, cpu_seconds, running, stacks
from bench.workload import ROOT, SERVER_CPU, servable_model, shapes, test_image

PID = re.compile(r"pid=(\d+)")


def spread(port: int) -> list[int]:
    """Established server-side connections on the port, per process, largest first."""
    out = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    counts: dict[str, int] = {}
    for line in out.splitlines():
        for pid in set(PID.findall(line)):
            counts[pid] = counts.get(pid, 0) + 1
    return sorted(counts.values(), reverse=True)


def with_workers(found: list[Stack], workers: int) -> list[Stack]:
    """fashion-serve and FastAPI+uvicorn, each with this many workers."""
    chosen = []
    for stack in found:
        if stack.name == OURS:
            stack.env = {**stack.env, "FASHION_WORKERS": str(workers)}
        elif stack.name == FASTAPI:
            stack.command = (
                [*stack.command, "--workers", str(workers)] if workers > 1 else stack.command
            )
        else:
            continue
        chosen.append(stack)
    return chosen


def one_round(stack: Stack, requests: int, clients: int, work: Path, workers: int) -> dict:
    """Start, warm up, load once; the run's figures and the connection spread."""
    shape = next(s for s in shapes(test_image()) if s.name == "multipart")
    cpus = SERVER_CPU if workers == 1 else None
    with running(stack, work / f"{stack.name}.log", cpus=cpus) as server:
        if stack.name == OURS:
            wait_for_workers("127.0.0.1", stack.port, workers)
        hey(stack.port, shape, work, clients, count=requests // 5)
        seen: list[list[int]] = []
        timer = threading.Timer(1.0, lambda: seen.append(spread(stack.port)))
        timer.start()
        before = cpu_seconds(server.pid)
        run = parse_hey(hey(stack.port, shape, work, clients, count=requests), requests)
        run["cpu_us"] = (cpu_seconds(server.pid) - before) / max(run["requests"], 1) * 1e6
        timer.cancel()
        run["spread"] = seen[0] if seen else []
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument(
        "--workers", type=int, default=2, help="2: as make serve; 1: pinned to CPU 0, as bench"
    )
    args = parser.parse_args()
    started = time.strftime("%H:%M", time.gmtime())
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    with tempfile.TemporaryDirectory(prefix="fashion-tail-") as tmp:
        work = Path(tmp)
        registry, version, model = servable_model(args.model_dir, work)
        chosen = with_workers(stacks(registry, version, model, work, None), args.workers)
        results: dict[str, list[dict]] = {s.name: [] for s in chosen}
        for round_ in range(args.rounds):
            for stack in chosen[round_ % 2 :] + chosen[: round_ % 2]:
                run = one_round(stack, args.requests, args.concurrency, work, args.workers)
                results[stack.name].append(run)
                print(
                    f"# round {round_ + 1} {stack.name}: {run['rps']:.0f} req/s, "
                    f"p50 {run['p50']:.1f} ms, p99 {run['p99']:.1f} ms, "
                    f"{run['cpu_us']:.0f} µs CPU/req, spread {run['spread']}, "
                    f"errors {run['errors']}",
                    flush=True,
                )
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    print(
        f"\n{args.rounds} interleaved rounds from {started} UTC, {args.requests} multipart "
        f"requests each, {args.concurrency} clients, {args.workers} worker(s); load average "
        f"{' '.join(load_before)} → {' '.join(load_after)}\n"
    )
    print("| stack | req/s | p50 ms | p99 ms | p99 ÷ p50 | CPU µs/req | errors | spread |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    medians = {}
    for name, runs in results.items():
        m = {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99", "cpu_us")}
        medians[name] = m
        spreads = " ".join("/".join(map(str, r["spread"])) for r in runs)
        print(
            f"| {name} | {m['rps']:,.0f} | {m['p50']:.1f} | {m['p99']:.1f} | "
            f"{m['p99'] / m['p50']:.1f}× | {m['cpu_us']:,.0f} | "
            f"{sum(r['errors'] for r in runs)} | {spreads} |"
        )
    ours, theirs = medians[OURS], medians[FASTAPI]
    print(
        f"\nfashion-serve ÷ FastAPI: req/s {ours['rps'] / theirs['rps']:.2f}×, "
        f"p99 {ours['p99'] / theirs['p99']:.2f}×, CPU {ours['cpu_us'] / theirs['cpu_us']:.2f}×"
    )


if __name__ == "__main__":
    main()
