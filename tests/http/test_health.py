"""Liveness and readiness probes, also over a registry whose alias target broke."""

import shutil
from dataclasses import replace

from service.http import create_app
from tests.conftest import MODEL
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


def test_readyz_is_200_and_degraded_while_a_last_good_version_answers(registry, settings):
    registry.set_alias(MODEL, "production", 2)
    shutil.rmtree(registry.version_dir(MODEL, 2))
    app = create_app(settings)
    client = app.test_client()
    try:
        response = client.get("/readyz")
        assert response.status_code == 200
        body = response.get_json()
        assert body["status"] == "degraded"
        assert body["serving"][0]["version"] == 1
        assert body["refused"][0]["version"] == 2
        assert "no version 2" in body["refused"][0]["reason"]
        assert client.get("/v2/health/ready").status_code == 200
        answer = client.post("/v2/models/fashion-mnist/infer", json={
            "inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 28, 28],
                        "data": [0] * 784}]})  # fmt: skip
        assert answer.status_code == 200
        assert answer.get_json()["model_version"] == "1"
    finally:
        app.extensions["fashion_serve"].close()
