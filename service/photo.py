"""Photo mode's trim: the first steps of the dataset's own conversion (Xiao et al. 2017, §2).

A user's photo differs from Zalando's in its ground (grey, a gradient, a vignette, a cut-out),
its noise and its margins, so the ground is estimated and divided out before the trim. The
paper's sharpening step is left out: it cost accuracy on the project's photo set.
"""

import numpy as np
from PIL import Image

from service.errors import NoObjectFound

# The object is found on a reduced copy: a 12-megapixel photo costs no more than a small one,
# and an object of a third of the picture still spans ~70 pixels or more there.
WORK_SIDE = 320
# The ground is fitted on a thumbnail about this size: it is smooth, and the fit stays cheap.
GROUND_SIDE = 64
# The outer band sampled as ground, as a fraction of the shorter side (real margins are wider).
GROUND_BAND = 0.04
# Contrast with the ground (fraction of the ground's level) below which nothing is an object:
# above JPEG noise on a flat ground; the dataset paper trimmed within 5 % of the corner colour.
MIN_CONTRAST = 0.06
# An object pixel differs from the ground by this many noise deviations (camera noise).
NOISE_DEVIATIONS = 4.0
# Edges fainter than this share of the object's strongest contrast are ground (soft shadows).
PEAK_SHARE = 0.12
# The least divisor of a pixel's distance from its ground: a quarter of the scale.
MIN_HEADROOM = np.float32(64)
_MAD_TO_SIGMA = 1.4826


def trim_to_object(gray: Image.Image, alpha: Image.Image | None, invert: str) -> np.ndarray:
    """The object of a photo, trimmed and with its ground divided out: float32 [H,W] in 0..1.

    gray: the photo as an "L" image; alpha: a cut-out's transparency mask, else None. The result
    is light on dark like the dataset; the caller resizes and centres it.

    invert: "true" (the object is darker than its ground), "false" (lighter), or "auto".
    Raises NoObjectFound when nothing stands out from the ground.
    """
    gray = _reduce(gray)
    pixels = np.asarray(gray, dtype=np.float32)
    if alpha is not None:
        # A cut-out: the ground is known exactly, the transparent pixels; the caller composited
        # them onto white (onto black for invert=false), so the rest is the dataset's own recipe.
        mask = np.asarray(_reduce(alpha)) >= 128
        level = np.full(pixels.shape, 0.0 if invert == "false" else 255.0, dtype=np.float32)
        darker = invert != "false"
        signal = _contrast(pixels, level, _headroom(level, darker), darker)
    else:
        ground, noise = _ground(gray, pixels)
        darker = invert == "true" or (invert == "auto" and _darker_object(pixels, ground, noise))
        headroom = _headroom(ground, darker)  # one full-image array, shared by both uses
        signal = _contrast(pixels, ground, headroom, darker)
        mask = _object_mask(signal, noise / headroom)
    if not mask.any():
        raise NoObjectFound(
            "no object found on the picture's ground (send ?mode=dataset to classify it as is)"
        )
    return _crop(signal, mask)


def _reduce(image: Image.Image) -> Image.Image:
    """A box-reduced copy whose longest side is the nearest to WORK_SIDE (2/3 to 3/2 of it)."""
    factor = round(max(image.size) / WORK_SIDE)
    return image.reduce(factor) if factor > 1 else image


