"""Anthropic Messages through the real anthropic SDK (and plain HTTP for what the SDK won't send)."""

from __future__ import annotations

from typing import Literal

import anthropic
import pytest
from pydantic import BaseModel, Field

from llmsim import Simulator
from tests.llmsim.clients import http

TRANSCRIPT = (
    "Analyse the debate below and fill in the report.\n"
    "```\n"
    "Alice: Remote work has boosted productivity for many knowledge workers. Commuting costs dropped.\n"
    "Bob: But managers worry about mentoring junior staff, and office culture is eroding.\n"
    "Alice: Hybrid schedules could be a fair compromise if teams agree on core days.\n"
    "```"
)
HEADERS = {"anthropic-version": "2026-10-21", "x-api-key": "sim"}


class Claim(BaseModel):
    claim: str
    quote: str = Field(min_length=5, max_length=200)
    speaker: str


class Report(BaseModel):
    summary: str
    sentiment: Literal["positive", "negative", "neutral", "mixed"]
    claims: list[Claim] = Field(min_length=1)


def ask(
    client: anthropic.Anthropic, text: str = "Let's discuss remote work.", **kwargs: object
) -> anthropic.types.Message:
    params: dict[str, object] = {
        "model": "claude-sonnet-5-5",
        "max_tokens": 400,
        "messages": [{"role": "user", "content": text}],
    }
    return client.messages.create(**(params | kwargs))


