"""Deciding what an LLM failure means, in one place.

Provider adapters pull the status, headers and body out of their SDK's
exception and call ``error_for_status``; transport failures go through
``transport_error``.  Retryable vs permanent follows from the class chosen
(``chimera.errors``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from chimera import redaction
from chimera.errors import (
    LLMAuthError,
    LLMBadRequest,
    LLMError,
    LLMTimeout,
    ProviderOverloaded,
    RateLimited,
    SpendCapReached,
)

_SPEND_CAP_MARKERS = ("enforced_spend_limit_reached", "spend limit", "insufficient_quota")


def parse_retry_after(headers: Mapping[str, str] | None, body: Any = None) -> float | None:
    """Seconds the server asks us to wait: retry-after-ms, retry-after (seconds or
    HTTP date), or Gemini's RetryInfo ``retryDelay`` ("7s"); None if absent."""
    h = {k.lower(): v for k, v in (headers or {}).items()}
    if "retry-after-ms" in h:
        try:
            return max(0.0, float(h["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    if "retry-after" in h:
        raw = h["retry-after"].strip()
        try:
            return max(0.0, float(raw))
        except ValueError:
            try:
                when = parsedate_to_datetime(raw)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                return max(0.0, (when - datetime.now(UTC)).total_seconds())
    for detail in _details(body):
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and (m := re.fullmatch(r"([0-9.]+)s", delay.strip())):
            return float(m.group(1))
    return None


def _details(body: Any) -> list[Any]:
    if not isinstance(body, dict):
        return []
    error = body.get("error", body)
    details = error.get("details") if isinstance(error, dict) else None
    return details if isinstance(details, list) else []


def _is_spend_cap(body: Any) -> bool:
    text = str(body).lower()
    return any(marker in text for marker in _SPEND_CAP_MARKERS)


def error_for_status(
    status: int,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    provider: str,
    model: str,
) -> LLMError:
    """The chimera error for an HTTP error answer."""
    ids = {"provider": provider, "model": model}
    # A provider's message can quote what it was sent (a key, a header): masked here, so
    # nothing downstream (llm_calls, analysis bundles, DLQ headers) ever holds it.
    text = redaction.redact(f"{provider} answered {status}: {message}")
    if status == 429:
        if _is_spend_cap(body):
            return SpendCapReached(text, **ids)
        return RateLimited(text, retry_after_s=parse_retry_after(headers, body), **ids)
    if status in (408, 409) or status >= 500:  # 529 is Anthropic's "overloaded"
        return ProviderOverloaded(text, retry_after_s=parse_retry_after(headers, body), **ids)
    if status in (401, 403):
        return LLMAuthError(text, **ids)
    if status == 402:
        return SpendCapReached(text, **ids)
    return LLMBadRequest(text, **ids)


def transport_error(exc: BaseException, *, provider: str, model: str) -> LLMTimeout:
    """A timeout, refused or reset connection: retryable."""
    kind = "timed out" if "timeout" in type(exc).__name__.lower() else "connection failed"
    return LLMTimeout(
        redaction.redact(f"{provider} call {kind}: {type(exc).__name__}: {exc}"),
        provider=provider,
        model=model,
    )