def _ground(gray: Image.Image, pixels: np.ndarray) -> tuple[np.ndarray, float]:
    """The ground's level at every pixel, and its noise (one standard deviation, in levels).

    A quadratic surface fitted to the outer band: flat grounds, linear gradients and radial
    vignettes are all quadratic. Band pixels far from the fit (an object touching the edge) are
    dropped and the fit repeated: a trimmed, then a 3-sigma least squares. The ground is smooth,
    so the fit runs on a thumbnail; the noise is read at full size.
    """
    factor = max(1, max(gray.size) // GROUND_SIDE)
    thumbnail = np.asarray(gray.reduce(factor) if factor > 1 else gray, dtype=np.float64)
    rows, cols = np.nonzero(_band(thumbnail.shape))
    values = thumbnail[rows, cols]
    terms = _quadratic_terms((rows + 0.5) / thumbnail.shape[0], (cols + 0.5) / thumbnail.shape[1])
    keep = np.ones(values.size, dtype=bool)
    for attempt in range(4):
        chosen = terms[keep]
        # The normal equations: a 6×6 solve, far cheaper than LAPACK's least squares at this size;
        # the small ridge keeps it solvable on a picture a few pixels wide.
        normal = chosen.T @ chosen + 1e-6 * np.eye(terms.shape[1])
        coefficients = np.linalg.solve(normal, chosen.T @ values[keep])
        distance = np.abs(values - terms @ coefficients)
        # The first fit bends towards an object on the band: drop its worst 30 % outright.
        limit = np.quantile(distance, 0.7) if attempt == 0 else 3 * _spread(distance[keep])
        keep = distance <= limit
    height, width = pixels.shape
    y = ((np.arange(height, dtype=np.float32) + 0.5) / height)[:, None]
    x = ((np.arange(width, dtype=np.float32) + 0.5) / width)[None, :]
    a, b, c, d, e, f = coefficients.astype(np.float32)
    surface = np.clip(a + b * y + d * y * y + (c + f * y) * x + e * x * x, 0, 255)
    band = _band(pixels.shape)
    return surface, _spread(np.abs(pixels[band] - surface[band]))


def _band(shape: tuple[int, int]) -> np.ndarray:
    """The outer band of a picture, GROUND_BAND of its shorter side wide, as a mask."""
    height, width = shape
    width_of_band = max(1, round(GROUND_BAND * min(height, width)))
    band = np.zeros(shape, dtype=bool)
    band[:width_of_band] = band[-width_of_band:] = True
    band[:, :width_of_band] = band[:, -width_of_band:] = True
    return band


def _spread(distance: np.ndarray) -> float:
    """A robust standard deviation (median absolute deviation), at least half a level."""
    return _MAD_TO_SIGMA * float(np.median(distance)) + 0.5


def _quadratic_terms(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The design matrix of a 2-D quadratic surface (1, y, x, y², x², xy)."""
    return np.stack((np.ones_like(y), y, x, y * y, x * x, x * y), axis=1)


def _headroom(ground: np.ndarray, darker: bool) -> np.ndarray:
    """How far an object can be from the ground: down to black, or up to white.

    At least a quarter of the scale: near black or white, JPEG ringing of a few levels would
    otherwise count as full contrast.
    """
    headroom: np.ndarray = np.maximum(ground if darker else 255 - ground, MIN_HEADROOM)
    return headroom


def _contrast(
    pixels: np.ndarray, ground: np.ndarray, headroom: np.ndarray, darker: bool
) -> np.ndarray:
    """0..1: how far each pixel is from the ground towards the object's side, ground divided out.

    Dividing (not subtracting) makes a garment on a grey or shaded ground look as it would on
    white: lighting scales the garment and its ground alike.
    """
    difference = ground - pixels if darker else pixels - ground
    contrast: np.ndarray = np.clip(difference / headroom, 0.0, 1.0)
    return contrast


def _darker_object(pixels: np.ndarray, ground: np.ndarray, noise: float) -> bool:
    """Whether the object is darker than its ground (a photo) or lighter (a dataset-style image)."""
    threshold = max(NOISE_DEVIATIONS * noise, MIN_CONTRAST * 255)
    difference = pixels - ground
    darker = float(np.clip(-difference - threshold, 0, None).sum())
    lighter = float(np.clip(difference - threshold, 0, None).sum())
    if darker == lighter:  # nothing stands out: the dataset's rule, negate a light ground
        return float(ground.mean()) > 127.5
    return darker > lighter


def _object_mask(signal: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Pixels that belong to the object: clear of the noise, of faint shadows, of JPEG specks."""
    # A 3×3 mean first: it divides the noise by 3, and a lone speck no longer reaches threshold.
    padded = np.pad(signal, 1, mode="edge")
    rows = padded[:-2] + padded[1:-1] + padded[2:]
    smooth = (rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]) / np.float32(9)
    peak = float(smooth.max())
    threshold = np.maximum(
        np.maximum(MIN_CONTRAST, PEAK_SHARE * peak), NOISE_DEVIATIONS / 3 * noise
    )
    # The mean spreads an object by a pixel: each pixel must stand out on its own too.
    mask: np.ndarray = (smooth > threshold) & (signal > threshold)
    return mask


def _crop(signal: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The signal inside the mask's bounding box."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return signal[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
