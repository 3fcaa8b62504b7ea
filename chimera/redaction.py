"""Masking secrets in text that leaves the process.

Two passes, both precompiled:

* **known values**: every secret the settings hold (API keys, ``REDIS_PASSWORD``,
  ``KAFKA_SASL_PASSWORD``, the passwords inside ``DATABASE_URL`` and ``REDIS_URL``,
  ``CHIMERA_API_TOKEN``, ``CHIMERA_FLOWER_BASIC_AUTH``), wherever they show up: an
  SDK error that echoes the key, a URL in a driver's message.  Run only when there
  are values.
* **credential shapes**, whatever their value: URL userinfo (``scheme://user:pass@``),
  ``Bearer``/``Basic`` credentials, API-key and ``Authorization`` headers, and
  ``key=``/``token=``/``password=`` parameters (Gemini's ``?key=``, libpq DSNs).

``configure_logging`` installs the process's redactor (from the settings every entry
point reads) and a ``RedactingFilter`` on its handler; ``redact(text)`` uses that
redactor for text written elsewhere (``llm_calls.error``).  Code that holds other
settings (the web app, readiness, ``stack status``) asks ``redactor_for(settings)``.
Secrets shorter than ``MIN_SECRET_CHARS`` are not masked by value: masking every
``"ab"`` would garble the text and hide nothing.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit

from pydantic import SecretStr

from chimera.settings import Settings

MASK = "***"
MIN_SECRET_CHARS = 4

_SHAPES = re.compile(
    "|".join(
        (
            # scheme://user:password@  (the user stays: it names the account, not the secret)
            r"(?P<url>\b[a-zA-Z][\w+.-]*://[^:/?#@\s]*:)[^@\s/]+@",
            # x-api-key: v, 'x-goog-api-key': 'v', Authorization: Bearer v, api-key=v
            r"(?P<header>\b(?:x-(?:goog-)?api-key|api-key|(?:proxy-)?authorization)"
            r"[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token)\s+)?)(?!(?:bearer|basic|token)\s|[<*])[^\s\"',;&}\]]+",
            # Bearer v / Basic v on their own; a credential has a digit, a symbol or an
            # inner capital, which tells it from prose ("basic authentication")
            r"(?P<scheme>\b(?:bearer|basic)\s+)"
            r"(?=[\w.~+/=-]*[\d.~+/=_-]|[\w.~+/=-]+(?-i:[A-Z]))[\w.~+/=-]{8,}",
            # ?key=v, &access_token=v, password=v (not redis_key=, event_id=)
            r"(?P<param>(?:[?&]key|(?<![\w-])(?:api_?key|access_token|token|password|passwd|secret))=)"
            r"(?![<*])[^&\s\"'#;,)]+",
        )
    ),
    re.IGNORECASE,
)


#: Every credential shape contains one of these: a line without any (most lines) skips
#: the shape pass, which costs ten times the check.
_SHAPE_WORDS = ("://", "key", "auth", "bearer", "basic", "token", "pass", "secret")


def _mask_shape(match: re.Match[str]) -> str:
    kept = match.group(match.lastgroup or 0)
    return f"{kept}{MASK}@" if match.lastgroup == "url" else f"{kept}{MASK}"


class Redactor:
    """Masks ``values`` (known secrets) and credential shapes in text."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values = frozenset(v for v in values if len(v) >= MIN_SECRET_CHARS)
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(self.values, key=len, reverse=True)
        self._known = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def redact(self, text: str) -> str:
        if self._known is not None:
            text = self._known.sub(MASK, text)
        lowered = text.lower()
        if any(word in lowered for word in _SHAPE_WORDS):
            text = _SHAPES.sub(_mask_shape, text)
        return text

    def __or__(self, other: Redactor) -> Redactor:
        return Redactor(self.values | other.values)


def secret_values(settings: Settings) -> set[str]:
    """Every secret of ``settings``, in each form it may be written in."""
    out: set[str] = set()
    for field in Settings.model_fields:
        value = getattr(settings, field)
        if not isinstance(value, SecretStr):
            continue
        secret = value.get_secret_value()
        if "://" in secret:
            # A URL: its password is the secret (host and user are useful in messages).
            password = urlsplit(secret).password
            if password:
                out |= {password, unquote(password), quote(unquote(password), safe="")}
            continue
        out |= {secret, quote(secret, safe="")}
        if field == "flower_basic_auth":
            out.add(base64.b64encode(secret.encode()).decode())  # its Basic header
            _, sep, password = secret.partition(":")
            if sep:
                out.add(password)
    return out


_installed = Redactor()


def install(settings: Settings) -> Redactor:
    """Make ``settings``' secrets the process's (entry points, via configure_logging)."""
    global _installed  # noqa: PLW0603 - one per process, like the logging configuration
    _installed = Redactor(secret_values(settings))
    return _installed


def installed() -> Redactor:
    return _installed


def redactor_for(settings: Settings) -> Redactor:
    """A redactor for ``settings``' secrets and the process's."""
    return Redactor(secret_values(settings)) | _installed


def redact(text: str, settings: Settings | None = None) -> str:
    """``text`` with the process's secrets (and ``settings``', if given) masked."""
    return (redactor_for(settings) if settings is not None else _installed).redact(text)


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message, traceback and stack before any handler
    formats it (so every later handler sees the masked record too)."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self._redactor = redactor  # None: the process's, as installed at the time of the record

    def filter(self, record: logging.LogRecord) -> bool:
        redactor = self._redactor or _installed
        try:
            message = record.getMessage()
        except Exception:  # a bad log call: the formatter fails and the handler reports it
            return True
        clean = redactor.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redactor.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redactor.redact(record.stack_info)
        return True


_FORMATTER = logging.Formatter()
