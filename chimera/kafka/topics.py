"""Creating and listing the topics of docs/contract.md."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from kafka.admin import NewTopic
from kafka.errors import (
    KafkaError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)

from chimera.errors import KafkaUnavailable
from chimera.kafka.clients import admin_client
from chimera.settings import Settings

log = logging.getLogger(__name__)


def ensure_topics(settings: Settings, names: Iterable[str] | None = None) -> list[str]:
    """Create every configured topic (or ``names``) that is missing; return those created."""
    wanted = list(names if names is not None else settings.topics.values())
    with admin_client(settings) as admin:
        try:
            existing = set(admin.list_topics())
        except KafkaError as exc:
            raise KafkaUnavailable(f"cannot list topics: {exc}") from exc
        missing = [n for n in wanted if n not in existing]
        created: list[str] = []
        for name in missing:
            topic = NewTopic(
                name,
                num_partitions=settings.kafka_topic_partitions,
                replication_factor=settings.kafka_replication_factor,
            )
            try:
                admin.create_topics([topic])
            except TopicAlreadyExistsError:
                continue  # created concurrently: fine
            except KafkaError as exc:
                raise KafkaUnavailable(f"cannot create topic {name}: {exc}") from exc
            created.append(name)
    if created:
        log.info("created topics %s", ", ".join(created))
    return created


def list_topics(settings: Settings) -> list[str]:
    with admin_client(settings) as admin:
        try:
            return sorted(admin.list_topics())
        except KafkaError as exc:
            raise KafkaUnavailable(f"cannot list topics: {exc}") from exc


def delete_topics(settings: Settings, names: Iterable[str]) -> None:
    names = list(names)
    if not names:
        return
    with admin_client(settings) as admin:
        try:
            admin.delete_topics(names)
        except UnknownTopicOrPartitionError:
            pass
        except KafkaError as exc:
            raise KafkaUnavailable(f"cannot delete topics: {exc}") from exc
