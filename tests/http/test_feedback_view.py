"""POST /feedback and GET /models/<name>/feedback over the Flask app with tiny real models."""

from dataclasses import replace

import pytest

from service.http import create_app
from tests.conftest import MODEL
from tests.http.checks import assert_error, upload
from tests.images import checkerboard, dark_images, png


def predicted(client, count: int = 1) -> tuple[str, list[dict]]:
    images = [png(image) for image in dark_images(count)]
    response = client.post("/predict", data=upload(*images))
    assert response.status_code == 200
    return response.headers["X-Request-ID"], response.get_json()["predictions"]


def test_feedback_joins_a_prediction_and_shows_in_the_summary_and_metrics(client):
    request_id, predictions = predicted(client, 2)
    right = client.post("/feedback", json={"request_id": request_id,
                                           "label": predictions[0]["label"]})  # fmt: skip
    assert right.status_code == 200, right.get_json()
    assert right.get_json() == {
        "request_id": request_id, "index": 0,
        "model": {"name": MODEL, "version": 1, "alias": "production"},
        "predicted": predictions[0]["label"], "label": predictions[0]["label"], "correct": True,
    }  # fmt: skip
    wrong = (predictions[1]["class_id"] + 1) % 10
    assert not client.post(
        "/feedback", json={"request_id": request_id, "label": wrong, "index": 1}
    ).get_json()["correct"]
    summary = client.get(f"/models/{MODEL}/feedback").get_json()
    assert summary["versions"] == [{"version": 1, "feedback": 2, "correct": 1, "accuracy": 0.5}]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert f'fashion_live_accuracy{{model="{MODEL}",version="1"}} 0.5' in metrics
    assert f'fashion_feedback_received{{model="{MODEL}",version="1"}} 2.0' in metrics


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"request_id": "never-answered", "label": 0}, 404, "prediction_not_found"),
        ({"request_id": "KNOWN", "label": "Sneakers"}, 400, "bad_request"),
        ({"request_id": "KNOWN", "label": 10}, 400, "bad_request"),
        ({"request_id": "KNOWN", "label": 1, "index": 1}, 400, "bad_request"),
        ({"request_id": "KNOWN", "label": 1, "index": "0"}, 400, "bad_request"),
        ({"request_id": "KNOWN"}, 400, "bad_request"),
        ({"request_id": "bad id\n", "label": 0}, 400, "bad_request"),
        ({"request_id": 7, "label": 0}, 400, "bad_request"),
        (["KNOWN", 0], 400, "bad_request"),
    ],
)
def test_bad_feedback_is_a_clear_4xx(client, body, status, code):
    request_id, _ = predicted(client)
    if isinstance(body, dict) and body.get("request_id") == "KNOWN":
        body = {**body, "request_id": request_id}
    assert_error(client.post("/feedback", json=body), status, code)
    assert client.get(f"/models/{MODEL}/feedback").get_json()["versions"] == []


def test_a_summary_of_an_unknown_model_is_a_404(client):
    assert_error(client.get("/models/nope/feedback"), 404, "model_not_found")
    assert_error(client.get("/models/Bad!/feedback"), 400, "invalid_name")


def test_feedback_needs_its_token_when_one_is_set(settings):
    app = create_app(replace(settings, feedback_token="fb-token"))
    try:
        client = app.test_client()
        request_id, _ = predicted(client)
        body = {"request_id": request_id, "label": 0}
        assert_error(client.post("/feedback", json=body), 401, "unauthorized")
        good = {"Authorization": "Bearer fb-token"}
        assert client.post("/feedback", json=body, headers=good).status_code == 200
    finally:
        app.extensions["fashion_serve"].close()


def test_feedback_is_rate_limited_per_client(settings):
    app = create_app(replace(settings, feedback_rate=1.0), start=False)
    client = app.test_client()
    body = {"request_id": "never-answered", "label": 0}
    statuses = [client.post("/feedback", json=body).status_code for _ in range(4)]
    assert statuses[:2] == [404, 404]  # a burst of twice the rate goes through
    limited = client.post("/feedback", json=body)
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) >= 1
    other = client.post("/feedback", json=body, environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert other.status_code == 404  # another client has its own bucket


def test_the_monitoring_endpoint_and_its_gauges(client):
    request_id, predictions = predicted(client, 4)
    client.post("/feedback", json={"request_id": request_id, "label": predictions[0]["label"]})
    shown = client.get(f"/models/{MODEL}/versions/1/monitoring").get_json()
    assert shown["answered"] == 4
    assert shown["feedback"] == {"count": 1, "correct": 1, "accuracy": 1.0}
    assert shown["classes"]["test"] is None  # the tiny models' cards hold no confusion matrix
    assert shown["psi"] is None
    assert shown["mean_confidence"] > 0
    metrics = client.get("/metrics").get_data(as_text=True)
    assert f'fashion_live_mean_confidence{{model="{MODEL}",version="1"}}' in metrics
    assert_error(client.get(f"/models/{MODEL}/versions/9/monitoring"), 404, "version_not_found")
    assert_error(client.get(f"/models/{MODEL}/versions/x/monitoring"), 400)
    assert_error(client.get("/models/nope/versions/1/monitoring"), 404, "model_not_found")


PIXELS = (dark_images(2, seed=3)[0] / 255).tolist()


@pytest.mark.parametrize(
    ("url", "body", "classes"),
    [
        (f"/v2/models/{MODEL}/infer",
         {"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 28, 28],
                      "data": PIXELS}]},
         lambda answer: [max(range(10), key=answer["outputs"][0]["data"].__getitem__)]),
        (f"/v1/models/{MODEL}:predict", {"instances": [PIXELS, PIXELS]},
         lambda answer: [max(range(10), key=row.__getitem__) for row in answer["predictions"]]),
    ],
)  # fmt: skip
def test_answers_of_the_tensor_protocols_take_feedback_too(client, url, body, classes):
    response = client.post(url, json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    answered = classes(response.get_json())
    request_id = response.headers["X-Request-ID"]
    index = len(answered) - 1
    joined = client.post("/feedback", json={"request_id": request_id, "label": answered[index],
                                            "index": index})  # fmt: skip
    assert joined.status_code == 200, joined.get_json()
    assert joined.get_json()["correct"] is True
    assert joined.get_json()["model"]["version"] == 1


def test_the_out_of_distribution_share_and_its_gauge(client, judging, novelty_reference):
    """Version 3 judges its inputs: a clothing picture passes, a checkerboard is flagged."""
    pictures = [png(novelty_reference.clothing()), png(checkerboard())]
    answer = client.post(f"/models/{MODEL}/predict?version={judging}", data=upload(*pictures))
    assert [p["in_distribution"] for p in answer.get_json()["predictions"]] == [True, False]
    shown = client.get(f"/models/{MODEL}/versions/{judging}/monitoring").get_json()
    assert shown["out_of_distribution"] == {
        "judged": 2, "flagged": 1, "live_share": 0.5, "test_share": None,
    }  # fmt: skip
    metrics = client.get("/metrics").get_data(as_text=True)
    assert f'fashion_live_ood_share{{model="{MODEL}",version="{judging}"}} 0.5' in metrics
