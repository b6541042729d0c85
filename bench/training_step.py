"""Where a training epoch's time goes: the train step per architecture against augmentation.

    .venv/bin/python -m bench.training_step                       # cnn-ood and cnn-deep
    .venv/bin/python -m bench.training_step --archs cnn-ood cnn-deep --jit --rounds 5
    .venv/bin/python -m bench.training_step --archs cnn-deep --bf16  # float32 against bfloat16
    .venv/bin/python -m bench.training_step --archs cnn-decay --keras-batch-norm  # fused or not

Each architecture (and with --jit, the same network compiled by XLA) takes Keras train steps on
real training images, one after the other in interleaved rounds, so a noisy neighbour slows all
of them alike; the table shows medians over rounds of the wall and CPU time per image (CPU
time counts every thread, so it is what the step costs whatever else runs). The augmentation
row times the recipe's tf.data pipeline alone (training.augment.training_batches), which Keras
overlaps with the steps on its own threads.

With --keras-batch-norm, each network also runs with Keras' own batch norm, which training
replaced by TensorFlow's fused kernel (training.model.FusedBatchNormalization).

Keras silently compiles without XLA while TensorFlow's op determinism is on (training turns it
on), so with --jit every row runs without it, and a network Keras still will not compile is an
error rather than a row that only claims to be XLA.
"""

import argparse
import functools
import os
import statistics
import sys
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # after the log level: TensorFlow reads it on import

from service.preprocess import normalize
from training import data
from training.augment import RECIPES, training_batches
from training.model import FusedBatchNormalization, build, seed_everything

BATCH = 128


def _per_image(run: Callable[[], object], images: int) -> tuple[float, float]:
    """(wall, CPU) µs per image of calling run()."""
    start, cpu_start = time.perf_counter(), time.process_time()
    run()
    return (
        (time.perf_counter() - start) / images * 1e6,
        (time.process_time() - cpu_start) / images * 1e6,
    )


def with_keras_batch_norm(model: keras.Model) -> keras.Model:
    """A copy of model (compiled alike, weights fresh) with Keras' own batch norm layers."""
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == FusedBatchNormalization.__name__:
            layer.update(class_name="BatchNormalization", module="keras.layers")
            layer.pop("registered_name")
    twin = keras.Sequential.from_config(config)
    optimizer = type(model.optimizer).from_config(model.optimizer.get_config())
    twin.compile(optimizer=optimizer, loss=model.loss, jit_compile=model.jit_compile)
    return twin


def main(argv: list[str] | None = None) -> int:
    """Measure and print the Markdown table."""
    parser = argparse.ArgumentParser(prog="python -m bench.training_step", description=__doc__)
    parser.add_argument("--archs", nargs="+", default=["cnn-ood", "cnn-deep"])
    parser.add_argument(
        "--jit", action="store_true", help="also each network under XLA (op determinism off)"
    )
    parser.add_argument(
        "--bf16", action="store_true", help="also each network in mixed_bfloat16 precision"
    )
    parser.add_argument(
        "--keras-batch-norm",
        action="store_true",
        help="also each network with Keras' own batch norm instead of the fused kernel",
    )
    parser.add_argument("--rounds", type=int, default=4, help="default %(default)s")
    parser.add_argument("--steps", type=int, default=30, help="per round (default %(default)s)")
    args = parser.parse_args(argv)
    if args.jit:
        keras.utils.set_random_seed(42)
    else:
        seed_everything(42)
    dataset = data.load(data.find_data_dir() or data.DEFAULT_DIR)
    count = BATCH * args.steps
    images, labels = normalize(dataset.train_images[:count]), dataset.train_labels[:count]
    variants: dict[str, keras.Model] = {}
    options = [("", False, "float32")]
    options += [(" (XLA)", True, "float32")] if args.jit else []
    options += [(" (mixed_bfloat16)", False, "mixed_bfloat16")] if args.bf16 else []
    for arch in args.archs:
        for suffix, jit, precision in options:
            model = build(arch, 2e-3, precision=precision)
            model.compile(optimizer=model.optimizer, loss=model.loss, jit_compile=jit)
            if model.jit_compile != jit:
                raise SystemExit(f"Keras would not compile {arch} with XLA")
            twins = {arch + suffix: model}
            if args.keras_batch_norm:
                twins[f"{arch}{suffix}, Keras' batch norm"] = with_keras_batch_norm(model)
            for name, twin in twins.items():
                twin.fit(images[: 4 * BATCH], labels[: 4 * BATCH], batch_size=BATCH, verbose=0)
                variants[name] = twin
    recipe = RECIPES[args.archs[-1]]
    # Built (and its map traced) once: each round only iterates it, as an epoch of fit() does.
    pipeline = training_batches(images, labels, BATCH, 1, 0, recipe)

    def augmentation() -> None:
        for _ in pipeline:
            pass

    augmentation()  # the first pass warms tf.data's threads

    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in [*variants, "aug"]}
    started = time.monotonic()
    for _ in range(args.rounds):
        for name, model in variants.items():
            step = functools.partial(model.fit, images, labels, batch_size=BATCH, verbose=0)
            samples[name].append(_per_image(step, count))
        samples["aug"].append(_per_image(augmentation, count))
    first = statistics.median(wall for wall, _ in samples[next(iter(variants))])
    print(
        f"Keras train steps, batch {BATCH}, {args.steps} steps per round, medians of "
        f"{args.rounds} interleaved rounds ({time.monotonic() - started:.0f} s; load average "
        f"{os.getloadavg()[0]:.1f}):\n"
    )
    print("| what | wall µs/image | × first | CPU µs/image |")
    print("|---|---:|---:|---:|")
    for name, rows in samples.items():
        wall = statistics.median(w for w, _ in rows)
        cpu = statistics.median(c for _, c in rows)
        label = f"augmentation alone ({args.archs[-1]}'s recipe)" if name == "aug" else name
        print(f"| {label} | {wall:.0f} | {wall / first:.2f}× | {cpu:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
