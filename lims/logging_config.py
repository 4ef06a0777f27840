"""Logging of the LIMS: handlers configured once, in ``create_app``, and a line per request.

Settings (``DNATRACK_LOG_*`` environment variables, or the mapping given to ``create_app``):

- ``LOG_LEVEL``: ``DEBUG``, ``INFO`` (default), ``WARNING``, ``ERROR``;
- ``LOG_FORMAT``: ``text`` (default) or ``json`` (one JSON object per line);
- ``LOG_FILE``: a file to append to (reopened when rotated away); unset: standard error.

Modules log with ``logging.getLogger(__name__)``; one handler on the project's package loggers
(``lims``, ``matching``, ``dnatrack``) writes them all. Records logged while a request is
served carry its ``request_id`` (the client's ``X-Request-ID`` when it is a plain token, else
a new one, sent back in the response) and the authenticated ``user_id``. Every request ends
with one line of ``lims.requests``: method, path (without the query string), status,
duration, user id, request id and client address, never a password, token or cookie.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
import time
import uuid

from flask import Flask, g, has_request_context, request
from flask.logging import default_handler
from pythonjsonlogger.json import JsonFormatter
from werkzeug.wrappers import Response

PACKAGE_LOGGERS = ("lims", "matching", "dnatrack")
LOG_FORMATS = ("text", "json")
REQUEST_ID_HEADER = "X-Request-ID"
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
TEXT_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s [request=%(request_id)s user=%(user_id)s] %(message)s"
)
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(user_id)s"

request_logger = logging.getLogger("lims.requests")


class RequestContextFilter(logging.Filter):
    """Adds ``request_id`` and ``user_id`` to every record (``-`` and ``None`` outside a
    request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            record.request_id = g.get("request_id", "-")
            record.user_id = g.get("authenticated_user_id")
        else:
            record.request_id, record.user_id = "-", None
        return True


class TextFormatter(logging.Formatter):
    """One line per record: line breaks that came with a value (a username typed, a path)
    are written as ``\\n``, so they cannot forge lines of their own. Tracebacks follow
    as usual."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return super().formatMessage(record).replace("\r", "\\r").replace("\n", "\\n")


class StandardErrorHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (servers and test runners
    replace it)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):
        return sys.stderr


def _handler(config) -> logging.Handler:
    log_format = str(config["LOG_FORMAT"]).lower()
    if log_format not in LOG_FORMATS:
        raise ValueError(
            f"DNATRACK_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}"
        )
    path = config.get("LOG_FILE")
    handler = (
        logging.handlers.WatchedFileHandler(path, encoding="utf-8")
        if path
        else StandardErrorHandler()
    )
    if log_format == "json":
        renamed = {"asctime": "time", "levelname": "level", "name": "logger"}
        handler.setFormatter(JsonFormatter(JSON_FIELDS, rename_fields=renamed))
    else:
        handler.setFormatter(TextFormatter(TEXT_FORMAT))
    handler.addFilter(RequestContextFilter())
    handler.dnatrack_handler = True
    return handler


def _level(config) -> int:
    name = str(config["LOG_LEVEL"]).upper()
    level = logging.getLevelNamesMapping().get(name)
    if level is None:
        raise ValueError(f"DNATRACK_LOG_LEVEL is not a logging level: {config['LOG_LEVEL']!r}")
    return level


def configure_logging(app: Flask) -> None:
    """Replace the handler of the project's loggers by one made from ``app``'s settings (so
    building a second app does not write every line twice)."""
    level = _level(app.config)
    handler = _handler(app.config)
    for name in PACKAGE_LOGGERS:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if getattr(h, "dnatrack_handler", False)]:
            logger.removeHandler(old)
            old.close()
        # Flask's own handler on the app's logger ("lims") would write lines a second time.
        logger.removeHandler(default_handler)
        logger.addHandler(handler)
        logger.setLevel(level)


def _start_request() -> None:
    g.request_started = time.perf_counter()
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = offered if _CLIENT_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex


def _log_request(response: Response) -> Response:
    duration_ms = (time.perf_counter() - g.get("request_started", time.perf_counter())) * 1000
    response.headers[REQUEST_ID_HEADER] = g.get("request_id", "-")
    request_logger.info(
        "%s %s %s %.1fms address=%s",
        request.method,
        request.path,
        response.status_code,
        duration_ms,
        request.remote_addr,
        extra={
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round(duration_ms, 1),
            "address": request.remote_addr,
        },
    )
    return response


def init_app(app: Flask) -> None:
    """Configure logging from ``app``'s settings and log every request it serves."""
    configure_logging(app)
    app.before_request(_start_request)
    app.after_request(_log_request)
