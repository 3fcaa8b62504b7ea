"""Export from a real Postgres: which conversations, in what order, in how many round trips."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event

from chimera.conversation.export import export_conversations
from chimera.conversation.parsing import ParsedConversation, read_jsonl
from chimera.errors import DatabaseUnavailable
from tests.chimera.conversation import transcripts as tx
from tests.chimera.conversation.stored import T0, add_conversation


def export(engine: Engine, **kwargs: Any) -> tuple[int, list[ParsedConversation]]:
    out = io.StringIO()
    kwargs.setdefault("fmt", "openai")
    count = export_conversations(engine, out, **kwargs)
    lines = out.getvalue().splitlines()
    assert len(lines) == count
    parsed = list(read_jsonl(lines))
    assert all(isinstance(p, ParsedConversation) for p in parsed), parsed
    return count, [p for p in parsed if isinstance(p, ParsedConversation)]


@pytest.fixture
def stocked(db: Engine) -> Engine:
    """Completed conversations of various quality and times, plus ones not completed."""
    add_conversation(db, "c-late", created_at=T0 + timedelta(hours=2), quality=0.9)
    add_conversation(db, "c-b", created_at=T0, quality=0.5)
    add_conversation(db, "c-a", created_at=T0, quality=0.8)  # same time: id breaks the tie
    add_conversation(db, "c-early", created_at=T0 - timedelta(days=1), quality=0.7)
    add_conversation(db, "c-failed", status="failed", created_at=T0)
    add_conversation(db, "c-running", status="running", created_at=T0)
    return db


def ids(parsed: list[ParsedConversation]) -> list[str | None]:
    return [p.id for p in parsed]


def test_exports_completed_conversations_in_created_then_id_order(stocked: Engine) -> None:
    count, parsed = export(stocked)
    assert count == 4
    assert ids(parsed) == ["c-early", "c-a", "c-b", "c-late"]
    first = parsed[0]
    assert [t.turn_index for t in first.turns] == list(range(len(tx.CARS)))
    assert first.turns == tuple(tx.transcript(tx.CARS))
    assert first.metadata["quality_score"] == 0.7
    assert first.metadata["ended_reason"] == "natural_close"
    assert first.metadata["quality_version"] == "quality.v2"
    assert set(first.metadata["quality_breakdown"]) == {
        "diversity",
        "relevance",
        "uptake",
        "progression",
        "ending",
        "development",
        "length",
    }
    assert first.metadata["conversation_metadata"] == {"batch": "b-7"}
    assert first.system == "Topic: Should cities ban cars?\n\nA planner."


def test_filters_by_quality_limit_and_time(stocked: Engine) -> None:
    assert ids(export(stocked, min_quality=0.75)[1]) == ["c-a", "c-late"]
    assert ids(export(stocked, min_quality=1.0)[1]) == []
    assert ids(export(stocked, limit=2)[1]) == ["c-early", "c-a"]
    assert export(stocked, limit=0)[0] == 0
    assert ids(export(stocked, since=T0)[1]) == ["c-a", "c-b", "c-late"]
    naive = T0.replace(tzinfo=None) + timedelta(hours=1)  # taken as UTC
    assert ids(export(stocked, since=naive)[1]) == ["c-late"]
    assert ids(export(stocked, min_quality=0.6, since=T0, limit=5)[1]) == ["c-a", "c-late"]


def test_sharegpt_lines_parse_back_too(stocked: Engine) -> None:
    count, parsed = export(stocked, fmt="sharegpt", limit=1)
    assert count == 1
    assert parsed[0].format == "sharegpt"
    assert parsed[0].turns == tuple(tx.transcript(tx.CARS))


@pytest.fixture
def statements(db: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(db, "before_cursor_execute", record)
    yield seen
    event.remove(db, "before_cursor_execute", record)


def test_pages_through_the_table_a_page_at_a_time(stocked: Engine, statements: list[str]) -> None:
    count, parsed = export(stocked, page_size=2)
    assert count == 4
    assert ids(parsed) == ["c-early", "c-a", "c-b", "c-late"]  # no row lost or repeated at a tie
    conversation_queries = [s for s in statements if "FROM conversations" in s]
    turn_queries = [s for s in statements if "FROM conversation_turns" in s]
    # Two full pages, then an empty one to be sure; each page's turns in one query.
    assert (len(conversation_queries), len(turn_queries)) == (3, 2)
    assert all("LIMIT" in s for s in conversation_queries)


def test_a_stored_row_that_does_not_validate_is_skipped_and_logged(
    db: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    add_conversation(db, "c-good", quality=0.8)
    add_conversation(db, "c-odd", quality=0.8, turn_overrides={"provider": "mistral"})
    with caplog.at_level(logging.WARNING, logger="chimera.conversation.export"):
        count, parsed = export(db)
    assert (count, ids(parsed)) == (1, ["c-good"])
    assert "conversation c-odd skipped" in caplog.text


def test_bad_arguments_are_refused(db: Engine) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        export_conversations(db, io.StringIO(), fmt="openai", min_quality=2)
    with pytest.raises(ValueError, match="unknown format"):
        export_conversations(db, io.StringIO(), fmt="csv")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="negative"):
        export_conversations(db, io.StringIO(), fmt="openai", limit=-1)


def test_an_unreachable_database_is_a_chimera_error() -> None:
    engine = create_engine(
        "postgresql+psycopg2://postgres@127.0.0.1:1/nowhere", connect_args={"connect_timeout": 2}
    )
    try:
        with pytest.raises(DatabaseUnavailable, match="cannot read conversations"):
            export_conversations(engine, io.StringIO(), fmt="openai")
    finally:
        engine.dispose()
