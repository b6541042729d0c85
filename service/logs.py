"""One JSON log stream on stderr: gunicorn's own lines, the service's events, the access lines.

gunicorn applies `logging_config()` through its `logconfig_dict` setting (service/gunicorn.conf.py)
in the master and in every worker; the access lines (service/http/access_log.py) are written to
the same file descriptor directly.
"""

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

import orjson

SERVICE_LOGGER = "fashion_serve"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, pid, message (and exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


class Throttled:
    """Logs the first failure of a kind, then at most one line per interval with how many were
    left out since: a failure repeated for every request must not flood the log (the metrics
    count every one)."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger, self.interval, self.clock = logger, interval, clock
        self._lock = threading.Lock()
        self._logged_at: dict[Hashable, float] = {}  # keys: a few kinds of failure, bounded
        self._left_out: dict[Hashable, int] = {}

    def exception(self, key: Hashable, message: str, *args: object) -> bool:
        """log.exception(message, *args) unless a line of this key was logged within the
        interval; then only counted. True when the line was written."""
        now = self.clock()
        with self._lock:
            logged_at = self._logged_at.get(key)
            if logged_at is not None and now - logged_at < self.interval:
                self._left_out[key] = self._left_out.get(key, 0) + 1
                return False
            self._logged_at[key] = now
            left_out = self._left_out.pop(key, 0)
        if left_out:
            message += " (%d more since the last such line, not logged)"
            args = (*args, left_out)
        self.logger.exception(message, *args)
        return True


def logging_config(level: str = "info", gunicorn_access: bool = False) -> dict[str, Any]:
    """A logging.config.dictConfig dict: every logger through one JSON handler on stderr."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"json": handler},
        "root": {"level": level.upper(), "handlers": ["json"]},
        "loggers": {
            "gunicorn.error": {"level": level.upper(), "handlers": [], "propagate": True},
            # gunicorn's access lines only when asked for (FASHION_ACCESS_LOG): the app writes its
            # own, with the request ID and the model version.
            "gunicorn.access": {
                "level": "INFO" if gunicorn_access else "WARNING",
                "handlers": [],
                "propagate": True,
            },
            # Loads, switches and refusals are INFO/ERROR whatever gunicorn's level is.
            SERVICE_LOGGER: {"level": "INFO", "handlers": ["json"], "propagate": False},
        },
    }
