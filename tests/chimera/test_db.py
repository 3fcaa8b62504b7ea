"""Migrations up and down on scratch databases; the tables' keys and constraints."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError

from chimera.db import admin
from chimera.db.tables import (
    AnalysisRun,
    Base,
    Conversation,
    ConversationTurn,
    Event,
    LLMCall,
)
from chimera.errors import ConfigError, DatabaseUnavailable

TABLES = {
    "events",
    "conversations",
    "conversation_turns",
    "analysis_runs",
    "llm_calls",
    "jobs",
    "job_topics",
    "conversation_judgements",
    "conversation_comparisons",
}


def tables_in(url: str) -> set[str]:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg2://"))
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_creates_the_database_and_every_table(settings: Any, scratch_db_url: str) -> None:
    assert not admin.database_exists(scratch_db_url)
    assert admin.upgrade(settings, url=scratch_db_url) == admin.head_revision()
    assert admin.database_exists(scratch_db_url)
    assert tables_in(scratch_db_url) == TABLES


def test_upgrade_twice_is_a_no_op(settings: Any, scratch_db_url: str) -> None:
    admin.upgrade(settings, url=scratch_db_url)
    assert admin.upgrade(settings, url=scratch_db_url) == admin.head_revision()
    assert tables_in(scratch_db_url) == TABLES


def test_downgrade_removes_everything_and_upgrade_restores_it(
    settings: Any, scratch_db_url: str
) -> None:
    admin.upgrade(settings, url=scratch_db_url)
    assert admin.downgrade(settings, "base", url=scratch_db_url) == "base"
    assert tables_in(scratch_db_url) == set()
    admin.upgrade(settings, url=scratch_db_url)
    assert tables_in(scratch_db_url) == TABLES


def test_models_match_the_migrated_schema(database: Any) -> None:
    with database.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_unreachable_server_is_a_clear_error(settings: Any) -> None:
    with pytest.raises(DatabaseUnavailable, match="cannot reach Postgres"):
        admin.upgrade(settings, url="postgresql://postgres@127.0.0.1:1/chimera_nowhere")


def test_bad_database_names_are_refused(settings: Any) -> None:
    with pytest.raises(ConfigError, match="may only hold letters"):
        admin.upgrade(settings, url='postgresql://postgres@127.0.0.1/x";drop')


# --- keys and constraints ------------------------------------------------------------------------


def event_row(event_id: str = "evt-1", **extra: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "kind": "conversation",
        "payload_hash": "h" * 64,
        "payload": {},
    } | extra


def conversation_row(cid: str = "conv-1", event_id: str = "evt-1", **extra: Any) -> dict[str, Any]:
    return {
        "id": cid,
        "event_id": event_id,
        "topic_title": "t",
        "topic": {"title": "t"},
        "participants": [],
        "min_turns": 1,
        "max_turns": 2,
    } | extra


def turn_row(index: int, cid: str = "conv-1") -> dict[str, Any]:
    return {
        "conversation_id": cid,
        "turn_index": index,
        "speaker": "a",
        "provider": "openai",
        "model": "m",
        "content": "hi",
    }


def test_event_ids_are_unique(db: Any) -> None:
    with db.begin() as conn:
        conn.execute(insert(Event), [event_row()])
    with pytest.raises(IntegrityError), db.begin() as conn:
        conn.execute(insert(Event), [event_row()])


def test_on_conflict_do_nothing_dedupes_the_inbox(db: Any) -> None:
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    stmt = pg_insert(Event).values(event_row()).on_conflict_do_nothing(index_elements=["event_id"])
    with db.begin() as conn:
        assert conn.execute(stmt).rowcount == 1
        assert conn.execute(stmt).rowcount == 0
        assert conn.execute(select(Event.status, Event.attempts)).one() == ("received", 0)


def test_one_conversation_per_event_and_one_row_per_turn(db: Any) -> None:
    with db.begin() as conn:
        conn.execute(insert(Conversation), [conversation_row()])
        conn.execute(insert(ConversationTurn), [turn_row(0), turn_row(1)])
    with pytest.raises(IntegrityError), db.begin() as conn:
        conn.execute(insert(Conversation), [conversation_row("conv-2", "evt-1")])
    with pytest.raises(IntegrityError), db.begin() as conn:
        conn.execute(insert(ConversationTurn), [turn_row(1)])
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM conversation_turns")).scalar() == 2


def test_turns_are_deleted_with_their_conversation(db: Any) -> None:
    with db.begin() as conn:
        conn.execute(insert(Conversation), [conversation_row()])
        conn.execute(insert(ConversationTurn), [turn_row(0)])
        conn.execute(text("DELETE FROM conversations WHERE id = 'conv-1'"))
        assert conn.execute(text("SELECT count(*) FROM conversation_turns")).scalar() == 0


@pytest.mark.parametrize(
    ("table", "row"),
    [
        (Event, event_row(status="lost")),
        (Event, event_row(kind="poetry")),
        (Conversation, conversation_row(status="weird")),
        (Conversation, conversation_row(min_turns=5, max_turns=2)),
        (
            AnalysisRun,
            {
                "id": "r",
                "event_id": None,
                "context_id": "c",
                "status": "ok",
                "bundle": {},
                "worker_statuses": {},
                "source": "kafka",
            },
        ),
        (
            AnalysisRun,
            {
                "id": "r",
                "event_id": "e",
                "context_id": "c",
                "status": "meh",
                "bundle": {},
                "worker_statuses": {},
                "source": "kafka",
            },
        ),
        (LLMCall, {"provider": "openai", "model": "m", "task": "turn", "status": "maybe"}),
    ],
)
def test_check_constraints_reject_impossible_rows(db: Any, table: Any, row: dict[str, Any]) -> None:
    with pytest.raises(IntegrityError), db.begin() as conn:
        conn.execute(insert(table), [row])


def test_realtime_runs_need_no_event_id_and_may_be_many(db: Any) -> None:
    base = {
        "context_id": "c",
        "status": "partial",
        "bundle": {},
        "worker_statuses": {"summary": "ok"},
        "source": "realtime",
    }
    with db.begin() as conn:
        conn.execute(insert(AnalysisRun), [base | {"id": "r1"}, base | {"id": "r2"}])
        assert (
            conn.execute(text("SELECT count(*) FROM analysis_runs WHERE event_id IS NULL")).scalar()
            == 2
        )


def test_llm_calls_record_cost_exactly(db: Any) -> None:
    from decimal import Decimal

    with db.begin() as conn:
        conn.execute(
            insert(LLMCall),
            [
                {
                    "provider": "anthropic",
                    "model": "m",
                    "task": "turn",
                    "status": "ok",
                    "cost_usd": Decimal("0.00012345"),
                    "owner_type": "conversation",
                    "owner_id": "c1",
                }
            ],
        )
        assert conn.execute(select(LLMCall.cost_usd)).scalar() == Decimal("0.00012345")
