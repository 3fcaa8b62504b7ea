"""OpenAI-compatible chat completions through the real openai SDK."""

from __future__ import annotations

import json

import openai
import pytest
from pydantic import BaseModel

from llmsim import Simulator
from tests.llmsim.clients import http

TEXT = "Review: The hotel was lovely and the staff were helpful, but breakfast was poor."


class Review(BaseModel):
    summary: str
    sentiment: str
    evidence: list[str]
    score: float


def chat(client: openai.OpenAI, **kwargs: object) -> openai.types.chat.ChatCompletion:
    params: dict[str, object] = {
        "model": "llama-3.3-70b",
        "messages": [
            {"role": "system", "content": "You are a travel writer discussing hotels."},
            {"role": "user", "content": "What makes a good hotel stay?"},
        ],
    }
    return client.chat.completions.create(**(params | kwargs))


def test_text_answer_with_usage(sim: Simulator, gpt: openai.OpenAI) -> None:
    completion = chat(gpt)
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert choice.message.content and "hotel" in choice.message.content.lower()
    assert completion.usage is not None
    assert completion.usage.completion_tokens == -(-len(choice.message.content) // 4)
    assert (
        completion.usage.total_tokens
        == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert sim.calls().count(provider="openai", status=200) == 1


def test_length_and_stop(gpt: openai.OpenAI) -> None:
    assert chat(gpt, max_tokens=4).choices[0].finish_reason == "length"
    assert chat(gpt, max_completion_tokens=4).choices[0].finish_reason == "length"
    full = chat(gpt).choices[0].message.content or ""
    word = full.split()[2]
    stopped = chat(gpt, stop=[word]).choices[0]
    assert stopped.finish_reason == "stop" and stopped.message.content == full[: full.index(word)]


def test_json_schema_response_format_with_parse(gpt: openai.OpenAI) -> None:
    completion = gpt.chat.completions.parse(
        model="llama-3.3-70b", messages=[{"role": "user", "content": TEXT}], response_format=Review
    )
    review = completion.choices[0].message.parsed
    assert isinstance(review, Review)
    assert all(e in TEXT for e in review.evidence)
    assert -1 <= review.score <= 1


def test_json_object_mode(gpt: openai.OpenAI) -> None:
    content = (
        chat(
            gpt,
            messages=[
                {
                    "role": "user",
                    "content": 'Return JSON {"headline": "...", "risks": ["..."]} for: ' + TEXT,
                }
            ],
            response_format={"type": "json_object"},
        )
        .choices[0]
        .message.content
    )
    value = json.loads(content or "")
    assert set(value) == {"headline", "risks"} and isinstance(value["risks"], list)


def test_stream_with_usage(sim: Simulator, gpt: openai.OpenAI) -> None:
    whole = chat(gpt).choices[0].message.content
    chunks = list(chat(gpt, stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == -(-len(whole or "") // 4)
    assert sim.calls().calls[-1].stream is True


def test_validation_and_auth(sim: Simulator, gpt: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="messages"):
        chat(gpt, messages=[])
    with pytest.raises(openai.BadRequestError, match="role"):
        chat(gpt, messages=[{"role": "robot", "content": "x"}])
    status, _, payload = http(
        sim,
        "POST",
        "/v1/chat/completions",
        {"model": "m", "messages": [{"role": "user", "content": "x"}]},
    )
    assert status == 401 and payload["error"]["code"] == "invalid_api_key"
