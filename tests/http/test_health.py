"""/readyz over a registry whose alias target broke: degraded but ready, with the reason."""

import shutil

from service.http import create_app
from tests.conftest import MODEL


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
