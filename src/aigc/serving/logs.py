"""The service's logs: one JSON object per line on stderr (uvicorn's own lines too, through LOG_CONFIG), customer
data masked in every string of it - the message, the fields, an error's text and traceback (data/masking.py) -
so that what a client sent never lands in a log as it was."""

from __future__ import annotations

import json
import logging
import time

from aigc.data.masking import Masker, default_masker

# fields the service itself writes (what route, what status, which model, how many): never a client's words,
# logged as they are (the caller is masked: without API keys it is the client's address)
SERVER_FIELDS = frozenset({"method", "route", "status", "ms", "model", "models", "keys", "api_keys", "images",
                           "texts", "completions"})  # fmt: skip


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, process id, message and the record's `fields`, masked."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {})
        told = {"message": record.getMessage(), **{k: v for k, v in fields.items() if k not in SERVER_FIELDS}}
        if record.exc_info:
            told["error"] = self.formatException(record.exc_info)
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,  # which worker, when uvicorn runs several
            **masked(told, default_masker()),  # what the record says, the client's words among it
            **{k: v for k, v in fields.items() if k in SERVER_FIELDS},
        }
        return json.dumps(line, default=str)


def masked(value, masker: Masker):
    """`value` with every string in it (of dicts and lists too, and the text of any other object) masked."""
    if isinstance(value, dict):
        return {key: masked(item, masker) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [masked(item, masker) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return masker.mask(str(value))


JsonFormatter.converter = time.gmtime

LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": JsonFormatter}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "loggers": {
        "aigc.serve": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}


def json_logger() -> logging.Logger:
    """The service's logger; uvicorn's log_config (LOG_CONFIG) gives it its JSON handler, and an app built
    without uvicorn (tests, embedding) gets one here."""
    log = logging.getLogger("aigc.serve")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    return log
