"""Logging of every long-running process: one line per record, as text or as JSON.

``--log-format json`` (or ``CARTBANDS_LOG_FORMAT=json``) writes one JSON object per line
(``ts``, ``level``, ``logger``, ``message``, and ``error`` with the traceback, if any) for a
log collector; ``text`` (the default) is for a terminal. Library chatter (Kafka clients, Faust)
is kept at warnings: its debug and info records cost CPU on the hot path and say little.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET_LOGGERS = ("aiokafka", "kafka", "faust", "mode")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def log_format(chosen: str) -> str:
    """``chosen`` (the flag, else ``CARTBANDS_LOG_FORMAT``) checked: ValueError if unknown."""
    value = chosen.strip().lower()
    if value not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {value!r}")
    return value


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    """Configure the root logger of this process (replacing any handler) on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
