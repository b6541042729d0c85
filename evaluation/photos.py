"""Seeded product-photo renderings of test items: the garment as it looked before the dataset.

Fashion-MNIST was made from product photos (a dark or coloured garment on a light ground) by
trimming, resizing, negating. This module goes the other way, with the variations real uploads
have: grey, gradient and vignette grounds, off-centre garments with 5-35 % margins, 150-600 px,
JPEG and PNG, transparent cut-outs, EXIF-rotated JPEGs, colour casts, camera noise, small
rotations and soft shadows. Every photo depends only on (seed, item index), never on count.
"""

import colorsys
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

KINDS = (
    "white-jpeg",
    "white-png",
    "grey-ground",
    "gradient",
    "vignette",
    "rgba-cutout",
    "exif-rotated",
    "tinted",
    "noisy",
    "rotated",
    "shadow",
)
# EXIF orientation → the transpose that stores an upright picture so a viewer shows it upright.
_STORED = {
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
}
_LUMA = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class Photo:
    """One rendering, as a user would upload it."""

    kind: str  # the variation, one of KINDS
    data: bytes  # the encoded file
    label: int  # true class id
    index: int  # index of the item in the test split


def render_photos(images: np.ndarray, labels: np.ndarray, count: int, seed: int = 0) -> list[Photo]:
    """Photos of the first count items (uint8 [N,28,28], light on dark), kinds in turn."""
    photos = []
    for index in range(min(count, len(images))):
        kind = KINDS[index % len(KINDS)]
        data = render_photo(images[index], kind, np.random.default_rng([seed, index]))
        photos.append(Photo(kind, data, int(labels[index]), index))
    return photos


def render_photo(item: np.ndarray, kind: str, rng: np.random.Generator) -> bytes:
    """One encoded photo of a 28×28 item (light on dark) in the given variation."""
    long_side = int(rng.integers(150, 601))
    margins = rng.uniform(0.05, 0.35, size=4)  # left, top, right, bottom: off-centre
    box = max(8, round(long_side * (1 - max(margins[0] + margins[2], margins[1] + margins[3]))))
    width = round(box / (1 - margins[0] - margins[2]))
    height = round(box / (1 - margins[1] - margins[3]))
    if rng.random() < 0.5:  # portrait or landscape, whichever the margins gave
        width, height = height, width
        margins = margins[[1, 0, 3, 2]]
    left, top = round(width * margins[0]), round(height * margins[1])

    coverage = _upscale(item, box)  # 0..1: how much garment covers each pixel
    if kind == "rotated":
        coverage = _rotate(coverage, float(rng.choice([-1, 1]) * rng.uniform(4, 12)))
    alpha = np.zeros((height, width), dtype=np.float32)
    _paste(alpha, coverage, left, top)

    ground = _ground(kind, rng, height, width)
    if kind == "shadow":
        ground *= _shadow(alpha, rng)[..., None]
    colour = _garment_colour(rng, float(ground.mean(axis=(0, 1)) @ _LUMA))
    photo = ground * (1 - alpha[..., None]) + colour * alpha[..., None]
    if kind == "tinted":
        photo *= rng.uniform(0.82, 1.0, size=3)  # a white balance off towards one colour
    if kind == "noisy":
        photo += rng.normal(0, rng.uniform(5, 12), size=photo.shape)
    pixels = np.clip(np.rint(photo), 0, 255).astype(np.uint8)
    return _encode(kind, Image.fromarray(pixels, "RGB"), alpha, rng)


def _upscale(item: np.ndarray, side: int) -> np.ndarray:
    """The item smoothly enlarged to side×side, as 0..1 coverage."""
    image = Image.fromarray(item.astype(np.float32) / 255, "F")
    resized: np.ndarray = np.asarray(image.resize((side, side), Image.Resampling.BICUBIC))
    coverage: np.ndarray = np.clip(resized, 0, 1)
    return coverage


