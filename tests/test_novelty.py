"""The novelty judgement: the card's entry against the graph, judged once in the data plane."""

import numpy as np
import onnxruntime as ort
import pytest

from service.errors import ModelLoadError, NotClothing
from service.novelty import Judgement, judgement
from tests.conftest import MODEL
from tests.fake_observers import FakeRecorder
from tests.images import checkerboard, dark_images, png
from tests.tiny_models import novelty_entry, register_novelty


@pytest.mark.parametrize(
    ("card", "has_output", "expected"),
    [
        ({}, False, None),
        ({"novelty": novelty_entry(0.25)}, True, Judgement(novelty_entry(0)["score"], 0.25)),
        ({"novelty": {"threshold": 3}}, True, Judgement("unnamed", 3.0)),
    ],
)  # fmt: skip
def test_a_judgement_needs_both_the_output_and_the_card_entry(card, has_output, expected):
    assert judgement(card, has_output) == expected


@pytest.mark.parametrize(
    ("card", "has_output", "reason"),
    [
        ({"novelty": novelty_entry(0.25)}, False, "graph has no 'novelty' output"),
        ({}, True, "card has no 'novelty' entry"),
        ({"novelty": {"score": "energy"}}, True, "numeric 'threshold'"),
        ({"novelty": {"threshold": True}}, True, "numeric 'threshold'"),
        ({"novelty": {"threshold": float("nan")}}, True, "must be finite"),
        ({"novelty": 0.3}, True, "numeric 'threshold'"),
    ],
)
def test_a_disagreeing_card_and_graph_are_refused_with_the_reason(card, has_output, reason):
    with pytest.raises(ModelLoadError, match=reason):
        judgement(card, has_output)


def test_judgement_is_at_most_the_threshold():
    flags = Judgement("x", 0.5).in_distribution(np.array([0.2, 0.5, 0.50001], np.float32))
    assert flags.tolist() == [True, True, False]


@pytest.mark.parametrize(
    ("threshold", "output", "reason"),
    [(0.1, False, "no 'novelty' output"), (None, True, "no 'novelty' entry")],
)
def test_loading_a_half_judging_version_is_refused(
    service, registry, tmp_path, novelty_reference, threshold, output, reason
):
    version = register_novelty(
        registry, MODEL, tmp_path, novelty_reference.mean, threshold, output=output
    )
    with pytest.raises(ModelLoadError, match=reason):
        service.data_plane.model(MODEL, version)


def test_one_run_gives_probabilities_bit_identical_to_onnxruntime_and_the_judgement(
    service, registry, judging, novelty_reference
):
    pixels = np.stack([novelty_reference.clothing(), checkerboard(), *dark_images(2)])
    result = service.data_plane.predict_images([png(p) for p in pixels], version=judging)
    session = ort.InferenceSession(
        registry.model_path(MODEL, judging).read_bytes(), providers=["CPUExecutionProvider"]
    )
    probabilities, novelty = session.run(
        ["probabilities", "novelty"], {"image": pixels.astype(np.float32) / 255}
    )
    np.testing.assert_array_equal(result.probabilities, probabilities)
    np.testing.assert_array_equal(result.novelty, novelty)
    np.testing.assert_allclose(novelty, novelty_reference.novelty(pixels), rtol=1e-5)
    expected = (novelty <= novelty_reference.threshold).tolist()
    assert result.in_distribution.tolist() == expected
    assert expected[:2] == [True, False]
    predictions = result.predictions()
    assert [p["in_distribution"] for p in predictions] == expected
    assert [p["novelty"] for p in predictions] == novelty.tolist()


def test_reject_names_the_first_flagged_image_and_the_version(service, judging, novelty_reference):
    images = [png(novelty_reference.clothing()), png(checkerboard())]
    with pytest.raises(NotClothing, match=f"image 2 of 2 .* to version {judging} of {MODEL}"):
        service.data_plane.predict_images(images, version=judging, reject_unknown=True)
    accepted = service.data_plane.predict_images(images[:1], version=judging, reject_unknown=True)
    assert accepted.in_distribution.tolist() == [True]


def test_a_version_without_a_judgement_answers_null_and_never_rejects(service):
    result = service.data_plane.predict_images([png(checkerboard())], reject_unknown=True)
    assert (result.novelty, result.in_distribution) == (None, None)
    (prediction,) = result.predictions()
    assert (prediction["in_distribution"], prediction["novelty"]) == (None, None)


def test_observers_hear_how_many_images_of_a_batch_were_flagged(
    service, judging, novelty_reference
):
    recorder = FakeRecorder()
    service.observers.append(recorder)
    board, clothing = png(checkerboard()), png(novelty_reference.clothing())
    service.data_plane.predict_images([board, clothing, board], version=judging)
    service.data_plane.predict_images([clothing], version=judging)
    service.data_plane.predict_images([board], version=1)  # no judgement: nothing flagged
    assert recorder.of("flagged") == [(MODEL, judging, 2)]
    assert len(recorder.of("result")) == 3
