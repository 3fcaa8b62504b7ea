"""The one mapping from errors to HTTP responses."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from werkzeug.exceptions import HTTPException

from chimera.errors import (
    ChimeraError,
    ConflictingDuplicate,
    EventTooLarge,
    InputError,
    NotFound,
    SchemaInvalid,
    ServiceUnavailable,
)

log = logging.getLogger(__name__)

#: Most specific first.
STATUS: tuple[tuple[type[ChimeraError], int], ...] = (
    (EventTooLarge, 413),
    (ConflictingDuplicate, 409),
    (InputError, 400),
    (NotFound, 404),
    (ServiceUnavailable, 503),
)


def status_for(exc: ChimeraError) -> int:
    for cls, code in STATUS:
        if isinstance(exc, cls):
            return code
    return 500


def _body(error: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": error, "message": message, **extra}


def register(app: Flask) -> None:
    @app.errorhandler(ChimeraError)
    def chimera_error(exc: ChimeraError) -> tuple[dict[str, Any], int]:
        code = status_for(exc)
        if code >= 500:
            log.error("request failed: %s", exc, exc_info=exc)
        extra = {"errors": exc.errors} if isinstance(exc, SchemaInvalid) else {}
        return _body(type(exc).__name__, str(exc), **extra), code

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[dict[str, Any], int]:
        return _body(exc.name, exc.description or exc.name), exc.code or 500
