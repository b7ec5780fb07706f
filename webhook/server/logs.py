"""Structured logs: one JSON object per line, for log pipelines; plain text for people.

Admission lines carry the request's uid, namespace, the object's `kind` and `object_name`
(or generateName; a pod's name also as `pod`), operation,
subresource (`ephemeralcontainers` for `kubectl debug`, empty for the pod itself), decision
and duration as fields of their own (`extra=`), never whole bodies or secrets.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime",
                                                                       "color_message"}


class JsonFormatter(logging.Formatter):
    """`{"time": ..., "level": ..., "logger": ..., "msg": ..., <extra fields>}`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def log_config(level: str = "info", fmt: str = "json") -> dict[str, Any]:
    """A `logging.config.dictConfig` for our loggers and uvicorn's, in every worker."""
    formatter = ({"()": "webhook.server.logs.JsonFormatter"} if fmt == "json"
                 else {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"})
    handler = {"class": "logging.StreamHandler", "formatter": "main",
               "stream": "ext://sys.stderr"}
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"main": formatter},
        "handlers": {"main": handler},
        "loggers": {
            "kci-webhook": {"handlers": ["main"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["main"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            # one line per mirror check would drown the admissions; failures are warnings
            "httpx": {"handlers": ["main"], "level": "WARNING", "propagate": False},
        },
    }
