"""Chimera's one error tree.

Library exceptions are translated into these by one mapper per library
(``chimera.db.errors.database_errors``, ``chimera.redis_errors.redis_errors``,
``chimera.kafka.errors.kafka_errors``; each LLM adapter's single ``except`` with
``chimera.llm.classify``), always ``raise ... from exc``; code above an adapter
only ever catches ``ChimeraError`` subclasses.

Whether a failure is worth retrying is a property of its class (``retryable``),
decided here and nowhere else.  Input errors also name the dead-letter reason
(``dlq_reason``) that goes into the ``x-dlq-reason`` header.

::

    ChimeraError
    ├── ConfigError                     bad settings / environment
    ├── InputError                      bad input; permanent; dead-lettered
    │   ├── UndecodableEvent            not UTF-8
    │   ├── InvalidJSON                 not a JSON object
    │   ├── SchemaInvalid               fails the event model (names the fields)
    │   ├── UnsupportedSchemaVersion    schema_version we cannot read
    │   ├── EventTooLarge               larger than the configured limit
    │   ├── TombstoneEvent              null Kafka value
    │   ├── ConflictingDuplicate        same event_id, different payload
    │   ├── UnknownPrompt               an analysis prompt id we do not have
    │   └── ContextNotFound             analysis of a conversation that is not stored
    ├── NotFound                        a stored thing that does not exist
    ├── DataRejected                    a store refused a value or command; permanent; dead-lettered
    │   └── RecordTooLarge              Kafka refused a record for its size
    ├── ServiceUnavailable              a dependency is unreachable; retryable
    │   ├── RedisUnavailable
    │   ├── DatabaseUnavailable
    │   ├── KafkaUnavailable
    │   └── WorkerUnavailable           no Celery worker answered
    ├── LockError
    │   ├── LockNotAcquired             someone else holds it; retryable
    │   └── StaleLockToken              our lease lapsed; the write was fenced off
    ├── LLMError
    │   ├── LLMRetryable                worth another try later
    │   │   ├── RateLimited             429 / local limiter (carries retry_after_s)
    │   │   │   └── LimiterRefused      the fleet-wide limiter turned the call away (no call made)
    │   │   ├── ProviderOverloaded      5xx, 529
    │   │   ├── LLMTimeout              timeouts, connection resets
    │   │   ├── MalformedResponse       truncated JSON, missing content/usage
    │   │   └── CircuitOpen             the provider's breaker is open
    │   └── LLMPermanent                no retry can help
    │       ├── LLMBadRequest           400, 413
    │       ├── LLMAuthError            401, 403
    │       ├── SafetyBlocked           refused / blocked by safety filters
    │       ├── SpendCapReached         429 spend cap: retrying only wastes time
    │       ├── StructuredOutputInvalid schema still unmet after one repair
    │       └── ProviderNotConfigured   no key and no base URL for the provider
    ├── AnalysisFailed                  every analysis of a run failed; dead-lettered
    ├── AnalysisAbandoned               re-driven too often without finishing
    ├── CrashLoop                       a task's runs keep dying with their worker
    ├── TooFewTurns                     a conversation ended before its min_turns
    ├── BudgetExhausted                 a job's budget cannot cover the call; no call made
    ├── JobConflict                     a job control not allowed from the job's status
    ├── JobCancelled                    the conversation's job was cancelled or drained
    ├── Unrecoverable                   a failure ended the work for good (wraps it)
    │   ├── LLMRefused                  ... an LLMPermanent one
    │   └── RetriesExhausted            ... a retryable one that outlasted its retries
    └── StackError                      the local process stack failed
        └── PortInUse
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar


class ChimeraError(Exception):
    """Raised for every failure Chimera knows how to name."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, **ids: Any) -> None:
        super().__init__(message)
        self.message = message
        #: The ids the error concerns (event_id, conversation_id, ...), for logs.
        self.ids: dict[str, Any] = {k: v for k, v in ids.items() if v is not None}

    def __str__(self) -> str:
        if not self.ids:
            return self.message
        ids = ", ".join(f"{k}={v}" for k, v in self.ids.items())
        return f"{self.message} ({ids})"


class ConfigError(ChimeraError):
    """Raised when settings or the environment are malformed."""


