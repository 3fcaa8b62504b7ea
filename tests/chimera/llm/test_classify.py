"""Error classification: one table, every status a provider can answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from chimera import errors as e
from chimera.llm.classify import error_for_status, parse_retry_after, transport_error


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (429, {"error": {"type": "rate_limit_error"}}, e.RateLimited),
        (
            429,
            {"error": {"details": {"error_code": "enforced_spend_limit_reached"}}},
            e.SpendCapReached,
        ),
        (429, {"error": {"code": "insufficient_quota"}}, e.SpendCapReached),
        (500, None, e.ProviderOverloaded),
        (502, None, e.ProviderOverloaded),
        (503, None, e.ProviderOverloaded),
        (529, {"error": {"type": "overloaded_error"}}, e.ProviderOverloaded),
        (408, None, e.ProviderOverloaded),
        (400, None, e.LLMBadRequest),
        (404, None, e.LLMBadRequest),
        (413, None, e.LLMBadRequest),
        (422, None, e.LLMBadRequest),
        (401, None, e.LLMAuthError),
        (403, None, e.LLMAuthError),
        (402, None, e.SpendCapReached),
    ],
)
def test_status_table(status: int, body: object, cls: type[e.LLMError]) -> None:
    err = error_for_status(status, "msg", body=body, provider="anthropic", model="m")
    assert type(err) is cls
    assert err.ids == {"provider": "anthropic", "model": "m"}
    assert str(status) in str(err)


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({"retry-after": "7"}, None, 7.0),
        ({"Retry-After": "2.5"}, None, 2.5),
        ({"retry-after-ms": "1500", "retry-after": "9"}, None, 1.5),
        (
            {},
            {
                "error": {
                    "details": [
                        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"}
                    ]
                }
            },
            12.0,
        ),
        ({}, None, None),
        ({"retry-after": "soon"}, None, None),
    ],
)
def test_retry_after(headers: dict[str, str], body: object, expected: float | None) -> None:
    assert parse_retry_after(headers, body) == expected


def test_retry_after_as_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < (parse_retry_after({"retry-after": when}) or 0) <= 30


def test_a_429_carries_its_hint() -> None:
    err = error_for_status(429, "slow", headers={"retry-after": "3"}, provider="openai", model="m")
    assert isinstance(err, e.RateLimited) and err.retry_after_s == 3.0
    assert err.retryable


def test_transport_errors_are_retryable() -> None:
    class ReadTimeout(Exception):
        pass

    err = transport_error(ReadTimeout("slow"), provider="google", model="g")
    assert isinstance(err, e.LLMTimeout) and err.retryable
    assert "timed out" in str(err)
    assert "connection failed" in str(
        transport_error(ConnectionResetError("x"), provider="google", model="g")
    )
