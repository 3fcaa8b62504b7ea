"""JSONL formats: OpenAI messages and ShareGPT out, either (or anyone's) back in."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chimera.conversation.formats import (
    ExportedConversation,
    assistant_speaker,
    openai_name,
    to_jsonl,
    to_openai,
    to_sharegpt,
)
from chimera.conversation.parsing import LineError, ParsedConversation, read_jsonl
from chimera.models import Participant, TopicSpec
from tests.chimera.conversation import transcripts as tx


def record(texts: list[str] = tx.CARS, speakers: Any = tx.CLAUDE_GEMINI) -> ExportedConversation:
    return ExportedConversation(
        id="conv-1",
        topic=TopicSpec(id="t-7", title="Should cities ban cars?", description="City centres."),
        participants=tuple(
            Participant(provider=p, model=m, persona="You are an urban planner." if i else None)
            for i, (p, m) in enumerate(speakers)
        ),
        turns=tuple(tx.transcript(texts, speakers)),
        quality_score=0.91,
        quality_breakdown={"length": 1.0, "completion": 1.0},
        quality_version="quality.v1",
        ended_reason="natural_close",
        min_turns=5,
        max_turns=10,
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        metadata={"batch": "b-1"},
    )


def only(lines: list[str | bytes]) -> ParsedConversation:
    (item,) = list(read_jsonl(lines))
    assert isinstance(item, ParsedConversation), item
    return item


def test_openai_two_party_alternates_from_a_user_turn() -> None:
    out = to_openai(record())
    messages = out["messages"]
    assert messages[0] == {
        "role": "system",
        "content": "Topic: Should cities ban cars?\n\nCity centres.\n\nYou are an urban planner.",
    }
    roles = [m["role"] for m in messages[1:]]
    assert roles == ["user", "assistant"] * 3 + ["user"]
    assert messages[1]["name"] == "claude-sonnet-5-5"
    assert messages[2]["name"] == "gemini-3_5-flash"  # "." is not allowed in a name
    assert [m["content"] for m in messages[1:]] == tx.CARS


def test_the_metadata_keeps_what_the_messages_cannot() -> None:
    meta = to_openai(record())["metadata"]
    assert meta["schema"] == "chimera.conversation.v1"
    assert meta["id"] == "conv-1"
    assert meta["topic"] == {
        "id": "t-7",
        "title": "Should cities ban cars?",
        "description": "City centres.",
    }
    assert meta["assistant_speaker"] == "gemini-3.5-flash"
    assert meta["ended_reason"] == "natural_close"
    assert meta["quality_score"] == 0.91
    assert meta["quality_breakdown"] == {"length": 1.0, "completion": 1.0}
    assert meta["created_at"] == "2026-01-02T03:04:05+00:00"
    assert meta["conversation_metadata"] == {"batch": "b-1"}
    assert meta["turns"][1] == {
        "speaker": "gemini-3.5-flash",
        "provider": "google",
        "model": "gemini-3.5-flash",
        "input_tokens": 80,
        "output_tokens": len(tx.CARS[1]) // 4,
        "latency_ms": 1800.0,
    }
    assert meta["participants"][1]["persona"] == "You are an urban planner."


def test_with_three_participants_the_assistant_is_the_first_who_answers() -> None:
    rec = record(tx.CARS, (tx.CLAUDE, tx.GEMINI, tx.GPT))
    roles = [m["role"] for m in to_openai(rec)["messages"][1:]]
    assert roles == ["user", "assistant", "user"] * 2 + ["user"]
    assert assistant_speaker(rec.turns) == "gemini-3.5-flash"


def test_a_single_speaker_is_all_assistant() -> None:
    rec = record(tx.CARS[:3], (tx.CLAUDE,))
    assert {m["role"] for m in to_openai(rec)["messages"][1:]} == {"assistant"}


def test_sharegpt_uses_human_and_gpt() -> None:
    out = to_sharegpt(record())
    assert out["conversations"][0]["from"] == "system"
    assert [m["from"] for m in out["conversations"][1:4]] == ["human", "gpt", "human"]
    assert out["conversations"][1]["value"] == tx.CARS[0]
    assert out["metadata"]["id"] == "conv-1"


@pytest.mark.parametrize("fmt", ["openai", "sharegpt"])
def test_an_exported_line_reads_back_as_the_same_transcript(fmt: Any) -> None:
    rec = record()
    line = to_jsonl(rec, fmt)
    assert "\n" not in line
    parsed = only([line])
    assert parsed.format == fmt
    assert parsed.turns == rec.turns
    assert parsed.system is not None and parsed.system.startswith("Topic: ")
    assert parsed.id == "conv-1"
    assert parsed.ended_reason == "natural_close"
    assert (parsed.turn_limit("min_turns"), parsed.turn_limit("max_turns")) == (5, 10)


def test_line_separators_are_escaped_but_survive() -> None:
    text = "First line\u2028second line\u2029and more."
    rec = record([text, "Reply."])
    line = to_jsonl(rec, "openai")
    assert "\u2028" not in line and "\u2029" not in line
    assert only([line]).turns[0].content == text


def test_foreign_openai_data_without_metadata() -> None:
    line = json.dumps(
        {
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": "Hi there", "name": "claude-3-opus"},
                {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]},
                {"role": "tool", "content": "ignored", "tool_call_id": "x"},
                {"role": "assistant", "content": None, "tool_calls": [{"id": "x"}]},
                {"role": "user", "content": "Bye", "weight": 0},
            ],
            "id": "ext-9",
            "source": "somewhere else",
        }
    )
    parsed = only([line])
    assert parsed.system == "Be brief."
    assert [(t.speaker, t.provider, t.model, t.content) for t in parsed.turns] == [
        ("claude-3-opus", "anthropic", "claude-3-opus", "Hi there"),
        ("assistant", "openai", "assistant", "Hello!"),
        ("user", "openai", "user", "Bye"),
    ]
    assert [t.turn_index for t in parsed.turns] == [0, 1, 2]
    assert parsed.id == "ext-9"
    assert parsed.ended_reason is None


def test_foreign_sharegpt_data_with_user_and_assistant() -> None:
    line = json.dumps(
        {
            "conversations": [
                {"from": "system", "value": "Be nice."},
                {"from": "user", "value": "Question?"},
                {"from": "assistant", "value": "Answer.", "name": "gemini-pro"},
                {"from": "observation", "value": "tool output"},
                {"from": "human", "value": "Thanks."},
            ],
            "metadata": {"turns": "not a list", "min_turns": True},
        }
    )
    parsed = only([line])
    assert parsed.format == "sharegpt"
    assert [(t.speaker, t.provider) for t in parsed.turns] == [
        ("user", "openai"),
        ("gemini-pro", "google"),
        ("human", "openai"),
    ]
    assert parsed.turn_limit("min_turns") is None  # a bool is not a turn count


def test_turn_metadata_that_does_not_fit_falls_back_to_the_messages() -> None:
    obj = to_openai(record(tx.CARS[:2]))
    obj["metadata"]["turns"][0]["provider"] = "mistral"
    obj["metadata"]["turns"][1] = "junk"
    parsed = only([json.dumps(obj)])
    assert parsed.turns[0].provider == "anthropic"  # guessed from the name instead
    assert parsed.turns[0].speaker == "claude-sonnet-5-5"
    assert parsed.turns[1].speaker == "gemini-3_5-flash"  # the OpenAI name, sanitised
    obj["metadata"]["turns"] = obj["metadata"]["turns"][:1]  # misaligned: ignored
    assert only([json.dumps(obj)]).turns[1].provider == "google"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "invalid JSON: Expecting value (column 1)"),
        ('{"messages": [}', "invalid JSON"),
        ("[1, 2]", "expected a JSON object, got array"),
        ('"text"', "expected a JSON object, got string"),
        ('{"text": "hello"}', "no 'messages' (openai) or 'conversations' (sharegpt) key"),
        ('{"messages": "hi"}', "'messages' must be a list, got string"),
        ('{"messages": [3]}', "messages[0] must be an object, got number"),
        ('{"messages": [{"content": "x"}]}', "messages[0] has no 'role'"),
        ('{"messages": [{"role": "narrator", "content": "x"}]}', "messages[0] has an unknown role 'narrator'"),
        ('{"messages": [{"role": "user"}]}', "messages[0] has no 'content'"),
        ('{"messages": [{"role": "user", "content": 5}]}', "messages[0].content must be a string, got number"),
        ('{"messages": [{"role": "system", "content": "x"}]}', "no user or assistant turns"),
        ('{"messages": []}', "no user or assistant turns"),
        ('{"conversations": {"from": "human"}}', "'conversations' must be a list, got object"),
        ('{"conversations": [{"from": "human"}]}', "conversations[0] has no 'value'"),
        ('{"conversations": [{"from": "human", "value": [1]}]}', "conversations[0].value must be a string, got array"),
        ('{"conversations": [{"value": "x"}]}', "conversations[0] has no 'from'"),
        ('{"conversations": [{"from": "robot", "value": "x"}]}', "unknown 'from' 'robot'"),
        ('{"conversations": [{"from": "human", "value": "x"}], "metadata": []}', "'metadata' must be an object, got array"),
    ],
)  # fmt: skip
def test_a_malformed_line_says_what_is_wrong(line: str, message: str) -> None:
    (item,) = list(read_jsonl(["", line]))
    assert isinstance(item, LineError)
    assert item.line_no == 2
    assert message in item.message
    assert str(item).startswith("line 2: ")


def test_a_file_is_read_to_the_end_whatever_its_lines() -> None:
    good_line = to_jsonl(record(), "sharegpt")
    lines: list[str | bytes] = [
        "\ufeff" + to_jsonl(record(), "openai") + "\n",
        "\n",
        "{broken\n",
        b"\xff\xfe not utf-8\n",
        "   \n",
        good_line.encode() + b"\n",
    ]
    items = list(read_jsonl(lines))
    assert [(type(i).__name__, i.line_no) for i in items] == [
        ("ParsedConversation", 1),
        ("LineError", 3),
        ("LineError", 4),
        ("ParsedConversation", 6),
    ]
    assert isinstance(items[2], LineError) and "not UTF-8" in items[2].message


def test_openai_names_are_valid() -> None:
    assert openai_name("gemini-3.5-flash") == "gemini-3_5-flash"
    assert openai_name("Dr. Ada Lovelace") == "Dr__Ada_Lovelace"
    assert openai_name("") == "_"
    assert len(openai_name("x" * 100)) == 64
