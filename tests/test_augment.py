"""training.augment: seeded, bounded, and the identity when every range is zero."""

import numpy as np
import pytest
import tensorflow as tf

from training.augment import RECIPES, Augmentation, augment, training_batches

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


def test_the_calm_epochs_change_only_their_share_of_the_images(images):
    labels = np.arange(16)
    settings = Augmentation(probability=1.0, calm_epochs=1, calm_probability=0.0)

    batches = list(training_batches(images, labels, 8, 3, 0, settings))

    # Epochs 1 and 2 change every image; epoch 3, the calm one, passes each through unchanged.
    for x, y in batches[:4]:
        changed = zip(x.numpy(), y.numpy(), strict=True)
        assert not any(np.array_equal(a, images[i]) for a, i in changed)
    for x, y in batches[4:]:
        np.testing.assert_array_equal(x.numpy(), images[y.numpy()])


def only(**changes) -> Augmentation:
    """NOTHING but the given changes."""
    return Augmentation(**{**NOTHING.card(), **changes})


def test_version_2s_recipe_leaves_the_drawn_picture_changes_off():
    new = ("mirror", "aspect", "shear", "gamma", "style", "erase")

    assert all(DEFAULT.card()[name] == 0 for name in new)
    assert all(RECIPES["cnn-real"].card()[name] > 0 for name in new)
    assert RECIPES["cnn"] == DEFAULT


def test_mirror_one_flips_every_image_exactly(images):
    np.testing.assert_allclose(
        run(images, (13, 14), only(mirror=1.0)), images[:, :, ::-1], atol=1e-6
    )


def test_mirror_half_flips_about_half_and_leaves_the_rest_alone():
    rng = np.random.default_rng(0)
    images = rng.random((400, 28, 28), dtype=np.float32)

    changed = run(images, (15, 16), Augmentation(probability=0.0, mirror=0.5))

    flipped = [np.array_equal(a, b[:, ::-1]) for a, b in zip(changed, images, strict=True)]
    kept = [np.array_equal(a, b) for a, b in zip(changed, images, strict=True)]
    assert all(f != k for f, k in zip(flipped, kept, strict=True))
    assert 0.4 < np.mean(flipped) < 0.6


def extent(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(height, width) of each image's lit region."""
    lit = batch > 0.2
    return lit.any(axis=2).sum(axis=1), lit.any(axis=1).sum(axis=1)


def test_aspect_stretches_one_side_against_the_other(images):
    height, width = extent(run(images, (17, 18), only(aspect=0.6)))
    base_height, base_width = extent(images)

    ratio = (width / height) / (base_width / base_height)
    assert ratio.min() >= np.exp(-0.6) * 0.8  # whole pixels: a little slack
    assert ratio.max() <= np.exp(0.6) * 1.2
    assert np.ptp(ratio) > 0.1


def test_gamma_keeps_black_and_white_and_moves_the_greys():
    ramp = np.tile(np.linspace(0, 1, 28, dtype=np.float32), (8, 28, 1))

    changed = run(ramp, (19, 20), only(gamma=0.5))

    np.testing.assert_allclose(changed[:, :, 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(changed[:, :, -1], 1.0, atol=1e-5)
    assert np.abs(changed - ramp).max() > 0.05


@pytest.mark.parametrize("seed", [(21, 0), (21, 1), (21, 2)])
def test_styles_redraw_within_range_peaking_at_one(images, seed):
    changed = run(images, seed, only(style=1.0))

    assert changed.min() >= 0.0
    assert changed.max(axis=(1, 2)) == pytest.approx(1.0, abs=1e-5)
    assert not np.array_equal(changed, images)
    assert (changed[:, :4] == 0).all()  # nothing drawn far from the object (rows 6-13)


def test_styles_include_a_hollow_outline(images):
    changed = run(images, (23, 0), only(style=1.0))

    centre = changed[:, 9:11, 13:16]  # inside the square, away from its edges
    edge = changed[:, 6, 10:19]
    hollow = (centre.max(axis=(1, 2)) < 0.1) & (edge.min(axis=1) > 0.5)
    assert hollow.any()


def test_erasing_blacks_out_one_rectangle_of_four_to_twelve_pixels():
    images = np.ones((64, 28, 28), np.float32)

    changed = run(images, (25, 26), only(erase=1.0))

    for image in changed:
        rows, cols = np.nonzero(image == 0)
        height, width = np.ptp(rows) + 1, np.ptp(cols) + 1
        assert 4 <= height <= 12
        assert 4 <= width <= 12
        assert len(rows) == height * width  # one solid rectangle
