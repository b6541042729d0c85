"""The app's core, kept in app.extensions (not in a module global), and its two faces."""

from flask import current_app

from service.core import Core
from service.data_plane import DataPlane
from service.registry_view import RegistryView
from service.settings import Settings

EXTENSION = "fashion_serve"


def core() -> Core:
    """The app's core: lifecycle and readiness."""
    found: Core = current_app.extensions[EXTENSION]
    return found


def data_plane() -> DataPlane:
    """What image and tensor requests talk to: predict, preprocess, explain."""
    return core().data_plane


def registry_view() -> RegistryView:
    """What the model endpoints talk to: models, versions, cards, files, aliases."""
    return core().registry_view


def settings() -> Settings:
    """The settings the app was built with."""
    return core().settings
