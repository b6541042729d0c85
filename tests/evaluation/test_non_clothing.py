"""evaluation.non_clothing: the committed list, the made pictures, per-source figures."""

import numpy as np
import pytest

from evaluation import non_clothing, real_pictures
from evaluation.non_clothing import SYNTHETIC, Sample, by_source, read_entries, synthetic


def test_the_committed_list_names_development_sources_and_several_kinds():
    entries = read_entries()

    assert len(entries) >= 250
    assert {entry.source for entry, _ in entries} == set(real_pictures.NPM_SOURCES)
    assert {kind for _, kind in entries} >= {"animal", "food", "vehicle", "face", "tool"}
    assert len({entry.key for entry, _ in entries}) == len(entries)


def test_made_pictures_are_seeded_and_of_every_kind():
    made = synthetic()

    assert [s.data for s in made] == [s.data for s in synthetic()]
    assert {s.kind for s in made} == {"blank", "noise", "texture", "text"}
    images, kept = non_clothing.read(made)
    # photo mode refuses blank grounds (the service's 422 no_object_found); most others pass
    assert not any(made[i].kind == "blank" for i in kept)
    assert len(images) == len(kept) > len(made) // 2


def test_scikit_images_sample_photos_and_faces_come_from_its_wheel():
    samples = non_clothing.skimage_samples()

    assert len(samples) == len(non_clothing.SKIMAGE_PHOTOS) + non_clothing.SKIMAGE_FACES
    assert {s.source for s in samples} == {non_clothing.SKIMAGE}
    assert {s.kind for s in samples} == {"photo", "face"}
    assert len({s.data for s in samples}) == len(samples)
    images, kept = non_clothing.read(samples)
    assert len(kept) >= len(samples) - 4  # photo mode finds an object in nearly every one
    assert images.shape == (len(kept), 28, 28)


def test_without_scikit_image_the_set_says_what_to_install(monkeypatch):
    monkeypatch.setattr(non_clothing.importlib.util, "find_spec", lambda name: None)

    with pytest.raises(real_pictures.RealPicturesError, match="scikit-image is missing"):
        non_clothing.skimage_samples()


def test_loading_an_unfetched_set_says_how_to_fetch(tmp_path):
    with pytest.raises(real_pictures.RealPicturesError, match=r"evaluation\.non_clothing fetch"):
        non_clothing.load(tmp_path)


def test_figures_per_source_count_refused_pictures_as_caught():
    samples = [Sample("a", "k", b""), Sample("a", "k", b""), Sample(SYNTHETIC, "blank", b"")]

    figures = by_source(samples, np.array([5.0, 0.0]), [0, 1], 1.0, np.zeros(3))

    assert figures["all"]["flagged_or_refused"] == pytest.approx(2 / 3, abs=1e-6)
    assert figures["a"]["flagged_of_accepted"] == 0.5
    assert figures[SYNTHETIC] == {
        "pictures": 1, "refused_by_photo_mode": 1, "flagged_of_accepted": 0.0,
        "flagged_or_refused": 1.0, "auroc": None,
    }  # fmt: skip
