"""Liveness and readiness probes."""

from dataclasses import replace

from service.http import create_app
from tests.http.checks import assert_error, upload
from tests.images import dark_images, png


def test_health_and_readiness(client, settings, tmp_path):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["ready"] is True
    empty = tmp_path / "empty"
    empty.mkdir()
    app = create_app(replace(settings, model_dir=empty))
    not_ready = app.test_client().get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.get_json()["refused"]
    assert_error(
        app.test_client().post("/predict", data=upload(png(dark_images(1)[0]))), 503, "not_ready"
    )
    app.extensions["fashion_serve"].close()
