"""`chimera dlq list|replay` as an operator runs them: output, exit codes, effects."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from chimera.events.inbox import Inbox
from chimera.settings import Settings, to_env
from tests.bridges.conftest import read_topic
from tests.chimera.test_cli import chimera
from tests.chimera.test_dlq_replay import letter, put, record_event
from tests.helpers import free_port


@pytest.fixture
def s(kafka_topics: Settings, db: Any) -> Settings:
    group = f"dlq-cli-{secrets.token_hex(3)}"
    return kafka_topics.model_copy(update={"kafka_consumer_group_id": group})


@pytest.fixture
def env(s: Settings) -> dict[str, str]:
    return to_env(s)


def test_list_shows_each_record_with_its_headers_and_a_total(
    s: Settings, env: dict[str, str]
) -> None:
    put(s, [letter(s, "evt-1", replay_count=1), letter(s, "evt-2", reason="schema_invalid")])

    result = chimera("dlq", "list", "--topic", "conversation.dlq", env=env)  # the role name

    assert result.returncode == 0, result.stderr
    header, *rows, total = result.stdout.splitlines()
    assert header.split() == [
        "EVENT", "ID", "REASON", "ERROR", "CLASS", "ATTEMPTS", "AGE", "REPLAYS", "FROM", "AT",
    ]  # fmt: skip
    by_id = {row.split()[0]: row.split() for row in rows}
    assert by_id["evt-1"][1:4] == ["llm_permanent", "SafetyBlocked", "2"]
    assert by_id["evt-1"][5] == "1"  # replays
    assert by_id["evt-1"][6] == f"{s.topic_conversation_new}[1]@41"
    assert by_id["evt-2"][1] == "schema_invalid"
    assert total == f"2 dead letters in {s.topic_conversation_dlq}"


def test_list_as_json_and_limited(s: Settings, env: dict[str, str]) -> None:
    put(s, [letter(s, f"evt-{n}") for n in range(3)])

    result = chimera("dlq", "list", "--topic", s.topic_conversation_dlq, "--limit", "2", "--json", env=env)  # fmt: skip

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["topic"], document["total"], len(document["records"])) == (
        s.topic_conversation_dlq,
        3,
        2,
    )
    record = document["records"][0]
    assert record["reason"] == "llm_permanent" and record["attempts"] == 2
    assert ["h", "v"] in record["headers"]
    assert json.loads(record["value"])["event_id"] == record["event_id"]
    table = chimera("dlq", "list", "--topic", "conversation.dlq", "--limit", "1", env=env)
    assert table.stdout.splitlines()[-1] == f"1 of 3 dead letters in {s.topic_conversation_dlq}"


def test_replay_prints_each_record_and_a_summary(s: Settings, db: Any, env: dict[str, str]) -> None:
    inbox = Inbox(db)
    record_event(inbox, "evt-1", "dead_lettered")
    record_event(inbox, "evt-done", "done")
    put(s, [letter(s, "evt-1"), letter(s, "evt-done")])

    dry = chimera("dlq", "replay", "--topic", "conversation.dlq", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert any(line.split()[:3] == ["would", "replay", "evt-1"] for line in dry.stdout.splitlines())
    assert "nothing was published, reset or committed" in dry.stdout
    assert read_topic(s, s.topic_conversation_new, timeout_s=1) == []
    assert getattr(inbox.get("evt-1"), "status", None) == "dead_lettered"

    result = chimera("dlq", "replay", "--topic", "conversation.dlq", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    (done,) = [line for line in lines if "evt-done" in line]
    assert done.startswith("skipped") and done.endswith("the event is done")
    (replayed,) = [line for line in lines if "evt-1" in line]
    assert replayed.startswith("replayed")
    assert f"-> {s.topic_conversation_new} (replay 1 of 3); inbox reset" in replayed
    assert lines[-1] == f"{s.topic_conversation_dlq}: replayed 1, skipped 1"
    (record,) = read_topic(s, s.topic_conversation_new, at_least=1)
    assert dict(record.headers)["x-replay-count"] == b"1"

    again = chimera("dlq", "replay", "--topic", "conversation.dlq", env=env)
    assert again.stdout.splitlines() == [f"{s.topic_conversation_dlq}: replayed 0, skipped 0"]


def test_replay_filters_by_event_id_and_reason(s: Settings, db: Any, env: dict[str, str]) -> None:
    inbox = Inbox(db)
    for event_id in ("evt-a", "evt-b"):
        record_event(inbox, event_id, "dead_lettered")
    put(s, [letter(s, "evt-a"), letter(s, "evt-b", reason="retries_exhausted")])

    by_reason = chimera("dlq", "replay", "--topic", "conversation.dlq", "--reason", "retries_exhausted", env=env)  # fmt: skip
    assert by_reason.returncode == 0, by_reason.stderr
    assert "evt-b" in by_reason.stdout and "evt-a" not in by_reason.stdout
    by_id = chimera("dlq", "replay", "--topic", "conversation.dlq", "--event-id", "evt-a", env=env)
    assert by_id.stdout.split()[:2] == ["replayed", "evt-a"] and "evt-b" not in by_id.stdout
    replayed = read_topic(s, s.topic_conversation_new, at_least=2)
    assert sorted(json.loads(r.value)["event_id"] for r in replayed) == ["evt-a", "evt-b"]


def test_a_record_past_the_replay_limit_is_refused(
    s: Settings, db: Any, env: dict[str, str]
) -> None:
    record_event(Inbox(db), "evt-1", "dead_lettered")
    put(s, [letter(s, "evt-1", replay_count=1)])
    result = chimera("dlq", "replay", "--topic", "conversation.dlq", env=env | {"CHIMERA_DLQ_MAX_REPLAYS": "1"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "replayed 1 time already; the limit is 1" in result.stdout
    assert read_topic(s, s.topic_conversation_new, timeout_s=1) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--topic", "conversation.new"], "is not a dead-letter topic"),
        (["--topic", "nope"], "choose one of conversation.dlq"),
        (["--topic", "conversation.dlq", "--limit", "0"], "Invalid value for '--limit'"),
        (["--topic", "conversation.dlq", "--limit", "many"], "Invalid value for '--limit'"),
        ([], "Missing option '--topic'"),
    ],
)
@pytest.mark.parametrize("command", ["list", "replay"])
def test_bad_arguments_are_usage_errors(command: str, args: list[str], message: str) -> None:
    result = chimera("dlq", command, *args)
    assert result.returncode == 2, result.stdout
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_configured_topic_missing_from_the_cluster_is_a_clear_error(kafka_broker: Any) -> None:
    env = {"CHIMERA_TOPIC_CONVERSATION_DLQ": f"conversation.dlq.missing{secrets.token_hex(3)}"}
    result = chimera("dlq", "list", "--topic", "conversation.dlq", env=env)
    assert result.returncode == 1
    assert "does not exist" in result.stderr and "create-topics" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["list", "replay"])
def test_unreachable_kafka_is_one_clear_error(command: str) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}
    result = chimera("dlq", command, "--topic", "conversation.dlq", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("error: Kafka at 127.0.0.1:")
    assert "is unreachable" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_postgres_is_one_clear_error(s: Settings, env: dict[str, str]) -> None:
    put(s, [letter(s, "evt-1")])
    dead = f"postgresql://postgres:secret-pw@127.0.0.1:{free_port()}/chimera"
    result = chimera(
        "dlq", "replay", "--topic", "conversation.dlq", env=env | {"DATABASE_URL": dead}
    )
    assert result.returncode == 1
    assert result.stderr.startswith(
        "error: cannot reach Postgres at postgresql+psycopg2://postgres:***@"
    )
    assert "secret-pw" not in result.stderr
    assert "Traceback" not in result.stderr
    assert read_topic(s, s.topic_conversation_new, timeout_s=1) == []
