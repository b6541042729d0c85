"""The photo renderer: seeded, realistic in the ways the issue lists, decodable as uploaded."""

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from evaluation.photos import KINDS, render_photos
from training.data import DEFAULT_DIR, load


@pytest.fixture(scope="module")
def test_split():
    data = load(DEFAULT_DIR)
    return data.test_images, data.test_labels


@pytest.fixture(scope="module")
def photos(test_split):
    return render_photos(*test_split, count=3 * len(KINDS), seed=4)


def test_every_kind_in_turn_with_the_items_label_and_index(photos, test_split):
    assert [photo.kind for photo in photos] == list(KINDS) * 3
    assert [photo.index for photo in photos] == list(range(len(photos)))
    assert [photo.label for photo in photos] == test_split[1][: len(photos)].tolist()


def test_seeded_and_independent_of_count(photos, test_split):
    again = render_photos(*test_split, count=5, seed=4)
    assert again == photos[:5]
    other = render_photos(*test_split, count=5, seed=5)
    assert all(a.data != b.data for a, b in zip(other, again, strict=True))


def test_photos_look_like_uploads(photos):
    for photo in photos:
        image = Image.open(io.BytesIO(photo.data))
        assert image.format == (
            "PNG" if photo.kind in ("white-png", "gradient", "rgba-cutout") else "JPEG"
        )
        upright = ImageOps.exif_transpose(image)
        assert 150 <= max(upright.size) <= 600, photo.kind
        if photo.kind == "exif-rotated":
            assert image.getexif()[0x0112] in (3, 6, 8)
        if photo.kind == "rgba-cutout":
            alpha = np.asarray(image.getchannel("A"))
            assert alpha[0].max() == alpha[:, 0].max() == 0  # the ground is transparent
            assert alpha.max() == 255
            continue
        grey = np.asarray(upright.convert("L"), dtype=np.float32)
        border = np.concatenate((grey[0], grey[-1], grey[:, 0], grey[:, -1]))
        assert border.mean() > 120, photo.kind  # a light ground all around: margins
        assert grey.min() < border.mean() - 60, photo.kind  # and a darker garment on it


def test_grounds_vary_like_the_kind_says(photos):
    def ground_spread(photo) -> float:
        grey = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(photo.data))).convert("L"))
        corners = [grey[0, 0], grey[0, -1], grey[-1, 0], grey[-1, -1]]
        return float(np.ptp(np.array(corners, dtype=np.float32)))

    spreads = {kind: [ground_spread(p) for p in photos if p.kind == kind] for kind in KINDS}
    assert max(spreads["white-png"]) < 2
    assert min(spreads["gradient"]) > 15
