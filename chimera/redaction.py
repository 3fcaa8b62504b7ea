"""Masking secrets in text that leaves the process.

Two passes, both precompiled:

* **known values**: every secret the settings hold (API keys, those of
  ``CHIMERA_OPENAI_ENDPOINTS`` included, ``REDIS_PASSWORD``,
  ``KAFKA_SASL_PASSWORD``, the passwords inside ``DATABASE_URL`` and ``REDIS_URL``,
  ``CHIMERA_API_TOKEN``, ``CHIMERA_FLOWER_BASIC_AUTH``), wherever they show up: an
  SDK error that echoes the key, a URL in a driver's message.  Run only when there
  are values.
* **credential shapes**, whatever their value: URL userinfo (``scheme://user:pass@``),
  ``Bearer``/``Basic`` credentials, API-key and ``Authorization`` headers, and
  ``key=``/``token=``/``password=`` parameters (Gemini's ``?key=``, libpq DSNs).

The shape pass is linear in the text's length: every alternative starts at a keyword or
where a run of scheme characters starts, and a quantifier that could give back characters
the rest of its pattern cannot use is possessive, so no character is read more than a few
times however the text repeats itself ("a.a.a…", "key=key=…", "a://b:a://b:…").

``configure_logging`` installs the process's redactor (from the settings every entry
point reads) and a ``RedactingFilter`` on its handler, which cuts a record's message to
``CHIMERA_MAX_LOG_MESSAGE_CHARS`` before masking it; ``redact(text)`` uses that
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

from chimera import untrusted
from chimera.settings import Settings

MASK = "***"
MIN_SECRET_CHARS = 4

_SHAPES = re.compile(
    "|".join(
        (
            # scheme://user:password@  (the user stays: it names the account, not the secret).
            # Tried only where a run of scheme characters starts (the lookahead finds the
            # run's first letter that may start a scheme), and possessive throughout: trying
            # at every letter of "a.a.a.a…" would read the rest of the run each time.
            r"(?P<url>(?<![\w+.-])(?=[\w+.-]*?\b[a-zA-Z])[\w+.-]*+://[^:/?#@\s]*+:)[^@\s/]++@",
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

    def redact_clipped(self, text: str, limit: int) -> str:
        """``text`` cut to at most ``limit`` characters (marked), then masked: the cost is
        bounded by ``limit`` whatever the length of ``text``.

        The cut never splits a word or a known secret: half a credential is no longer a
        shape or a value the passes recognise, and would be written unmasked.  (A message
        that is one long word up to the bound keeps only the marker.)
        """
        if len(text) <= limit:
            return self.redact(text)
        cut = self._safe_cut(text, limit)
        clipped = untrusted.clip(text, cut)
        # The marker is ours: masked with the text, "key:…[9 more chars]" would lose it.
        return self.redact(clipped[:cut]) + clipped[cut:]

    def _safe_cut(self, text: str, cut: int) -> int:
        """The largest position <= ``cut`` that is inside no word and no known secret."""
        while True:
            if cut > 0 and not text[cut].isspace():  # inside a word: cut before it
                cut -= _word_before(text, cut)
            across = [i for v in self.values if 0 <= (i := _found_across(text, v, cut)) < cut]
            if not across:
                return cut
            cut = min(across)

    def __or__(self, other: Redactor) -> Redactor:
        return Redactor(self.values | other.values)


_NON_SPACE = re.compile(r"\S*")


def _word_before(text: str, cut: int) -> int:
    """How many characters of a word end just before ``cut``."""
    word = _NON_SPACE.match(text[cut - 1 :: -1])
    return word.end() if word else 0


def _found_across(text: str, value: str, cut: int) -> int:
    """Where ``value`` starts if it starts before ``cut`` and ends after it (else -1 or
    a position >= ``cut``)."""
    return text.find(value, max(0, cut - len(value) + 1), cut + len(value) - 1)


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
    for endpoint in settings.openai_endpoints.values():  # named endpoints' keys
        key = endpoint.key()
        if key:
            out |= {key, quote(key, safe="")}
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
    formats it (so every later handler sees the masked record too), cutting the message
    to ``max_message_chars`` first."""

    def __init__(
        self, redactor: Redactor | None = None, max_message_chars: int | None = None
    ) -> None:
        super().__init__()
        self._redactor = redactor  # None: the process's, as installed at the time of the record
        #: A longer message (one quoting an event at length) is cut, before it is masked, to
        #: bound both costs; None: not cut.  The traceback is kept whole.
        self._max_message_chars = max_message_chars

    def filter(self, record: logging.LogRecord) -> bool:
        redactor = self._redactor or _installed
        try:
            message = record.getMessage()
        except Exception:  # a bad log call: the formatter fails and the handler reports it
            return True
        if self._max_message_chars is None:
            clean = redactor.redact(message)
        else:
            clean = redactor.redact_clipped(message, self._max_message_chars)
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