# --- Input -----------------------------------------------------------------------


class InputError(ChimeraError):
    """Raised when input can never be processed as given."""

    dlq_reason: ClassVar[str] = "invalid_input"


class UndecodableEvent(InputError):
    """Raised when a message's bytes are not valid UTF-8."""

    dlq_reason = "undecodable"


class InvalidJSON(InputError):
    """Raised when a message is not a JSON object."""

    dlq_reason = "invalid_json"


class SchemaInvalid(InputError):
    """Raised when a message fails its event model; ``errors`` lists each field."""

    dlq_reason = "schema_invalid"

    def __init__(self, message: str, errors: Sequence[Mapping[str, Any]] = (), **ids: Any) -> None:
        super().__init__(message, **ids)
        #: One dict per problem: {"field": "topic.title", "message": "..."}.
        self.errors: list[dict[str, Any]] = [dict(e) for e in errors]


class UnsupportedSchemaVersion(InputError):
    """Raised when a message carries a schema_version this build cannot read."""

    dlq_reason = "unsupported_version"


class EventTooLarge(InputError):
    """Raised when a message is larger than the configured limit."""

    dlq_reason = "too_large"


class TombstoneEvent(InputError):
    """Raised when a message has a null value (a Kafka tombstone)."""

    dlq_reason = "tombstone"


class ConflictingDuplicate(InputError):
    """Raised when an event_id is seen again with a different payload."""

    dlq_reason = "conflicting_duplicate"


class UnknownPrompt(InputError):
    """Raised when a request names an analysis prompt id that does not exist."""

    dlq_reason = "unknown_prompt"


class ContextNotFound(InputError):
    """Raised when an analysis without segments names a conversation that is not stored."""

    dlq_reason = "context_not_found"


class NotFound(ChimeraError):
    """Raised when a stored conversation, run or context does not exist."""


class DataRejected(ChimeraError):
    """Raised when Postgres, Redis or Kafka refuses what we sent as malformed (a NUL
    in text, a number out of range, a broken constraint, a Redis WRONGTYPE or script
    error): the same write fails the same way every time, so it is not retried and its
    event is dead-lettered, where an outage would have been retried for ever."""

    dlq_reason: ClassVar[str] = "data_rejected"


class RecordTooLarge(DataRejected):
    """Raised when the Kafka producer or broker refuses a record for its size."""


# --- Dependencies ------------------------------------------------------------------


class ServiceUnavailable(ChimeraError):
    """Raised when a dependency cannot be reached; retry later."""

    retryable = True


class RedisUnavailable(ServiceUnavailable):
    """Raised when Redis cannot be reached."""


class DatabaseUnavailable(ServiceUnavailable):
    """Raised when Postgres cannot be reached."""


class KafkaUnavailable(ServiceUnavailable):
    """Raised when the Kafka cluster cannot be reached."""


class WorkerUnavailable(ServiceUnavailable):
    """Raised when no Celery worker answers."""


# --- Locks ----------------------------------------------------------------------------


class LockError(ChimeraError):
    """Raised for failures of the conversation-state lock."""


class LockNotAcquired(LockError):
    """Raised when the lock is held elsewhere (or its reply was lost); retry later."""

    retryable = True


class StaleLockToken(LockError):
    """Raised when a write carries a lease that has lapsed; the write was refused."""


# --- LLM --------------------------------------------------------------------------------


class LLMError(ChimeraError):
    """Raised when an LLM call fails."""


class LLMRetryable(LLMError):
    """Raised when an LLM call failed in a way another try may fix."""

    retryable = True

    def __init__(self, message: str, retry_after_s: float | None = None, **ids: Any) -> None:
        super().__init__(message, **ids)
        #: The server's (or our limiter's) hint, in seconds, when it gave one.
        self.retry_after_s = retry_after_s


class RateLimited(LLMRetryable):
    """Raised on a 429 or when the fleet-wide limiter says to wait."""


class LimiterRefused(RateLimited):
    """Raised when the fleet-wide limiter turns a call away after waiting the maximum.

    No provider call was made: waiting for capacity is not an attempt, so callers
    re-schedule the work with ``retry_after_s`` as countdown and the same attempt
    number (``chimera.decisions.llm_wait``).
    """


