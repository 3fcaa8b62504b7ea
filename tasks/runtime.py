"""Per-process resources of a worker: opened on first use, closed at shutdown.

Connections are made after fork, never at import time, so the same code serves
prefork children, thread pools and embedded test workers.
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any

import redis
from celery.signals import worker_process_init, worker_process_shutdown, worker_shutdown
from kafka import KafkaProducer
from sqlalchemy import Engine

from chimera import tracing
from chimera.analysis.service import AnalysisService
from chimera.analysis.store import PartStore
from chimera.conversation.engine import ConversationEngine
from chimera.conversation.repository import ConversationRepository
from chimera.conversation.store import StateStore
from chimera.crashes import CrashCounter
from chimera.db.engine import make_engine
from chimera.events.inbox import Inbox
from chimera.events.sink import KafkaEventSink
from chimera.jobs.budget import JobBudgets
from chimera.jobs.control import JobControl
from chimera.jobs.gate import JobGate
from chimera.jobs.repository import JobRepository
from chimera.kafka.clients import make_producer
from chimera.llm.client import LLMClient
from chimera.llm.registry import build_client
from chimera.redis_client import make_redis
from chimera.settings import Settings, get_settings

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redis: redis.Redis = make_redis(settings)

    @functools.cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings)

    @functools.cached_property
    def llm(self) -> LLMClient:
        client = build_client(self.settings, redis_client=self.redis, engine=self.engine)
        client.spend = JobBudgets(
            self.redis,
            self.settings,
            self.job_control,
            client.accountant.prices,
            self.jobs.spent,
        )
        return client

    @functools.cached_property
    def jobs(self) -> JobRepository:
        return JobRepository(self.engine)

    @functools.cached_property
    def job_control(self) -> JobControl:
        return JobControl(self.redis, self.settings, self.jobs.control_row)

    @functools.cached_property
    def job_gate(self) -> JobGate:
        return JobGate(self.job_control, self.jobs)

    @functools.cached_property
    def producer(self) -> KafkaProducer:
        return make_producer(self.settings)

    @functools.cached_property
    def crashes(self) -> CrashCounter:
        return CrashCounter(self.redis, self.settings)

    @functools.cached_property
    def inbox(self) -> Inbox:
        return Inbox(self.engine)

    @functools.cached_property
    def sink(self) -> KafkaEventSink:
        return KafkaEventSink(self.producer, self.settings)

    @functools.cached_property
    def conversations(self) -> ConversationEngine:
        return ConversationEngine(
            self.settings,
            store=StateStore(self.redis, self.settings),
            llm=self.llm,
            repo=ConversationRepository(self.engine),
            inbox=self.inbox,
            sink=self.sink,
        )

    @functools.cached_property
    def analysis(self) -> AnalysisService:
        return AnalysisService(
            self.settings,
            llm=self.llm,
            engine=self.engine,
            parts=PartStore(self.redis, self.settings),
            inbox=self.inbox,
            sink=self.sink,
        )

    def close(self) -> None:
        if "llm" in self.__dict__:
            self.llm.close()  # writes pending llm_calls rows
        if "producer" in self.__dict__:
            self.producer.close(timeout=10)
        if "engine" in self.__dict__:
            self.engine.dispose()
        self.redis.close()


class _Holder:
    """The process's one Runtime, guarded for the thread pool."""

    lock = threading.Lock()
    current: Runtime | None = None


def runtime() -> Runtime:
    """This process's resources, opened on first use."""
    with _Holder.lock:
        if _Holder.current is None:
            _Holder.current = Runtime(get_settings())
        return _Holder.current


@worker_process_init.connect  # prefork children; thread pools open lazily
def _open(**_: Any) -> None:
    runtime()


@worker_process_shutdown.connect  # prefork children
@worker_shutdown.connect  # the main process (thread pools)
def _close(**_: Any) -> None:
    with _Holder.lock:
        if _Holder.current is not None:
            _Holder.current.close()
            _Holder.current = None
    tracing.shutdown()  # export the spans still batched
