"""The model floor: onnxruntime time per image of registered versions, on one core, interleaved.

    .venv/bin/python -m bench.floor_models                  # versions 1 and 2 of fashion-mnist
    .venv/bin/python -m bench.floor_models --versions 1 2 3 --rounds 9

Each version runs in the service's own session (service.runtime.OnnxModel: one intra-op thread,
no spinning), on a real test image, pinned to one CPU as `taskset -c 1` would (the process
pins itself). Rounds interleave the versions, so a noisy neighbour slows all
of them alike; the table shows medians over rounds, and the ratio to the first version.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

from service.preprocess import normalize
from service.registry import Registry
from service.runtime import CPU, OnnxModel
from training import data

BATCH = 256


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.floor_models", description=__doc__)
    parser.add_argument("--model-dir", default="models", help="registry (default %(default)s)")
    parser.add_argument("--name", default="fashion-mnist", help="model (default %(default)s)")
    parser.add_argument("--versions", type=int, nargs="+", default=[1, 2], metavar="V")
    parser.add_argument("--rounds", type=int, default=7, help="default %(default)s")
    parser.add_argument(
        "--calls", type=int, default=2000, help="single-image calls per round (default %(default)s)"
    )
    parser.add_argument("--cpu", type=int, default=1, help="CPU to pin to (default %(default)s)")
    return parser


def per_call_us(model: OnnxModel, images: np.ndarray, calls: int) -> tuple[float, float]:
    """(wall, CPU) µs per call. With one intra-op thread onnxruntime runs on the calling
    thread, so its CPU time leaves out the time other processes held the core."""
    for _ in range(max(10, calls // 20)):  # warm the caches after the other versions ran
        model.run(images)
    start, cpu_start = time.perf_counter(), time.thread_time()
    for _ in range(calls):
        model.run(images)
    wall, cpu = time.perf_counter() - start, time.thread_time() - cpu_start
    return wall / calls * 1e6, cpu / calls * 1e6


def main(argv: list[str] | None = None) -> int:
    """Measure and print the Markdown table."""
    args = _parser().parse_args(argv)
    # What `taskset -c CPU` does, before onnxruntime starts any thread.
    os.sched_setaffinity(0, {args.cpu})
    registry = Registry(args.model_dir)
    dataset = data.load(data.find_data_dir() or data.DEFAULT_DIR)
    single = normalize(dataset.test_images[:1])
    batch = normalize(dataset.test_images[:BATCH])
    models = {
        v: OnnxModel(registry.read_verified(args.name, v), [CPU], threads=1) for v in args.versions
    }
    cards = {v: registry.card(args.name, v) for v in args.versions}
    samples: dict[int, dict[str, list[float]]] = {
        v: {"one": [], "one_cpu": [], "batch": []} for v in models
    }
    started = time.monotonic()
    for round_number in range(args.rounds):
        order = args.versions[round_number % len(args.versions) :]
        order += args.versions[: round_number % len(args.versions)]
        for version in order:
            wall, cpu = per_call_us(models[version], single, args.calls)
            samples[version]["one"].append(wall)
            samples[version]["one_cpu"].append(cpu)
            wall, _ = per_call_us(models[version], batch, max(1, args.calls // 100))
            samples[version]["batch"].append(wall / BATCH)
    medians = {v: {k: statistics.median(s) for k, s in samples[v].items()} for v in models}
    first = args.versions[0]
    load = os.getloadavg()[0]
    print(
        f"onnxruntime per image on CPU {args.cpu} ({args.name}, 1 intra-op thread; medians of "
        f"{args.rounds} interleaved rounds × {args.calls} single-image calls; "
        f"{time.monotonic() - started:.0f} s; load average {load:.1f}):\n"
    )
    print("| version | architecture | parameters | MFLOPs | 1 image µs | × v"
          f"{first} | 1 image, CPU µs | batch of {BATCH}, µs/image |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for version in args.versions:
        architecture = cards[version].get("architecture", {})
        flops = architecture.get("flops_per_image")
        if flops is not None and cards[version].get("inference", {}).get("test_time_mirroring"):
            flops *= 2  # the card counts one pass of the network; the graph makes two
        print(
            f"| {version} | {architecture.get('name', '?')} | "
            f"{architecture.get('parameters', 0):,} | "
            f"{'?' if flops is None else f'{flops / 1e6:.2f}'} | "
            f"{medians[version]['one']:.1f} | "
            f"{medians[version]['one'] / medians[first]['one']:.2f}× | "
            f"{medians[version]['one_cpu']:.1f} | {medians[version]['batch']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
