"""Creating a job: check the spec and every topic, derive its id, store it, feed it.

The topics are read twice through ``TopicSource`` (once to check them and derive the
job id, once to store them), never held whole.  The same spec and topics are the same
job: creating it again writes nothing and publishes nothing new (a repeated first
batch carries the same event ids, which the inbox keeps once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer

from chimera.codec import limits_from
from chimera.errors import InputError, SchemaInvalid
from chimera.events.ids import job_id as derive_job_id
from chimera.jobs.feed import FeedReport, checked, conversation_event, feed_job
from chimera.jobs.repository import JobRepository, StoredJob
from chimera.jobs.spec import canonical, job_topic, parse_spec
from chimera.settings import Settings

#: Called once per pass: a fresh iterator over the job's topics, as ``job_topic`` makes them.
TopicSource = Callable[[], Iterator[dict[str, Any]]]


@dataclass(frozen=True)
class Created:
    job: StoredJob
    #: False: the same job existed already.
    created: bool
    feed: FeedReport


def inline_topics(items: Any) -> TopicSource:
    """The topics of a request body (``topics``: a list of objects or strings)."""
    if not isinstance(items, list) or not items:
        raise SchemaInvalid(
            "topics: expected a non-empty list",
            [{"field": "topics", "message": "expected a non-empty list of topics"}],
        )

    def source() -> Iterator[dict[str, Any]]:
        for i, item in enumerate(items):
            try:
                yield job_topic(item)
            except ValueError as exc:
                raise SchemaInvalid(
                    f"topics.{i}: {exc}", [{"field": f"topics.{i}", "message": str(exc)}]
                ) from None

    return source


def create_job(
    repo: JobRepository,
    producer: KafkaProducer,
    settings: Settings,
    spec_obj: dict[str, Any],
    topics: TopicSource,
) -> Created:
    """Check, store and start feeding a job; ``SchemaInvalid`` naming the field or the
    topic if anything is wrong (then nothing is stored or published)."""
    limits = limits_from(settings)
    spec = parse_spec(spec_obj, limits).stored()
    count = 0

    def lines() -> Iterator[str]:
        nonlocal count
        for topic in topics():
            try:
                # Each topic must make an event the bridge takes (metadata size, ...).
                checked(conversation_event("job-check", spec, topic, count, count + 1), limits)
            except InputError as exc:
                where = f"topic {count + 1}"
                raise SchemaInvalid(
                    f"{where}: {exc}", [{"field": where, "message": str(exc)}]
                ) from None
            count += 1
            yield canonical(topic)

    jid = derive_job_id(spec, lines())
    if count == 0:
        raise SchemaInvalid("topics: none given", [{"field": "topics", "message": "no topics"}])
    created = repo.create(jid, spec, topics(), count)
    job = repo.get(jid)
    assert job is not None  # just stored, and jobs are never deleted
    report = feed_job(repo, producer, settings, job)
    return Created(repo.get(jid) or job, created, report)
