"""Logging setup for entry points (CLI, bridge, web, workers).  Library modules only log.

The ids of the work in hand (event, conversation, run, task) live in a context
variable: the bridge binds them per record, workers per task, and every line
logged meanwhile carries them: as fields in JSON (production), as a short
``[key=value ...]`` suffix in text (local).

No secret is written: ``configure_logging`` installs the process's redactor (the
secrets of the settings it is given) and a filter that masks them, and credential
shapes, in every record's message and traceback (``chimera.redaction``).

No line grows with the input: the filter cuts a record's message to
``CHIMERA_MAX_LOG_MESSAGE_CHARS`` (marked, before masking it; the traceback is kept),
and ``configure_logging`` installs ``CHIMERA_MAX_QUOTED_CHARS`` as the bound on
attacker-chosen text that errors and log calls quote (``chimera.untrusted``).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from chimera import redaction, tracing, untrusted
from chimera.settings import Settings

#: LogRecord attributes that are not "extra" fields.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


_EMPTY: Mapping[str, Any] = MappingProxyType({})
_CONTEXT: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "chimera_log_context", default=_EMPTY
)


def bind(**ids: Any) -> contextvars.Token[Mapping[str, Any]]:
    """Add ``ids`` to the context of this thread's log lines; ``unbind(token)`` undoes it."""
    return _CONTEXT.set({**_CONTEXT.get(), **{k: v for k, v in ids.items() if v is not None}})


def unbind(token: contextvars.Token[Mapping[str, Any]]) -> None:
    _CONTEXT.reset(token)


def clear() -> None:
    _CONTEXT.set(_EMPTY)


@contextlib.contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    token = bind(**ids)
    try:
        yield
    finally:
        unbind(token)


def current_context() -> dict[str, Any]:
    return dict(_CONTEXT.get())


class ContextFilter(logging.Filter):
    """Puts the bound ids on each record (fields it does not already have), and a text
    rendering of them in ``record.context``; when tracing, the trace and span ids too
    (JSON fields only), so a log line leads to its trace."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = _CONTEXT.get()
        for key, value in ids.items():
            if not hasattr(record, key):
                setattr(record, key, value)
        for key, value in tracing.current_ids().items():
            setattr(record, key, value)
        record.context = " [" + " ".join(f"{k}={v}" for k, v in ids.items()) + "]" if ids else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with any ``extra={...}`` ids as fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update({k: v for k, v in vars(record).items() if k not in _STANDARD and k != "context"})
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:  # as the redaction filter left it
            out["exc"] = record.exc_text
        return json.dumps(out, default=str)


def configure_logging(settings: Settings) -> None:
    """Configure the root logger once, as text (local) or JSON lines (production), with
    the secrets of ``settings`` masked in every line and every message cut to its bound."""
    redaction.install(settings)
    untrusted.install(settings)
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s%(context)s")
        )
    handler.addFilter(ContextFilter())
    handler.addFilter(redaction.RedactingFilter(max_message_chars=settings.max_log_message_chars))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    logging.captureWarnings(True)  # warnings become log lines (JSON in production)
    root.setLevel(settings.log_level)
    # One INFO line per HTTP request or LLM call from the client libraries: noise that
    # costs time on every call (chimera logs what matters about each call itself).
    for noisy in (
        "kafka",
        "urllib3",
        "httpx",
        "httpcore",
        "httpx2",
        "httpcore2",
        "google_genai",
        "alembic",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # kafka-python logs every refused connection at ERROR; our callers report
    # unreachable brokers themselves, with context.
    logging.getLogger("kafka.net").setLevel(logging.CRITICAL)
