"""Server logging: plain lines by default, one JSON object a line with ORBIS_LOG_FORMAT=json
(for log collectors), for Orbis's own loggers and uvicorn's alike."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

PLAIN = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def log_format() -> str:
    chosen = os.environ.get("ORBIS_LOG_FORMAT", "plain").lower()
    if chosen not in ("plain", "json"):
        raise SystemExit(f"ORBIS_LOG_FORMAT={chosen}: use plain or json")
    return chosen


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """A logging.config.dictConfig (uvicorn applies it in each worker process)."""
    formatter: dict[str, Any] = (
        {"()": "orbis.logs.JsonFormatter"} if log_format() == "json" else {"format": PLAIN}
    )
    handler = {"class": "logging.StreamHandler", "formatter": "main", "stream": "ext://sys.stderr"}
    quiet = {"handlers": ["main"], "level": level.upper(), "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"main": formatter},
        "handlers": {"main": handler},
        "root": {"handlers": ["main"], "level": level.upper()},
        "loggers": {"uvicorn": quiet, "uvicorn.error": quiet, "uvicorn.access": quiet},
    }
