"""The pictures stored beside each version: learning curves, confusion matrix, reliability."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np

# Figure without pyplot: no global figure registry and no GUI backend; savefig renders PNGs with
# Agg whatever backend the environment would pick.
from matplotlib.figure import Figure

from training import calibrate


def training_plot(history: dict[str, list[float]], path: Path) -> Path:
    """Loss and accuracy per epoch (training, and validation when held out), as a PNG."""
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig = Figure(figsize=(10, 4), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    for ax, key, colour in ((loss_ax, "loss", "tab:red"), (acc_ax, "accuracy", "tab:blue")):
        ax.plot(epochs, history[key], marker="o", color=colour, label="training")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="s", color="black", label="validation")
            ax.legend()
        ax.set(title=key, xlabel="epoch", ylabel=key)
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
    fig.savefig(path, dpi=100)
    return path


def confusion_plot(matrix: Sequence[Sequence[int]], class_names: Sequence[str], path: Path) -> Path:
    """The test-set confusion matrix (rows true, columns predicted) with counts, as a PNG."""
    counts = np.asarray(matrix)
    fig = Figure(figsize=(9, 8), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(counts, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set(xlabel="predicted class", ylabel="true class", title="test-set confusion matrix")
    threshold = counts.max() / 2
    for (row, col), count in np.ndenumerate(counts):
        colour = "white" if count > threshold else "black"
        ax.text(col, row, str(count), ha="center", va="center", color=colour, fontsize=8)
    fig.savefig(path, dpi=100)
    return path


def reliability_plot(
    logits: np.ndarray, labels: np.ndarray, temperature: float, path: Path
) -> Path:
    """Reliability diagram of the test set before and after the temperature: accuracy against
    mean confidence per confidence bin, the diagonal a calibrated model follows, and the ECEs."""
    fig = Figure(figsize=(6, 6), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="calibrated")
    curves = (("softmax", 1.0, "o"), (f"T = {temperature:.3f}", temperature, "s"))
    for label, scale, marker in curves:
        probabilities = calibrate.softmax(logits / scale)
        table = calibrate.reliability(probabilities, labels)
        error = calibrate.ece(probabilities, labels)
        ax.plot(
            [row["confidence"] for row in table], [row["accuracy"] for row in table],
            marker=marker, label=f"{label} (ECE {error:.4f})",
        )  # fmt: skip
    ax.set(
        xlabel="mean confidence in bin", ylabel="accuracy in bin", xlim=(0, 1), ylim=(0, 1),
        title=f"test-set reliability ({calibrate.ECE_BINS} equal-width bins)",
    )  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.savefig(path, dpi=100)
    return path