def test_text_answer_with_usage_and_stop_reason(
    sim: Simulator, claude: anthropic.Anthropic
) -> None:
    message = ask(claude, system="You are a labour economist.")
    assert message.type == "message" and message.role == "assistant"
    assert message.model == "claude-sonnet-5-5"
    assert message.stop_reason == "end_turn"
    text = message.content[0].text
    assert "remote work" in text.lower()
    assert message.usage.output_tokens == -(-len(text) // 4)
    assert message.usage.input_tokens == -(-len("Let's discuss remote work.") // 4) + -(
        -len("You are a labour economist.") // 4
    )
    assert (
        message.usage.cache_read_input_tokens == 0
        and message.usage.cache_creation_input_tokens == 0
    )
    [call] = sim.calls().calls
    assert (call.provider, call.model, call.status, call.stream) == (
        "anthropic",
        "claude-sonnet-5-5",
        200,
        False,
    )
    assert call.output_tokens == message.usage.output_tokens


def test_max_tokens_truncates(claude: anthropic.Anthropic) -> None:
    message = ask(claude, max_tokens=5)
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens <= 5
    assert len(message.content[0].text) <= 20


def test_stop_sequences_are_honoured(claude: anthropic.Anthropic) -> None:
    full = ask(claude).content[0].text
    word = full.split()[3]
    message = ask(claude, stop_sequences=[word])
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == word
    assert message.content[0].text == full[: full.index(word)]


def test_stream_events_in_order_and_final_message(
    sim: Simulator, claude: anthropic.Anthropic
) -> None:
    expected = ask(claude).content[0].text
    with claude.messages.stream(
        model="claude-sonnet-5-5",
        max_tokens=400,
        messages=[{"role": "user", "content": "Let's discuss remote work."}],
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 3 and "".join(pieces) == expected
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == -(-len(expected) // 4)
    events = list(ask(claude, stream=True))
    types = [e.type for e in events]
    assert types[:2] == ["message_start", "content_block_start"]
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert {e.delta.type for e in events if e.type == "content_block_delta"} == {"text_delta"}
    assert sim.calls().calls[-1].stream is True


def test_forced_tool_use_validates_against_the_tool_schema(claude: anthropic.Anthropic) -> None:
    tool = {
        "name": "report",
        "description": "File the report",
        "input_schema": Report.model_json_schema(),
    }
    message = ask(
        claude,
        TRANSCRIPT,
        max_tokens=2000,
        tools=[tool],
        tool_choice={"type": "tool", "name": "report"},
    )
    assert message.stop_reason == "tool_use"
    [block] = message.content
    assert block.type == "tool_use" and block.name == "report"
    report = Report.model_validate(block.input)
    for claim in report.claims:
        assert claim.quote in TRANSCRIPT
        assert claim.speaker in {"Alice", "Bob"}


def test_streamed_tool_use_rebuilds_the_same_input(claude: anthropic.Anthropic) -> None:
    tool = {"name": "report", "input_schema": Report.model_json_schema()}
    params: dict[str, object] = {"tools": [tool], "tool_choice": {"type": "tool", "name": "report"}}
    plain = ask(claude, TRANSCRIPT, max_tokens=2000, **params)
    with claude.messages.stream(
        model="claude-sonnet-5-5",
        max_tokens=2000,
        messages=[{"role": "user", "content": TRANSCRIPT}],
        **params,
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[0].input == plain.content[0].input


def test_messages_parse_with_output_format(claude: anthropic.Anthropic) -> None:
    parsed = claude.messages.parse(
        model="claude-sonnet-5-5",
        max_tokens=2000,
        messages=[{"role": "user", "content": TRANSCRIPT}],
        output_format=Report,
    )
    report = parsed.parsed_output
    assert isinstance(report, Report)
    assert all(c.quote in TRANSCRIPT for c in report.claims)


def test_sampling_parameters_are_rejected(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError, match="temperature"):
        ask(claude, extra_body={"temperature": 0.7})
    with pytest.raises(anthropic.BadRequestError, match="top_k"):
        ask(claude, extra_body={"top_k": 5})


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        ([{"role": "assistant", "content": "hi"}], "first message"),
        ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "alternate"),
        ([{"role": "system", "content": "a"}], "role"),
        ([], "at least one"),
    ],
)
def test_roles_are_validated(
    claude: anthropic.Anthropic, messages: list[dict[str, str]], fragment: str
) -> None:
    with pytest.raises(anthropic.BadRequestError, match=fragment) as info:
        claude.messages.create(model="claude-x", max_tokens=10, messages=messages)
    assert info.value.body["error"]["type"] == "invalid_request_error"


def test_wire_level_validation_and_auth(sim: Simulator) -> None:
    body = {
        "model": "claude-x",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi there"}],
    }
    status, headers, payload = http(
        sim, "POST", "/v1/messages", body, {"anthropic-version": "2026-10-21"}
    )
    assert status == 401 and payload["error"]["type"] == "authentication_error"
    assert payload["type"] == "error" and payload["request_id"] == headers["request-id"]
    status, _, payload = http(sim, "POST", "/v1/messages", body, HEADERS)  # x-api-key works too
    assert status == 200 and payload["content"][0]["type"] == "text"
    status, _, payload = http(sim, "POST", "/v1/messages", body, {"x-api-key": "sim"})
    assert status == 400 and "anthropic-version" in payload["error"]["message"]
    status, _, payload = http(sim, "POST", "/v1/messages", {**body, "max_tokens": None}, HEADERS)
    assert status == 400 and "max_tokens" in payload["error"]["message"]
    status, _, payload = http(sim, "POST", "/v1/messages", raw=b"{not json", headers=HEADERS)
    assert status == 400 and payload["error"]["type"] == "invalid_request_error"
    # Older API versions still take sampling parameters.
    old = {"anthropic-version": "2023-06-01", "x-api-key": "sim"}
    assert http(sim, "POST", "/v1/messages", {**body, "temperature": 0.5}, old)[0] == 200
    assert [c.status for c in sim.calls().calls] == [401, 200, 400, 400, 400, 200]


def test_count_tokens(claude: anthropic.Anthropic) -> None:
    counted = claude.messages.count_tokens(
        model="claude-x", system="Be brief.", messages=[{"role": "user", "content": "x" * 40}]
    )
    assert counted.input_tokens == 10 + 3
