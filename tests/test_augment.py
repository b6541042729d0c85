"""training.augment: seeded, bounded, and the identity when every range is zero."""

import numpy as np
import pytest
import tensorflow as tf

from training.augment import Augmentation, augment, training_batches

DEFAULT = Augmentation()
NOTHING = Augmentation(
    probability=1.0, shift=0, scale=0, rotation=0, sharpen=0, blur=0, contrast=0, ground=0, noise=0
)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """A bright square on black, off-centre, in each of 16 images."""
    batch = np.zeros((16, 28, 28), np.float32)
    batch[:, 6:14, 9:20] = np.linspace(0.3, 1.0, 16, dtype=np.float32)[:, None, None]
    return batch


def run(images: np.ndarray, seed: tuple[int, int], settings: Augmentation = DEFAULT):
    return augment(tf.constant(images), tf.constant(seed, tf.int64), settings).numpy()


def test_same_seed_same_images_other_seed_other_images(images):
    first = run(images, (1, 0))

    assert np.array_equal(first, run(images, (1, 0)))
    assert not np.array_equal(first, run(images, (1, 1)))
    assert not np.array_equal(first, run(images, (2, 0)))


def test_output_keeps_shape_type_and_range(images):
    changed = run(images, (3, 4), Augmentation(probability=1.0))

    assert changed.shape == images.shape
    assert changed.dtype == np.float32
    assert changed.min() >= 0.0
    assert changed.max() <= 1.0
    assert not np.array_equal(changed, images)


def test_zero_ranges_are_the_identity(images):
    # Also pins the geometry: the transform maps each pixel centre onto itself.
    np.testing.assert_allclose(run(images, (5, 6), NOTHING), images, atol=1e-6)


def test_probability_zero_leaves_every_image_alone(images):
    assert np.array_equal(run(images, (7, 8), Augmentation(probability=0.0)), images)


def test_probability_half_changes_about_half_of_the_images():
    images = np.full((400, 28, 28), 0.5, np.float32)

    changed = run(images, (9, 10), Augmentation(probability=0.5))

    share = np.mean([not np.array_equal(a, b) for a, b in zip(changed, images, strict=True)])
    assert 0.4 < share < 0.6


def test_a_shift_moves_the_object_by_at_most_its_range(images):
    shifted = run(images, (11, 12), Augmentation(**{**NOTHING.card(), "shift": 0.1}))

    def centre(batch):
        rows, cols = np.indices((28, 28))
        mass = batch.sum(axis=(1, 2))
        return np.stack([(batch * rows).sum((1, 2)) / mass, (batch * cols).sum((1, 2)) / mass])

    moved = np.abs(centre(shifted) - centre(images))
    assert moved.max() <= 0.1 * 28 + 1e-3
    assert moved.max() > 0.5


def test_training_batches_cover_every_epoch_and_repeat_with_the_seed(images):
    labels = np.arange(16)

    def epochs(seed):
        batches = training_batches(images, labels, 5, 2, seed, Augmentation())
        return [(x.numpy(), y.numpy()) for x, y in batches]

    first = epochs(0)
    assert [len(y) for _, y in first] == [5, 5, 5, 1] * 2
    assert sorted(np.concatenate([y for _, y in first[:4]])) == list(range(16))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first, epochs(0), strict=True))
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, epochs(1), strict=True))
