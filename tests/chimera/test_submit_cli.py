"""`chimera submit conversation|analysis`: what lands on Kafka, and what is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chimera.settings import to_env
from tests.bridges.conftest import read_topic
from tests.chimera.test_cli import chimera


@pytest.fixture
def env(kafka_topics: Any) -> dict[str, str]:
    return to_env(kafka_topics)


def test_submit_conversation_publishes_a_valid_event(kafka_topics: Any, env: Any) -> None:
    result = chimera(
        "submit", "conversation", "--topic", "Should cities ban cars?", "--max-turns", "6",
        "--participant", "anthropic:claude-sonnet-5-5:Ana", "--participant", "google:gemini-3.5-flash",
        "--event-id", "evt-cli-1", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "published evt-cli-1" in result.stdout
    (record,) = read_topic(kafka_topics, kafka_topics.topic_conversation_new, at_least=1)
    event = json.loads(record.value)
    assert event["event_id"] == "evt-cli-1" and event["max_turns"] == 6
    assert [p["model"] for p in event["participants"]] == ["claude-sonnet-5-5", "gemini-3.5-flash"]


def test_submit_analysis_publishes_segments_keyed_by_context(
    kafka_topics: Any, env: Any, tmp_path: Any
) -> None:
    paragraphs = tmp_path / "talk.txt"
    paragraphs.write_text("Ben: A ban would hurt shops.\n\nAna: Shops adapt.\n", encoding="utf-8")
    result = chimera(
        "submit", "analysis", "--context-id", "doc-7", "--segment", "Ana: Cars are loud.",
        "--segments-file", str(paragraphs), "--prompt", "summary=summary.v1",
        "--event-id", "evt-cli-2", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "published evt-cli-2" in result.stdout and "run-" in result.stdout
    (record,) = read_topic(kafka_topics, kafka_topics.topic_analysis_tasks, at_least=1)
    assert record.key == b"doc-7"
    event = json.loads(record.value)
    assert event["segments"] == [
        {"speaker": "Ana", "text": "Cars are loud."},
        {"speaker": "Ben", "text": "A ban would hurt shops."},
        {"speaker": "Ana", "text": "Shops adapt."},
    ]
    assert event["prompt_ids"] == {"summary": "summary.v1"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--segment", "no speaker here"], "is not 'SPEAKER: TEXT'"),
        (["--prompt", "summary"], "is not ANALYSIS=PROMPT_ID"),
        (["--prompt", "summary=summary.v7"], "no prompt 'summary.v7' for summary"),
        (["--prompt", "poetry=poetry.v1"], "prompt_ids"),
        (["--language", "english!"], "language"),
    ],
)
def test_submit_analysis_refuses_bad_input_and_publishes_nothing(
    kafka_topics: Any, env: Any, args: list[str], message: str
) -> None:
    result = chimera("submit", "analysis", "--context-id", "doc-8", *args, env=env)
    assert result.returncode == 2, result.stdout
    assert message in result.stderr
    assert read_topic(kafka_topics, kafka_topics.topic_analysis_tasks, timeout_s=1) == []
