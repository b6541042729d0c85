"""The WSGI entry point for gunicorn: `gunicorn -c service/gunicorn.conf.py service.wsgi:app`."""

import logging
import sys

from service.errors import DeviceUnavailable
from service.http import create_app

# gunicorn's exit status for "the app failed to load": its master stops instead of forking
# replacement workers that would fail the same way.
APP_LOAD_ERROR = 4

try:
    app = create_app()
except DeviceUnavailable as exc:
    logging.getLogger("fashion_serve").critical("cannot start: %s", exc)
    sys.exit(APP_LOAD_ERROR)
