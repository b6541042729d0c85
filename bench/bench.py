"""Benchmark fashion-serve against FastAPI+uvicorn and naive Flask, one pinned core each.

`.venv/bin/python -m bench.bench` (--quick for a smoke run) prints one Markdown report: the
in-process floor and overhead, every stack over interleaved rounds, slow clients, the targets.
"""

import argparse
import tempfile
import time
from pathlib import Path

from bench import floor, load, overhead, report, slow_clients
from bench.stacks import GTHREAD, OURS, running, stacks
from bench.workload import BATCH, ROOT, expected_answer, servable_model, shapes, test_image


def main() -> None:
    """Parse options, measure each section, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: one short round")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3, quick 1)")
    parser.add_argument("--requests", type=int, help="single-image requests per path and round")
    parser.add_argument("--concurrency", type=int, default=8, help="hey clients (default 8)")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models", help="a registry")
    parser.add_argument(
        "--stacks", help="comma-separated stacks to run (default: all of them)", default=""
    )
    parser.add_argument(
        "--baseline", help="also run fashion-serve as of this git revision (e.g. main)"
    )
    parser.add_argument("--no-callgrind", action="store_true", help="skip instruction counts")
    parser.add_argument(
        "--slow-seconds", type=float, help="load per slow-client phase (default 10, quick 3)"
    )
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    single = args.requests or (300 if args.quick else 3000)
    batches = max(4, single // 20)
    slow_seconds = args.slow_seconds or (3 if args.quick else 10)

    with tempfile.TemporaryDirectory(prefix="fashion-bench-") as tmp:
        work = Path(tmp)
        started = time.monotonic()
        registry, version, model_path = servable_model(args.model_dir, work)
        png = test_image()
        model = model_path.read_bytes()
        costs = overhead.measure(
            registry,
            callgrind=not args.no_callgrind,
            rounds=1 if args.quick else 5,
            budget=0.3 if args.quick else 1.0,
        )
        expected = expected_answer(model, png)
        paths = shapes(png)
        wanted = {name.strip() for name in args.stacks.split(",") if name.strip()}
        found = stacks(registry, version, model_path, work, args.baseline)
        found = [s for s in found if not wanted or s.name in wanted]
        floors = []
        for round_ in range(rounds):
            # The floor in every round too: measured once, before the servers, it moved ~20 %
            # from run to run, and the batch target divides by it.
            floors.append(floor.measure_floor(model, png, quick=args.quick))
            # Rotate the order so no stack always runs first (cold caches) or last.
            for stack in found[round_ % len(found) :] + found[: round_ % len(found)]:
                load.run_round(stack, paths, expected, single, batches, args.concurrency, work)
        floor_us = floor.medians(floors)
        slow = {}
        for stack in found:
            if stack.name in (OURS, GTHREAD):
                # As `make serve` runs it: two workers, on every core.
                stack.env = {**stack.env, "FASHION_WORKERS": "2"}
                with running(stack, work / "slow.log", cpus=None):
                    slow_clients.wait_for_workers("127.0.0.1", stack.port, 2)
                    slow[stack.name] = slow_clients.scenario(
                        "127.0.0.1", stack.port, slow_seconds, args.concurrency, work
                    )
        table, medians = report.stacks_table(
            found, paths, rounds, single, batches, args.concurrency
        )
        batch_floor_us = sum(floor_us[BATCH].values())
        lines = [
            *report.floor_table(floor_us, costs),
            "",
            *table,
            "",
            *slow_clients.report(slow, slow_seconds, args.concurrency),
            "",
            *report.targets(found, medians, batch_floor_us, costs, slow),
            "",
            f"Whole run: {time.monotonic() - started:.0f} s.",
        ]
        print("\n".join(lines))


if __name__ == "__main__":
    main()
