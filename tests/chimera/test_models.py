"""Event models and the codec: good, missing, wrong-type, oversized, unknown version."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chimera.codec import decode_event, encode, payload_hash
from chimera.errors import (
    EventTooLarge,
    InputError,
    InvalidJSON,
    SchemaInvalid,
    TombstoneEvent,
    UndecodableEvent,
    UnsupportedSchemaVersion,
)
from chimera.events.ids import output_event_id
from chimera.models import (
    ConversationCompleted,
    Participant,
    TopicSpec,
    TranscriptTurn,
    TurnCompleted,
    output_event_adapter,
)
from chimera.models.participants import OTHER, ModelCatalog
from chimera.settings import Settings, load_settings

FULL_REQUEST = {
    "event_id": "evt-42",
    "topic": {"id": "t-7", "title": "Should cities ban cars?", "description": "optional"},
    "min_turns": 5,
    "max_turns": 10,
    "participants": [
        {"provider": "anthropic", "model": "claude-sonnet-5-5", "persona": "optional"},
        {"provider": "google", "model": "gemini-3.5-flash"},
    ],
    "metadata": {"any": "json"},
}
FULL_TASK = {
    "event_id": "evt-43",
    "context_id": "conv-or-doc-id",
    "language": "en",
    "segments": [{"speaker": "A", "text": "Cars pollute."}, {"speaker": "B", "text": "Buses too."}],
    "prompt_ids": {"summary": "summary.v1"},
}


@pytest.fixture(scope="module")
def cfg() -> Settings:
    return load_settings(
        max_event_bytes=4_096,
        min_conversation_turns=3,
        max_conversation_turns=8,
        max_participants=3,
    )


def raw(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def errors_of(exc: SchemaInvalid) -> dict[str, str]:
    return {e["field"]: e["message"] for e in exc.errors}


# --- conversation.new --------------------------------------------------------------------------


def test_the_design_example_is_valid(cfg: Settings) -> None:
    event, digest = decode_event(raw(FULL_REQUEST | {"max_turns": 8}), "conversation", cfg)
    assert event.event_id == "evt-42"
    assert event.topic == TopicSpec(
        id="t-7", title="Should cities ban cars?", description="optional"
    )
    assert [p.provider for p in event.participants] == ["anthropic", "google"]
    assert event.participants[0].speaker == "claude-sonnet-5-5"
    assert event.metadata == {"any": "json"}
    assert len(digest) == 64


def test_defaults_come_from_settings(cfg: Settings) -> None:
    event, _ = decode_event(b'{"event_id": "e1", "topic": "Cars?"}', "conversation", cfg)
    assert event.topic.title == "Cars?"
    assert (event.min_turns, event.max_turns) == (3, 8)
    assert event.participants == tuple(cfg.default_participants)
    assert event.schema_version == 1


def test_min_turns_default_never_exceeds_a_smaller_max(cfg: Settings) -> None:
    event, _ = decode_event(
        raw({"event_id": "e", "topic": "t", "max_turns": 2}), "conversation", cfg
    )
    assert (event.min_turns, event.max_turns) == (2, 2)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"event_id": None}, "event_id", "Input should be a valid string"),
        ({"event_id": ""}, "event_id", "at least 1 character"),
        ({"event_id": "x" * 129}, "event_id", "at most 128 characters"),
        ({"event_id": "has space"}, "event_id", "should match pattern"),
        ({"topic": ""}, "topic.title", "at least 1 character"),
        ({"topic": "   "}, "topic.title", "must not be blank"),
        ({"topic": 42}, "topic", "valid dictionary"),
        ({"topic": {"title": "t", "colour": "red"}}, "topic.colour", "Extra inputs"),
        ({"max_turns": 9}, "max_turns", "must be between 1 and 8, got 9"),
        ({"max_turns": "many"}, "max_turns", "valid integer"),
        ({"min_turns": 0}, "min_turns", "must be at least 1"),
        ({"min_turns": 7, "max_turns": 6}, "min_turns", "must not exceed max_turns (6)"),
        ({"participants": [{"provider": "openai", "model": "m"}]}, "participants", "2 to 3"),
        ({"participants": [{"provider": "openai", "model": "m"}] * 4}, "participants", "2 to 3"),
        (
            {"participants": [{"provider": "mistral", "model": "m"}] * 2},
            "participants.0.provider",
            "'anthropic'",
        ),
        ({"participants": [{"provider": "openai"}] * 2}, "participants.0.model", "Field required"),
        ({"metadata": []}, "metadata", "valid dictionary"),
        ({"surprise": 1}, "surprise", "Extra inputs are not permitted"),
        ({"schema_version": "one"}, "schema_version", "valid integer"),
        ({"event_type": "turn.completed"}, "event_type", "'conversation.requested'"),
    ],
)
def test_invalid_requests_name_the_field(
    cfg: Settings, change: dict[str, Any], field: str, message: str
) -> None:
    body = {k: v for k, v in (FULL_REQUEST | {"max_turns": 8} | change).items() if v is not None}
    if change.get("event_id", "") is None:
        body.pop("event_id", None)
        field, message = "event_id", "Field required"
    with pytest.raises(SchemaInvalid) as info:
        decode_event(raw(body), "conversation", cfg)
    found = errors_of(info.value)
    assert field in found, found
    assert message in found[field]
    assert field in str(info.value)


def test_missing_topic_is_named(cfg: Settings) -> None:
    with pytest.raises(SchemaInvalid) as info:
        decode_event(b'{"event_id": "e"}', "conversation", cfg)
    assert errors_of(info.value) == {"topic": "Field required"}
    assert info.value.ids == {"event_id": "e"}


# --- configured models ---------------------------------------------------------------------------


def configured(models: dict[str, list[str]], **update: Any) -> Settings:
    """Settings whose CHIMERA_LLM_MODELS is ``models`` and no analysis model but the
    default's (set as is, not merged with the session's environment)."""
    update = {"llm_models": models, "analysis_models": {}} | update
    return load_settings().model_copy(update=update)


def with_participants(*participants: tuple[str, str]) -> bytes:
    listed = [{"provider": p, "model": m} for p, m in participants]
    return raw({"event_id": "e", "topic": "t", "participants": listed})


def test_a_model_that_is_not_configured_is_refused_by_name() -> None:
    settings = configured({"openai": ["llama-3.3-70b", "qwen-3"]})
    body = with_participants(("anthropic", "claude-sonnet-5-5"), ("openai", "gpt-\x1b[31m"))
    with pytest.raises(SchemaInvalid) as info:
        decode_event(body, "conversation", settings)
    assert errors_of(info.value) == {
        "participants.1.model": (
            'model "gpt-\\u001b[31m" is not configured for openai (allowed: llama-3.3-70b, qwen-3)'
        )
    }
    assert info.value.dlq_reason == "schema_invalid"


def test_a_provider_left_out_allows_its_priced_models_and_the_settings_own() -> None:
    settings = configured(
        {"openai": ["llama-3.3-70b"]},
        analysis_models={"summary": Participant(provider="google", model="gemini-tuned-1")},
    )
    for model in ("gemini-3.5-flash", "gemini-3.1-flash-lite", "gemini-tuned-1"):
        decode_event(
            with_participants(("google", model), ("openai", "llama-3.3-70b")),
            "conversation",
            settings,
        )
    with pytest.raises(SchemaInvalid, match="gemini-unpriced"):
        decode_event(
            with_participants(("google", "gemini-unpriced"), ("openai", "llama-3.3-70b")),
            "conversation",
            settings,
        )


def test_a_listed_provider_allows_its_list_and_the_settings_own_only() -> None:
    settings = configured({"anthropic": ["claude-haiku-5-5"]})
    # Sonnet is a default participant and the analysis model: the operator named it.
    event, _ = decode_event(
        with_participants(("anthropic", "claude-haiku-5-5"), ("anthropic", "claude-sonnet-5-5")),
        "conversation",
        settings,
    )
    assert [p.model for p in event.participants] == ["claude-haiku-5-5", "claude-sonnet-5-5"]
    with pytest.raises(SchemaInvalid) as info:  # priced, but not on the list
        decode_event(
            with_participants(("anthropic", "claude-opus-5-5"), ("google", "gemini-3.5-flash")),
            "conversation",
            settings,
        )
    assert "participants.0.model" in errors_of(info.value)


def test_a_provider_with_no_model_says_where_to_configure_one() -> None:
    settings = configured({})  # no OpenAI model is priced or named
    with pytest.raises(SchemaInvalid) as info:
        decode_event(
            with_participants(("openai", "llama-3.3-70b"), ("google", "gemini-3.5-flash")),
            "conversation",
            settings,
        )
    assert errors_of(info.value) == {
        "participants.0.model": (
            'model "llama-3.3-70b" is not configured for openai '
            "(allowed: none; see CHIMERA_LLM_MODELS)"
        )
    }


def test_participants_of_one_model_get_distinct_speakers() -> None:
    settings = configured({"openai": ["m", "g"]})
    listed = [
        {"provider": "openai", "model": "m"},
        {"provider": "openai", "model": "m", "name": "m (2)"},  # taken by name: kept
        {"provider": "openai", "model": "m"},
    ]
    event, _ = decode_event(
        raw({"event_id": "e", "topic": "t", "participants": listed}), "conversation", settings
    )
    assert [p.speaker for p in event.participants] == ["m", "m (2)", "m (3)"]
    assert [p.name for p in event.participants] == [None, "m (2)", "m (3)"]
    # A name equal to another participant's model takes precedence over that default.
    listed = [
        {"provider": "openai", "model": "m"},
        {"provider": "openai", "model": "g", "name": "m"},
    ]
    event, _ = decode_event(
        raw({"event_id": "e", "topic": "t", "participants": listed}), "conversation", settings
    )
    assert [p.speaker for p in event.participants] == ["m (2)", "m"]
    # A label stays within the name's bounds: the stored state validates again.
    long = "x" * 200
    twins = [{"provider": "openai", "model": long}] * 2
    event, _ = decode_event(
        raw({"event_id": "e", "topic": "t", "participants": twins}),
        "conversation",
        configured({"openai": [long]}),
    )
    assert event.participants[1].speaker == "x" * 96 + " (2)"
    Participant.model_validate(event.participants[1].model_dump())


def test_a_name_used_twice_is_refused_naming_the_second() -> None:
    settings = configured({"openai": ["m", "g"]})
    listed = [
        {"provider": "openai", "model": "m", "name": "Ada"},
        {"provider": "openai", "model": "g", "name": "Ada"},
    ]
    with pytest.raises(SchemaInvalid) as info:
        decode_event(
            raw({"event_id": "e", "topic": "t", "participants": listed}), "conversation", settings
        )
    assert errors_of(info.value) == {
        "participants.1.name": 'name "Ada" is already participant 0\'s; speakers must differ'
    }


def test_sampling_parameters_are_bounded_and_named() -> None:
    settings = configured({"openai": ["m"], "google": ["g"]}, turn_max_output_tokens=300)
    good = [
        {"provider": "openai", "model": "m", "temperature": 0, "top_p": 1, "max_tokens": 300},
        {"provider": "google", "model": "g", "temperature": 2, "top_p": 0.1, "max_tokens": 1},
    ]
    event, _ = decode_event(
        raw({"event_id": "e", "topic": "t", "participants": good}), "conversation", settings
    )
    assert [(p.temperature, p.top_p, p.max_tokens) for p in event.participants] == [
        (0, 1, 300),
        (2, 0.1, 1),
    ]
    bad = [
        {"provider": "openai", "model": "m", "temperature": 2.5, "top_p": 0, "max_tokens": 301},
        {"provider": "anthropic", "model": "claude-sonnet-5-5", "temperature": 1, "max_tokens": 0},
    ]
    with pytest.raises(SchemaInvalid) as info:
        decode_event(
            raw({"event_id": "e", "topic": "t", "participants": bad}), "conversation", settings
        )
    errors = errors_of(info.value)
    assert set(errors) == {
        "participants.0.temperature",
        "participants.0.top_p",
        "participants.0.max_tokens",
        "participants.1.temperature",
        "participants.1.max_tokens",
    }
    assert "CHIMERA_TURN_MAX_OUTPUT_TOKENS" in errors["participants.0.max_tokens"]
    assert "anthropic takes no temperature" in errors["participants.1.temperature"]


def test_metric_labels_name_configured_models_only() -> None:
    catalog = ModelCatalog({"openai": frozenset({"llama-3.3-70b"})})
    assert catalog.labels("openai", "llama-3.3-70b") == ("openai", "llama-3.3-70b")
    assert catalog.labels("openai", "gpt-x") == ("openai", OTHER)
    assert catalog.labels("google", "llama-3.3-70b") == ("google", OTHER)
    assert catalog.labels("mistral", "llama-3.3-70b") == (OTHER, OTHER)


# --- the poison classes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "error", "reason"),
    [
        (None, TombstoneEvent, "tombstone"),
        (b"\xff\xfe{}", UndecodableEvent, "undecodable"),
        (b"{not json", InvalidJSON, "invalid_json"),
        (b"", InvalidJSON, "invalid_json"),
        (b"[1, 2]", InvalidJSON, "invalid_json"),
        (b'"just a string"', InvalidJSON, "invalid_json"),
        (b'{"event_id": "e", "topic": "t", "max_turns": NaN}', InvalidJSON, "invalid_json"),
        (
            b'{"event_id": "e", "topic": "t", "schema_version": 2}',
            UnsupportedSchemaVersion,
            "unsupported_version",
        ),
        (
            b'{"event_id": "e", "topic": "t", "schema_version": 0}',
            UnsupportedSchemaVersion,
            "unsupported_version",
        ),
        (b'{"event_id": "e", "topic": "' + b"x" * 5_000 + b'"}', EventTooLarge, "too_large"),
    ],
)
def test_poison_messages_raise_the_precise_error(
    cfg: Settings, payload: bytes | None, error: type[InputError], reason: str
) -> None:
    with pytest.raises(error) as info:
        decode_event(payload, "conversation", cfg)
    assert info.value.dlq_reason == reason
    assert not info.value.retryable


def test_unknown_version_keeps_the_event_id(cfg: Settings) -> None:
    with pytest.raises(UnsupportedSchemaVersion) as info:
        decode_event(
            b'{"event_id": "evt-9", "topic": "t", "schema_version": 3}', "conversation", cfg
        )
    assert info.value.ids == {"event_id": "evt-9"}
    assert "schema_version 3 is not supported" in str(info.value)


def test_size_limit_counts_bytes_not_characters(cfg: Settings) -> None:
    def utf8(title: str) -> bytes:
        return json.dumps({"event_id": "e", "topic": title}, ensure_ascii=False).encode()

    title = "é" * 250  # 250 characters, 500 bytes
    decode_event(utf8(title), "conversation", cfg)
    with pytest.raises(EventTooLarge, match="bytes; the limit is 4096"):
        decode_event(utf8(title * 9), "conversation", cfg)  # 2,250 characters, 4,500 bytes


# --- analysis.tasks ------------------------------------------------------------------------------------


def test_the_design_analysis_example_is_valid(cfg: Settings) -> None:
    task, _ = decode_event(raw(FULL_TASK), "analysis", cfg)
    assert task.context_id == "conv-or-doc-id"
    assert [s.speaker for s in task.segments or ()] == ["A", "B"]
    assert task.prompt_ids == {"summary": "summary.v1"}
    assert task.text_chars == len("Cars pollute.") + len("Buses too.")


def test_segments_may_be_absent(cfg: Settings) -> None:
    task, _ = decode_event(b'{"event_id": "e", "context_id": "conv-1"}', "analysis", cfg)
    assert task.segments is None
    assert task.language == "en"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"context_id": ""}, "context_id"),
        ({"segments": []}, "segments"),
        ({"segments": [{"speaker": "A"}]}, "segments.0.text"),
        ({"segments": [{"speaker": "", "text": "x"}]}, "segments.0.speaker"),
        ({"segments": "text"}, "segments"),
        ({"language": "english!"}, "language"),
        ({"prompt_ids": {"poetry": "p.v1"}}, "prompt_ids.poetry.[key]"),
        ({"prompt_ids": {"summary": ""}}, "prompt_ids"),
    ],
)
def test_invalid_analysis_tasks_name_the_field(
    cfg: Settings, change: dict[str, Any], field: str
) -> None:
    with pytest.raises(SchemaInvalid) as info:
        decode_event(raw(FULL_TASK | change), "analysis", cfg)
    assert field in errors_of(info.value)


# --- hashing and output events ---------------------------------------------------------------------------


def test_payload_hash_ignores_key_order_but_not_values() -> None:
    a = {"event_id": "e", "topic": {"title": "t", "id": "1"}}
    b = {"topic": {"id": "1", "title": "t"}, "event_id": "e"}
    assert payload_hash(a) == payload_hash(b)
    assert payload_hash(a) != payload_hash(a | {"topic": "other"})


def test_output_events_round_trip_through_the_adapter() -> None:
    turn = TurnCompleted(
        event_id=output_event_id("conv-1", "turn.completed", 3),
        conversation_id="conv-1",
        source_event_id="evt-42",
        turn_index=3,
        speaker="claude",
        provider="anthropic",
        model="claude-sonnet-5-5",
        text="Cities should...",
        input_tokens=120,
        output_tokens=80,
        latency_ms=812.5,
        traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01",
    )
    parsed = output_event_adapter.validate_json(encode(turn))
    assert parsed == turn
    assert turn.event_id == "conv-1:turn.completed:3"
    assert turn.topic_role == "conversation.response"
    assert turn.key == "conv-1"


def test_completed_conversation_goes_to_the_completed_topic() -> None:
    done = ConversationCompleted(
        event_id=output_event_id("c", "conversation.completed"),
        conversation_id="c",
        topic=TopicSpec(title="t"),
        turn_count=1,
        transcript=(
            TranscriptTurn(turn_index=0, speaker="a", provider="openai", model="m", content="hi"),
        ),
        quality_score=0.8,
    )
    assert done.topic_role == "conversation.completed"
    assert json.loads(encode(done))["event_type"] == "conversation.completed"


def test_participant_speaker_prefers_its_name() -> None:
    assert Participant(provider="openai", model="m", name="Ada").speaker == "Ada"


# --- properties ------------------------------------------------------------------------------------------


DEFAULTS = load_settings()


@given(st.binary(max_size=512))
def test_decoding_arbitrary_bytes_never_raises_anything_but_input_errors(data: bytes) -> None:
    with contextlib.suppress(InputError):
        decode_event(data, "conversation", DEFAULTS)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "event_id",
                "topic",
                "min_turns",
                "max_turns",
                "participants",
                "metadata",
                "schema_version",
            ]
        ),
        json_values,
    )
)
def test_any_json_object_is_either_a_valid_request_or_a_named_error(obj: dict[str, Any]) -> None:
    settings = DEFAULTS
    try:
        event, _ = decode_event(raw(obj), "conversation", settings)
    except SchemaInvalid as exc:
        assert exc.errors and all(e["field"] for e in exc.errors)
    except InputError:
        pass
    else:
        assert 1 <= event.min_turns <= event.max_turns <= settings.max_conversation_turns
        assert 2 <= len(event.participants) <= settings.max_participants
