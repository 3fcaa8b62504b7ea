"""The topic queue: a Redis list of topics (JSON objects or plain strings), drained
into conversations at a bounded rate.

Draining is reliable: an item moves (LMOVE) to a processing list, is recorded in
the inbox as an event and handed off, and only then removed; a drain that dies
half-way leaves the item in the processing list, where the next drain finds it.
Event ids come from the topic (its ``id``, else a hash of its text), so an item
processed twice is one conversation.  A topic object's fields other than the topic's
own (``id``, ``title``, ``description``) and a request's (turns, participants,
``metadata``) are kept as the conversation's metadata.  Every event belongs to the
queue's job (``TOPIC_QUEUE_JOB``, ``chimera.jobs.queue_job``): it carries it in
``job_id`` and in its metadata, as a job's own events do, so the conversation row has
it and the job's figures count it.  Its source is ``redis:<queue key>``
(``letters.queue_source``); a conversation that fails is dead-lettered with it and
replayed to `conversation.new` like any other.

An item that can never become a conversation (larger than
``CHIMERA_TOPICS_MAX_ITEM_BYTES``, not UTF-8, not JSON, nested too deeply, failing
the request model, or an id already used for another topic) leaves the processing
list for the queue's dead letters in one atomic step, and the drain goes on with
the rest of its batch: nothing is retried for ever, nothing is lost.  The dead
letters are a Redis list (``<prefix>topics:dead``), newest first, capped at
``CHIMERA_TOPICS_DEAD_MAX`` entries; each is a JSON object with the error class's
``dlq_reason``, the error and the item (both clipped), the item's size and when.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.client import NEVER_DECODE

from chimera import defaults as d
from chimera.codec import limits_from, parse_json_object, payload_hash, validate_event
from chimera.errors import (
    ConflictingDuplicate,
    EventTooLarge,
    InputError,
    UndecodableEvent,
)
from chimera.events import intake
from chimera.events.ids import TOPIC_QUEUE_JOB, topic_event_id
from chimera.events.inbox import Arrival, Inbox, Source
from chimera.events.letters import queue_source
from chimera.models import ConversationRequest, TopicSpec
from chimera.redis_errors import redis_errors
from chimera.settings import Settings
from chimera.untrusted import clip, quote_limit

log = logging.getLogger(__name__)

Handoff = Callable[[str], object]

# Removes the item from the processing list and records its dead letter, both or
# neither; a second drain burying the same leftover finds it gone and adds nothing.
_BURY = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
return 1
"""


@dataclass
class DrainReport:
    started: int = 0
    duplicates: int = 0
    #: One ``reason: error`` line per item moved to the dead letters.
    dead_lettered: list[str] = field(default_factory=list)
    skipped_for_capacity: bool = False


def event_for(raw: bytes | str, *, max_bytes: int = d.TOPICS_MAX_ITEM_BYTES) -> dict[str, Any]:
    """A `conversation.new` payload for one queue item, or the ``InputError`` saying why not."""
    text = _text_of(raw, max_bytes).strip()
    topic: dict[str, Any]
    if text.startswith("{"):
        # The codec's reader: bounded nesting, NUL and lone surrogates refused.
        topic = parse_json_object(text, max_bytes=max_bytes)
    else:
        topic = {"title": text}
    # The ingestion service sends topic objects; extras of a conversation request
    # (turns, participants, metadata) may ride along under the same keys.
    request: dict[str, Any] = {
        k: topic.pop(k)
        for k in ("min_turns", "max_turns", "participants", "metadata")
        if k in topic
    }
    event_id = topic_event_id(topic)  # the extras are part of what makes a topic itself
    # Any other field of the object is the conversation's metadata (beside ``metadata``'s
    # own keys, which win), bounded as every request's is (CHIMERA_MAX_OUTPUT_METADATA_BYTES).
    extras = {k: topic.pop(k) for k in list(topic) if k not in TopicSpec.model_fields}
    if extras:
        metadata = request.get("metadata", {})
        request["metadata"] = {**extras, **metadata} if isinstance(metadata, dict) else metadata
    return {"event_id": event_id, "topic": topic, **request}


def _text_of(raw: bytes | str, max_bytes: int) -> str:
    """The item as text, its size checked before anything else is done with it."""
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise EventTooLarge(
            f"topic item is {size} bytes; the limit is {max_bytes} (CHIMERA_TOPICS_MAX_ITEM_BYTES)"
        )
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UndecodableEvent(
            f"topic item is not UTF-8: {exc.reason} at byte {exc.start}"
        ) from None


def read_item(raw: bytes | str, settings: Settings) -> dict[str, Any]:
    """A queue item -> its validated `conversation.new` payload, or an ``InputError``.

    Whatever reading an item raises is an ``InputError``: reading is a function of
    the item alone, so what fails once fails every time, and an item must never be
    retried for ever.  The payload names the queue's job (``job_id``, and ``job_id`` in
    its metadata, over any the item gave).
    """
    try:
        payload = with_job(event_for(raw, max_bytes=settings.topics_max_item_bytes))
        validate_event(ConversationRequest, payload, context={"limits": limits_from(settings)})
    except InputError:
        raise
    except Exception as exc:  # see above: an unforeseen failure is the item's too
        raise InputError(f"topic item cannot be read: {type(exc).__name__}: {exc}") from exc
    return payload


