"""Schema-driven generation: every supported schema gets a valid value, drawn from the input."""

from __future__ import annotations

import random
from typing import Any, Literal

from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from llmsim.roles import Role, role_of
from llmsim.schema import normalize, validate
from llmsim.source import SourceText
from llmsim.structured import generate, schema_from_prompt

TRANSCRIPT = (
    "Alice: Remote work has boosted productivity for many knowledge workers. "
    "Commuting costs dropped sharply, which families love.\n"
    "Bob: But managers worry about mentoring junior staff, and office culture is eroding. "
    "Vacancy rates downtown keep climbing, a real risk for city budgets.\n"
    "Alice: Hybrid schedules could be a fair compromise if teams agree on core days.\n"
)
HAPPY = "The launch was a great success. Customers love the new design and sales grew strongly."
GLOOMY = "The project failed badly. Costs exploded, deadlines slipped and the team is worried."
SOURCES = [TRANSCRIPT, HAPPY, GLOOMY, "", "One short line"]

NAMES = [
    "summary", "quote", "speaker", "score", "sentiment", "key_points", "title", "label",
    "confidence", "id", "text", "reason", "count", "keywords", "implications", "foo", "barBaz",
]  # fmt: skip


class Argument(BaseModel):
    claim: str
    evidence_quote: str = Field(min_length=5, max_length=300)
    speaker: str
    strength: int = Field(ge=1, le=5)


class Analysis(BaseModel):
    summary: str
    key_points: list[str] = Field(min_length=1, max_length=4)
    sentiment: Literal["positive", "negative", "neutral", "mixed"]
    score: float = Field(ge=-1, le=1)
    confidence: float | None = None
    arguments: list[Argument]
    title: str
    tags: list[str] = Field(default_factory=list)


# --- random schemas --------------------------------------------------------------------------


def _bounded(low: int, high: int) -> st.SearchStrategy[tuple[int, int]]:
    return st.tuples(st.integers(low, high), st.integers(low, high)).map(sorted).map(tuple)


leaf = st.one_of(
    st.builds(
        lambda b, fmt: {"type": "string", "minLength": b[0], "maxLength": b[1], **fmt},
        _bounded(0, 60),
        st.sampled_from([{}, {}, {"format": "date"}, {"format": "uuid"}, {"format": "email"}]),
    ),
    st.just({"type": "string"}),
    st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=4, unique=True).map(
        lambda values: {"type": "string", "enum": values}
    ),
    st.builds(lambda b: {"type": "integer", "minimum": b[0], "maximum": b[1]}, _bounded(-50, 50)),
    st.builds(lambda b: {"type": "number", "minimum": b[0], "maximum": b[1]}, _bounded(-5, 5)),
    st.builds(
        lambda low: {"type": "integer", "exclusiveMinimum": low, "exclusiveMaximum": low + 3},
        st.integers(-9, 9),
    ),
    st.just({"type": "number", "multipleOf": 0.25}),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.just({"const": "fixed"}),
    st.just({"type": ["string", "null"]}),
    st.just({}),
)


