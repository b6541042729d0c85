"""PUT/DELETE /models/<name>/aliases/<alias>/canary over the Flask app with tiny real models."""

from dataclasses import replace

import pytest

from service.http import create_app
from tests.conftest import MODEL
from tests.http.checks import AUTH, assert_error, upload
from tests.images import dark_images, png

URL = f"/models/{MODEL}/aliases/production/canary"


def test_a_canary_over_http_routes_keys_and_is_shown(client):
    image = png(dark_images(1)[0])
    moved = client.put(URL, json={"version": 2, "weight": 50}, headers=AUTH)
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json() == {
        "model": MODEL, "alias": "production",
        "canary": {"version": 2, "weight": 50}, "previous": None,
    }  # fmt: skip
    answers = {}
    for i in range(40):
        response = client.post("/predict", data=upload(image), headers={"X-Request-Key": f"u{i}"})
        version = response.get_json()["model"]["version"]
        assert response.headers["X-Model-Version"] == f"{MODEL}:{version}"
        answers[f"u{i}"] = version
    assert set(answers.values()) == {1, 2}
    for key, version in list(answers.items())[:10]:
        again = client.post("/predict", data=upload(image), headers={"X-Request-Key": key})
        assert again.get_json()["model"]["version"] == version
    detail = client.get(f"/models/{MODEL}").get_json()
    assert detail["canaries"] == {"production": {"version": 2, "weight": 50}}
    assert detail["alias_log"][-1]["action"] == "canary"
    metrics = client.get("/metrics").get_data(as_text=True)
    assert f'fashion_version_images_classified_total{{model="{MODEL}",version="2"}}' in metrics
    ended = client.delete(URL, headers=AUTH).get_json()
    assert ended["canary"] is None
    assert ended["previous"] == {"version": 2, "weight": 50}
    for i in range(40):
        response = client.post("/predict", data=upload(image), headers={"X-Request-Key": f"u{i}"})
        assert response.get_json()["model"]["version"] == 1


@pytest.mark.parametrize(
    ("url", "body", "status", "code"),
    [
        (URL, {"version": 2}, 400, "bad_request"),
        (URL, {"version": 2, "weight": 0}, 400, "bad_request"),
        (URL, {"version": 2, "weight": 100}, 400, "bad_request"),
        (URL, {"version": 2, "weight": "10"}, 400, "bad_request"),
        (URL, {"version": 2, "weight": True}, 400, "bad_request"),
        (URL, {"version": 1, "weight": 10}, 400, "bad_request"),
        (URL, [2, 10], 400, "bad_request"),
        (URL, {"version": 9, "weight": 10}, 404, "version_not_found"),
        (f"/models/{MODEL}/aliases/nightly/canary", {"version": 2, "weight": 10}, 404,
         "alias_not_found"),
        ("/models/nope/aliases/production/canary", {"version": 2, "weight": 10}, 404,
         "model_not_found"),
        (f"/models/{MODEL}/aliases/Bad!/canary", {"version": 2, "weight": 10}, 400,
         "invalid_name"),
    ],
)  # fmt: skip
def test_bad_canaries_are_clear_4xx(client, url, body, status, code):
    assert_error(client.put(url, json=body, headers=AUTH), status, code)
    assert client.get(f"/models/{MODEL}").get_json()["canaries"] == {}


def test_canaries_need_the_token(client, settings):
    body = {"version": 2, "weight": 10}
    assert_error(client.put(URL, json=body), 401, "unauthorized")
    assert_error(client.delete(URL, headers={"Authorization": "Bearer wrong"}), 401)
    read_only = create_app(replace(settings, admin_token=None), start=False)
    assert_error(read_only.test_client().put(URL, json=body, headers=AUTH), 403, "read_only")
    assert client.get(f"/models/{MODEL}").get_json()["canaries"] == {}


def test_ending_a_canary_of_an_unknown_model_is_a_404(client):
    assert_error(client.delete("/models/nope/aliases/production/canary", headers=AUTH), 404)
    assert client.delete(URL, headers=AUTH).get_json()["previous"] is None
