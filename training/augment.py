"""Seeded on-the-fly augmentation that models what photo mode leaves in a 28x28 image.

Photo mode (the dataset's own conversion) trims, resizes, centres and sharpens a photo, but the
result still differs from a dataset image by a little: a residual shift or scale, a slight
rotation, softer or crisper edges, another contrast, a ground a little above black, noise.
Each training batch gets random amounts of these, drawn from stateless generators keyed by
(seed, batch number), so a run is reproducible whatever tf.data's parallelism does.
"""

import math
from dataclasses import asdict, dataclass

import tensorflow as tf

from service.contract import IMAGE_SIDE

_CENTRE = (IMAGE_SIDE - 1) / 2


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the random changes; each image draws its own amounts uniformly in them."""

    probability: float = 0.4  # share of images changed at all; the rest stay dataset-exact
    shift: float = 0.06  # translation, ± fraction of the side (0.06: ±1.7 px)
    scale: float = 0.10  # zoom, ± relative
    rotation: float = 8.0  # ± degrees
    sharpen: float = 1.0  # unsharp-mask weight up to this (photo mode sharpens as the paper did)
    blur: float = 0.6  # binomial-blur weight up to this
    contrast: float = 0.25  # gain exp(±contrast) on the pixel values
    ground: float = 0.08  # ground level raised by up to this (a ground not quite removed)
    noise: float = 0.03  # Gaussian noise, standard deviation up to this

    def card(self) -> dict:
        """The card's record of the settings."""
        return asdict(self)


def _uniform(seeds: tf.Tensor, index: int, count: tf.Tensor, low: float, high: float):
    return tf.random.stateless_uniform([count], seeds[index], minval=low, maxval=high)


def _affine(images: tf.Tensor, seeds: tf.Tensor, settings: Augmentation) -> tf.Tensor:
    """Rotate, scale and shift each image about its centre (bilinear, black outside)."""
    count = tf.shape(images)[0]
    angle = _uniform(seeds, 0, count, -settings.rotation, settings.rotation) * (math.pi / 180)
    zoom = tf.exp(_uniform(seeds, 1, count, -settings.scale, settings.scale))
    reach = settings.shift * IMAGE_SIDE
    shift_x = _uniform(seeds, 2, count, -reach, reach)
    shift_y = _uniform(seeds, 3, count, -reach, reach)
    # The transform maps each output pixel back to where it is read from in the input:
    # input = R(-angle) / zoom · (output - centre - shift) + centre.
    a0, a1 = tf.cos(angle) / zoom, tf.sin(angle) / zoom
    a3, a4 = -a1, a0
    a2 = _CENTRE - a0 * (_CENTRE + shift_x) - a1 * (_CENTRE + shift_y)
    a5 = _CENTRE - a3 * (_CENTRE + shift_x) - a4 * (_CENTRE + shift_y)
    zeros = tf.zeros_like(a0)
    transforms = tf.stack([a0, a1, a2, a3, a4, a5, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=[IMAGE_SIDE, IMAGE_SIDE],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def _blur(images: tf.Tensor) -> tf.Tensor:
    """3x3 binomial blur of [B,28,28] images, black outside; as shifted sums (TF's conv2d on
    one channel is ten times slower on CPU)."""
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1]])
    rows = (padded[:, :-2] + 2.0 * padded[:, 1:-1] + padded[:, 2:]) / 4.0
    return (rows[:, :, :-2] + 2.0 * rows[:, :, 1:-1] + rows[:, :, 2:]) / 4.0


def augment(
    images: tf.Tensor, seed: tf.Tensor, settings: Augmentation = Augmentation()
) -> tf.Tensor:
    """A changed copy of a batch of float32 [B,28,28] images in 0..1; seed: int [2]."""
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 8)
    count = tf.shape(images)[0]
    changed = _affine(images[..., None], seeds, settings)[..., 0]
    # Weight > 0 blurs, < 0 sharpens (unsharp mask).
    weight = _uniform(seeds, 4, count, -settings.sharpen, settings.blur)[:, None, None]
    changed = changed + weight * (_blur(changed) - changed)
    gain = tf.exp(_uniform(seeds, 5, count, -settings.contrast, settings.contrast))
    changed = changed * gain[:, None, None]
    ground = _uniform(seeds, 6, count, 0.0, settings.ground)[:, None, None]
    changed = ground + (1.0 - ground) * tf.clip_by_value(changed, 0.0, 1.0)
    noise_seeds = tf.random.experimental.stateless_split(seeds[7], 3)
    sigma = tf.random.stateless_uniform([count], noise_seeds[0], maxval=settings.noise)
    changed += sigma[:, None, None] * tf.random.stateless_normal(tf.shape(images), noise_seeds[1])
    changed = tf.clip_by_value(changed, 0.0, 1.0)
    keep = tf.random.stateless_uniform([count], noise_seeds[2]) >= settings.probability
    return tf.where(keep[:, None, None], images, changed)


def training_batches(
    images, labels, batch_size: int, epochs: int, seed: int, settings: Augmentation | None
) -> tf.data.Dataset:
    """Shuffled batches for `epochs` epochs, each batch augmented with its own seed when asked."""
    batches = (
        tf.data.Dataset.from_tensor_slices((images, labels))
        .shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .repeat(epochs)
    )
    if settings is not None:
        # The batch's running number across all epochs keys its random draws.
        key = tf.constant(seed, tf.int64)
        batches = batches.enumerate().map(
            lambda step, batch: (augment(batch[0], tf.stack([key, step]), settings), batch[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return batches.prefetch(tf.data.AUTOTUNE)
