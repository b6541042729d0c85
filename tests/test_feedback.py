"""Feedback over a started core with tiny real models: remembered, joined, tallied, expired."""

import time
from dataclasses import replace

import pytest

from service.contract import CLASS_NAMES
from service.core import Core
from service.errors import BadRequest, PredictionNotFound
from service.feedback import Feedback, class_id
from tests.conftest import MODEL
from tests.images import dark_images, png


@pytest.mark.parametrize(
    ("label", "expected"), [("Ankle boot", 9), (0, 0), ("T-shirt/top", 0), (9, 9)]
)
def test_classes_by_name_or_index(label, expected):
    assert class_id(label) == expected


@pytest.mark.parametrize("label", ["ankle boot", 10, -1, True, 2.0, None, ["Bag"]])
def test_bad_classes_are_refused(label):
    with pytest.raises(BadRequest):
        class_id(label)


def test_feedback_is_joined_to_the_version_that_answered(service):
    images = [png(image) for image in dark_images(3)]
    result = service.data_plane.predict_images(images)
    service.feedback.remember("req-1", result)
    answered = result.predictions()
    wrong = (answered[1]["class_id"] + 1) % 10
    given = service.feedback.give("req-1", answered[0]["label"])
    assert given["correct"] is True
    assert given["model"] == {"name": MODEL, "version": 1, "alias": "production"}
    assert service.feedback.give("req-1", wrong, index=1)["correct"] is False
    assert service.feedback.summary(MODEL) == {
        "model": MODEL,
        "versions": [{"version": 1, "feedback": 2, "correct": 1, "accuracy": 0.5}],
    }
    # Feedback given again for the same image replaces the first: the latest counts.
    service.feedback.give("req-1", answered[1]["class_id"], index=1)
    assert service.feedback.summary(MODEL)["versions"][0]["correct"] == 2
    with pytest.raises(BadRequest, match=r"0\.\.2"):
        service.feedback.give("req-1", 0, index=3)


def test_another_process_sees_the_feedback_and_the_predictions(service, settings):
    """A second core over the same registry folder: a worker restarted, or another replica."""
    result = service.data_plane.predict_images([png(dark_images(1)[0])])
    service.feedback.remember("req-2", result)
    other = Feedback(settings)
    other.give("req-2", CLASS_NAMES[0])
    assert service.feedback.summary(MODEL)["versions"][0]["feedback"] == 1


def test_unknown_and_expired_requests_are_refused(settings):
    feedback = Feedback(replace(settings, prediction_ttl=60))
    with pytest.raises(PredictionNotFound):
        feedback.give("never-answered", 0)
    feedback.predictions.append({"id": "old", "t": time.time() - 120, "m": MODEL, "v": 1,
                                 "c": [3], "p": [0.9]})  # fmt: skip
    with pytest.raises(PredictionNotFound, match="60 s"):
        feedback.give("old", 3)


def test_a_model_without_feedback_has_an_empty_summary(settings):
    core = Core(settings)
    assert core.feedback.summary(MODEL) == {"model": MODEL, "versions": []}