def _rotate(coverage: np.ndarray, degrees: float) -> np.ndarray:
    """Coverage turned by a small angle about its centre (corners cut, ground filled in)."""
    image = Image.fromarray(coverage, "F").rotate(degrees, Image.Resampling.BICUBIC)
    turned: np.ndarray = np.clip(np.asarray(image), 0, 1)
    return turned


def _paste(canvas: np.ndarray, patch: np.ndarray, left: int, top: int) -> None:
    """Write patch into canvas at (left, top), clipped to the canvas."""
    height, width = canvas.shape
    rows = min(patch.shape[0], height - top)
    cols = min(patch.shape[1], width - left)
    canvas[top : top + rows, left : left + cols] = patch[:rows, :cols]


def _ground(kind: str, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """The empty ground, float RGB [H,W,3] in 0..255."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == "grey-ground":
        level = np.full((height, width), rng.uniform(150, 215), dtype=np.float32)
    elif kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        t = (np.cos(angle) * x / width + np.sin(angle) * y / height) / 2 + 0.5
        start = rng.uniform(190, 252)
        level = start - rng.uniform(30, 80) * t  # towards the darker side by 30-80 levels
    elif kind == "vignette":
        cy, cx = height * rng.uniform(0.4, 0.6), width * rng.uniform(0.4, 0.6)
        radius = np.hypot((x - cx) / width, (y - cy) / height) / np.hypot(0.5, 0.5)
        level = rng.uniform(200, 250) * (1 - rng.uniform(0.15, 0.35) * radius**2)
    else:
        level = np.full((height, width), rng.uniform(232, 255), dtype=np.float32)
    return np.repeat(level[..., None], 3, axis=2).astype(np.float32)


def _shadow(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A soft drop shadow (a blurred, offset copy of the garment) as a multiplicative factor."""
    height, width = alpha.shape
    mask = Image.fromarray((alpha * 255).astype(np.uint8), "L")
    offset = int(rng.integers(2, 7)) * max(1, min(height, width) // 100)
    shifted = Image.new("L", mask.size, 0)
    shifted.paste(mask, (offset, offset))
    blurred = shifted.filter(ImageFilter.GaussianBlur(max(2, min(height, width) // 40)))
    return 1 - rng.uniform(0.1, 0.25) * np.asarray(blurred, dtype=np.float32) / 255


def _garment_colour(rng: np.random.Generator, ground_luma: float) -> np.ndarray:
    """A dark neutral or a coloured garment, clearly darker than its ground."""
    if rng.random() < 0.5:
        return np.full(3, rng.uniform(5, 60), dtype=np.float32)
    rgb = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.4, 0.9), rng.uniform(0.3, 0.8)))
    rgb *= 255
    darkest = 0.6 * ground_luma  # a light garment on a grey ground would be another photo
    return (rgb * min(1.0, darkest / max(float(rgb @ _LUMA), 1.0))).astype(np.float32)


def _encode(kind: str, photo: Image.Image, alpha: np.ndarray, rng: np.random.Generator) -> bytes:
    """The file a user would upload: JPEG, PNG, an RGBA cut-out or an EXIF-rotated JPEG."""
    buffer = io.BytesIO()
    quality = int(rng.integers(70, 96))
    if kind == "rgba-cutout":
        # A cut-out keeps the garment (and its soft edge) and drops the ground.
        opacity = np.clip(alpha * 4, 0, 1) * 255
        photo.putalpha(Image.fromarray(np.rint(opacity).astype(np.uint8), "L"))
        photo.save(buffer, "PNG")
    elif kind in ("white-png", "gradient"):
        photo.save(buffer, "PNG")
    elif kind == "exif-rotated":
        orientation = int(rng.choice(list(_STORED)))
        exif = Image.Exif()
        exif[0x0112] = orientation
        photo.transpose(_STORED[orientation]).save(buffer, "JPEG", quality=quality, exif=exif)
    else:
        photo.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()
