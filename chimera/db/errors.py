"""SQLAlchemy and psycopg2 errors, translated into the error tree in one place.

``database_errors`` wraps every block that talks to Postgres: the library's
exceptions leave it as ``DatabaseUnavailable`` (retryable) or ``DataRejected``
(permanent), ``from`` the original.  Which one is decided by what a retry could
change:

- the server or the way to it (connection refused or lost, pool exhausted, a
  statement timeout, a deadlock or serialization failure, the server shutting
  down): a retry may pass -> ``DatabaseUnavailable``;
- the values we sent (SQLSTATE class 22 "data exception": a NUL escape in JSONB,
  a number out of range, bad text for a type; class 23 "integrity constraint
  violation"; psycopg2 refusing a value before sending it: a NUL in a text
  literal, a type it cannot adapt; SQLAlchemy failing to bind a value): the same
  write fails the same way every time -> ``DataRejected``.

Anything else (an unknown ``SQLAlchemyError``, a missing table or privilege, an
empty ``scalar_one``) stays ``DatabaseUnavailable``, as it always was: an
operator can fix the database under a waiting retry, and retrying a failure we
cannot name costs time, where dead-lettering it would lose the event's work.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
from sqlalchemy.exc import DBAPIError, SQLAlchemyError, StatementError

from chimera.errors import ChimeraError, DatabaseUnavailable, DataRejected

#: SQLSTATE classes of errors in the data sent, not in the server.
_DATA_CLASSES = ("22", "23")

#: What psycopg2 says (as a ValueError, before anything is sent) about a NUL in text.
_NUL_LITERAL = "cannot contain NUL"

#: What psycopg2 says (as a ProgrammingError, before sending) about a value of a type
#: it has no SQL form for.
_CANNOT_ADAPT = "can't adapt"


@contextmanager
def database_errors(message: str, *, brief: bool = False, **ids: Any) -> Iterator[None]:
    """Translate the block's SQLAlchemy/psycopg2 errors into the error tree.

    The error reads ``"<message>: <library error>"``; ``brief`` keeps only the first
    line of the driver's own message (for reports that show one line per check).
    """
    try:
        yield
    except (SQLAlchemyError, psycopg2.Error) as exc:
        raise database_error(message, exc, brief=brief, **ids) from exc
    except ValueError as exc:
        if _NUL_LITERAL not in str(exc):
            raise
        raise DataRejected(f"{message}: {exc}", **ids) from exc


def database_error(
    message: str, exc: BaseException, *, brief: bool = False, **ids: Any
) -> ChimeraError:
    """The Chimera error for the library error ``exc`` (see the module docstring)."""
    cls = DataRejected if is_data_error(exc) else DatabaseUnavailable
    return cls(f"{message}: {_detail(exc) if brief else exc}", **ids)


def is_data_error(exc: BaseException) -> bool:
    """True when ``exc`` blames the values sent, so no retry can help."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
        return True  # a value could not be bound (e.g. not JSON-serialisable)
    if isinstance(orig, ValueError):
        return _NUL_LITERAL in str(orig)
    if not isinstance(orig, psycopg2.Error):
        return False
    code = orig.pgcode
    if code is None:  # refused by psycopg2 itself, before sending
        return isinstance(orig, psycopg2.DataError) or _CANNOT_ADAPT in str(orig)
    return code[:2] in _DATA_CLASSES


def _detail(exc: BaseException) -> str:
    """The first line of the driver's message (SQLAlchemy's own adds the statement)."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip()
    return text.splitlines()[0] if text else type(cause).__name__
