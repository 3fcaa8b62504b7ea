"""Postgres hung: it accepts connections and bytes and answers nothing.

The database is reached through a proxy that can freeze (``TcpProxy.freeze``): the
client's kernel sees every byte acknowledged, so neither TCP keepalives nor
``tcp_user_timeout`` notice.  The engine's own bound on every wait
(``CHIMERA_DB_STATEMENT_TIMEOUT_S`` plus a margin) fails the statement with the
retryable ``DatabaseUnavailable``; once the server answers again the work is done once.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from chimera.db.engine import make_engine
from chimera.db.errors import database_errors
from chimera.errors import DatabaseUnavailable
from tests.helpers import wait_for
from tests.reliability.harness import invariants
from tests.reliability.harness.results import record
from tests.reliability.harness.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.timeout(400)]

#: The setting under test, as short as it may be: the client gives up 5 s after it.
STATEMENT_TIMEOUT_S = 1.0

#: The test's own bound on a call that must not hang (far above the setting).
HANG_S = 60.0


@pytest.fixture
def pg_proxy(kafka_topics: Any, db: Any) -> Iterator[tuple[TcpProxy, str]]:
    """A proxy in front of the test database (``db``: created and migrated) that can freeze;
    yields it and the URL through it."""
    url = make_url(kafka_topics.database_url.get_secret_value())
    proxy = TcpProxy(url.port or 5432)
    try:
        yield proxy, url.set(port=proxy.port).render_as_string(hide_password=False)
    finally:
        proxy.close()


def test_statement_fails_as_unavailable_when_server_hangs_then_works(
    kafka_topics: Any, pg_proxy: tuple[TcpProxy, str]
) -> None:
    """A pooled connection and a new one both meet the frozen server: each call fails
    with ``DatabaseUnavailable`` instead of waiting for ever; after the thaw the same
    engine writes its row, once."""
    proxy, url = pg_proxy
    settings = kafka_topics.model_copy(update={"db_statement_timeout_s": STATEMENT_TIMEOUT_S})
    engine = make_engine(settings, url=url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "1s"
        proxy.freeze()
        outcomes: list[BaseException | None] = []

        def call() -> None:
            try:
                with database_errors("hung"), engine.begin() as conn:
                    conn.execute(text("SELECT 1"))
                outcomes.append(None)
            except BaseException as exc:  # recorded for the assertion below
                outcomes.append(exc)

        for _ in range(2):  # the pooled connection, then a fresh one
            thread = threading.Thread(target=call, daemon=True)
            thread.start()
            thread.join(HANG_S)
            assert not thread.is_alive(), "a statement hung on a frozen server"
        assert len(outcomes) == 2
        for exc in outcomes:
            assert isinstance(exc, DatabaseUnavailable), exc
            assert "no answer in" in str(exc)

        proxy.restore()
        with engine.begin() as conn:
            conn.execute(text("CREATE TEMP TABLE hung_probe (n int) ON COMMIT PRESERVE ROWS"))
            conn.execute(text("INSERT INTO hung_probe VALUES (1)"))
            assert conn.execute(text("SELECT count(*) FROM hung_probe")).scalar_one() == 1
    finally:
        proxy.restore()
        engine.dispose()


def test_server_side_statement_timeout_is_unavailable(kafka_topics: Any, db: Any) -> None:
    """A statement that runs past the setting is cancelled by the server: retryable too."""
    settings = kafka_topics.model_copy(update={"db_statement_timeout_s": STATEMENT_TIMEOUT_S})
    engine = make_engine(settings)
    try:
        with (
            pytest.raises(DatabaseUnavailable, match="statement timeout"),
            database_errors("slow"),
            engine.begin() as conn,
        ):
            conn.execute(text("SELECT pg_sleep(3)"))
    finally:
        engine.dispose()


@pytest.mark.subprocess_worker
def test_worker_and_bridge_survive_a_hung_postgres(
    make_stack: Any,
    kafka_topics: Any,
    pg_proxy: tuple[TcpProxy, str],
    sim_calls: Any,
    request: pytest.FixtureRequest,
) -> None:
    """Postgres freezes while conversations run: workers and the bridge fail their
    statements, retry, and stay alive; after the thaw every conversation finishes, one
    row each, nothing paid twice."""
    proxy, url = pg_proxy
    sim_calls.configure(ttft_ms=300)
    base = kafka_topics.model_copy(update={"db_statement_timeout_s": STATEMENT_TIMEOUT_S})
    stack = make_stack(database_url=url, base=base)
    stack.start_all()
    ids = stack.produce_conversations(3, min_turns=3, max_turns=3)
    wait_for(
        lambda: sim_calls.calls().count(model="claude-sonnet-5-5") >= 3,
        timeout_s=90,
        what="every conversation under way",
    )
    proxy.freeze()
    frozen_at = time.monotonic()
    worker = next(p for p in stack.processes if p.name == "worker0")
    put_back = re.compile(r"\] retry: .*DatabaseUnavailable\(.*no answer in")
    # A task met the frozen server, failed within the bound and was put back for later.
    wait_for(lambda: put_back.search(worker.log()), timeout_s=HANG_S, what="a task put back")
    frozen_s = time.monotonic() - frozen_at
    proxy.restore()
    settle_s = stack.wait_settled(ids, timeout_s=300)
    report = invariants.check(stack, sim_calls, event_ids=ids, allowed_dead_letters=set())
    record(
        "postgres hung (accepting connections, answering nothing)",
        request.node.name,
        happened="statements failed after the bound as DatabaseUnavailable and were retried; "
        "every event done once after the thaw",
        frozen_s=round(frozen_s, 1),
        settle_s=round(settle_s, 1),
        **report.as_dict(),
    )
