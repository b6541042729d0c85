"""Photo mode's trim: the ground estimated and divided out, the object found, on real pictures."""

import numpy as np
import pytest
from PIL import Image

from service.errors import NoObjectFound
from service.photo import WORK_SIDE, trim_to_object

HEIGHT, WIDTH = 240, 320
# The garment: a dark rectangle with a lighter stripe, off-centre.
TOP, LEFT, BOTTOM, RIGHT = 50, 170, 210, 270


def ground(kind: str) -> np.ndarray:
    """Float ground levels [H,W] of each kind a photo has."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    if kind == "white":
        return np.full((HEIGHT, WIDTH), 250.0)
    if kind == "grey":
        return np.full((HEIGHT, WIDTH), 160.0)
    if kind == "gradient":
        return 150 + 100 * (x / WIDTH * 0.6 + y / HEIGHT * 0.4)
    radius2 = ((x - WIDTH / 2) / WIDTH) ** 2 + ((y - HEIGHT / 2) / HEIGHT) ** 2
    return 240 * (1 - 0.6 * radius2)  # vignette


def garment_on(levels: np.ndarray, noise: float = 0.0) -> Image.Image:
    """The garment on the ground, as an 8-bit grey photo; its darkness scales with the light."""
    darkness = np.zeros(levels.shape)
    darkness[TOP:BOTTOM, LEFT:RIGHT] = 0.8
    darkness[TOP + 40 : TOP + 60, LEFT:RIGHT] = 0.4
    pixels = levels * (1 - darkness)
    pixels += np.random.default_rng(5).normal(0, noise, pixels.shape) if noise else 0
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "L")


@pytest.mark.parametrize("kind", ["white", "grey", "gradient", "vignette"])
@pytest.mark.parametrize("noise", [0.0, 6.0])
def test_the_object_is_trimmed_and_its_ground_divided_out(kind, noise):
    box = trim_to_object(garment_on(ground(kind), noise), None, "auto")
    slack = 1 if noise else 0  # a noisy ground pixel beside the garment may join it
    assert BOTTOM - TOP <= box.shape[0] <= BOTTOM - TOP + slack
    assert RIGHT - LEFT <= box.shape[1] <= RIGHT - LEFT + slack
    # On every ground the garment reads as on white: 0.8 dark, its stripe 0.4.
    assert abs(float(np.median(box[:30])) - 0.8) < 0.03
    assert abs(float(np.median(box[45:55])) - 0.4) < 0.03


def test_an_object_touching_the_edge_does_not_spoil_the_ground():
    levels = ground("gradient")
    darkness = np.zeros(levels.shape)
    darkness[60:180, 0:90] = 0.7  # cut by the left edge: a tenth of the border band
    photo = Image.fromarray(np.rint(levels * (1 - darkness)).astype(np.uint8), "L")
    box = trim_to_object(photo, None, "auto")
    assert box.shape == (120, 90)
    assert abs(float(np.median(box)) - 0.7) < 0.02


def test_light_object_on_a_dark_ground_keeps_its_polarity():
    pixels = np.full((HEIGHT, WIDTH), 10, dtype=np.uint8)
    pixels[TOP:BOTTOM, LEFT:RIGHT] = 210
    photo = Image.fromarray(pixels, "L")
    box = trim_to_object(photo, None, "auto")
    assert box.shape == (BOTTOM - TOP, RIGHT - LEFT)
    assert float(box.min()) == pytest.approx(200 / 245)
    assert trim_to_object(photo, None, "false").shape == box.shape
    with pytest.raises(NoObjectFound):  # told it is darker than its ground: nothing is
        trim_to_object(photo, None, "true")


@pytest.mark.parametrize("size", [(1, 1), (2, 1), (3, 3), (1, 40)])
def test_pictures_a_few_pixels_wide_give_an_object_or_no_object(size):
    for level in (0, 255):
        pixels = np.full(size[::-1], level, dtype=np.uint8)
        pixels.flat[0] = 255 - level
        try:
            box = trim_to_object(Image.fromarray(pixels, "L"), None, "auto")
        except NoObjectFound:
            continue
        assert box.size
        assert 0 <= box.min() <= box.max() <= 1


def test_a_cut_out_is_trimmed_to_its_opaque_pixels():
    gray = Image.fromarray(np.full((HEIGHT, WIDTH), 255, dtype=np.uint8), "L")
    gray.paste(60, (LEFT, TOP, RIGHT, BOTTOM))
    gray.paste(250, (LEFT, TOP, RIGHT, TOP + 20))  # a near-white part of the garment itself
    alpha = Image.new("L", gray.size, 0)
    alpha.paste(255, (LEFT, TOP, RIGHT, BOTTOM))
    box = trim_to_object(gray, alpha, "auto")
    assert box.shape == (BOTTOM - TOP, RIGHT - LEFT)
    assert float(box[:20].max()) == pytest.approx(5 / 255)


@pytest.mark.parametrize("kind", ["white", "grey", "gradient", "vignette"])
def test_an_empty_ground_is_no_object(kind):
    levels = ground(kind) + np.random.default_rng(1).normal(0, 4, (HEIGHT, WIDTH))
    photo = Image.fromarray(np.clip(np.rint(levels), 0, 255).astype(np.uint8), "L")
    with pytest.raises(NoObjectFound, match="no object found"):
        trim_to_object(photo, None, "auto")


def test_a_fully_transparent_cut_out_is_no_object():
    white = Image.new("L", (WIDTH, HEIGHT), 255)
    with pytest.raises(NoObjectFound):
        trim_to_object(white, Image.new("L", (WIDTH, HEIGHT), 0), "auto")


def test_big_photos_are_searched_at_a_reduced_size():
    big = garment_on(ground("gradient")).resize((WIDTH * 10, HEIGHT * 10), Image.Resampling.BOX)
    box = trim_to_object(big, None, "auto")
    assert max(box.shape) < WORK_SIDE * 3 / 2
    assert box.shape[0] / box.shape[1] == pytest.approx((BOTTOM - TOP) / (RIGHT - LEFT), rel=0.05)
