"""Gemini generateContent through the real google-genai SDK."""

from __future__ import annotations

from typing import Literal

import pytest
from google import genai
from google.genai import errors, types
from pydantic import BaseModel, Field

from llmsim import Simulator
from tests.llmsim.clients import http

MODEL = "gemini-3.5-flash"
ARTICLE = (
    "Summarise the article.\n<article>The new metro line opened on time and under budget. "
    "Commuters love the faster trips, and local shops report strong gains. "
    "Critics still worry about noise near the depot.</article>"
)


class Point(BaseModel):
    text: str
    importance: int = Field(ge=1, le=3)


class Digest(BaseModel):
    summary: str
    sentiment: Literal["positive", "negative", "neutral"]
    points: list[Point] = Field(min_length=1, max_length=3)
    confidence: float | None = Field(default=None, ge=0, le=1)


def test_text_answer_with_usage_and_finish_reason(sim: Simulator, gemini: genai.Client) -> None:
    response = gemini.models.generate_content(
        model=MODEL,
        contents="Let's talk about the future of public transport.",
        config=types.GenerateContentConfig(system_instruction="You are an urban planner."),
    )
    assert response.text and "public transport" in response.text
    assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage is not None and usage.candidates_token_count == -(-len(response.text) // 4)
    assert usage.total_token_count == (usage.prompt_token_count or 0) + usage.candidates_token_count
    [call] = sim.calls().calls
    assert (call.provider, call.model, call.endpoint) == (
        "google",
        MODEL,
        "/v1beta/models/{model}:generateContent",
    )


def test_multi_turn_contents_and_max_output_tokens(gemini: genai.Client) -> None:
    contents = [
        types.Content(role="user", parts=[types.Part(text="Is rail better than roads?")]),
        types.Content(role="model", parts=[types.Part(text="Often, for dense corridors.")]),
        types.Content(role="user", parts=[types.Part(text="What about rural areas and buses?")]),
    ]
    response = gemini.models.generate_content(
        model=MODEL, contents=contents, config=types.GenerateContentConfig(max_output_tokens=6)
    )
    assert (
        response.candidates
        and response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    )
    assert response.usage_metadata and (response.usage_metadata.candidates_token_count or 0) <= 6


def test_response_schema_from_a_pydantic_model(gemini: genai.Client) -> None:
    response = gemini.models.generate_content(
        model=MODEL,
        contents=ARTICLE,
        config=types.GenerateContentConfig(
            response_mime_type="application/json", response_schema=Digest
        ),
    )
    digest = response.parsed
    assert isinstance(digest, Digest)
    assert digest.sentiment == "positive"
    assert all(p.text in ARTICLE for p in digest.points)


def test_response_json_schema(gemini: genai.Client) -> None:
    response = gemini.models.generate_content(
        model=MODEL,
        contents=ARTICLE,
        config=types.GenerateContentConfig(
            response_mime_type="application/json", response_json_schema=Digest.model_json_schema()
        ),
    )
    assert response.text is not None
    Digest.model_validate_json(response.text)


def test_schema_without_json_mime_type_is_rejected(gemini: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as info:
        gemini.models.generate_content(
            model=MODEL, contents="hi", config=types.GenerateContentConfig(response_schema=Digest)
        )
    assert info.value.code == 400 and info.value.status == "INVALID_ARGUMENT"


def test_stream(sim: Simulator, gemini: genai.Client) -> None:
    whole = gemini.models.generate_content(model=MODEL, contents="Tell me about trams.").text
    chunks = list(
        gemini.models.generate_content_stream(model=MODEL, contents="Tell me about trams.")
    )
    assert len(chunks) > 3
    assert "".join(c.text or "" for c in chunks) == whole
    last = chunks[-1]
    assert last.candidates and last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata and last.usage_metadata.candidates_token_count
    assert sim.calls().calls[-1].stream is True


def test_key_in_query_and_missing_key(sim: Simulator) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}
    status, _, payload = http(sim, "POST", f"/v1/models/{MODEL}:generateContent?key=sim", body)
    assert status == 200 and payload["candidates"][0]["content"]["role"] == "model"
    status, _, payload = http(sim, "POST", f"/v1beta/models/{MODEL}:generateContent", body)
    assert status == 403 and payload["error"]["status"] == "PERMISSION_DENIED"
    status, _, payload = http(
        sim, "POST", f"/v1beta/models/{MODEL}:generateContent?key=k", {"contents": []}
    )
    assert status == 400 and payload["error"]["status"] == "INVALID_ARGUMENT"
    bad_role = {"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}
    assert http(sim, "POST", f"/v1beta/models/{MODEL}:generateContent?key=k", bad_role)[0] == 400


def test_count_tokens(gemini: genai.Client) -> None:
    assert gemini.models.count_tokens(model=MODEL, contents="x" * 40).total_tokens == 10


def test_stream_without_sse_is_one_json_array(sim: Simulator) -> None:
    body = {"contents": [{"parts": [{"text": "Tell me about trams."}]}]}
    status, headers, chunks = http(
        sim, "POST", f"/v1beta/models/{MODEL}:streamGenerateContent?key=k", body
    )
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert isinstance(chunks, list) and len(chunks) > 3
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert "finishReason" not in chunks[0]["candidates"][0]
