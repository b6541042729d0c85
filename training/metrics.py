"""The card's test metrics from a network's logits: loss, accuracy, per class, confusion.

numpy only, so a version measured in onnxruntime (training.quantize) gets the same figures as
one measured in Keras (training.train).
"""

from typing import Any

import numpy as np

from service.contract import CLASS_NAMES, NUM_CLASSES


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """10x10 int counts; rows are the true class, columns the predicted one."""
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(matrix, (labels.astype(np.intp), predicted.astype(np.intp)), 1)
    return matrix


def metrics_from_logits(logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Test loss (mean cross-entropy), accuracy, per-class accuracy and the confusion matrix."""
    logits = logits.astype(np.float64)
    # log-sum-exp shifted by the row maximum: the same loss Keras computes, without overflow.
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(len(labels)), labels].mean()
    predicted = logits.argmax(axis=1)
    matrix = confusion_matrix(labels, predicted)
    per_class = np.diag(matrix) / np.maximum(matrix.sum(axis=1), 1)
    return {
        "test_loss": round(float(loss), 6),
        "test_accuracy": round(float((predicted == labels).mean()), 6),
        "per_class_accuracy": {
            name: round(float(acc), 6) for name, acc in zip(CLASS_NAMES, per_class, strict=True)
        },
        "confusion_matrix": matrix.tolist(),
    }
