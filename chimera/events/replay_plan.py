"""Planning a replay from the dead-letter topic alone (``chimera dlq replay``).

Which records a run considers:

* Without filters, those past the offsets committed by the replay group
  (``<KAFKA_CONSUMER_GROUP_ID>-dlq-replay``; the bridge's group is never
  touched).  The run commits past every record it dealt with (replayed or
  refused), so the next run starts after them.
* With an event id or a reason, every matching record from the beginning, so
  an old record is still found.  Such a run commits only over an unbroken run
  of dealt-with records from the committed offset: records it did not look at
  stay for the next unfiltered run.

Every run reads the whole topic, because its history decides two things:

* Of the dead letters of one event (same event id and payload), only the
  latest is replayed.  The earlier ones are superseded: a replay that failed
  again left the newer one.
* An event's replay count is the highest ``x-replay-count`` among its dead
  letters, and at least the number of its earlier dead letters.  The cap
  (``settings.dlq_max_replays``) therefore holds even where a dead-lettering
  path does not carry the header forward, and a poison record cannot loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chimera.events.letters import DeadLetterRecord, Scan
from chimera.untrusted import clip


@dataclass(frozen=True)
class Filters:
    """What a replay selects; with none, every record past the committed offsets."""

    event_id: str | None = None
    reason: str | None = None

    def __bool__(self) -> bool:
        return self.event_id is not None or self.reason is not None

    def match(self, letter: DeadLetterRecord) -> bool:
        return (self.event_id is None or letter.event_id == self.event_id) and (
            self.reason is None or letter.reason == self.reason
        )


@dataclass(frozen=True)
class Candidate:
    """A record a run considers: how often its event was replayed, or why not to."""

    letter: DeadLetterRecord
    #: Replays the event has had so far.
    replays: int
    #: Why not, when the topic alone decides it.
    skip: str | None = None
    #: Why it must never be published: it claims another topic than the route's.
    refusal: str | None = None


def misrouted(letter: DeadLetterRecord, route: str, also: frozenset[str] = frozenset()) -> bool:
    """Whether ``letter`` claims to come from another topic than ``route`` (or the other
    sources ``also`` names whose events are ``route``'s: ``letters.origins_for``)."""
    origin = letter.original_topic
    return origin is not None and origin != route and origin not in also


def _time_order(letter: DeadLetterRecord) -> tuple[int, int, int]:
    return (letter.timestamp_ms, letter.partition, letter.offset)


def plan(
    scan: Scan,
    committed: Mapping[int, int | None],
    filters: Filters,
    max_replays: int,
    *,
    route: str,
    also: frozenset[str] = frozenset(),
) -> list[Candidate]:
    """The records a run considers, oldest first, each judged by its event's history.

    ``route`` is the one topic the records may go to; a record claiming another origin
    than it or ``also`` (the topic queue's, for conversations) is refused and left out
    of every history (a forged record must not supersede, or count as a replay of, a
    genuine one).
    """
    histories: dict[tuple[str, str], list[DeadLetterRecord]] = {}
    for letter in sorted(scan.records, key=_time_order):
        if letter.event_id is not None and not misrouted(letter, route, also):
            histories.setdefault((letter.event_id, letter.digest), []).append(letter)
    if filters:
        scope = [r for r in scan.records if filters.match(r)]
    else:
        scope = [r for r in scan.records if r.offset >= (committed.get(r.partition) or 0)]
    candidates: list[Candidate] = []
    for letter in sorted(scope, key=_time_order):
        if misrouted(letter, route, also):
            candidates.append(Candidate(letter, 0, refusal=_refusal(letter, route)))
            continue
        history = [letter]
        if letter.event_id is not None:
            history = histories[(letter.event_id, letter.digest)]
        latest = history[-1]
        replays = max(len(history) - 1, *(r.replay_count for r in history))
        if letter.omitted is not None:
            why = (
                "it carries none of the original record (x-dlq-omitted: "
                f"{clip(letter.omitted)}); read it at {clip(letter.origin)} while that topic "
                "keeps it, and submit it again"
            )
        elif latest is not letter:
            why = f"superseded by a later dead letter of the event ({latest.where})"
        elif replays >= max_replays:
            why = (
                f"replayed {replays} time{'s' * (replays != 1)} already; "
                f"the limit is {max_replays} (CHIMERA_DLQ_MAX_REPLAYS)"
            )
        else:
            why = None
        candidates.append(Candidate(letter, replays, why))
    return candidates


def _refusal(letter: DeadLetterRecord, route: str) -> str:
    claimed = clip(str(letter.original_topic))
    return (
        f"its x-original-topic {claimed!r} is not {route}, the one topic {letter.topic} "
        "is replayed to (CHIMERA_DLQ_ROUTES): never published"
    )


def advance(
    scan: Scan, committed: Mapping[int, int | None], dealt_with: set[tuple[int, int]]
) -> dict[int, int]:
    """Per partition, the offset to commit: past the unbroken run of dealt-with records
    from the committed offset (only where that moves it)."""
    by_partition: dict[int, list[DeadLetterRecord]] = {p: [] for p in scan.ends}
    for letter in scan.records:
        by_partition.setdefault(letter.partition, []).append(letter)
    out: dict[int, int] = {}
    for partition, letters in by_partition.items():
        start = committed.get(partition) or 0
        position = start
        for letter in letters:
            if letter.offset < start:
                continue
            if (partition, letter.offset) not in dealt_with:
                break
            position = letter.offset + 1
        else:
            position = max(position, scan.ends.get(partition, position))
        if position > start:
            out[partition] = position
    return out
