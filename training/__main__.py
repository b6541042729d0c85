"""Command line: read data → train → evaluate → export to ONNX → parity → register (→ promote)."""

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from service import cpu
from service.contract import CLASS_NAMES, validate_name
from service.preprocess import normalize
from service.registry import Registry
from training import MODEL_DIR_ENV, captured, data, job

if TYPE_CHECKING:  # training.train imports TensorFlow, which run() loads only when needed
    from training.train import Fit

DEFAULT_ARCH = "cnn-mirror"
# Keras dtype policies training may compute in. mixed_bfloat16 keeps float32 weights and
# computes in bfloat16: on a CPU with avx512_bf16 a step costs 12-14 % less CPU and, with the
# second core free, 0.52-0.85x the wall time; without it, 10x float32's (bench/README.md,
# "Training"), so a recipe's mixed_bfloat16 applies only where the CPU has bfloat16.
BFLOAT16 = "mixed_bfloat16"
PRECISIONS = ("float32", BFLOAT16)
# Each recipe's defaults: the MLP keeps the tutorial's (version 1's command still reproduces
# version 1); the CNN's are the shipped version 2's; cnn-real's are version 3's; cnn-ood's
# version 4's; cnn-deep's version 5's; cnn-long's version 6's; cnn-wide's version 7's (22
# epochs of the wider network cost 8-13 % less CPU than version 6's 28); cnn-taught's version
# 8's: cnn-wide distilled from versions 5, 6 and 7; cnn-decay's version 13's: cnn-taught with
# its convolution kernels decayed; cnn-mirror's, the default, version 15's: cnn-decay on labels
# alone, answering each image with its mirror, for the 40 epochs a CPU with bfloat16 trains
# in the budget (docs/models.md, "Versions 15 and 16").
_NO_DRAWN = {
    "outlier_weight": 0.0, "drawn_repeat": 0, "novelty": False, "precision": "float32",
    "teachers": (), "weight_decay": 0.0,
}  # fmt: skip
_LONG = {
    "epochs": 28, "batch_size": 128, "learning_rate": 2e-3, "validation": 5000,
    "patience": 0, "augment": True, "mirror": False, "calibrate": True,
    "outlier_weight": 0.3, "drawn_repeat": 30, "novelty": True, "precision": BFLOAT16,
    "teachers": (), "weight_decay": 0.0,
}  # fmt: skip
ARCH_DEFAULTS = {
    "mlp": {
        "epochs": 10, "batch_size": 32, "learning_rate": 1e-3, "validation": 0,
        "patience": 0, "augment": False, "mirror": False, "calibrate": False, **_NO_DRAWN,
    },
    "cnn": {
        "epochs": 15, "batch_size": 128, "learning_rate": 2e-3, "validation": 5000,
        "patience": 5, "augment": True, "mirror": False, "calibrate": False, **_NO_DRAWN,
    },
    "cnn-real": {
        "epochs": 20, "batch_size": 128, "learning_rate": 2e-3, "validation": 5000,
        "patience": 0, "augment": True, "mirror": False, "calibrate": True, **_NO_DRAWN,
    },
    "cnn-ood": {
        "epochs": 20, "batch_size": 128, "learning_rate": 2e-3, "validation": 5000,
        "patience": 0, "augment": True, "mirror": False, "calibrate": True,
        "outlier_weight": 0.5, "drawn_repeat": 40, "novelty": True, "precision": "float32",
        "teachers": (), "weight_decay": 0.0,
    },
    "cnn-deep": {
        "epochs": 18, "batch_size": 128, "learning_rate": 2e-3, "validation": 5000,
        "patience": 0, "augment": True, "mirror": False, "calibrate": True,
        "outlier_weight": 0.3, "drawn_repeat": 30, "novelty": True, "precision": "float32",
        "teachers": (), "weight_decay": 0.0,
    },
    "cnn-long": _LONG,
    "cnn-wide": {**_LONG, "epochs": 22},
    "cnn-taught": {**_LONG, "epochs": 22, "teachers": (5, 6, 7)},
    "cnn-decay": {**_LONG, "epochs": 22, "teachers": (5, 6, 7), "weight_decay": 0.3},
    "cnn-mirror": {
        **_LONG, "epochs": 40, "validation": 2000, "mirror": True, "weight_decay": 0.3,
    },
}  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The job's options; defaults depend on --arch (ARCH_DEFAULTS)."""
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train a Fashion-MNIST network (the tutorial's MLP by default, or a small "
        "CNN), export it to ONNX, check Keras-vs-ONNX parity on the test set and register it "
        "as the next version.",
    )
    parser.add_argument(
        "--arch",
        choices=tuple(ARCH_DEFAULTS),
        default=DEFAULT_ARCH,
        help="mlp: the tutorial's Dense(128) network (version 1); cnn: four 3x3 "
        "convolutions (16-32-64-64) with batch norm and pooling, a Dense(128) head with "
        "dropout, trained with augmentation (version 2); cnn-real (version 3): "
        "the CNN trained for pictures drawn by others (mirroring, outlines, silhouettes, "
        "flat fills, erasing), with a fitted temperature in its graph; cnn-ood (version 4): "
        "cnn-real plus outlier exposure, drawn clothing icons and a novelty output; cnn-deep "
        "(version 5): cnn-ood's recipe on a network with two convolutions at 14x14, its last "
        "epochs on lightly changed images; cnn-long (version 6): cnn-deep trained "
        "in mixed_bfloat16 for 28 epochs, the last 6 calm; cnn-wide (version 7): "
        "cnn-long with 96 filters at 7x7, 22 epochs, the last 5 calm; cnn-taught (version 8): "
        "cnn-wide distilled from versions 5, 6 and 7 (--teachers); cnn-decay (version 13): "
        "cnn-taught with AdamW's weight decay on its convolutions (--weight-decay); cnn-mirror "
        "(default, version 15): cnn-decay on labels alone with test-time mirroring "
        "(--mirror), 2,000 validation images, 40 epochs",
    )
    parser.add_argument(
        "--data-dir",
        help=f"folder with the four IDX files (.gz or not); default ${data.ENV_VAR}, else "
        f"{data.DEFAULT_DIR}, else download them with Keras",
    )
    parser.add_argument(
        "--registry",
        default=os.environ.get(MODEL_DIR_ENV, "models"),
        help=f"registry root (must exist); default ${MODEL_DIR_ENV}, else ./models",
    )
    parser.add_argument("--name", default="fashion-mnist", help="model name (default %(default)s)")
    per_arch = "default: mlp {mlp}, cnn {cnn}"

    def arch_help(option: str, text: str = "") -> str:
        values = {arch: defaults[option] for arch, defaults in ARCH_DEFAULTS.items()}
        return text + per_arch.format(**values)

    parser.add_argument("--epochs", type=int, help=arch_help("epochs", "at most; "))
    parser.add_argument("--batch-size", type=int, help=arch_help("batch_size"))
    parser.add_argument("--seed", type=int, default=42, help="default %(default)s")
    parser.add_argument(
        "--learning-rate", type=float, help=arch_help("learning_rate", "Adam's initial rate; ")
    )
    parser.add_argument(
        "--validation",
        type=int,
        metavar="N",
        help=arch_help(
            "validation",
            "hold out N random training images to keep the best epoch's weights and stop "
            "early (0: train on all of them); ",
        ),
    )
    parser.add_argument(
        "--patience",
        type=int,
        metavar="E",
        help=arch_help(
            "patience", "stop after E epochs without a better validation accuracy (0: never); "
        ),
    )
    parser.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        help=arch_help(
            "augment",
            "change every training batch on the fly as photo mode's output differs from "
            "dataset images (training.augment.RECIPES[arch]); ",
        ),
    )
    parser.add_argument(
        "--mirror",
        action=argparse.BooleanOptionalAction,
        help=arch_help(
            "mirror",
            "test-time mirroring: the exported graph averages the logits of each image and "
            "its left-right mirror; ",
        ),
    )
    parser.add_argument(
        "--calibrate",
        action=argparse.BooleanOptionalAction,
        help=arch_help(
            "calibrate",
            "fit a temperature on the validation images (needs --validation) and divide the "
            "exported graph's logits by it; ",
        ),
    )
    parser.add_argument(
        "--outlier-weight",
        type=float,
        metavar="W",
        help=arch_help(
            "outlier_weight",
            "outlier exposure (training.drawn): the outliers' cross-entropy to the uniform "
            "distribution, all together weighing W/10 of the dataset images (0: off); ",
        ),
    )
    parser.add_argument(
        "--drawn-repeat",
        type=int,
        metavar="K",
        help=arch_help(
            "drawn_repeat",
            "mix the labelled clothing icons of training.drawn into training, each K times "
            "(0: off); ",
        ),
    )
    parser.add_argument(
        "--novelty",
        action=argparse.BooleanOptionalAction,
        help=arch_help(
            "novelty",
            "export the energy score as a second output `novelty` and record its threshold at "
            "a 4%% false-alarm rate on the validation images, for at most 5%% on the test set "
            "(needs --calibrate); ",
        ),
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        help=arch_help(
            "precision",
            "the dtype policy training computes in; mixed_bfloat16 keeps float32 weights, and "
            "the network is evaluated and exported in float32 either way; a recipe's "
            "mixed_bfloat16 becomes float32 on a CPU without bfloat16 instructions; ",
        ),
    )
    parser.add_argument(
        "--teachers",
        type=int,
        nargs="*",
        metavar="V",
        help=arch_help(
            "teachers",
            "distil from these registered versions of the model: their answers, averaged and "
            "softened, make up half of each dataset image's target (training.teachers; none: "
            "labels alone); ",
        ),
    )
    parser.add_argument(
        "--weight-decay",
        type=float,
        metavar="W",
        help=arch_help(
            "weight_decay",
            "AdamW's decoupled weight decay: each step shrinks the convolution kernels by the "
            "learning rate times W (0: Adam); ",
        ),
    )
    parser.add_argument(
        "--lr-schedule",
        choices=("cosine", "constant"),
        default="cosine",
        help="cosine: decay the learning rate to 0 over the run (default; about a point more "
        "test accuracy than the tutorial's constant rate); constant: the tutorial's setting",
    )
    captured.add_option(parser)
    job.add_options(parser)
    parser.add_argument(
        "--train-limit",
        type=int,
        metavar="N",
        help="train on the first N training images only, for quick runs (the test set is "
        "always all of it)",
    )
    args = parser.parse_args(argv)
    args.precision_note = None
    recipe_bfloat16 = args.precision is None and ARCH_DEFAULTS[args.arch]["precision"] == BFLOAT16
    if recipe_bfloat16 and not cpu.native_bfloat16():
        args.precision = "float32"
        args.precision_note = (
            f"precision: float32, not the recipe's {BFLOAT16}: this CPU has no bfloat16 "
            "instructions (emulated, a step costs about 10 times as much)"
        )
    for option, default in ARCH_DEFAULTS[args.arch].items():
        if getattr(args, option) is None:
            setattr(args, option, default)
    for option in ("epochs", "batch_size", "train_limit"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1")
    for option in ("validation", "patience"):
        if getattr(args, option) < 0:
            parser.error(f"--{option} must not be negative")
    if not args.learning_rate > 0:
        parser.error("--learning-rate must be positive")
    if args.patience and not args.validation:
        parser.error("--patience needs a validation set (--validation N)")
    if args.calibrate and not args.validation:
        parser.error("--calibrate needs a validation set (--validation N)")
    if args.novelty and not args.calibrate:
        parser.error("--novelty needs --calibrate (its threshold is set on the validation set)")
    if args.outlier_weight < 0 or args.drawn_repeat < 0:
        parser.error("--outlier-weight and --drawn-repeat must not be negative")
    if args.weight_decay < 0:
        parser.error("--weight-decay must not be negative")
    if args.weight_decay and args.arch == "mlp":
        parser.error("--weight-decay needs a CNN: it decays the convolution kernels")
    if (args.outlier_weight or args.drawn_repeat) and not args.augment:
        parser.error("--outlier-weight and --drawn-repeat need --augment")
    job.check_options(parser, args)
    return args


def framework_versions() -> dict[str, str]:
    """The versions of everything that shaped the model file (imported by then anyway)."""
    import keras
    import onnx
    import onnxruntime
    import tensorflow
    import tf2onnx

    return {
        "python": platform.python_version(),
        "tensorflow": tensorflow.__version__,
        "keras": keras.__version__,
        "tf2onnx": tf2onnx.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
    }


def training_entry(
    args: argparse.Namespace,
    fitted: "Fit",
    augmentation: dict[str, Any] | None,
    drawn: dict[str, Any] | None = None,
    teachers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The card's training settings and history."""
    return {
        "drawn_pictures": drawn,
        "teachers": teachers,
        "outlier_weight": args.outlier_weight,
        "drawn_repeat": args.drawn_repeat,
        "architecture": args.arch,
        "epochs": args.epochs,
        "epochs_run": len(fitted.history["loss"]),
        "best_epoch": fitted.best_epoch,
        "validation_images": args.validation,
        "patience": args.patience,
        "augmentation": augmentation,
        "batch_size": args.batch_size,
        "optimizer": "adamw" if args.weight_decay else "adam",
        "weight_decay": args.weight_decay,
        "learning_rate": args.learning_rate,
        "learning_rate_schedule": args.lr_schedule,
        "seed": args.seed,
        # Drawn pictures and teachers make each target a row of ten probabilities.
        "loss": "sparse_categorical_crossentropy(from_logits=True)"
        if drawn is None and teachers is None
        else "categorical_crossentropy(from_logits=True)",
        "precision": args.precision,
        "history": fitted.history,
        "wall_seconds": fitted.wall_seconds,
        "cpu_seconds": fitted.cpu_seconds,
    }


def data_entry(dataset: data.Dataset, train_images: np.ndarray, validation: int) -> dict[str, Any]:
    """The card's data provenance: where from, file hashes, hashes of the arrays used, counts."""
    return {
        "source": str(dataset.source),
        "files": dataset.files,
        # Of the decoded arrays actually used, so a --train-limit run is told apart.
        "train_images_sha256": data.sha256_of(train_images),
        "test_images_sha256": data.sha256_of(dataset.test_images),
        "train_count": len(train_images) - validation,
        "validation_count": validation,  # held out of train_images, seeded by the job's seed
        "test_count": len(dataset.test_images),
    }


def run(args: argparse.Namespace) -> int:
    """Run the whole job and return the registered version.

    The failures it expects raise TrainingError or FashionServeError; main reports them.
    """
    name = validate_name(args.name)
    job.validate(args)
    registry = Registry(args.registry)
    registry.models()  # fails now, not after training, if the registry root is missing
    if args.precision_note:
        print(args.precision_note, flush=True)

    data_dir = data.find_data_dir(args.data_dir)
    if data_dir is None:
        print("no local Fashion-MNIST files: downloading them with Keras", flush=True)
        data_dir = data.download()
    dataset = data.load(data_dir)
    if args.teachers:
        from training import teachers

        teachers.check_registered(registry, name, args.teachers)
    train_images = dataset.train_images[: args.train_limit]
    train_labels = dataset.train_labels[: args.train_limit]
    labelled = captured.load(registry.root, name) if args.with_feedback else None
    if labelled is not None:  # live pictures with feedback, appended to the training images
        print(f"with feedback: {len(labelled.labels)} captured pictures", flush=True)
        train_images, train_labels = labelled.added_to(train_images, train_labels)
    print(
        f"data: {len(train_images)} training and {len(dataset.test_images)} test images "
        f"from {dataset.source}",
        flush=True,
    )

    drawn = None
    if args.outlier_weight or args.drawn_repeat:
        from training import drawn as drawn_pictures

        print("drawn pictures: loading (the first run fetches them with npm)", flush=True)
        drawn = drawn_pictures.load()
        print(
            f"drawn pictures: {len(drawn.outliers)} outliers, {len(drawn.clothing)} clothing",
            flush=True,
        )

    # Imported only now: TensorFlow takes tens of seconds to load, and bad input above must
    # fail fast without it. Its C++ INFO/WARNING chatter would bury the job's own lines.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from training import calibrate, export, plots, train
    from training.augment import RECIPES
    from training.model import build, describe, in_float32, seed_everything

    validation = None
    fit_images, fit_labels = train_images, train_labels
    if args.validation:
        fit_images, fit_labels, held_images, held_labels = data.split_validation(
            train_images, train_labels, args.validation, args.seed
        )
        validation = (normalize(held_images), held_labels)
    augmentation = RECIPES[args.arch] if args.augment else None
    seed_everything(args.seed)
    decay_steps = None
    if args.lr_schedule == "cosine":
        decay_steps = args.epochs * -(-len(fit_images) // args.batch_size)  # ceil: last batch
    fit_x, fit_y, weights = normalize(fit_images), fit_labels, None
    targets, taught = None, None
    if args.teachers:
        answers = teachers.soft_answers(registry, name, args.teachers, fit_x)
        targets = fit_y = teachers.targets(fit_labels, answers)
        taught = teachers.card(args.teachers, fit_labels, answers)
        agreement = taught["agreement_with_labels"]
        who = ", ".join(map(str, args.teachers))
        print(f"teachers: versions {who}, agreeing with {agreement:.2%} of the labels")
    if drawn is not None:
        fit_x, fit_y, weights = drawn_pictures.mixed(
            fit_x, fit_labels, drawn, args.outlier_weight, args.drawn_repeat, targets
        )
        if decay_steps is not None:
            decay_steps = args.epochs * -(-len(fit_x) // args.batch_size)
    soft_labels = drawn is not None or targets is not None
    if soft_labels and validation is not None:
        validation = (validation[0], np.eye(len(CLASS_NAMES), dtype=np.float32)[held_labels])
    model = build(
        args.arch, args.learning_rate, decay_steps, soft_labels,
        precision=args.precision, weight_decay=args.weight_decay,
    )  # fmt: skip
    architecture = describe(model)
    print(
        f"model: {architecture['name']}, {architecture['parameters']:,} parameters, "
        f"{architecture['flops_per_image'] / 1e6:.2f} MFLOPs per image",
        flush=True,
    )
    test_images = normalize(dataset.test_images)
    fitted = train.fit(
        model, fit_x, fit_y, args.epochs, args.batch_size,
        augmentation=augmentation, seed=args.seed, validation=validation,
        patience=args.patience, weights=weights,
    )  # fmt: skip
    print(f"trained in {fitted.wall_seconds:.0f} s wall, {fitted.cpu_seconds:.0f} s CPU")
    if fitted.best_epoch is not None:
        print(f"kept the weights of epoch {fitted.best_epoch} (best validation accuracy)")
    model = in_float32(model)  # what is evaluated and exported computes in float32
    temperature = 1.0
    calibration: dict[str, Any] | None = None
    if args.calibrate and validation is not None:
        held_logits = train.served_logits(model, validation[0], args.mirror)
        temperature = calibrate.fit_temperature(held_logits, held_labels)
        test_logits = train.served_logits(model, test_images, args.mirror)
        calibration = {
            "method": "temperature scaling (logits / T before the softmax, in the graph)",
            "temperature": temperature,
            "fitted_on": f"the {len(held_labels)} validation images",
            "ece_bins": calibrate.ECE_BINS,
            "validation": calibrate.summary(held_logits, held_labels, temperature),
            "test": calibrate.summary(test_logits, dataset.test_labels, temperature),
        }
        test = calibration["test"]
        print(
            f"calibration: temperature {temperature:.4f}; test ECE {test['ece_before']:.4f} -> "
            f"{test['ece_after']:.4f}, NLL {test['nll_before']:.4f} -> {test['nll_after']:.4f}",
            flush=True,
        )
    evaluation = train.evaluate(
        model, test_images, dataset.test_labels, mirror=args.mirror, temperature=temperature
    )
    metrics = evaluation.metrics
    print(f"test: loss {metrics['test_loss']:.4f}  accuracy {metrics['test_accuracy']:.4f}")
    novelty, test_novelty = None, None
    if args.novelty and validation is not None:
        from training import novelty as judge

        def score(images: np.ndarray) -> np.ndarray:
            return calibrate.energy(train.served_logits(model, images, args.mirror), temperature)

        test_novelty = score(test_images)
        novelty = judge.card_entry(score, score(validation[0]), test_novelty)
        print(f"novelty: {judge.summary_line(novelty)}", flush=True)

    with tempfile.TemporaryDirectory(prefix="fashion-train-") as tmp:
        work = Path(tmp)
        onnx_file = export.to_onnx(
            model, work / "model.onnx", temperature, args.mirror, novelty=novelty is not None
        )
        parity = export.check_parity(onnx_file, test_images, evaluation.probabilities, test_novelty)
        print(
            f"parity: max |Keras - ONNX| {parity['max_abs_diff']:.3g}, top-1 agreement "
            f"{parity['top1_agreement']:.4%} on {parity['images']} images",
            flush=True,
        )
        extra: dict[str, str | os.PathLike[str]] = {
            "training.png": plots.training_plot(fitted.history, work / "training.png"),
            "confusion.png": plots.confusion_plot(
                metrics["confusion_matrix"], CLASS_NAMES, work / "confusion.png"
            ),
        }
        if calibration is not None:
            extra["reliability.png"] = plots.reliability_plot(
                train.served_logits(model, test_images, args.mirror), dataset.test_labels,
                temperature, work / "reliability.png",
            )  # fmt: skip
        card = {
            "frameworks": framework_versions(),
            "architecture": architecture,
            "training": training_entry(
                args,
                fitted,
                augmentation.card() if augmentation else None,
                drawn.card() if drawn is not None else None,
                taught,
            ),
            "data": data_entry(dataset, train_images, args.validation)
            | ({"captured": labelled.card()} if labelled is not None else {}),
            "metrics": metrics,
            "parity": parity,
            "inference": {
                "test_time_mirroring": args.mirror,
                "temperature": temperature,
            },
            "calibration": calibration,
            "inputs": export.INPUTS,
            "outputs": export.outputs(novelty is not None),
            "class_names": list(CLASS_NAMES),
        }
        if novelty is not None:
            card["novelty"] = novelty
        version = registry.register(name, onnx_file, card, extra_files=extra)
    job.registered(registry, name, version, args)
    return version


def main(argv: list[str] | None = None) -> int:
    """Run the job; expected failures become one `error: ...` line and exit status 1."""
    return job.run_reporting(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
