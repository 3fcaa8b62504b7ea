"""A job's progress: rate and ETA (pure), events dead-lettered before their row, and
`chimera jobs status --watch`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from chimera.db.tables import EventStatus
from chimera.events.ids import job_event_id
from chimera.events.inbox import Inbox
from chimera.jobs.feed import feed_job
from chimera.jobs.figures import reason_named
from chimera.jobs.progress import bar, duration, eta_s, line, rate_per_min, spent
from chimera.jobs.repository import JobRepository
from chimera.jobs.service import create_job, inline_topics
from chimera.kafka.clients import make_producer
from chimera.settings import Settings, to_env
from tests.chimera.test_cli import chimera
from tests.conftest import PROJECT_ROOT

PAIR = [
    {"provider": "anthropic", "model": "claude-sonnet-5-5", "name": "Ana"},
    {"provider": "google", "model": "gemini-3.5-flash", "name": "Ben"},
]


# --- the maths ----------------------------------------------------------------------------


def test_rate_is_per_minute_over_the_window_or_since_the_start() -> None:
    assert rate_per_min(30, 600.0, 3_600.0) == 3.0  # 30 in the last 10 minutes
    assert rate_per_min(30, 600.0, 300.0) == 6.0  # 30 in the 5 minutes it has run
    assert rate_per_min(0, 600.0, 900.0) == 0.0
    assert rate_per_min(3, 600.0, 1.0) is None  # too young to say
    with pytest.raises(ValueError, match="window_s"):
        rate_per_min(1, 0.0, 10.0)


def test_eta_is_what_is_left_at_the_rate() -> None:
    assert eta_s(10, 40, 3.0) == 600.0
    assert eta_s(40, 40, 3.0) == 0.0 == eta_s(41, 40, None)
    assert eta_s(10, None, 3.0) is None
    assert eta_s(10, 40, 0.0) is None and eta_s(10, 40, None) is None


def test_the_progress_line() -> None:
    assert duration(None) == "-" and duration(42.2) == "43s"
    assert duration(185) == "3m05s" and duration(3_720) == "1h02m"
    assert (
        bar(5, 20, width=4) == "[#---]" and bar(30, 20, width=4) == "[####]" and bar(1, None) == ""
    )
    assert spent(Decimal("1.5"), None) == "$1.5000" and spent(0.25, 10) == "$0.2500/$10.00"
    job = {
        "status": "running",
        "fed": 12,
        "spec": {"target": 20, "budget_usd": 5},
        "figures": {
            "accepted": 10,
            "running": 2,
            "cost_usd": 1.25,
            "yield": 0.8,
            "accepted_per_min": 2.5,
            "eta_s": 240.0,
            "rejected": {"failed": 1, "low_score": 2, "near_duplicate": 1},
        },
    }
    assert line(job) == (
        "running | [##########----------] accepted 10/20 | rate 2.50/min | eta 4m00s"
        " | spent $1.2500/$5.00 | yield 0.80 | running 2"
        " | rejected failed=1,low_score=2,near_duplicate=1"
    )


def test_dead_letter_reasons_come_from_the_error_classes() -> None:
    assert reason_named("DataRejected") == "data_rejected"
    assert reason_named("RecordTooLarge") == "data_rejected"  # inherited
    assert reason_named("NoSuchError") == "error" == reason_named("")


# --- on the real services -----------------------------------------------------------------


@pytest.fixture
def producer(kafka_topics: Settings) -> Iterator[Any]:
    p = make_producer(kafka_topics)
    yield p
    p.close(timeout=5)


def _job(repo: JobRepository, producer: Any, settings: Settings, name: str) -> str:
    spec = {"name": name, "min_turns": 2, "max_turns": 2, "participants": PAIR}
    made = create_job(repo, producer, settings, spec, inline_topics(["Cars", "Bikes"]))
    assert made.feed.published == 2
    return made.job.id


def _dead_letter_at_start(db: Any, jid: str, position: int, error: str) -> None:
    """What a worker records when an event is refused at its start (no conversation row)."""
    inbox = Inbox(db)
    eid = job_event_id(jid, position)
    inbox.accept(event_id=eid, kind="conversation", payload={"event_id": eid}, payload_hash="h")
    inbox.mark(eid, EventStatus.DEAD_LETTERED, error=error)


def test_a_job_whose_events_dead_letter_before_their_rows_completes(
    kafka_topics: Settings, db: Any, producer: Any
) -> None:
    repo = JobRepository(db)
    jid = _job(repo, producer, kafka_topics, "refused")
    _dead_letter_at_start(db, jid, 0, "DataRejected: a NUL in the topic")
    job = repo.get(jid)
    assert job is not None and job.figures.dead_lettered == 1 and job.figures.started == 0
    assert feed_job(repo, producer, kafka_topics, job).status == "running"  # one left
    _dead_letter_at_start(db, jid, 1, "Abandoned: not done after 5 re-drives")
    job = repo.get(jid)
    assert job is not None
    assert feed_job(repo, producer, kafka_topics, job).status == "completed"
    job = repo.get(jid)
    assert job is not None and job.status == "completed" and job.finished_at is not None
    fig = job.figures
    assert fig.finished == 2 == fig.dead_lettered and fig.accepted == 0 and fig.yield_ == 0.0
    assert sum(fig.rejected.values()) == 2 and fig.rejected["data_rejected"] == 1
    assert fig.eta_s is None  # no target

    watched = chimera(
        "jobs", "status", jid, "--watch", "--interval", "0.2", env=to_env(kafka_topics)
    )
    assert watched.returncode == 0, watched.stderr
    lines = watched.stdout.splitlines()
    assert len(lines) == 1  # final at once: one plain line (stdout is a pipe)
    assert lines[0].startswith(f"{jid} completed | accepted 0 (2 published)")
    assert "rejected " in lines[0] and "data_rejected=1" in lines[0] and "\r" not in lines[0]


def test_watch_prints_a_line_a_refresh_when_not_a_tty_and_stops_on_ctrl_c(
    kafka_topics: Settings, db: Any, producer: Any
) -> None:
    repo = JobRepository(db)
    jid = _job(repo, producer, kafka_topics, "pending")
    proc = subprocess.Popen(
        [sys.executable, "-m", "chimera", "jobs", "status", jid, "--watch", "--interval", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
        env=os.environ | to_env(kafka_topics),
    )
    try:
        assert proc.stdout is not None
        first, second = proc.stdout.readline(), proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    for text in (first, second):
        assert text.startswith(f"{jid} pending | accepted 0 (2 published) | rate - | eta -")