def _object(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    def build(props: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
        required = data.draw(st.lists(st.sampled_from(sorted(props)), unique=True)) if props else []
        return {"type": "object", "properties": props, "required": required}

    return st.builds(
        build, st.dictionaries(st.sampled_from(NAMES), children, max_size=5), st.data()
    )


def _array(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda items, b, unique: (
            {"type": "array", "items": items, "minItems": b[0], "maxItems": b[1]}
            | ({"uniqueItems": True, "items": {"type": "string"}} if unique else {})
        ),
        children,
        _bounded(0, 5),
        st.booleans(),
    )


schemas = st.recursive(
    leaf,
    lambda children: st.one_of(
        _object(children),
        _array(children),
        children.map(lambda s: {"anyOf": [s, {"type": "null"}]}),
        children.map(lambda s: {"allOf": [s]}),
        st.tuples(children, children).map(
            lambda pair: {"type": "array", "prefixItems": list(pair), "minItems": 2, "maxItems": 2}
        ),
        children.map(lambda s: {"type": "object", "additionalProperties": s, "minProperties": 1}),
    ),
    max_leaves=12,
)


def _hoisted(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema moved into ``$defs`` and used through ``$ref`` twice, as pydantic does."""
    return {
        "$defs": {"Thing": schema},
        "type": "object",
        "properties": {
            "first": {"$ref": "#/$defs/Thing"},
            "more": {"type": "array", "items": {"$ref": "#/$defs/Thing"}},
        },
        "required": ["first"],
    }


schemas = st.one_of(schemas, schemas.map(_hoisted))


@given(schemas, st.sampled_from(SOURCES), st.integers(0, 2**32))
def test_any_supported_schema_gets_a_valid_value(
    schema: dict[str, Any], text: str, seed: int
) -> None:
    value = generate(schema, SourceText(text), random.Random(seed))
    assert validate(value, schema) == [], value


@given(st.sampled_from(SOURCES), st.integers(0, 2**32))
def test_pydantic_models_validate_and_quotes_come_from_the_input(text: str, seed: int) -> None:
    value = generate(normalize(Analysis.model_json_schema()), SourceText(text), random.Random(seed))
    analysis = Analysis.model_validate(value)
    for argument in analysis.arguments:
        if text.strip():
            assert argument.evidence_quote in text or len(text) < 5


def test_content_follows_property_names() -> None:
    source = SourceText(TRANSCRIPT)
    value = Analysis.model_validate(
        generate(normalize(Analysis.model_json_schema()), source, random.Random(1))
    )
    sentences = [s.text for s in source.ordered]
    assert all(s in sentences for s in value.key_points)
    # Extractive: the summary is source sentences, in their original order.
    assert value.summary == " ".join(s for s in sentences if s in value.summary)
    assert value.summary.startswith(sentences[0])
    for argument in value.arguments:
        assert argument.evidence_quote in TRANSCRIPT
        line = next(line for line in TRANSCRIPT.splitlines() if argument.evidence_quote in line)
        assert line.startswith(argument.speaker + ":")  # the speaker of the quoted line
    assert "Remote Work" in value.title


def test_sentiment_and_score_follow_the_lexicon() -> None:
    schema = normalize(Analysis.model_json_schema())
    happy = Analysis.model_validate(generate(schema, SourceText(HAPPY), random.Random(0)))
    gloomy = Analysis.model_validate(generate(schema, SourceText(GLOOMY), random.Random(0)))
    assert happy.sentiment == "positive" and happy.score > 0.2
    assert gloomy.sentiment == "negative" and gloomy.score < -0.2
    custom = {"type": "string", "enum": ["Favorable", "Unfavorable", "Neutral"]}
    scored = {
        "type": "object",
        "properties": {
            "sentiment": custom,
            "rating": {"type": "integer", "minimum": 1, "maximum": 5},
        },
    }
    out = generate(scored, SourceText(HAPPY), random.Random(0))
    assert out["sentiment"] == "Favorable" and out["rating"] >= 4


def test_gemini_property_ordering_is_kept() -> None:
    schema = normalize(
        {
            "type": "OBJECT",
            "properties": {"b": {"type": "STRING"}, "a": {"type": "STRING"}},
            "required": ["a", "b"],
            "property_ordering": ["a", "b"],
        }
    )
    assert list(generate(schema, SourceText(HAPPY), random.Random(0))) == ["a", "b"]


def test_generation_is_deterministic_for_a_seed() -> None:
    schema = normalize(Analysis.model_json_schema())
    runs = [generate(schema, SourceText(TRANSCRIPT), random.Random(42)) for _ in range(2)]
    assert runs[0] == runs[1]


def test_json_mode_uses_the_keys_the_prompt_names() -> None:
    schema = schema_from_prompt(
        'Reply as JSON like {"headline": "...", "risks": ["..."], "score": 0.5}'
    )
    assert schema["properties"] == {
        "headline": {"type": "string"},
        "risks": {"type": "array", "items": {"type": "string"}},
        "score": {"type": "number"},
    }
    assert set(schema_from_prompt("Reply in JSON.")["properties"]) == {
        "summary",
        "key_points",
        "sentiment",
    }


def test_roles_from_names() -> None:
    assert role_of("sentiment_score") is Role.SCORE
    assert role_of("confidenceScore") is Role.CONFIDENCE
    assert role_of("evidence_quote") is Role.QUOTE
    assert role_of("summary_text") is Role.SUMMARY
    assert role_of("text") is Role.QUOTE
    assert role_of("speaker_name") is Role.SPEAKER
    assert role_of("whatever") is Role.GENERIC
