"""Static int8 quantization: a registered version's graph with int8 weights, registered as the
next version and measured afresh.

Its convolutions get int8 weights (one scale per output channel, 7 bits used so that every x86
CPU's integer kernels compute them exactly) and uint8 inputs whose ranges are set on training
images of the source version's own split; onnxruntime then runs them in integer arithmetic.
Everything else stays float32: the dense layers (under 1 % of version 8's operations, and the
readout the activations view reads), the temperature, the softmax and the novelty output, and
so does the contract. Version 8 quantized this way answers in 0.57x its time per image on a
CPU with AVX-512 VNNI and 0.81x on an AVX2 one, with the same test accuracy (docs/models.md,
"Version 10").

    .venv/bin/python -m training.quantize 11 --promote production --gate
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from service.contract import CLASS_NAMES, validate_name
from service.preprocess import normalize
from service.registry import Registry
from service.runtime import offline_model
from training import MODEL_DIR_ENV, TrainingError, calibrate, data, job, novelty, plots
from training.metrics import metrics_from_logits

CALIBRATION_IMAGES = 2000
CALIBRATION_BATCH = 100
OPERATORS = ("Conv",)
# Share of test images whose top class must stay the source's (version 8 quantized: 0.9963).
MIN_AGREEMENT = 0.99
# The card keys that describe the source file or its promotion, not the quantized version.
NOT_INHERITED = ("name", "version", "sha256", "created_at", "gate")


class _Batches(CalibrationDataReader):  # type: ignore[misc]  # onnxruntime ships no types
    """The calibration images, fed to the calibrator a batch at a time."""

    def __init__(self, images: np.ndarray) -> None:
        starts = range(0, len(images), CALIBRATION_BATCH)
        self._batches = iter([images[start : start + CALIBRATION_BATCH] for start in starts])

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {"image": batch}


def quantized(source: bytes, calibration: np.ndarray) -> bytes:
    """The source graph with int8 weights (7 bits used) and uint8 inputs on OPERATORS (QDQ
    format), the ranges the min and max seen over float32 [N,28,28] calibration images."""
    with tempfile.TemporaryDirectory(prefix="fashion-quantize-") as tmp:
        work = Path(tmp)
        (work / "source.onnx").write_bytes(source)
        # Shapes inferred and batch norm folded first, as onnxruntime recommends.
        quant_pre_process(work / "source.onnx", work / "prepared.onnx", skip_symbolic_shape=True)
        quantize_static(
            work / "prepared.onnx",
            work / "int8.onnx",
            _Batches(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            op_types_to_quantize=list(OPERATORS),
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            # 7-bit weights: x86 CPUs without VNNI sum pairs of uint8 x int8 products in 16
            # bits, which 8-bit weights overflow (docs/models.md, "Version 10").
            reduce_range=True,
        )
        return (work / "int8.onnx").read_bytes()


# What the source's card must record of its split: calibration and validation come from it.
SPLIT_KEYS = ("train_count", "validation_count", "train_images_sha256")


def check_quantizable(source: bytes, card: dict[str, Any]) -> None:
    """TrainingError unless the graph has operators to quantize, is not quantized already and
    its card records the split it was trained on."""
    if "quantization" in card:
        raise TrainingError(
            f"version {card['version']} is already quantized (from version "
            f"{card['quantization']['from_version']}): quantize that one"
        )
    if not any(node.op_type in OPERATORS for node in onnx.load_from_string(source).graph.node):
        raise TrainingError(f"version {card['version']} has no {', '.join(OPERATORS)} to quantize")
    counts, training = card.get("data", {}), card.get("training", {})
    if not counts.keys() >= set(SPLIT_KEYS) or "seed" not in training:
        raise TrainingError(
            f"version {card['version']}'s card does not say which images trained it (data: "
            f"{', '.join(SPLIT_KEYS)}; training: seed): quantizing calibrates on that split"
        )


def source_split(
    card: dict[str, Any], dataset: data.Dataset
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(training images, validation images, validation labels) of the source version's own
    split, uint8; raises TrainingError when the dataset is not the one it was trained on."""
    counts = card["data"]
    used = counts["train_count"] + counts["validation_count"]
    images, labels = dataset.train_images[:used], dataset.train_labels[:used]
    if len(images) != used or data.sha256_of(images) != counts["train_images_sha256"]:
        raise TrainingError(
            f"the training images in {dataset.source} are not those version {card['version']} "
            "was trained on (its card's train_images_sha256 differs)"
        )
    train, _, held, held_labels = data.split_validation(
        images, labels, counts["validation_count"], card["training"]["seed"]
    )
    return train, held, held_labels


