"""Seeded on-the-fly augmentation that models what photo mode leaves in a 28x28 image.

Photo mode (the dataset's own conversion) trims, resizes, centres and sharpens a photo, but the
result still differs from a dataset image by a little: a residual shift or scale, a slight
rotation, softer or crisper edges, another contrast, a ground a little above black, noise.
Pictures drawn by others differ by more: shoes facing right (every shoe in Fashion-MNIST faces
left), other proportions and shears, flat fills, silhouettes and outlines (a dark outline turns
bright when photo mode negates it), parts hidden. Each training batch gets random amounts of
these, drawn from stateless generators keyed by (seed, batch number), so a run is reproducible
whatever tf.data's parallelism does.
"""

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import tensorflow as tf

from service import cpu
from service.contract import IMAGE_SIDE

_CENTRE = (IMAGE_SIDE - 1) / 2
# Batches made ahead of the train step: one in use, one ready.
_PREFETCH = 2


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
    # Drawn pictures; each 0 (off) in version 2's recipe, which Augmentation() still is.
    mirror: float = 0.0  # share of images mirrored left-right (independent of probability)
    aspect: float = 0.0  # width/height ratio exp(±aspect)
    shear: float = 0.0  # horizontal shear, ± this tangent
    gamma: float = 0.0  # pixel values to the power exp(±gamma)
    style: float = 0.0  # share of images redrawn as outline, silhouette or flat fill (STYLES)
    erase: float = 0.0  # share of images with a random rectangle (4-12 px a side) blacked out
    # Curriculum: over the last calm_epochs epochs only calm_probability of the images change,
    # so the network ends on images like the test set's after learning the drawn pictures.
    calm_epochs: int = 0
    calm_probability: float = 0.0

    def card(self) -> dict[str, Any]:
        """The card's record of the settings."""
        return asdict(self)


# Each architecture's recipe (training --arch): the CNN keeps version 2's; cnn-real adds what
# pictures drawn by others need (docs/models.md: what each change bought).
_DRAWN = Augmentation(
    mirror=0.5, style=0.3, aspect=0.25, shear=0.15, gamma=0.3, erase=0.25, scale=0.15
)
_V7 = replace(_DRAWN, calm_epochs=5, calm_probability=0.1)  # of 22 epochs
RECIPES = {
    "mlp": Augmentation(),
    "cnn": Augmentation(),
    "cnn-real": _DRAWN,
    "cnn-ood": _DRAWN,
    # The last epochs change a tenth of the images (docs/models.md: what the curriculum bought).
    "cnn-deep": replace(_DRAWN, calm_epochs=4, calm_probability=0.1),
    "cnn-long": replace(_DRAWN, calm_epochs=6, calm_probability=0.1),  # of 28 epochs
    "cnn-wide": _V7,
    "cnn-taught": _V7,
    "cnn-decay": _V7,
    "cnn-mirror": _V7,  # the last 5 of 40 epochs calm
}


def _uniform(seeds: tf.Tensor, index: int, count: tf.Tensor, low: float, high: float) -> tf.Tensor:
    return tf.random.stateless_uniform([count], seeds[index], minval=low, maxval=high)


def _affine(
    images: tf.Tensor, seeds: tf.Tensor, shape_seeds: tf.Tensor, settings: Augmentation
) -> tf.Tensor:
    """Rotate, scale, stretch, shear and shift each image about its centre (bilinear, black
    outside)."""
    count = tf.shape(images)[0]
    angle = _uniform(seeds, 0, count, -settings.rotation, settings.rotation) * (math.pi / 180)
    zoom = tf.exp(_uniform(seeds, 1, count, -settings.scale, settings.scale))
    reach = settings.shift * IMAGE_SIDE
    shift_x = _uniform(seeds, 2, count, -reach, reach)
    shift_y = _uniform(seeds, 3, count, -reach, reach)
    stretch = tf.exp(_uniform(shape_seeds, 0, count, -settings.aspect, settings.aspect) / 2)
    zoom_x, zoom_y = zoom * stretch, zoom / stretch
    shear = _uniform(shape_seeds, 1, count, -settings.shear, settings.shear)
    # The transform maps each output pixel back to where it is read from in the input:
    # input = diag(1/zoom_x, 1/zoom_y) · Shear(-shear) · R(-angle) · (output - centre - shift)
    # + centre.
    cos, sin = tf.cos(angle), tf.sin(angle)
    a0, a1 = (cos + shear * sin) / zoom_x, (sin - shear * cos) / zoom_x
    a3, a4 = -sin / zoom_y, cos / zoom_y
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


def _pool(images: tf.Tensor, size: int = 3) -> tf.Tensor:
    """Grey dilation of [B,28,28] images by a size x size square."""
    return tf.nn.max_pool2d(images[..., None], size, 1, "SAME")[..., 0]


def _peak_to_one(images: tf.Tensor) -> tf.Tensor:
    """Stretch each image to peak at 1, as photo mode stretches every picture's contrast."""
    return images / tf.maximum(tf.reduce_max(images, axis=[1, 2], keepdims=True), 1e-6)


# The drawing styles, as photo mode shows them (negated: ink is bright, paper black).
STYLES = ("outline", "thick outline", "silhouette", "posterised", "outline on flat fill")


