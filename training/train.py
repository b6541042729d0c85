"""Fit and evaluate a network: per-epoch progress, test metrics, per-class accuracy, confusion."""

import time
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from training.augment import Augmentation, training_batches
from training.metrics import metrics_from_logits

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


class EpochLine(keras.callbacks.Callback):  # type: ignore[misc]  # keras ships no types: its base is Any
    """Print one line per epoch (Keras' own progress bar floods logs and non-terminals)."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        validation = ""
        if "val_accuracy" in logs:
            validation = (
                f"  val_loss {logs['val_loss']:.4f}  val_accuracy {logs['val_accuracy']:.4f}"
            )
        print(
            f"epoch {epoch + 1}/{self.params['epochs']}  loss {logs['loss']:.4f}  "
            f"accuracy {logs['accuracy']:.4f}{validation}  "
            f"({time.perf_counter() - self._start:.1f} s)",
            flush=True,
        )


@dataclass(frozen=True)
class Fit:
    """What fitting produced: the per-epoch history and how long it took."""

    history: dict[str, list[float]]  # "loss", "accuracy" (and "val_..."), one value per epoch
    wall_seconds: float
    # CPU time of all threads: what the run costs on an otherwise idle machine, where the wall
    # time is about this divided by the cores TensorFlow keeps busy.
    cpu_seconds: float
    best_epoch: int | None = None  # 1-based epoch whose weights were kept, with a validation set


@dataclass(frozen=True)
class Evaluation:
    """Test-set results: the card's metrics plus the probabilities the parity check compares."""

    metrics: dict[str, Any]
    probabilities: np.ndarray  # float32 [N, 10], softmax of the network's logits


def fit(
    model: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
    epochs: int,
    batch_size: int,
    *,
    augmentation: Augmentation | None = None,
    seed: int = 0,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    patience: int = 0,
    weights: np.ndarray | None = None,
) -> Fit:
    """Train on float32 images in 0..1; shuffling follows the seed set by seed_everything.

    With augmentation, every batch is changed on the fly (seeded by seed). With a validation
    set, the weights of the epoch with the best validation accuracy are kept, and training stops
    after `patience` epochs without improvement (0: never stops early). weights: one loss weight
    per image (with augmentation only).
    """
    callbacks: list[keras.callbacks.Callback] = [EpochLine()]
    if validation is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy",
                patience=patience or epochs,
                restore_best_weights=True,
            )
        )
    start, cpu_start = time.perf_counter(), time.process_time()
    if augmentation is None:
        result = model.fit(
            images, labels, epochs=epochs, batch_size=batch_size, validation_data=validation,
            verbose=0, callbacks=callbacks,
        )  # fmt: skip
    else:
        batches = training_batches(images, labels, batch_size, epochs, seed, augmentation, weights)
        result = model.fit(
            batches, epochs=epochs, steps_per_epoch=-(-len(images) // batch_size),
            shuffle=False,  # training_batches shuffles, seeded
            validation_data=validation, verbose=0, callbacks=callbacks,
        )  # fmt: skip
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    history = {
        key: [round(float(v), 6) for v in result.history[key]]
        for key in HISTORY_KEYS
        if key in result.history
    }
    best_epoch = None
    if validation is not None:
        best_epoch = int(np.argmax(history["val_accuracy"])) + 1
    return Fit(
        history=history,
        wall_seconds=round(wall, 2),
        cpu_seconds=round(cpu, 2),
        best_epoch=best_epoch,
    )


def served_logits(model: keras.Model, images: np.ndarray, mirror: bool = False) -> np.ndarray:
    """The logits the exported graph computes before its temperature: with mirror, the mean of
    each image's and its left-right mirror's (training.export.serving_function)."""
    logits = model.predict(images, batch_size=1000, verbose=0)
    if mirror:
        flipped = np.ascontiguousarray(images[:, :, ::-1])
        mirrored = model.predict(flipped, batch_size=1000, verbose=0)
        logits = (logits + mirrored) / 2
    return np.asarray(logits, dtype=np.float32)


def evaluate(
    model: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    mirror: bool = False,
    temperature: float = 1.0,
) -> Evaluation:
    """Run the network over the test images as the exported graph will (mirror, temperature)
    and derive metrics and probabilities from it."""
    logits = served_logits(model, images, mirror) / np.float32(temperature)
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))
    return Evaluation(metrics_from_logits(logits, labels), probabilities.astype(np.float32))
