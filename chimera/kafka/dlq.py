"""Dead-lettering: the original record, with headers saying why (DESIGN.md)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from kafka import KafkaProducer
from kafka.errors import KafkaError

from chimera import tracing
from chimera.errors import ChimeraError, KafkaUnavailable
from chimera.settings import Settings

MAX_HEADER_CHARS = 1_000


@dataclass(frozen=True)
class DeadLetter:
    """What to dead-letter: the original key, value and headers, and why."""

    key: bytes | None
    value: bytes | None
    reason: str
    error_class: str
    error_message: str
    original_topic: str | None = None
    original_partition: int | None = None
    original_offset: int | None = None
    event_id: str | None = None
    attempts: int = 1
    replay_count: int = 0
    headers: tuple[tuple[str, bytes], ...] = ()

    @classmethod
    def from_error(
        cls, exc: BaseException, *, reason: str | None = None, **fields: object
    ) -> DeadLetter:
        """A dead letter for ``exc``: its class, message and (for input errors) reason."""
        return cls(
            reason=reason or str(getattr(exc, "dlq_reason", "error")),
            error_class=type(exc).__name__,
            error_message=exc.message if isinstance(exc, ChimeraError) else str(exc),
            **fields,  # type: ignore[arg-type]
        )

    def record_headers(self) -> list[tuple[str, bytes]]:
        """The original headers (minus earlier x-dlq ones) plus ours, as strings."""
        ours = {
            "x-dlq-reason": self.reason,
            "x-error-class": self.error_class,
            "x-error-message": self.error_message[:MAX_HEADER_CHARS],
            "x-original-topic": self.original_topic or "",
            "x-original-partition": ""
            if self.original_partition is None
            else str(self.original_partition),
            "x-original-offset": "" if self.original_offset is None else str(self.original_offset),
            "x-event-id": self.event_id or "",
            "x-attempts": str(self.attempts),
            "x-replay-count": str(max(self.replay_count, self._replays_so_far())),
            "x-failed-at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        kept = [(k, v) for k, v in self.headers if k not in ours]
        return kept + [(k, v.encode()) for k, v in ours.items()]

    def _replays_so_far(self) -> int:
        """The ``x-replay-count`` the record came with: a replayed record that fails
        again keeps its count."""
        for name, raw in self.headers:
            if name == "x-replay-count":
                try:
                    return max(0, int(raw.decode("ascii", "replace")))
                except ValueError:
                    return 0
        return 0


def dlq_topic_for(settings: Settings, original_topic: str | None, kind: str | None = None) -> str:
    """conversation.* -> conversation.dlq, analysis.* -> analysis.dlq."""
    if kind == "analysis" or original_topic == settings.topic_analysis_tasks:
        return settings.topic_analysis_dlq
    return settings.topic_conversation_dlq


def dead_letter(
    producer: KafkaProducer, topic: str, letters: Iterable[DeadLetter], *, timeout_s: float = 10.0
) -> None:
    """Publish dead letters and wait until the broker has them all (before any commit)."""
    with tracing.producing(topic) as span:
        try:
            futures = []
            for letter in letters:
                if span.is_recording():
                    span.set_attribute("chimera.dlq_reason", letter.reason)
                    span.set_attribute("chimera.event_id", letter.event_id or "")
                # The record's trace context is this span's: its traceparent points into
                # the trace of the event that failed.
                headers = tracing.with_traceparent(letter.record_headers())
                futures.append(
                    producer.send(topic, key=letter.key, value=letter.value, headers=headers)
                )
            for future in futures:
                future.get(timeout=timeout_s)
        except KafkaError as exc:
            raise KafkaUnavailable(f"cannot dead-letter to {topic}: {exc}") from exc
