"""evaluation.real_pictures: labels, SVG assembly, rendering and loading on a tiny fixture."""

import io
import shutil
from pathlib import Path

import pytest
from PIL import Image

from evaluation import real_pictures
from evaluation.real_pictures import (
    LABELS,
    SOURCES,
    Entry,
    RealPicturesError,
    iconify_svg,
    load,
    read_labels,
    render_all,
    render_svg,
)
from service.contract import CLASS_NAMES
from service.preprocess import preprocess_images

FIXTURE = Path(__file__).parent / "fixtures" / "real_pictures"
needs_renderer = pytest.mark.skipif(
    shutil.which(real_pictures.RENDERER) is None, reason="needs rsvg-convert (librsvg2-bin)"
)


def test_the_committed_labels_cover_every_source_and_several_classes():
    entries = read_labels(LABELS)

    assert len(entries) >= 100
    assert {e.source for e in entries} == set(SOURCES)
    assert len({e.label for e in entries}) == len(CLASS_NAMES)
    assert len({e.key for e in entries}) == len(entries)


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("nowhere,tee,T-shirt/top", "unknown 'nowhere'"),
        ("game-icons,tee,Hat", "unknown 'game-icons'/'Hat'"),
        ("game-icons,tee,Bag\ngame-icons,tee,Bag", "'tee' twice"),
    ],
)
def test_bad_label_rows_are_refused_with_their_line(tmp_path, row, problem):
    labels = tmp_path / "labels.csv"
    labels.write_text(f"source,picture,class\n{row}\n")

    with pytest.raises(RealPicturesError, match=problem):
        read_labels(labels)


def icon_set() -> dict:
    import json

    return json.loads((FIXTURE / "packages" / "game-icons" / "icons.json").read_text())


def test_an_iconify_icon_becomes_a_standalone_svg_with_its_own_box():
    tee, boot = iconify_svg(icon_set(), "tee"), iconify_svg(icon_set(), "boot")

    assert tee.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert 'viewBox="0 0 64 64"' in tee
    assert 'viewBox="0 0 68 64"' in boot  # the icon's own width overrides the set's
    assert "M20 6 L8 14" in tee


@pytest.mark.parametrize(
    ("name", "problem"), [("none", "no icon 'none'"), ("flipped", "transformed")]
)
def test_missing_or_transformed_icons_are_refused(name, problem):
    with pytest.raises(RealPicturesError, match=problem):
        iconify_svg(icon_set(), name)


@needs_renderer
def test_rendering_fits_the_picture_on_white_in_256_pixels_keeping_its_aspect():
    png = render_svg(iconify_svg(icon_set(), "boot").encode())

    image = Image.open(io.BytesIO(png)).convert("L")
    assert image.size == (256, round(256 * 64 / 68))
    assert image.getpixel((255, 0)) == 255  # white ground, beyond the boot's shaft
    assert image.getpixel((40, 200)) < 80  # the boot's dark sole


@needs_renderer
def test_fetched_pictures_render_once_and_load_labelled(tmp_path):
    shutil.copytree(FIXTURE / "packages", tmp_path / "packages")
    entries = read_labels(FIXTURE / "labels.csv")

    assert render_all(tmp_path, entries) == 2
    assert render_all(tmp_path, entries) == 0  # already rendered: nothing to do
    pictures = load(tmp_path, FIXTURE / "labels.csv")

    assert [(p.entry.picture, CLASS_NAMES[p.entry.label]) for p in pictures] == [
        ("tee", "T-shirt/top"),
        ("boot", "Ankle boot"),
    ]
    images = preprocess_images([p.data for p in pictures])  # photo mode reads them
    assert images.shape == (2, 28, 28)
    assert images.max() == pytest.approx(1.0)


def test_an_unfetched_set_says_how_to_fetch_it(tmp_path):
    with pytest.raises(RealPicturesError, match=r"python -m evaluation\.real_pictures fetch"):
        load(tmp_path, FIXTURE / "labels.csv")


def test_rendering_needs_the_package_fetched_first(tmp_path):
    with pytest.raises(RealPicturesError, match=r"icons\.json is missing"):
        render_all(tmp_path, [Entry("game-icons", "tee", 0)])
