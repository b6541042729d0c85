"""A request's time budget: checked between images and model runs, a clean 503 past it."""

import time
from dataclasses import replace

import numpy as np
import pytest

from service.core import Core
from service.deadline import NO_DEADLINE, Deadline
from service.errors import DeadlineExceeded
from service.http import create_app
from service.preprocess import DEFAULT_READING, read_images
from tests.http.checks import assert_error, upload
from tests.images import dark_images, png

SPENT = 1e-9  # a budget over before the first check


def test_a_budget_runs_from_its_creation_on_the_monotonic_clock():
    before = time.monotonic()
    deadline = Deadline(60)
    assert before + 60 <= deadline.ends <= time.monotonic() + 60
    deadline.check()  # within it
    with pytest.raises(DeadlineExceeded, match="more than its 1e-09 s"):
        Deadline(SPENT).check()


def test_no_budget_never_expires():
    assert Deadline(0).ends == NO_DEADLINE.ends == float("inf")
    NO_DEADLINE.check()


def test_images_are_not_decoded_past_the_budget():
    with pytest.raises(DeadlineExceeded):
        read_images([png(dark_images(1)[0])], DEFAULT_READING, deadline=Deadline(SPENT))


def test_the_model_is_not_run_past_the_budget(service):
    model = service.data_plane.model()[0].model
    images = np.zeros((3, 28, 28), dtype=np.float32)
    with pytest.raises(DeadlineExceeded):
        model.run_judged(images, Deadline(SPENT))
    assert model.run_judged(images, Deadline(60))[0].shape == (3, 10)


@pytest.mark.parametrize("budget", [SPENT, 60.0])
def test_the_data_plane_gives_each_request_the_configured_budget(settings, budget):
    core = Core(replace(settings, request_timeout=budget))
    core.start()
    try:
        blobs = [png(p) for p in dark_images(2)]
        if budget == SPENT:
            with pytest.raises(DeadlineExceeded):
                core.data_plane.predict_images(blobs)
            with pytest.raises(DeadlineExceeded):
                core.data_plane.predict_array(np.zeros((2, 28, 28), dtype=np.float32))
        else:
            assert len(core.data_plane.predict_images(blobs).probabilities) == 2
    finally:
        core.close()


def test_a_request_past_its_budget_gets_503_with_retry_after(settings):
    app = create_app(replace(settings, request_timeout=SPENT))
    try:
        response = app.test_client().post(
            "/predict", data=upload(png(dark_images(1)[0])), content_type="multipart/form-data"
        )
    finally:
        app.extensions["fashion_serve"].close()
    assert_error(response, 503, "timeout")
    assert int(response.headers["Retry-After"]) >= 1
