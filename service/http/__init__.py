"""The Flask application: create_app() wires the core into one blueprint per concern."""

import logging

from flask import Flask

from service.inference import InferenceService
from service.settings import Settings

from . import errors, health, models, predict
from .parsing import EXTENSION


def create_app(settings: Settings | None = None, *, start: bool = True) -> Flask:
    """Build an app around one InferenceService; start=False leaves models unloaded (tests)."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    app.json.sort_keys = False  # keep class order in probabilities
    service = InferenceService(settings)
    app.extensions[EXTENSION] = service
    errors.init_app(app)
    for blueprint in (predict.bp, models.bp, health.bp):
        app.register_blueprint(blueprint)
    if start:
        logging.getLogger("fashion_serve").setLevel(logging.INFO)
        service.start()
    return app
