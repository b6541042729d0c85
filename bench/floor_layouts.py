"""The model floor of CNN layouts not trained yet: what a wider network would cost per image.

    .venv/bin/python -m bench.floor_layouts                       # version 6's and four wider
    .venv/bin/python -m bench.floor_layouts --layouts 32/48,48/64,64 32/48,48/96,96
    .venv/bin/python -m bench.floor_layouts --int8 --layouts 32/48,48/96,96 \
        32/48,48/96,96:mirror 32,32/48,48/96,96

A layout is the widths of the 3x3 convolutions at 28, 14 and 7 pixels (training.model's
stages); ":mirror" adds test-time mirroring to its graph. Each is built untrained, exported as
training exports a version (temperature and the novelty output in the graph), with --int8
quantized as training.quantize quantizes one, and timed like bench.floor_models: the
service's session, one intra-op thread, one pinned CPU, single-image calls in interleaved
rounds, medians.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.floor_models import per_call_us
from service.preprocess import normalize
from service.runtime import CPU, OnnxModel
from training import data
from training.export import to_onnx
from training.model import describe, network
from training.quantize import CALIBRATION_IMAGES, calibration_images, quantized

MIRROR = ":mirror"
# Versions 5 and 6's network first, then wider stages at 7 px, at 14 px, both, and at 28 px.
LAYOUTS = (
    "32/48,48/64,64", "32/48,48/96,96", "32/64,64/64,64", "32/64,64/96,96", "32,32/48,48/64,64",
)  # fmt: skip


def stages(layout: str) -> tuple[tuple[int, ...], ...]:
    """ "32/48,48/64,64" → ((32,), (48, 48), (64, 64))."""
    return tuple(tuple(int(w) for w in stage.split(",")) for stage in layout.split("/"))


def main(argv: list[str] | None = None) -> int:
    """Measure and print the Markdown table."""
    parser = argparse.ArgumentParser(prog="python -m bench.floor_layouts", description=__doc__)
    parser.add_argument("--layouts", nargs="+", default=list(LAYOUTS))
    parser.add_argument("--rounds", type=int, default=7, help="default %(default)s")
    parser.add_argument("--calls", type=int, default=1000, help="per round (default %(default)s)")
    parser.add_argument("--cpu", type=int, default=1, help="CPU to pin to (default %(default)s)")
    parser.add_argument("--int8", action="store_true", help="time the graphs quantized")
    args = parser.parse_args(argv)
    dataset = data.load(data.find_data_dir() or data.DEFAULT_DIR)
    image = normalize(dataset.test_images[:1])
    calibration = None
    if args.int8:  # as many training images as training.quantize sets the ranges on
        calibration = calibration_images(dataset.train_images, CALIBRATION_IMAGES, seed=0)
    models: dict[str, OnnxModel] = {}
    flops: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as folder:
        for layout in args.layouts:
            widths, mirror = layout.removesuffix(MIRROR), layout.endswith(MIRROR)
            model = network(stages(widths))
            flops[layout] = describe(model)["flops_per_image"] * (2 if mirror else 1)
            path = to_onnx(
                model, Path(folder) / "model.onnx", temperature=1.2, mirror=mirror, novelty=True
            )
            graph = path.read_bytes()
            models[layout] = OnnxModel(
                graph if calibration is None else quantized(graph, calibration), [CPU], threads=1
            )
    os.sched_setaffinity(0, {args.cpu})  # TensorFlow's threads are done; time on one CPU
    samples: dict[str, list[float]] = {layout: [] for layout in models}
    started = time.monotonic()
    for round_number in range(args.rounds):
        shift = round_number % len(args.layouts)
        for layout in args.layouts[shift:] + args.layouts[:shift]:
            samples[layout].append(per_call_us(models[layout], image, args.calls)[0])
    first = statistics.median(samples[args.layouts[0]])
    print(
        f"onnxruntime per image on CPU {args.cpu}, untrained layouts with the novelty output"
        f"{', in int8' if args.int8 else ''} "
        f"(medians of {args.rounds} interleaved rounds × {args.calls} calls; "
        f"{time.monotonic() - started:.0f} s; load average {os.getloadavg()[0]:.1f}):\n"
    )
    print("| layout (widths at 28, 14, 7 px) | MFLOPs | 1 image µs | × first |")
    print("|---|---:|---:|---:|")
    for layout, times in samples.items():
        median = statistics.median(times)
        name = layout.replace("/", " \\| ")
        print(f"| {name} | {flops[layout] / 1e6:.1f} | {median:.0f} | {median / first:.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
