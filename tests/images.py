"""Test images: small dark-ground pictures as arrays and as PNG files."""

import io

import numpy as np
from PIL import Image


def png(pixels: np.ndarray) -> bytes:
    """A uint8 array encoded as a PNG file."""
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def dark_images(count: int, seed: int = 0) -> list[np.ndarray]:
    """Seeded 28×28 uint8 images: a light random object on black, as in Fashion-MNIST."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        pixels = np.zeros((28, 28), np.uint8)
        pixels[4:24, 6:22] = rng.integers(0, 256, (20, 16))  # a light object on black
        images.append(pixels)
    return images


def checkerboard(square: int = 4) -> np.ndarray:
    """A 28×28 uint8 checkerboard of black and white squares: clearly not clothing."""
    rows, columns = np.indices((28, 28)) // square
    return ((rows + columns) % 2 * 255).astype(np.uint8)