class ProviderOverloaded(LLMRetryable):
    """Raised on 5xx and 529 answers."""


class LLMTimeout(LLMRetryable):
    """Raised on timeouts and dropped connections."""


class MalformedResponse(LLMRetryable):
    """Raised when a 200 answer is truncated or lacks content or usage."""


class CircuitOpen(LLMRetryable):
    """Raised when the provider's circuit breaker is open."""


class LLMPermanent(LLMError):
    """Raised when an LLM call failed in a way no retry can fix."""


class LLMBadRequest(LLMPermanent):
    """Raised on 400 and 413 answers."""


class LLMAuthError(LLMPermanent):
    """Raised on 401 and 403 answers."""


class SafetyBlocked(LLMPermanent):
    """Raised when the provider refuses or blocks the content."""


class SpendCapReached(LLMPermanent):
    """Raised on a spend-cap 429, which no wait will lift."""


class StructuredOutputInvalid(LLMPermanent):
    """Raised when an answer fails its schema even after one repair attempt."""


class ProviderNotConfigured(LLMPermanent):
    """Raised when a call names a provider that has neither a key nor a base URL."""


# --- Local stack ----------------------------------------------------------------------------


class AnalysisFailed(ChimeraError):
    """Recorded (and dead-lettered) when all four analyses of a run failed."""

    dlq_reason: ClassVar[str] = "all_analyses_failed"


class AnalysisAbandoned(ChimeraError):
    """Recorded when the reconciler gives up on an analysis event."""

    dlq_reason: ClassVar[str] = "retries_exhausted"


class CrashLoop(ChimeraError):
    """Raised (recorded) when a task's runs died with their worker too often to try again."""

    dlq_reason: ClassVar[str] = "worker_lost"


class TooFewTurns(ChimeraError):
    """Recorded (and dead-lettered) when a conversation ends before its ``min_turns``,
    for any reason (its time ran out, most often); a replay resumes it, keeping its turns."""

    dlq_reason: ClassVar[str] = "too_few_turns"


class BudgetExhausted(ChimeraError):
    """Raised before a call when its job's spent + reserved + this call's worst case
    would pass the job's budget: no call is made; not an LLM attempt and not a
    conversation failure (the conversation parks, resumable)."""

    def __init__(self, message: str, *, job_id: str, **ids: Any) -> None:
        super().__init__(message, job_id=job_id, **ids)
        self.job_id = job_id


class JobConflict(ChimeraError):
    """Raised when a job control (pause, resume, drain, cancel, a budget change) is not
    allowed from the job's current status, which ``status`` names."""

    def __init__(self, message: str, *, status: str, **ids: Any) -> None:
        super().__init__(message, **ids)
        self.status = status


class JobCancelled(ChimeraError):
    """Recorded when a conversation (or its event, before it started) ends because its
    job was cancelled, or was draining before it started."""

    dlq_reason: ClassVar[str] = "cancelled"


class Unrecoverable(ChimeraError):
    """Recorded when a failure ends a piece of work for good.

    It wraps that failure (``cause``): records name the cause's class and message,
    and this class says why the work ended (``dlq_reason``), so the reason is a
    property of a class like every other dead-letter reason.
    """

    dlq_reason: ClassVar[str] = "error"

    def __init__(self, cause: BaseException, **ids: Any) -> None:
        super().__init__(cause.message if isinstance(cause, ChimeraError) else str(cause), **ids)
        self.cause = cause


class LLMRefused(Unrecoverable):
    """Recorded when the LLM failed in a way no retry can fix (an ``LLMPermanent``)."""

    dlq_reason = "llm_permanent"


class RetriesExhausted(Unrecoverable):
    """Recorded when a retryable failure outlasted its retries."""

    dlq_reason = "retries_exhausted"


class StackError(ChimeraError):
    """Raised when a local stack process cannot be started, checked or stopped."""


class PortInUse(StackError):
    """Raised when a port the stack needs is already taken."""


def is_retryable(exc: BaseException) -> bool:
    """Return whether ``exc`` is worth retrying; unknown exceptions are not."""
    return isinstance(exc, ChimeraError) and exc.retryable
