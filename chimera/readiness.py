"""Readiness: can this deployment take work right now?

Four checks run in parallel, each bounded by a short timeout so a probe never
hangs on a dependency that stopped answering: Redis answers PING, Postgres
answers ``SELECT 1``, Kafka answers a metadata request, and at least one Celery
worker has reported through its heartbeat key (written by the canary task that
beat schedules) within the heartbeat TTL.  A worker that answers broadcast pings
but stopped consuming has no fresh heartbeat, which is the point.

Details are for operators and may be served over HTTP: every message passes
through the settings' redactor (``chimera.redaction``), so no password, key or
credentialled URL leaves this module.  They still name internal hosts and the
database user, so ``/readyz`` shows them only to a caller with a token.

Each fresh report opens connections to Redis, Postgres and Kafka.  ``report()``
reuses one for ``CHIMERA_READYZ_CACHE_S``, and callers that arrive while the checks
run wait for that one run: a flood of probes costs one round of checks per interval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text

from chimera import heartbeat
from chimera.db.errors import database_errors
from chimera.errors import ChimeraError, WorkerUnavailable
from chimera.kafka.clients import admin_client
from chimera.kafka.errors import kafka_errors
from chimera.redaction import redactor_for
from chimera.redis_client import make_redis, ping
from chimera.settings import Settings

log = logging.getLogger(__name__)

#: Longest a single check may take; /readyz answers within about this long.
CHECK_TIMEOUT_S = 2.0
#: Longest error message kept in a report.
MAX_DETAIL_CHARS = 300

#: A check returns a one-line detail on success and raises ``ChimeraError`` on failure.
Check = Callable[[], str]


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    latency_ms: float
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "latency_ms": round(self.latency_ms, 1),
            ("detail" if self.ok else "error"): self.detail,
        }


@dataclass(frozen=True)
class Report:
    checks: tuple[CheckResult, ...]

    @property
    def ready(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failing(self) -> list[str]:
        return [c.name for c in self.checks if not c.ok]

    @property
    def status(self) -> str:
        return "ready" if self.ready else "not_ready"

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "checks": {c.name: c.as_dict() for c in self.checks}}


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def run_checks(
    checks: Mapping[str, Check],
    *,
    timeout_s: float,
    scrub: Callable[[str], str] = lambda s: s,
) -> Report:
    """Run ``checks`` in parallel; one that has not answered within ``timeout_s`` fails.

    A timed-out check keeps running in its thread until its own client timeout
    ends it; the report does not wait for it.
    """
    pool = ThreadPoolExecutor(max_workers=max(1, len(checks)), thread_name_prefix="readiness")
    started = time.monotonic()
    futures: dict[str, Future[tuple[bool, str, float]]] = {
        name: pool.submit(_timed, name, check) for name, check in checks.items()
    }
    results = []
    for name, future in futures.items():
        remaining = max(0.0, started + timeout_s - time.monotonic())
        try:
            ok, detail, latency_ms = future.result(timeout=remaining)
        except FutureTimeout:
            ok, detail, latency_ms = False, f"no answer within {timeout_s:g}s", timeout_s * 1000
        results.append(CheckResult(name, ok, latency_ms, scrub(detail)[:MAX_DETAIL_CHARS]))
    pool.shutdown(wait=False, cancel_futures=True)
    return Report(tuple(results))


def _timed(name: str, check: Check) -> tuple[bool, str, float]:
    started = time.monotonic()
    try:
        detail, ok = check(), True
    except ChimeraError as exc:
        detail, ok = str(exc), False
    except Exception as exc:  # a probe reports; it never raises into the server
        log.exception("readiness check %s failed unexpectedly", name)
        detail, ok = f"{type(exc).__name__}: {_first_line(exc)}", False
    return ok, detail, (time.monotonic() - started) * 1000


class Readiness:
    """The four checks of one process, with clients sized for probing."""

    def __init__(
        self, settings: Settings, *, engine: Engine, timeout_s: float = CHECK_TIMEOUT_S
    ) -> None:
        self.settings = settings
        self.timeout_s = timeout_s
        self._cache_lock = threading.Lock()
        self._cached: tuple[float, Report] | None = None
        # Short socket timeouts: a probe must fail fast, unlike a worker's client.
        probe = settings.model_copy(
            update={"redis_socket_timeout_s": timeout_s, "redis_connect_timeout_s": timeout_s}
        )
        self._redis = make_redis(probe)
        self._redactor = redactor_for(settings)
        self._engine = engine
        self.checks: dict[str, Check] = {
            "redis": self.check_redis,
            "postgres": self.check_postgres,
            "kafka": self.check_kafka,
            "worker": self.check_worker,
        }

    def run(self) -> Report:
        """Run every check now."""
        return run_checks(self.checks, timeout_s=self.timeout_s, scrub=self._redactor.redact)

    def report(self) -> Report:
        """The last report while it is younger than ``CHIMERA_READYZ_CACHE_S``, else a
        fresh one (which callers arriving meanwhile wait for and share)."""
        with self._cache_lock:
            cached = self._cached
            if cached is not None and time.monotonic() - cached[0] < self.settings.readyz_cache_s:
                return cached[1]
            report = self.run()
            self._cached = (time.monotonic(), report)
            return report

    def close(self) -> None:
        self._redis.close()

    def check_redis(self) -> str:
        ping(self._redis)
        kwargs = self._redis.connection_pool.connection_kwargs
        return f"PONG from {kwargs.get('host', '?')}:{kwargs.get('port', '?')}"

    def check_postgres(self) -> str:
        with (
            database_errors("Postgres does not answer", brief=True),
            self._engine.begin() as conn,
        ):
            timeout_ms = int(self.timeout_s * 1000)
            conn.execute(text(f"SET LOCAL statement_timeout = {timeout_ms}"))
            conn.execute(text("SELECT 1")).scalar_one()
        return f"SELECT 1 on {self._engine.url.render_as_string(hide_password=True)}"

    def check_kafka(self) -> str:
        # Within the check's own timeout, so the report names the cause, not a timeout.
        budget_ms = int(self.timeout_s * 750)
        with (
            admin_client(self.settings, timeout_ms=budget_ms) as admin,
            kafka_errors("Kafka metadata request failed"),
        ):
            topics = set(admin.list_topics())
        wanted = (self.settings.topic_conversation_new, self.settings.topic_analysis_tasks)
        missing = [t for t in wanted if t not in topics]
        note = f", missing input topics: {', '.join(missing)}" if missing else ""
        return f"{self.settings.kafka_bootstrap_servers}: {len(topics)} topics{note}"

    def check_worker(self) -> str:
        """At least one worker beat within the heartbeat TTL (what ``beat`` writes)."""
        ttl_s = self.settings.heartbeat_interval_s * 3
        beats = [
            b for b in heartbeat.read(self._redis, self.settings, "worker") if b.age_s <= ttl_s
        ]
        if not beats:
            raise WorkerUnavailable(
                f"no Celery worker has reported within {ttl_s:g}s (workers report when they "
                f"run the canary that beat sends every {self.settings.heartbeat_interval_s:g}s)"
            )
        names = ", ".join(b.instance or "?" for b in beats[:3])
        more = f" and {len(beats) - 3} more" if len(beats) > 3 else ""
        return (
            f"{len(beats)} live worker{'s' if len(beats) > 1 else ''} ({names}{more}), "
            f"newest report {beats[0].age_s:.0f}s ago"
        )
