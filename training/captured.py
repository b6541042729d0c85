"""Captured live pictures with a true class from feedback, added to training (--with-feedback).

The service's payload capture (service/capture.py) keeps the 28×28 a version answered for, under
the request ID and image index; POST /feedback's journal (service/feedback.py) holds the true
class under the same pair. Joined here, they are training pictures like the dataset's own;
whether the version trained with them is promoted is still the gate's decision.
"""

import argparse
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service import capture
from service.contract import CLASS_NAMES, IMAGE_SIDE
from service.feedback import journals
from service.journal import Tail

OPTION = "--with-feedback"


def add_option(parser: argparse.ArgumentParser) -> None:
    """The command line's switch."""
    parser.add_argument(
        OPTION,
        action="store_true",
        help="add the pictures the service captured (FASHION_CAPTURE_RATE) that received "
        "feedback to the training images, labelled with the reported class",
    )


@dataclass(frozen=True)
class Labelled:
    """Captured pictures (uint8 [N,28,28]) and the classes feedback gave them."""

    images: np.ndarray
    labels: np.ndarray
    versions: dict[int, int]  # pictures per version that answered them

    def added_to(self, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The training arrays with these pictures appended."""
        return (
            np.concatenate([images, self.images]),
            np.concatenate([labels, self.labels.astype(labels.dtype)]),
        )

    def card(self) -> dict[str, Any]:
        """The version card's account of them."""
        counts = np.bincount(self.labels, minlength=len(CLASS_NAMES)).tolist()
        return {
            "source": f"payload capture joined with feedback ({capture.FOLDER})",
            "count": len(self.labels),
            "classes": dict(zip(CLASS_NAMES, counts, strict=True)),
            "answered_by_versions": {str(v): n for v, n in sorted(self.versions.items())},
        }


def feedback_labels(registry_root: Path, name: str) -> dict[tuple[str, int], int]:
    """(request ID, image index) → the true class, the latest report for each."""
    latest: dict[tuple[str, int], tuple[float, int]] = {}
    _, feedback = journals(registry_root, prediction_ttl=1.0)  # only the feedback is read
    for record in Tail(feedback).new_records()[1]:
        try:
            key = (str(record["id"]), int(record.get("i", 0)))
            moment, true = float(record["t"]), int(record["true"])
        except (KeyError, TypeError, ValueError):
            continue
        if record.get("m") != name or not 0 <= true < len(CLASS_NAMES):
            continue
        if key not in latest or moment >= latest[key][0]:
            latest[key] = (moment, true)
    return {key: true for key, (_, true) in latest.items()}


def load(registry_root: Path, name: str) -> Labelled:
    """A model's captured pictures that feedback labelled (each captured image once)."""
    labels = feedback_labels(registry_root, name)
    found: dict[tuple[str, int], tuple[np.ndarray, int, int]] = {}
    for record in capture.records(capture.folder(registry_root)):
        if record.get("m") != name:
            continue
        index = record.get("i")
        key = (str(record.get("id")), index if isinstance(index, int) else -1)
        true = labels.get(key)
        picture = capture.image(record)
        if true is None or picture is None or not isinstance(record.get("v"), int):
            continue
        found[key] = (picture, true, record["v"])
    pictures = [picture for picture, _, _ in found.values()]
    return Labelled(
        images=np.stack(pictures) if pictures else np.zeros((0, IMAGE_SIDE, IMAGE_SIDE), np.uint8),
        labels=np.array([true for _, true, _ in found.values()], dtype=np.uint8),
        versions=dict(Counter(version for _, _, version in found.values())),
    )
