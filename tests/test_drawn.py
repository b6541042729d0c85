"""training.drawn: outliers and labelled clothing from a tiny committed icon fixture (no npm)."""

import re
import shutil
from collections import Counter

import numpy as np
import pytest

from evaluation import real_pictures
from service.contract import CLASS_NAMES
from tests.drawn_fixture import use_drawn_fixture
from training import drawn
from training.drawn import CLOTHING, PACKAGES, Drawn, mixed, random_texts


def test_the_committed_clothing_labels_name_only_training_packages():
    entries = real_pictures.read_labels(CLOTHING, tuple(PACKAGES))

    assert len(entries) >= 390
    assert {e.source for e in entries} == set(PACKAGES)
    per_class = Counter(CLASS_NAMES[e.label] for e in entries)
    assert set(per_class) == set(CLASS_NAMES)
    assert min(per_class.values()) >= 12
    assert not set(PACKAGES) & set(real_pictures.SOURCES)  # never a development source
    assert not any(spec.startswith("@iconify-json/fluent-emoji") for spec in PACKAGES.values())
    assert set(drawn.OUTLIERS_PER_PACKAGE) <= set(PACKAGES)


def test_no_labelled_clothing_icon_can_be_drawn_as_an_outlier():
    excluded = re.compile(drawn.NOT_OUTLIER)

    leaked = [e.picture for e in real_pictures.read_labels(CLOTHING, tuple(PACKAGES))
              if not excluded.search(e.picture)]  # fmt: skip

    assert leaked == []


def test_the_cached_arrays_are_named_for_the_labels_they_hold(tmp_path, monkeypatch):
    before = drawn.arrays_file(tmp_path)
    edited = tmp_path / "edited.csv"
    edited.write_bytes(CLOTHING.read_bytes() + b"mdi,tshirt-crew-extra,T-shirt/top\n")
    monkeypatch.setattr(drawn, "CLOTHING", edited)

    assert drawn.arrays_file(tmp_path) != before
    assert drawn.arrays_file(tmp_path).parent == tmp_path


def test_random_texts_are_seeded_pngs():
    first, again = random_texts(3, 5, drawn.FONTS), random_texts(3, 5, drawn.FONTS)

    assert first == again
    assert all(picture.startswith(b"\x89PNG") for picture in first)
    assert random_texts(3, 6, drawn.FONTS) != first


@pytest.mark.skipif(shutil.which(real_pictures.RENDERER) is None, reason="needs rsvg-convert")
def test_build_renders_outliers_without_clothing_names_and_labels_the_clothing(
    tmp_path, monkeypatch
):
    use_drawn_fixture(monkeypatch, tmp_path, texts=2)

    built = drawn.load(tmp_path)

    # circle and star of each of the four packages (tshirt excluded by name, flipped skipped)
    assert len(built.outliers) == 4 * 2 + 2
    assert built.outliers.shape[1:] == (28, 28)
    assert built.outliers.max() <= 1.0
    assert built.clothing_labels.tolist() == [CLASS_NAMES.index("T-shirt/top")] * 2
    assert drawn.arrays_file(tmp_path).is_file()  # cached: loaded again without rendering
    again = drawn.load(tmp_path)
    np.testing.assert_array_equal(again.outliers, built.outliers)


def test_mixed_adds_repeated_clothing_and_uniform_outliers_weighted_as_a_whole():
    images = np.zeros((100, 28, 28), np.float32)
    labels = np.arange(100) % 10
    extra = Drawn(
        outliers=np.ones((20, 28, 28), np.float32),
        clothing=np.full((2, 28, 28), 0.5, np.float32),
        clothing_labels=np.array([3, 8]),
    )

    x, y, w = mixed(images, labels, extra, outlier_weight=0.5, repeat=3)

    assert x.shape == (100 + 6 + 20, 28, 28)
    np.testing.assert_array_equal(y[:100].argmax(axis=1), labels)
    np.testing.assert_array_equal(y[100:106].argmax(axis=1), [3, 3, 3, 8, 8, 8])
    np.testing.assert_allclose(y[106:], 0.1)
    np.testing.assert_allclose(w[:106], 1.0)
    assert w[106:].sum() == pytest.approx(0.5 * 100 / 10)  # outlier_weight / 10 of the images
    x, y, w = mixed(images, labels, extra, outlier_weight=0.0, repeat=0)
    assert len(x) == len(y) == len(w) == 100


def test_the_card_counts_each_class_and_the_sheet_shows_every_class(tmp_path):
    extra = Drawn(
        outliers=np.zeros((1, 28, 28), np.float32),
        clothing=np.ones((30, 28, 28), np.float32),
        clothing_labels=np.array([0] * 25 + [9] * 5),
    )

    counts = extra.card()["clothing_per_class"]
    sheet = extra.sheet(per_row=24, zoom=2)

    assert counts == {name: (25 if i == 0 else 5 if i == 9 else 0)
                      for i, name in enumerate(CLASS_NAMES)}  # fmt: skip
    # two rows for class 0, one row each for the nine others (empty classes keep their header)
    assert sheet.size == (24 * 56, 10 * 14 + (2 + 9) * 56)
    assert np.asarray(sheet)[14:70, :56].min() == 255  # a white (all-ones) picture, as drawn
