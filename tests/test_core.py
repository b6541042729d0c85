"""The core: it starts, becomes ready, and says what it serves and has loaded."""

import os

from tests.conftest import MODEL


def test_start_loads_the_default_alias_and_becomes_ready(service):
    assert service.is_ready()
    loaded, alias = service.data_plane.model()
    assert (loaded.name, loaded.version, alias) == (MODEL, 1, "production")
    status = service.status()
    assert status["ready"] is True
    assert {"model": MODEL, "alias": "production", "version": 1, "degraded": False} in status[
        "serving"
    ]


def test_status_names_what_answers_and_what_is_loaded(service):
    service.data_plane.model(version=2)
    status = service.status()
    assert status["default"] == {"model": MODEL, "alias": "production"}
    assert status["pid"] == os.getpid()
    assert status["serving"] == [
        {"model": MODEL, "alias": "production", "version": 1, "degraded": False}
    ]
    assert [(m["model"], m["version"]) for m in status["loaded"]] == [(MODEL, 1), (MODEL, 2)]
    assert status["loaded"][0]["providers"] == service.providers
