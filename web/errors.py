"""The one mapping from errors to HTTP responses.

Every error leaves as JSON, ``{"error": <name>, "message": <text>}``: chimera's
errors by class (below), HTTP errors (404, 405, 413, 401, ...) by their code with
their headers (``Allow``, ``WWW-Authenticate``), and anything unexpected as a
500 whose details stay in the log, never in the answer.  Messages pass through the
app's redactor: an error that quotes a URL or a driver's message carries no secret.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from werkzeug.exceptions import HTTPException

from chimera import redaction
from chimera.errors import (
    ChimeraError,
    ConflictingDuplicate,
    EventTooLarge,
    InputError,
    JobConflict,
    NotFound,
    SchemaInvalid,
    ServiceUnavailable,
)

log = logging.getLogger(__name__)

#: Most specific first.
STATUS: tuple[tuple[type[ChimeraError], int], ...] = (
    (EventTooLarge, 413),
    (ConflictingDuplicate, 409),
    (JobConflict, 409),
    (InputError, 400),
    (NotFound, 404),
    (ServiceUnavailable, 503),
)


def status_for(exc: ChimeraError) -> int:
    for cls, code in STATUS:
        if isinstance(exc, cls):
            return code
    return 500


def register(app: Flask) -> None:
    settings = app.config.get("CHIMERA_SETTINGS")
    redactor = redaction.redactor_for(settings) if settings is not None else None

    def clean(text: str) -> str:
        return (redactor or redaction.installed()).redact(text)

    def _body(error: str, message: str, **extra: Any) -> dict[str, Any]:
        return {"error": error, "message": clean(message), **extra}

    @app.errorhandler(ChimeraError)
    def chimera_error(exc: ChimeraError) -> tuple[dict[str, Any], int]:
        code = status_for(exc)
        if code >= 500:
            log.error("request failed: %s", exc, exc_info=exc)
        extra: dict[str, Any] = {}
        if isinstance(exc, JobConflict):
            extra["status"] = exc.status
        if isinstance(exc, SchemaInvalid):
            extra["errors"] = [
                {k: clean(v) if isinstance(v, str) else v for k, v in e.items()} for e in exc.errors
            ]
        return _body(type(exc).__name__, str(exc), **extra), code

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[dict[str, Any], int, list[tuple[str, str]]]:
        # Unexpected exceptions arrive here as InternalServerError, already logged by Flask.
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
        return _body(exc.name, exc.description or exc.name), exc.code or 500, headers
