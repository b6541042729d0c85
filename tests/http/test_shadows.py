"""PUT/DELETE /models/<name>/aliases/<alias>/shadow and GET /models/<name>/shadows over the
Flask app with tiny real models: the copy is compared, counted, and never changes an answer."""

from dataclasses import replace

import pytest

from service.http import create_app
from tests.conftest import MODEL
from tests.http.checks import AUTH, assert_error, upload
from tests.http.test_metrics import scrape, value
from tests.images import dark_images, png
from tests.tiny_models import register_tiny
from tests.waiting import wait_for

URL = f"/models/{MODEL}/aliases/production/shadow"
REQUESTS = 20


def test_a_shadow_over_http_is_compared_counted_and_shown(client):
    image = png(dark_images(1)[0])
    before = client.post("/predict", data=upload(image)).get_json()
    moved = client.put(URL, json={"version": 2}, headers=AUTH)
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json() == {"model": MODEL, "alias": "production", "shadow": 2,
                                "previous": None}  # fmt: skip
    for _ in range(REQUESTS):
        assert client.post("/predict", data=upload(image)).get_json() == before

    def summary() -> dict:
        return client.get(f"/models/{MODEL}/shadows").get_json()

    wait_for(lambda: summary()["comparisons"], "the shadow's comparisons")
    wait_for(lambda: summary()["comparisons"][0]["compared"] == REQUESTS, "every comparison")
    row = summary()["comparisons"][0]
    assert (row["version"], row["served_version"]) == (2, 1)
    assert row["agreed"] + sum(map(sum, (d.values() for d in row["disagreements"].values()))) \
        == REQUESTS  # fmt: skip
    detail = client.get(f"/models/{MODEL}").get_json()
    assert detail["shadows"] == {"production": 2}
    assert detail["alias_log"][-1]["action"] == "shadow"
    metrics = client.get("/metrics").get_data(as_text=True)
    assert (f'fashion_shadow_predictions_total{{alias="production",model="{MODEL}",'
            f'served_version="1",version="2"}} {REQUESTS}.0') in metrics  # fmt: skip
    ended = client.delete(URL, headers=AUTH).get_json()
    assert (ended["shadow"], ended["previous"]) == (None, 2)
    assert client.get(f"/models/{MODEL}/shadows").get_json()["shadows"] == {}


@pytest.mark.parametrize(
    ("url", "body", "status", "code"),
    [
        (URL, {}, 400, "bad_request"),
        (URL, {"version": "2"}, 400, "bad_request"),
        (URL, {"version": True}, 400, "bad_request"),
        (URL, {"version": 1}, 400, "bad_request"),
        (URL, [2], 400, "bad_request"),
        (URL, {"version": 9}, 404, "version_not_found"),
        (f"/models/{MODEL}/aliases/nightly/shadow", {"version": 2}, 404, "alias_not_found"),
        ("/models/nope/aliases/production/shadow", {"version": 2}, 404, "model_not_found"),
        (f"/models/{MODEL}/aliases/Bad!/shadow", {"version": 2}, 400, "invalid_name"),
    ],
)
def test_bad_shadows_are_clear_4xx(client, url, body, status, code):
    assert_error(client.put(url, json=body, headers=AUTH), status, code)
    assert client.get(f"/models/{MODEL}").get_json()["shadows"] == {}


def test_an_anonymous_client_cannot_set_or_stop_a_shadow(client, settings, registry):
    assert_error(client.put(URL, json={"version": 2}), 401, "unauthorized")
    assert_error(client.put(URL, json={"version": 2}, headers={"Authorization": "Bearer x"}), 401)
    registry.set_shadow(MODEL, "production", 2)
    assert_error(client.delete(URL), 401, "unauthorized")
    read_only = create_app(replace(settings, admin_token=None), start=False)
    assert_error(read_only.test_client().delete(URL, headers=AUTH), 403, "read_only")
    assert registry.shadows(MODEL) == {"production": 2}


@pytest.mark.parametrize("url", ["/models/nope/shadows", "/models/Bad!/shadows"])
def test_the_summary_of_an_unknown_model_is_a_4xx(client, url):
    assert client.get(url).status_code in (400, 404)


def test_a_failing_shadow_is_counted_in_the_metrics_and_never_felt(client, registry, tmp_path):
    """rows=1: a real version that runs one image (its warm-up) but fails on two."""
    broken = register_tiny(registry, MODEL, 7, tmp_path, rows=1)
    pair = upload(*(png(image) for image in dark_images(2)))
    before = client.post("/predict", data=pair).get_json()
    assert client.put(URL, json={"version": broken}, headers=AUTH).status_code == 200
    for _ in range(3):
        pair = upload(*(png(image) for image in dark_images(2)))
        assert client.post("/predict", data=pair).get_json() == before
    labels = {"model": MODEL, "alias": "production", "version": str(broken)}
    wait_for(
        lambda: value(scrape(client), "fashion_shadow_failures_total", **labels) == 3,
        "three failures counted",
    )
    assert client.get(f"/models/{MODEL}/shadows").get_json()["comparisons"] == []
