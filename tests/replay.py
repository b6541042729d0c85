"""The real Fashion-MNIST test set, for tests that replay it (feedback, rollouts)."""

from pathlib import Path

import numpy as np

from training.data import IMAGES_MAGIC, LABELS_MAGIC, read_idx

DATA = Path("/usr/share/datasets/fashion-mnist")


def first_test_items(count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first count test images (uint8 [N,28,28]) and their labels."""
    images, _ = read_idx(DATA / "t10k-images-idx3-ubyte.gz", IMAGES_MAGIC)
    labels, _ = read_idx(DATA / "t10k-labels-idx1-ubyte.gz", LABELS_MAGIC)
    return images[:count], labels[:count]
