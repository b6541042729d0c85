"""Preprocessing speed: this tree against main's service/preprocess.py, interleaved, one core.

Run from the project root: `.venv/bin/python -m bench.preprocess` (--rounds, --calls, --base,
--callgrind). Prints a Markdown table of per-image medians of CPU time: a 28×28 PNG (the dataset
path, which must not be more than 10 % slower than before photo mode), a product-photo JPEG, and
a 12-megapixel camera JPEG (photo mode's budget: 30 ms on one core). With --callgrind, also
valgrind's exact instruction counts per call (a run of K calls minus a run of none).
"""

import argparse
import importlib.util
import io
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from bench.workload import ROOT
from evaluation.photos import render_photos
from service import preprocess as current
from training.data import DEFAULT_DIR, load

CPU = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    parser.add_argument("--calls", type=int, default=0, help="calls per input and round")
    parser.add_argument("--base", default="main", help="git revision to compare with (main)")
    parser.add_argument("--callgrind", action="store_true", help="also count instructions")
    parser.add_argument("--skip-timing", action="store_true", help="with --callgrind: only count")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)  # module file, input, calls
    args = parser.parse_args()
    if args.worker:
        return _callgrind_worker(*args.worker)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {CPU})  # one core: the budget is per core

    base_path = _source_at(args.base)
    base = _import(base_path)
    inputs = _inputs()
    impls = {args.base: base.preprocess_images, "this tree": current.preprocess_images}
    samples: dict[tuple[str, str], list[float]] = {}
    for round_index in range(0 if args.skip_timing else args.rounds):
        order = list(impls.items())
        if round_index % 2:
            order.reverse()  # neither side always runs second, on warmer caches
        for name, data in inputs.items():
            calls = args.calls or (2000 if len(data) < 10_000 else 40)
            for impl, run in order:
                per_call = _time(lambda run=run, data=data: run([data]), calls)
                samples.setdefault((name, impl), []).append(per_call)

    if samples:
        _print_times(inputs, samples, args.base, args.rounds)
    if args.callgrind:
        _print_instructions(inputs, {args.base: base_path, "this tree": Path(current.__file__)})


def _print_times(inputs: dict[str, bytes], samples: dict, base: str, rounds: int) -> None:
    print(f"Preprocessing one image on CPU {CPU}: CPU time, median of {rounds} interleaved")
    print(f"rounds ({base} = `git show {base}:service/preprocess.py`):\n")
    print(f"| input | bytes | {base} | this tree | this tree / {base} |")
    print("|---|---:|---:|---:|---:|")
    for name, data in inputs.items():
        old = statistics.median(samples[(name, base)])
        new = statistics.median(samples[(name, "this tree")])
        print(f"| {name} | {len(data):,} | {_ms(old)} | {_ms(new)} | {new / old:.2f} |")


def _print_instructions(inputs: dict[str, bytes], modules: dict[str, Path]) -> None:
    """Instructions per call under callgrind: exact where timings on a busy host are not."""
    folder = Path(tempfile.mkdtemp(prefix="bench-preprocess-inputs-"))
    names = list(modules)
    paths = []
    for index, data in enumerate(inputs.values()):
        paths.append(folder / f"input-{index}")
        paths[-1].write_bytes(data)
    for module in modules.values():
        _instructions(module, paths[0], 0)  # writes the bytecode cache: not counted below
    print("\nInstructions per call (valgrind --tool=callgrind: a run of K calls minus a run of")
    print("none, PYTHONHASHSEED=0; K = 3,000, 100 and 10 from the smallest input up):\n")
    print(f"| input | {names[0]} | {names[1]} | {names[1]} / {names[0]} |")
    print("|---|---:|---:|---:|")
    for path, (name, data) in zip(paths, inputs.items(), strict=True):
        # Start-up varies by ~8 M instructions from run to run (addresses differ): K calls
        # make that under 1 % of a call's count.
        calls = 3000 if len(data) < 1_000 else 100 if len(data) < 100_000 else 10
        counts = [
            (_instructions(modules[impl], path, calls) - _instructions(modules[impl], path, 0))
            / calls
            for impl in names
        ]
        print(f"| {name} | {counts[0]:,.0f} | {counts[1]:,.0f} | {counts[1] / counts[0]:.2f} |")


def _instructions(module: Path, data: Path, calls: int) -> int:
    """Instructions valgrind counts for a worker process making calls calls."""
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-m",
            "bench.preprocess",
            "--worker",
            str(module),
            str(data),
            str(calls),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "0"},  # the same dicts, the same start-up count
        capture_output=True,
        text=True,
        check=True,
    )
    return int(re.search(r"Collected : (\d+)", done.stderr).group(1))


def _callgrind_worker(module: str, data: str, calls: str) -> None:
    """Inside valgrind: one warm-up call, then calls calls, nothing else."""
    run = _import(Path(module)).preprocess_images
    blob = Path(data).read_bytes()
    run([blob])
    for _ in range(int(calls)):
        run([blob])


def _source_at(revision: str) -> Path:
    """service/preprocess.py as it is at a git revision, in a temporary file."""
    source = subprocess.run(
        ["git", "show", f"{revision}:service/preprocess.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="bench-preprocess-")) / "base_preprocess.py"
    path.write_text(source)
    return path


def _import(path: Path):
    """A module from a file, under its own name (main's copy beside this tree's)."""
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _inputs() -> dict[str, bytes]:
    """The three uploads: a dataset PNG, a product photo, a camera-sized product photo."""
    data = load(DEFAULT_DIR)
    buffer = io.BytesIO()
    Image.fromarray(data.test_images[0]).save(buffer, "PNG")
    product = render_photos(data.test_images, data.test_labels, 1, seed=0)[0].data
    return {
        "28×28 PNG (dataset image)": buffer.getvalue(),
        f"{Image.open(io.BytesIO(product)).size[0]}-pixel product-photo JPEG": product,
        "4000×3000 camera JPEG (12 MP)": _camera_photo(data.test_images[0]),
    }


def _camera_photo(item: np.ndarray) -> bytes:
    """A 12-megapixel JPEG as a phone takes it: the garment on a shaded ground, sensor noise."""
    rng = np.random.default_rng(0)
    coverage = np.asarray(
        Image.fromarray(item).resize((2400, 2400), Image.Resampling.BICUBIC), np.float32
    )
    y, x = np.mgrid[0:3000, 0:4000].astype(np.float32)
    ground = 235 - 25 * (x / 4000) - 15 * (y / 3000)
    alpha = np.zeros((3000, 4000), np.float32)
    alpha[300:2700, 1000:3400] = coverage / 255
    grey = ground * (1 - alpha) + 40 * alpha + rng.normal(0, 3, alpha.shape).astype(np.float32)
    rgb = np.stack([grey * 0.98, grey, grey * 1.03], axis=2)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _time(call: Callable[[], object], calls: int) -> float:
    """CPU seconds per call over a batch of calls, after one warm-up call.

    CPU time, not wall time: on a shared host the wall clock also counts other jobs' turns.
    """
    call()
    started = time.thread_time()
    for _ in range(calls):
        call()
    return (time.thread_time() - started) / calls


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms" if seconds < 0.01 else f"{seconds * 1e3:.1f} ms"


if __name__ == "__main__":
    sys.exit(main())
