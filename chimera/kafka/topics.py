"""Creating and listing the topics of docs/contract.md."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable

from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

from chimera.kafka.clients import admin_client
from chimera.kafka.errors import kafka_errors
from chimera.settings import Settings

log = logging.getLogger(__name__)


def ensure_topics(settings: Settings, names: Iterable[str] | None = None) -> list[str]:
    """Create every configured topic (or ``names``) that is missing; return those created."""
    wanted = list(names if names is not None else settings.topics.values())
    with admin_client(settings) as admin:
        with kafka_errors("cannot list topics"):
            existing = set(admin.list_topics())
        missing = [n for n in wanted if n not in existing]
        created: list[str] = []
        for name in missing:
            topic = NewTopic(
                name,
                num_partitions=settings.kafka_topic_partitions,
                replication_factor=settings.kafka_replication_factor,
            )
            with kafka_errors(f"cannot create topic {name}"):
                try:
                    admin.create_topics([topic])
                except TopicAlreadyExistsError:
                    continue  # created concurrently: fine
            created.append(name)
    if created:
        log.info("created topics %s", ", ".join(created))
    return created


def list_topics(settings: Settings) -> list[str]:
    with admin_client(settings) as admin, kafka_errors("cannot list topics"):
        return sorted(admin.list_topics())


def delete_topics(settings: Settings, names: Iterable[str]) -> None:
    names = list(names)
    if not names:
        return
    with (
        admin_client(settings) as admin,
        kafka_errors("cannot delete topics"),
        contextlib.suppress(UnknownTopicOrPartitionError),
    ):
        admin.delete_topics(names)
