"""The README's before/after picture: product photos and the 28×28 each becomes in photo mode.

Run from the project root: `.venv/bin/python -m evaluation.figure docs/photo-mode.png`.
"""

import io
import sys

import numpy as np
from PIL import Image, ImageOps

from evaluation.photos import render_photos
from service.preprocess import preprocess_images
from training.data import DEFAULT_DIR, load

SIDE = 196  # each tile's height: a 28×28 shown at 7×, nearest neighbour
SHOWN = (0, 4, 18)  # an ankle boot on white, a shirt in a vignette, a bag with a colour cast


def main(path: str) -> None:
    data = load(DEFAULT_DIR)
    photos = render_photos(data.test_images, data.test_labels, max(SHOWN) + 1, seed=0)
    tiles = []
    for photo in (photos[index] for index in SHOWN):
        before = ImageOps.exif_transpose(Image.open(io.BytesIO(photo.data))).convert("RGBA")
        shown = Image.new("RGBA", before.size, (255, 255, 255, 255))  # a cut-out shown on white
        shown.alpha_composite(before)
        shown = shown.convert("RGB")
        shown.thumbnail((SIDE * 2, SIDE))
        pixels = np.rint(preprocess_images([photo.data])[0] * 255).astype(np.uint8)
        after = Image.fromarray(pixels, "L").resize((SIDE, SIDE), Image.Resampling.NEAREST)
        tiles += [shown, after.convert("RGB")]
    gap = 12
    width = sum(tile.width for tile in tiles) + gap * (len(tiles) - 1)
    sheet = Image.new("RGB", (width, SIDE), (255, 255, 255))
    left = 0
    for tile in tiles:
        sheet.paste(tile, (left, (SIDE - tile.height) // 2))
        left += tile.width + gap
    sheet.save(path, optimize=True)


if __name__ == "__main__":
    main(sys.argv[1])