def _styles(images: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
    """Each image redrawn in one of STYLES (chosen per image), peaking at 1."""
    count = tf.shape(images)[0]
    outline = _pool(images) + _pool(-images)  # dilation minus erosion: the edges
    outline = _peak_to_one(outline)
    threshold = _uniform(seeds, 0, count, 0.05, 0.3)[:, None, None]
    silhouette = tf.cast(images > threshold, tf.float32)
    levels = tf.floor(_uniform(seeds, 1, count, 2.0, 5.0))[:, None, None]  # 2, 3 or 4 levels
    posterised = tf.round(_peak_to_one(images) * (levels - 1)) / (levels - 1)
    fill = _uniform(seeds, 2, count, 0.15, 0.6)[:, None, None]
    drawn = [
        outline,
        _pool(outline),
        silhouette,
        posterised,
        tf.maximum(outline, fill * silhouette),
    ]
    choice = tf.random.stateless_uniform(
        [count], seeds[3], minval=0, maxval=len(drawn), dtype=tf.int32
    )
    stacked = tf.stack(drawn, axis=1)  # [B, styles, 28, 28]
    return tf.gather(stacked, choice, axis=1, batch_dims=1)


def _erase(images: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
    """Black out one random rectangle, 4-12 pixels a side, per image."""
    count = tf.shape(images)[0]
    height = tf.floor(_uniform(seeds, 0, count, 4.0, 13.0))  # whole pixels, 4 to 12
    width = tf.floor(_uniform(seeds, 1, count, 4.0, 13.0))
    top = tf.floor(_uniform(seeds, 2, count, 0.0, 1.0) * (IMAGE_SIDE + 1 - height))
    left = tf.floor(_uniform(seeds, 3, count, 0.0, 1.0) * (IMAGE_SIDE + 1 - width))
    rows = tf.range(IMAGE_SIDE, dtype=tf.float32)[None, :, None]
    cols = tf.range(IMAGE_SIDE, dtype=tf.float32)[None, None, :]
    inside = (
        (rows >= top[:, None, None]) & (rows < (top + height)[:, None, None])
        & (cols >= left[:, None, None]) & (cols < (left + width)[:, None, None])
    )  # fmt: skip
    return tf.where(inside, 0.0, images)


def _chosen(seed: tf.Tensor, count: tf.Tensor, share: float) -> tf.Tensor:
    """bool [count, 1, 1]: which images a change with this share applies to."""
    return (tf.random.stateless_uniform([count], seed) < share)[:, None, None]


def augment(
    images: tf.Tensor,
    seed: tf.Tensor,
    settings: Augmentation = Augmentation(),
    probability: tf.Tensor | float | None = None,
) -> tf.Tensor:
    """A changed copy of a batch of float32 [B,28,28] images in 0..1; seed: int [2];
    probability: the share changed, if not settings.probability (the curriculum's)."""
    seed = tf.cast(seed, tf.int64)
    seeds = tf.random.experimental.stateless_split(seed, 8)
    # The drawn-picture changes take their own seeds, so version 2's recipe keeps its draws.
    extra = tf.random.experimental.stateless_split(
        tf.random.experimental.stateless_fold_in(seed, 1), 8
    )
    count = tf.shape(images)[0]
    if settings.mirror:
        images = tf.where(_chosen(extra[0], count, settings.mirror), images[:, :, ::-1], images)
    shape_seeds = tf.random.experimental.stateless_split(extra[1], 2)
    changed = _affine(images[..., None], seeds, shape_seeds, settings)[..., 0]
    if settings.style:
        redrawn = _styles(changed, tf.random.experimental.stateless_split(extra[2], 4))
        changed = tf.where(_chosen(extra[3], count, settings.style), redrawn, changed)
    if settings.gamma:
        power = tf.exp(_uniform(extra, 4, count, -settings.gamma, settings.gamma))
        changed = tf.maximum(changed, 0.0) ** power[:, None, None]
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
    if settings.erase:
        erased = _erase(changed, tf.random.experimental.stateless_split(extra[5], 4))
        changed = tf.where(_chosen(extra[6], count, settings.erase), erased, changed)
    if probability is None:
        probability = settings.probability
    keep = tf.random.stateless_uniform([count], noise_seeds[2]) >= probability
    return tf.where(keep[:, None, None], images, changed)


def training_batches(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    epochs: int,
    seed: int,
    settings: Augmentation | None,
    weights: np.ndarray | None = None,
) -> tf.data.Dataset:
    """Shuffled batches for `epochs` epochs, each batch augmented with its own seed when asked;
    with weights, each item's loss weight rides along (a third element)."""
    items = (images, labels) if weights is None else (images, labels, weights)
    batches = (
        tf.data.Dataset.from_tensor_slices(items)
        .shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .repeat(epochs)
    )
    if settings is not None:
        # The batch's running number across all epochs keys its random draws.
        key = tf.constant(seed, tf.int64)
        calm_from = (epochs - settings.calm_epochs) * -(-len(images) // batch_size)

        def probability(step: tf.Tensor) -> tf.Tensor:
            calm = step >= calm_from if settings.calm_epochs else tf.constant(False)
            return tf.where(calm, settings.calm_probability, settings.probability)

        batches = batches.enumerate().map(
            lambda step, batch: (
                augment(batch[0], tf.stack([key, step]), settings, probability(step)),
                *batch[1:],
            ),
            num_parallel_calls=cpu.usable_cores(),
            deterministic=True,
        )
    # Fixed parallelism, not tf.data's autotuner: its thread sleeps on a period that doubles to
    # a minute, and deleting the pipeline at the end of fit() waits for it (bench/README.md).
    options = tf.data.Options()
    options.autotune.enabled = False
    return batches.prefetch(_PREFETCH).with_options(options)
