"""One JSON log stream on stderr: gunicorn's own lines, the service's events, the access lines.

gunicorn applies `logging_config()` through its `logconfig_dict` setting (service/gunicorn.conf.py)
in the master and in every worker; the access lines (service/http/access_log.py) are written to
the same file descriptor directly.
"""

import logging
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