def calibration_images(train: np.ndarray, count: int, seed: int) -> np.ndarray:
    """count of the training images, drawn at random by seed, normalized."""
    chosen = np.random.default_rng(seed).choice(len(train), min(count, len(train)), replace=False)
    return normalize(train[np.sort(chosen)])


def _log(probabilities: np.ndarray) -> np.ndarray:
    """Logits whose softmax is the probabilities (the temperature is already in them)."""
    logits: np.ndarray = np.log(np.maximum(probabilities, np.finfo(np.float32).tiny))
    return logits


def parity(
    source: tuple[np.ndarray, np.ndarray | None],
    int8: tuple[np.ndarray, np.ndarray | None],
    against: int,
    floor: float,
) -> dict[str, Any]:
    """The card's parity entry, against the source's answers on the same images; TrainingError
    when fewer than `floor` of the top classes agree."""
    (source_p, source_novelty), (int8_p, int8_novelty) = source, int8
    agreement = float((source_p.argmax(axis=1) == int8_p.argmax(axis=1)).mean())
    entry: dict[str, Any] = {
        "against_version": against,
        "images": len(source_p),
        "max_abs_diff": float(np.abs(source_p - int8_p).max()),
        "top1_agreement": agreement,
    }
    if source_novelty is not None and int8_novelty is not None:
        scale = np.maximum(np.abs(source_novelty), 1.0)
        entry["novelty_max_relative_diff"] = float(
            (np.abs(source_novelty - int8_novelty) / scale).max()
        )
    if agreement < floor:
        raise TrainingError(
            f"the quantized graph keeps version {against}'s top class on {agreement:.2%} of "
            f"{len(source_p)} test images (floor {floor:.2%}); not registering"
        )
    return entry


def _calibration(
    entry: dict[str, Any], sets: dict[str, tuple[np.ndarray, np.ndarray]]
) -> dict[str, Any]:
    """The source's calibration entry (its temperature is in the graph) with ECE and NLL
    measured again on the quantized graph's probabilities."""
    measured = {
        where: {
            "ece_after": round(calibrate.ece(probabilities, labels), 6),
            "nll_after": round(calibrate.nll(probabilities, labels), 6),
        }
        for where, (probabilities, labels) in sets.items()
    }
    return {**entry, **measured}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.quantize",
        description="Quantize a registered version to int8 (static, per-channel weights, "
        "ranges from its own training images), check it against the source on the test set, "
        "measure it and register it as the next version.",
    )
    parser.add_argument("version", type=int, help="the registered version to quantize")
    parser.add_argument(
        "--registry",
        default=os.environ.get(MODEL_DIR_ENV, "models"),
        help=f"registry root; default ${MODEL_DIR_ENV}, else ./models",
    )
    parser.add_argument("--name", default="fashion-mnist", help="model name (default %(default)s)")
    parser.add_argument(
        "--data-dir",
        help=f"folder with the four IDX files; default ${data.ENV_VAR}, else {data.DEFAULT_DIR}",
    )
    parser.add_argument(
        "--calibration-images",
        type=int,
        default=CALIBRATION_IMAGES,
        metavar="N",
        help="training images the activation ranges are set on (default %(default)s)",
    )
    parser.add_argument(
        "--min-agreement",
        type=float,
        default=MIN_AGREEMENT,
        metavar="SHARE",
        help="register only if the source's top class stays on this share of the test images "
        "(default %(default)s)",
    )
    job.add_options(parser)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.calibration_images < 1:
        parser.error("--calibration-images must be at least 1")
    if not 0 < args.min_agreement <= 1:
        parser.error("--min-agreement must be above 0 and at most 1")
    job.check_options(parser, args)
    return args


