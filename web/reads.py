"""Stored results: ``GET /conversations/<id>`` and ``GET /analysis-runs/<id>``."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask import Blueprint

from chimera.analysis_read import get_run
from chimera.errors import NotFound, SchemaInvalid
from web.resources import resources

bp = Blueprint("reads", __name__)

#: What a stored id can look like (the columns hold at most 64 characters).
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def _checked_id(value: str, field: str) -> str:
    """``value`` if it could name a stored row; a 400 naming ``field`` otherwise."""
    if not _ID.fullmatch(value):
        raise SchemaInvalid(
            f"invalid {field}",
            [
                {
                    "field": field,
                    "message": "expected 1-64 characters: letters, digits, '.', '_', ':' or '-'",
                }
            ],
        )
    return value


@bp.get("/conversations/<conversation_id>")
def conversation(conversation_id: str) -> dict[str, Any]:
    """The conversation's row and its turns, in order."""
    cid = _checked_id(conversation_id, "conversation_id")
    found = resources().conversations.get(cid)
    if found is None:
        raise NotFound("no such conversation", conversation_id=cid)
    return _as_object(found)


@bp.get("/analysis-runs/<run_id>")
def analysis_run(run_id: str) -> dict[str, Any]:
    """The analysis run's row: status, bundle, worker statuses."""
    rid = _checked_id(run_id, "run_id")
    found = get_run(resources().engine, rid)
    if found is None:
        raise NotFound("no such analysis run", run_id=rid)
    return _as_object(found)


def _as_object(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = jsonable(obj)
    return out


def jsonable(obj: Any) -> Any:
    """A dataclass (or anything inside one) as JSON values; times in ISO 8601."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, Decimal):
        return float(obj)
    return obj
