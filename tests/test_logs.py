"""One JSON log stream: the formatter, and every line real gunicorn and the service write."""

import json
import logging
import os
import sys

import pytest
import requests

from service.logs import JsonFormatter, Throttled, logging_config
from tests.conftest import MODEL, tiny_registry
from tests.e2e.server import GunicornServer
from tests.tiny_models import register_tiny
from tests.waiting import wait_for


def test_a_throttled_failure_is_logged_once_per_interval_and_per_key(caplog):
    now = [100.0]
    throttled = Throttled(logging.getLogger("fashion_serve.test"), 60, clock=lambda: now[0])
    written = []
    with caplog.at_level(logging.ERROR, logger="fashion_serve.test"):
        for at, key in [(100, "a"), (110, "a"), (120, "b"), (159, "a"), (160, "a"), (161, "a")]:
            now[0] = at
            try:
                raise ValueError(key)
            except ValueError:
                written.append(throttled.exception(key, "%s failed", key))
    assert written == [True, False, True, False, True, False]
    assert [r.getMessage() for r in caplog.records] == [
        "a failed",
        "b failed",
        "a failed (2 more since the last such line, not logged)",
    ]
    assert all(r.exc_info for r in caplog.records)


def test_a_record_becomes_one_json_object_with_its_exception():
    try:
        raise ValueError("broken")
    except ValueError:
        record = logging.getLogger("fashion_serve").makeRecord(
            "fashion_serve", logging.ERROR, __file__, 1, "failed %s", ("twice",), sys.exc_info()
        )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "error"
    assert entry["logger"] == "fashion_serve"
    assert entry["message"] == "failed twice"
    assert "ValueError: broken" in entry["exception"]
    assert entry["ts"] == pytest.approx(record.created, abs=0.001)


def test_the_service_logger_has_a_handler_of_its_own():
    config = logging_config("warning")
    assert config["loggers"]["fashion_serve"]["handlers"] == ["json"]
    assert config["loggers"]["fashion_serve"]["level"] == "INFO"  # whatever gunicorn's level


@pytest.mark.slow
def test_gunicorn_and_service_lines_are_json_and_each_event_is_logged_once(tmp_path):
    registry = tiny_registry(tmp_path)
    server = GunicornServer(registry.root, tmp_path / "server.log", workers=1)
    with server:
        assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200
        registry.set_alias(MODEL, "production", 2)
        wait_for(lambda: "now serves v2" in server.log(), "switch to v2 not logged")
        # A new version whose file no longer matches its sha256, pointed at by hand (the
        # registry itself refuses such a move): the worker refuses it.
        broken = register_tiny(registry, MODEL, 3, tmp_path)
        registry.model_path(MODEL, broken).write_bytes(b"not a model")
        aliases = registry.root / MODEL / "aliases.json"
        edited = aliases.with_suffix(".tmp")
        edited.write_text(json.dumps({"production": broken, "staging": 2}))
        os.replace(edited, aliases)
        wait_for(lambda: "refused" in server.log(), "refusal not logged")
        for _ in range(20):  # requests for the broken alias must not add refusal lines
            requests.get(f"{server.url}/models/{MODEL}/predict?alias=production", timeout=10)
    entries = [json.loads(line) for line in server.log().splitlines()]
    messages = [entry.get("message", "") for entry in entries]

    def count(text: str) -> int:
        return sum(text in message for message in messages)

    assert count("Booting worker with pid") == 1
    assert count("Worker exiting") == 1
    assert count(f"loaded {MODEL} v1") == 1
    assert count(f"alias {MODEL}:production now serves v1") == 1
    assert count(f"alias {MODEL}:production now serves v2") == 1
    assert count(f"refused {MODEL} v3 for alias production") == 1
    loggers = {entry["logger"] for entry in entries if "logger" in entry}
    assert "gunicorn.error" in loggers
    assert any(name.startswith("fashion_serve") for name in loggers)
    assert any(entry.get("path") == "/healthz" for entry in entries)  # the access line
