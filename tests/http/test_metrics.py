"""/metrics through Flask's test client (one process): it parses, and its counters move."""

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from service.contract import CLASS_NAMES
from tests.conftest import MODEL
from tests.fake_observers import FakeBroken
from tests.http.checks import upload
from tests.images import dark_images, png
from tests.tiny_models import force_alias, register_tiny
from tests.waiting import wait_for


def scrape(client) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_request_counts_and_latency_by_route_not_raw_path(client):
    before = scrape(client)
    for version in (1, 2, 2):
        assert client.get(f"/models/{MODEL}/versions/{version}").status_code == 200
    assert client.get("/no/such/path").status_code == 404
    assert client.get("/another/unknown").status_code == 404
    after = scrape(client)
    route = "/models/<name>/versions/<version>"
    labels = {"endpoint": route, "method": "GET", "status": "200"}
    assert (
        value(after, "fashion_http_requests_total", **labels)
        - value(before, "fashion_http_requests_total", **labels)
        == 3
    )
    assert value(after, "fashion_http_request_duration_seconds_count", **labels) == 3
    missing = {"endpoint": "<unmatched>", "method": "GET", "status": "404"}
    assert value(after, "fashion_http_requests_total", **missing) == 2
    assert not any("/no/such/path" in str(key) for key in after)


def test_images_are_counted_by_predicted_class(client, app):
    batch = dark_images(5)
    model = app.extensions["fashion_serve"].data_plane.model(MODEL)[0].model
    classes = model.run(np.stack(batch).astype(np.float32) / 255).argmax(axis=1)
    assert client.post("/predict", data=upload(*map(png, batch))).status_code == 200
    samples = scrape(client)
    for class_id in set(classes.tolist()):
        label = CLASS_NAMES[class_id]
        count = int((classes == class_id).sum())
        assert value(samples, "fashion_images_classified_total", model=MODEL, label=label) == count
    total = sum(v for (name, _), v in samples.items() if name == "fashion_images_classified_total")
    assert total == 5


def test_loads_switches_and_refusals_are_visible(client, app, registry, tmp_path):
    samples = scrape(client)
    assert value(samples, "fashion_model_loads_total", model=MODEL) == 1  # production at start
    assert value(samples, "fashion_alias_version", model=MODEL, alias="production") == 1
    assert client.get(f"/v2/models/{MODEL}/versions/2/ready").status_code == 200
    assert value(scrape(client), "fashion_model_loads_total", model=MODEL) == 2
    # A corrupted third version promoted behind the service's back is refused once.
    broken = register_tiny(registry, MODEL, 9, tmp_path)
    registry.model_path(MODEL, broken).write_bytes(b"not the registered model")
    force_alias(registry, MODEL, "production", broken)  # the registry itself would refuse it
    core = app.extensions["fashion_serve"]
    wait_for(lambda: core.status()["refused"])
    samples = scrape(client)
    assert value(samples, "fashion_model_refusals_total", model=MODEL, alias="production") == 1
    assert value(samples, "fashion_alias_version", model=MODEL, alias="production") == 1
    assert value(samples, "fashion_alias_degraded", model=MODEL, alias="production") == 1
    registry.set_alias(MODEL, "production", 2)
    wait_for(lambda: core.data_plane.model(MODEL)[0].version == 2)
    samples = scrape(client)
    assert value(samples, "fashion_alias_version", model=MODEL, alias="production") == 2
    assert value(samples, "fashion_alias_degraded", model=MODEL, alias="production") == 0


def test_a_failing_observer_never_breaks_serving(client, app):
    app.extensions["fashion_serve"].observers.append(FakeBroken())
    response = client.post("/predict", data=png(dark_images(1)[0]), content_type="image/png")
    assert response.status_code == 200