def with_job(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` as an event of the queue's job (metadata that is not an object is
    left for validation to refuse)."""
    metadata = payload.get("metadata", {})
    if isinstance(metadata, dict):
        payload = payload | {"metadata": {**metadata, "job_id": TOPIC_QUEUE_JOB}}
    return payload | {"job_id": TOPIC_QUEUE_JOB}


def dead_entry(raw: bytes, exc: InputError, now: float | None = None) -> str:
    """The JSON dead letter of ``raw``: why, the error and the item (clipped), size and when."""
    # A character is at most four bytes, so this prefix holds more than clip() keeps
    # and a huge item is never decoded whole; ``bytes`` gives its real size.
    head = raw[: 4 * quote_limit() + 4]
    return json.dumps(
        {
            "reason": exc.dlq_reason,
            "error_class": type(exc).__name__,
            "error": clip(str(exc)),
            "item": clip(head.decode("utf-8", "backslashreplace")),
            "bytes": len(raw),
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        }
    )


class TopicQueue:
    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._redis = client
        self._settings = settings
        self.key = settings.topics_queue_key
        self.processing_key = f"{settings.topics_queue_key}:processing"
        self.dead_key = settings.redis_key(d.KEY_TOPICS_DEAD)
        self._bury_script = client.register_script(_BURY)

    def push(self, items: Sequence[str | bytes]) -> int:
        """Append ``items`` in one command (all or none); the queue's new length."""
        with redis_errors("cannot push topics"):
            return int(self._redis.rpush(self.key, *items)) if items else self.length()

    def length(self) -> int:
        with redis_errors("cannot read the topic queue"):
            return int(self._redis.llen(self.key))

    def drain(self, inbox: Inbox, handoff: Handoff, *, running: int) -> DrainReport:
        """Start conversations for queued topics while fewer than the capacity run."""
        report = DrainReport()
        budget = min(self._settings.topics_batch, self._settings.topics_capacity - running)
        with redis_errors("cannot drain the topic queue"):
            leftovers = self._raw("LRANGE", self.processing_key, 0, -1)
            for item in leftovers:  # a previous drain died after moving these
                self._process(item, inbox, handoff, report)
            if budget <= 0:
                report.skipped_for_capacity = self.length() > 0
                return report
            for _ in range(budget - len(leftovers)):
                moved = self._raw("LMOVE", self.key, self.processing_key, "LEFT", "RIGHT")
                if moved is None:
                    break
                self._process(moved, inbox, handoff, report)
        return report

    def _raw(self, *command: Any) -> Any:
        """``command``'s reply as bytes: a decoding client would fail on an item that is
        not UTF-8 after Redis had moved it, leaving it in the processing list for good."""
        return self._redis.execute_command(*command, **{NEVER_DECODE: True})  # type: ignore[no-untyped-call]

    def _process(self, raw: bytes, inbox: Inbox, handoff: Handoff, report: DrainReport) -> None:
        try:
            payload = read_item(raw, self._settings)
            event_id = payload["event_id"]
            source = Source(topic=queue_source(self.key))
            arrival = Arrival(event_id, "conversation", payload, payload_hash(payload), source)
            (acceptance,) = intake.accept(inbox, [arrival])
            if isinstance(acceptance, ConflictingDuplicate):
                raise acceptance
        except InputError as exc:  # unreadable, or an id reused for another topic
            self._bury(raw, exc, report)
            return
        if acceptance.hand_off:
            handoff(event_id)
            intake.dispatched(inbox, [event_id])
            report.started += acceptance.new
        else:
            report.duplicates += 1
        self._raw("LREM", self.processing_key, 1, raw)

    def _bury(self, raw: bytes, exc: InputError, report: DrainReport) -> None:
        """Move ``raw`` from the processing list to the dead letters, atomically."""
        keys = [self.processing_key, self.dead_key]
        args: list[bytes | str | int] = [raw, dead_entry(raw, exc), self._settings.topics_dead_max]
        if not self._bury_script(keys=keys, args=args):
            return  # another drain buried it first
        error = clip(str(exc))
        log.warning("topic item dead-lettered (%s, %d bytes): %s", exc.dlq_reason, len(raw), error)
        report.dead_lettered.append(f"{exc.dlq_reason}: {error}")

    # --- the dead letters ---------------------------------------------------------------

    def dead_letters(self, limit: int | None = None) -> tuple[int, list[dict[str, Any]]]:
        """(how many there are, the newest ``limit`` of them, newest first)."""
        with redis_errors("cannot read the topic queue's dead letters"):
            pipe = self._redis.pipeline(transaction=True)
            pipe.llen(self.dead_key)
            pipe.lrange(self.dead_key, 0, -1 if limit is None else limit - 1)
            total, entries = pipe.execute()
        return int(total), [_entry(e) for e in entries]

    def clear_dead(self) -> int:
        """Delete every dead letter; how many there were."""
        with redis_errors("cannot clear the topic queue's dead letters"):
            pipe = self._redis.pipeline(transaction=True)
            pipe.llen(self.dead_key)
            pipe.delete(self.dead_key)
            total, _ = pipe.execute()
        return int(total)


def _entry(raw: str) -> dict[str, Any]:
    """A stored dead letter; one that is not ours (written by hand) is shown as it is."""
    try:
        entry = json.loads(raw)
    except (ValueError, RecursionError):
        entry = None
    return entry if isinstance(entry, dict) else {"reason": "unknown", "item": clip(raw)}
