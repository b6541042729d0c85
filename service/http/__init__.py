"""The Flask application: create_app() wires the core into one blueprint per concern."""

import logging
from typing import Any

from flask import Flask
from flask.sessions import NullSession, SessionInterface

from service.core import Core
from service.settings import Settings
from service.settings import current as current_settings

from . import (
    access_log,
    activations_view,
    canaries,
    docs,
    error_map,
    feedback_view,
    forwarded,
    health,
    metrics,
    models,
    monitoring_view,
    predict,
    preprocess_view,
    shadows,
    spec,
    tfserving,
    ui,
    v2,
)
from .current import EXTENSION
from .json_provider import OrjsonProvider


class NoSessions(SessionInterface):
    """The service keeps no sessions: one shared, read-only empty session, not one per request."""

    null = NullSession()  # refuses writes, so one instance can serve every request

    def open_session(self, app: Flask, request: Any) -> NullSession:
        return self.null


def create_app(settings: Settings | None = None, *, start: bool = True) -> Flask:
    """Build an app around one Core; start=False leaves models unloaded (tests)."""
    settings = settings or current_settings()
    app = Flask(__name__, static_folder=None)  # no /static: docs and the page serve their own
    app.json = OrjsonProvider(app)
    app.session_interface = NoSessions()
    core = Core(settings)
    app.extensions[EXTENSION] = core
    error_map.init_app(app)
    # One list: every registered blueprint's paths make up the document it serves.
    modules = (
        predict,
        preprocess_view,
        activations_view,
        models,
        canaries,
        shadows,
        feedback_view,
        monitoring_view,
        health,
        v2,
        tfserving,
        metrics,
        docs,
        ui,
    )
    for module in modules:
        app.register_blueprint(module.bp)
    docs.init_app(app, spec.document(module.PATHS for module in modules))
    metrics.init_app(app)  # before start(): the first model load is counted too
    feedback_view.init_app(app)  # after metrics: its gauges join them
    monitoring_view.init_app(app)
    shadows.init_app(app)
    access_log.init_app(app)  # after metrics: its wrapper feeds them
    forwarded.init_app(app, settings.trusted_proxies)  # last: outermost, before the access log
    if start:
        logging.getLogger("fashion_serve").setLevel(logging.INFO)
        core.start()
    return app
