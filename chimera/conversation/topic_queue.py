"""The topic queue: a Redis list of topics (JSON objects or plain strings), drained
into conversations at a bounded rate.

Draining is reliable: an item moves (LMOVE) to a processing list, is recorded in
the inbox as an event and handed off, and only then removed; a drain that dies
half-way leaves the item in the processing list, where the next drain finds it.
Event ids come from the topic (its ``id``, else a hash of its text), so an item
processed twice is one conversation.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.exceptions import RedisError

from chimera.codec import limits_from, payload_hash, validate_event
from chimera.errors import InputError, InvalidJSON, RedisUnavailable
from chimera.inbox import Inbox, Source
from chimera.models import ConversationRequest
from chimera.settings import Settings

log = logging.getLogger(__name__)

Handoff = Callable[[str], None]


@dataclass
class DrainReport:
    started: int = 0
    duplicates: int = 0
    rejected: list[str] = field(default_factory=list)
    skipped_for_capacity: bool = False


def event_for(raw: str) -> dict[str, Any]:
    """A `conversation.new` payload for one queue item, or ``InvalidJSON``."""
    text = raw.strip()
    if text.startswith("{"):
        try:
            topic = json.loads(text)
        except ValueError as exc:
            raise InvalidJSON(f"topic item is not valid JSON: {exc}") from None
        if not isinstance(topic, dict):
            raise InvalidJSON("topic item must be a JSON object or a plain string")
    else:
        topic = {"title": text}
    # The ingestion service sends topic objects; extras of a conversation request
    # (turns, participants, metadata) may ride along under the same keys.
    request = {
        k: topic.pop(k)
        for k in ("min_turns", "max_turns", "participants", "metadata")
        if k in topic
    }
    key = str(
        topic.get("id")
        or hashlib.sha256(json.dumps(topic, sort_keys=True).encode()).hexdigest()[:24]
    )
    return {"event_id": f"topics:{key}"[:128], "topic": topic, **request}


class TopicQueue:
    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._redis = client
        self._settings = settings
        self.key = settings.topics_queue_key
        self.processing_key = f"{settings.topics_queue_key}:processing"

    def push(self, items: list[str]) -> int:
        try:
            return int(self._redis.rpush(self.key, *items)) if items else self.length()
        except RedisError as exc:
            raise RedisUnavailable(f"cannot push topics: {exc}") from exc

    def length(self) -> int:
        try:
            return int(self._redis.llen(self.key))
        except RedisError as exc:
            raise RedisUnavailable(f"cannot read the topic queue: {exc}") from exc

    def drain(self, inbox: Inbox, handoff: Handoff, *, running: int) -> DrainReport:
        """Start conversations for queued topics while fewer than the capacity run."""
        report = DrainReport()
        budget = min(self._settings.topics_batch, self._settings.topics_capacity - running)
        try:
            leftovers = [str(r) for r in self._redis.lrange(self.processing_key, 0, -1)]
            for item in leftovers:  # a previous drain died after moving these
                self._process(item, inbox, handoff, report)
            if budget <= 0:
                report.skipped_for_capacity = self.length() > 0
                return report
            for _ in range(budget - len(leftovers)):
                moved = self._redis.lmove(self.key, self.processing_key, "LEFT", "RIGHT")
                if moved is None:
                    break
                self._process(str(moved), inbox, handoff, report)
        except RedisError as exc:
            raise RedisUnavailable(f"cannot drain the topic queue: {exc}") from exc
        return report

    def _process(self, raw: str, inbox: Inbox, handoff: Handoff, report: DrainReport) -> None:
        try:
            payload = event_for(raw)
            validate_event(
                ConversationRequest, payload, context={"limits": limits_from(self._settings)}
            )
            acceptance = inbox.accept(
                event_id=payload["event_id"],
                kind="conversation",
                payload=payload,
                payload_hash=payload_hash(payload),
                source=Source(topic=f"redis:{self.key}"),
            )
        except InputError as exc:  # malformed, or an id reused for another topic
            log.warning("dropping topic %r: %s", raw[:200], exc)
            report.rejected.append(f"{exc.dlq_reason}: {exc}")
            self._redis.lrem(self.processing_key, 1, raw)
            return
        if acceptance.new or acceptance.event.status == "received":
            handoff(payload["event_id"])
            inbox.mark(payload["event_id"], "dispatched")
            report.started += acceptance.new
        else:
            report.duplicates += 1
        self._redis.lrem(self.processing_key, 1, raw)
