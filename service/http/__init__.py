"""The Flask application: create_app() wires the core into one blueprint per concern."""

import logging
from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider
from flask.sessions import NullSession, SessionInterface

from service.inference import InferenceService
from service.settings import Settings

from . import (
    access_log,
    activations,
    docs,
    errors,
    forwarded,
    health,
    metrics,
    models,
    openapi,
    predict,
    preprocess,
    tfserving,
    ui,
    v2,
)
from .parsing import EXTENSION


class NoSessions(SessionInterface):
    """The service keeps no sessions: one shared, read-only empty session, not one per request."""

    null = NullSession()  # refuses writes, so one instance can serve every request

    def open_session(self, app: Flask, request: Any) -> NullSession:
        return self.null


def create_app(settings: Settings | None = None, *, start: bool = True) -> Flask:
    """Build an app around one InferenceService; start=False leaves models unloaded (tests)."""
    settings = settings or Settings.from_env()
    app = Flask(__name__, static_folder=None)  # no /static: docs and the page serve their own
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    json = DefaultJSONProvider(app)
    json.sort_keys = False  # keep class order in probabilities
    app.json = json
    app.session_interface = NoSessions()
    service = InferenceService(settings)
    app.extensions[EXTENSION] = service
    errors.init_app(app)
    # One list: every registered blueprint's paths make up the document it serves.
    modules = (predict, preprocess, activations, models, health, v2, tfserving, metrics, docs, ui)
    for module in modules:
        app.register_blueprint(module.bp)
    docs.init_app(app, openapi.document(module.PATHS for module in modules))
    metrics.init_app(app)  # before start(): the first model load is counted too
    access_log.init_app(app)  # after metrics: its wrapper feeds them
    forwarded.init_app(app, settings.trusted_proxies)  # last: outermost, before the access log
    if start:
        logging.getLogger("fashion_serve").setLevel(logging.INFO)
        service.start()
    return app
