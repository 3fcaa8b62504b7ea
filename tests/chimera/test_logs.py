"""Log lines carry the ids of the work in hand: JSON fields in production, a suffix locally."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest

from chimera.logs import ContextFilter, JsonFormatter, bind, current_context, log_context


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    logger = logging.getLogger(f"chimera.test.{id(stream)}")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream, handler
    logger.removeHandler(handler)


def test_json_lines_carry_the_bound_ids(
    captured: tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]],
) -> None:
    logger, stream, handler = captured
    handler.setFormatter(JsonFormatter())
    with log_context(event_id="evt-1"):
        with log_context(conversation_id="conv-1", turn_index=2):
            logger.info("turn done")
        logger.info("back out", extra={"event_id": "explicit wins"})
    logger.info("no context")
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "turn done"
    assert (first["event_id"], first["conversation_id"], first["turn_index"]) == (
        "evt-1",
        "conv-1",
        2,
    )
    assert second["event_id"] == "explicit wins" and "conversation_id" not in second
    assert "event_id" not in third and "context" not in third


def test_text_lines_end_with_the_ids(
    captured: tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]],
) -> None:
    logger, stream, handler = captured
    handler.setFormatter(logging.Formatter("%(message)s%(context)s"))
    with log_context(event_id="evt-9", task="chimera.conversation.start"):
        logger.info("started")
    logger.info("plain")
    assert stream.getvalue().splitlines() == [
        "started [event_id=evt-9 task=chimera.conversation.start]",
        "plain",
    ]


def test_context_is_per_thread_and_none_is_left_out() -> None:
    seen: dict[str, dict[str, object]] = {}

    def other() -> None:
        seen["other"] = current_context()

    with log_context(event_id="evt-main", run_id=None):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        seen["main"] = current_context()
    assert seen == {"other": {}, "main": {"event_id": "evt-main"}}
    token = bind(a=1)
    assert current_context() == {"a": 1}
    from chimera.logs import unbind

    unbind(token)
    assert current_context() == {}
