"""Feedback under real gunicorn (two workers) over a copy of the shipped registry and real
test-set images: joined whichever worker answered, and still joined after a restart."""

from pathlib import Path

import pytest
import requests

from service.registry import Registry
from tests.e2e.server import GunicornServer
from tests.images import png
from tests.replay import first_test_items
from tests.shipped import copy_shipped

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
MODEL = "fashion-mnist"
COUNT = 60
AFTER_RESTART = 15
# The test is about joining, not the rate limit (20 a second), which a fast host would reach.
UNLIMITED = {"FASHION_FEEDBACK_RATE": "100000"}


def test_feedback_is_joined_across_workers_and_restarts(tmp_path):
    root = tmp_path / "models"
    copy_shipped(root)
    images, labels = first_test_items(COUNT)
    answered = []  # (request ID, predicted class, true class)
    with GunicornServer(root, tmp_path / "first.log", **UNLIMITED) as server:
        for image, label in zip(images, labels, strict=True):
            # A new connection each time: the kernel spreads them over both workers, so the
            # feedback often reaches the worker that did not answer.
            response = requests.post(
                f"{server.url}/predict", files={"image": png(image)}, timeout=30
            )
            assert response.status_code == 200, response.text
            predicted = response.json()["predictions"][0]["class_id"]
            answered.append((response.headers["X-Request-ID"], predicted, int(label)))
        for request_id, predicted, label in answered[:-AFTER_RESTART]:
            given = requests.post(
                f"{server.url}/feedback",
                json={"request_id": request_id, "label": label},
                timeout=30,
            )
            assert given.status_code == 200, given.text
            assert given.json()["correct"] == (predicted == label)
    with GunicornServer(root, tmp_path / "second.log", **UNLIMITED) as server:
        for request_id, _, label in answered[-AFTER_RESTART:]:
            given = requests.post(
                f"{server.url}/feedback",
                json={"request_id": request_id, "label": label},
                timeout=30,
            )
            assert given.status_code == 200, given.text
        summary = requests.get(f"{server.url}/models/{MODEL}/feedback", timeout=30).json()
        metrics = requests.get(f"{server.url}/metrics", timeout=30).text
    correct = sum(predicted == label for _, predicted, label in answered)
    production = Registry(root).aliases(MODEL)["production"]
    assert summary["versions"] == [
        {"version": production, "feedback": COUNT, "correct": correct, "accuracy": correct / COUNT}
    ]
    expected = f'fashion_feedback_received{{model="{MODEL}",version="{production}"}} {float(COUNT)}'
    assert expected in metrics