def run(args: argparse.Namespace) -> int:
    """Quantize, check, measure, register (and promote); return the new version."""
    name = validate_name(args.name)
    job.validate(args)
    registry = Registry(args.registry)
    source = registry.read_verified(name, args.version)
    card = registry.card(name, args.version)
    check_quantizable(source, card)
    data_dir = data.find_data_dir(args.data_dir)
    if data_dir is None:
        raise TrainingError(
            f"no Fashion-MNIST files: give --data-dir or ${data.ENV_VAR}, or install them in "
            f"{data.DEFAULT_DIR}"
        )
    dataset = data.load(data_dir)
    train, held, held_labels = source_split(card, dataset)
    seed = card["training"]["seed"]
    calibration = calibration_images(train, args.calibration_images, seed)
    int8 = quantized(source, calibration)
    model, original = offline_model(int8), offline_model(source)
    test_images, test_labels = normalize(dataset.test_images), dataset.test_labels
    answers = model.run_judged(test_images)
    checked = parity(original.run_judged(test_images), answers, args.version, args.min_agreement)
    metrics = metrics_from_logits(_log(answers[0]), test_labels)
    print(
        f"quantized version {args.version}: test accuracy {metrics['test_accuracy']:.4f} "
        f"(was {card['metrics']['test_accuracy']:.4f}), top-1 agreement "
        f"{checked['top1_agreement']:.2%}, max |diff| {checked['max_abs_diff']:.3g}",
        flush=True,
    )
    quantized_card = {key: value for key, value in card.items() if key not in NOT_INHERITED}
    quantized_card |= {
        "metrics": metrics,
        "parity": checked,
        "quantization": {
            "from_version": args.version,
            "method": "static, QDQ: int8 weights within -64..63 with one scale per output "
            "channel, uint8 activations with ranges from min and max over the calibration "
            "images",
            "operators": list(OPERATORS),
            "calibration_images": len(calibration),
            "calibration_seed": seed,
            "onnxruntime": onnxruntime.__version__,
        },
    }
    held_answers = model.run_judged(normalize(held))  # once, for calibration and novelty
    if card.get("calibration"):
        quantized_card["calibration"] = _calibration(
            card["calibration"],
            {"validation": (held_answers[0], held_labels), "test": (answers[0], test_labels)},
        )
    if "novelty" in card:

        def score(images: np.ndarray) -> np.ndarray:
            scores = model.run_judged(images)[1]
            assert scores is not None  # the source has the output, and quantizing keeps it
            return scores

        assert held_answers[1] is not None
        assert answers[1] is not None
        quantized_card["novelty"] = novelty.card_entry(score, held_answers[1], answers[1])
        print(f"novelty: {novelty.summary_line(quantized_card['novelty'])}", flush=True)
    with tempfile.TemporaryDirectory(prefix="fashion-quantize-") as tmp:
        work = Path(tmp)
        (work / "model.onnx").write_bytes(int8)
        extra: dict[str, str | os.PathLike[str]] = {
            "confusion.png": plots.confusion_plot(
                metrics["confusion_matrix"], CLASS_NAMES, work / "confusion.png"
            )
        }
        history = registry.model_path(name, args.version).parent / "training.png"
        if history.is_file():  # the same training: its curves are the source's
            extra["training.png"] = history
        version = registry.register(name, work / "model.onnx", quantized_card, extra_files=extra)
    job.registered(registry, name, version, args)
    return version


def main(argv: list[str] | None = None) -> int:
    """Run the job; expected failures become one `error: ...` line and exit status 1."""
    return job.run_reporting(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
