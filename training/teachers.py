"""Distillation: registered versions' averaged answers as part of a new version's targets.

Trained against labels alone, a network learns which class each image is and nothing about the
classes it resembles (a Shirt that looks like a T-shirt/top, a Sandal like a Sneaker). Versions
already registered know that; the answers of several of them, averaged and softened, mixed into
the targets of the dataset images, pass it on to a network of the same size (knowledge
distillation). They run in onnxruntime, as the service runs them, on the images before
augmentation.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np

from service.contract import NUM_CLASSES
from service.registry import Registry
from service.runtime import offline_model
from training import TrainingError

# The answers are softened by this temperature (on their log-probabilities) and weigh
# 1 - LABEL_WEIGHT of a dataset image's target (docs/models.md, "Version 8": 2 and 4 measured).
TEMPERATURE = 2.0
LABEL_WEIGHT = 0.5


def check_registered(registry: Registry, name: str, versions: Sequence[int]) -> None:
    """Raise TrainingError naming the teacher versions `name` does not have."""
    missing = sorted(set(versions) - set(registry.versions(name)))
    if missing:
        raise TrainingError(
            f"teacher versions {missing} of {name!r} are not registered in {registry.root} "
            "(--teachers names registered versions; --teachers with none trains on labels alone)"
        )


def soft_answers(
    registry: Registry, name: str, versions: Sequence[int], images: np.ndarray
) -> np.ndarray:
    """float32 [N,10]: the versions' probabilities for float32 [N,28,28] images, averaged in
    log space and softened by TEMPERATURE."""
    # In float32 throughout, the order of the measured runs (docs/models.md, "Version 8").
    log_sum = np.zeros((len(images), NUM_CLASSES), np.float32)
    for version in versions:
        model = offline_model(registry.read_verified(name, version))
        log_sum += np.log(np.maximum(model.run(images), 1e-12))
    mean_log = log_sum / len(versions)
    soft = np.exp((mean_log - mean_log.max(axis=1, keepdims=True)) / TEMPERATURE)
    return np.asarray(soft / soft.sum(axis=1, keepdims=True), np.float32)


def targets(labels: np.ndarray, answers: np.ndarray) -> np.ndarray:
    """float32 [N,10]: LABEL_WEIGHT of each one-hot label plus the rest of the answers."""
    one_hot = np.eye(NUM_CLASSES, dtype=np.float32)[labels]
    blended: np.ndarray = LABEL_WEIGHT * one_hot + np.float32(1 - LABEL_WEIGHT) * answers
    return blended


def card(versions: Sequence[int], labels: np.ndarray, answers: np.ndarray) -> dict[str, Any]:
    """The card's record: who taught, how softly, and how often they agreed with the labels."""
    return {
        "versions": list(versions),
        "temperature": TEMPERATURE,
        "label_weight": LABEL_WEIGHT,
        "agreement_with_labels": round(float((answers.argmax(axis=1) == labels).mean()), 6),
    }
