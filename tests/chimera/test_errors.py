"""The error tree: retryable vs permanent, dead-letter reasons, the backoff table."""

from __future__ import annotations

import random

import pytest

from chimera import errors as e
from chimera.retry import compute_backoff


@pytest.mark.parametrize(
    ("cls", "retryable"),
    [
        (e.RateLimited, True),
        (e.ProviderOverloaded, True),
        (e.LLMTimeout, True),
        (e.MalformedResponse, True),
        (e.CircuitOpen, True),
        (e.RedisUnavailable, True),
        (e.DatabaseUnavailable, True),
        (e.KafkaUnavailable, True),
        (e.WorkerUnavailable, True),
        (e.LockNotAcquired, True),
        (e.LLMBadRequest, False),
        (e.LLMAuthError, False),
        (e.SafetyBlocked, False),
        (e.SpendCapReached, False),
        (e.SchemaInvalid, False),
        (e.ConflictingDuplicate, False),
        (e.StaleLockToken, False),
        (e.ConfigError, False),
        (e.NotFound, False),
    ],
)
def test_retryable_is_a_property_of_the_class(cls: type[e.ChimeraError], retryable: bool) -> None:
    assert e.is_retryable(cls("x")) is retryable


def test_unknown_exceptions_are_not_retried() -> None:
    assert e.is_retryable(RuntimeError("boom")) is False


@pytest.mark.parametrize(
    ("cls", "reason"),
    [
        (e.UndecodableEvent, "undecodable"),
        (e.InvalidJSON, "invalid_json"),
        (e.SchemaInvalid, "schema_invalid"),
        (e.UnsupportedSchemaVersion, "unsupported_version"),
        (e.EventTooLarge, "too_large"),
        (e.TombstoneEvent, "tombstone"),
        (e.ConflictingDuplicate, "conflicting_duplicate"),
    ],
)
def test_input_errors_name_their_dead_letter_reason(cls: type[e.InputError], reason: str) -> None:
    assert cls.dlq_reason == reason
    assert issubclass(cls, e.InputError)


def test_errors_carry_the_ids_they_concern() -> None:
    err = e.LockNotAcquired("lock busy", conversation_id="c-1", event_id=None)
    assert err.ids == {"conversation_id": "c-1"}
    assert str(err) == "lock busy (conversation_id=c-1)"


def test_retryable_llm_errors_carry_the_server_hint() -> None:
    assert e.RateLimited("slow down", retry_after_s=7.5).retry_after_s == 7.5


class _Fixed(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize(
    ("attempt", "kwargs", "rand", "expected"),
    [
        (1, {"jitter": 0}, 0.0, 1.0),
        (2, {"jitter": 0}, 0.0, 2.0),
        (4, {"jitter": 0}, 0.0, 8.0),
        (10, {"jitter": 0}, 0.0, 60.0),  # capped
        (100, {"jitter": 0}, 0.0, 60.0),  # no overflow
        (3, {"jitter": 0.5}, 0.0, 2.0),  # lowest point of the spread
        (3, {"jitter": 0.5}, 1.0, 4.0),  # highest point
        (1, {"jitter": 0, "server_hint_s": 7.0}, 0.0, 7.0),  # the server knows better
        (4, {"jitter": 0, "server_hint_s": 2.0}, 0.0, 8.0),  # ours is longer
        (1, {"jitter": 0, "server_hint_s": 3600.0}, 0.0, 60.0),  # hints are capped too
        (1, {"jitter": 0, "base_s": 0.5, "cap_s": 5}, 0.0, 0.5),
    ],
)
def test_compute_backoff(
    attempt: int, kwargs: dict[str, float], rand: float, expected: float
) -> None:
    assert compute_backoff(attempt, rand=_Fixed(rand), **kwargs) == pytest.approx(expected)


@pytest.mark.parametrize(
    "bad", [{"attempt": 0}, {"attempt": 1, "jitter": 2.0}, {"attempt": 1, "base_s": -1}]
)
def test_compute_backoff_rejects_nonsense(bad: dict[str, float]) -> None:
    attempt = int(bad.pop("attempt"))
    with pytest.raises(ValueError):
        compute_backoff(attempt, **bad)
