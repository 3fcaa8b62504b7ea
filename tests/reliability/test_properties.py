"""Properties of the event models and the bridge's decoding (hypothesis).

1. Any valid ``ConversationRequest`` / ``AnalysisTask`` survives encode -> decode
   unchanged, and re-encodes to the same bytes and the same payload hash.
2. Any bytes, and any JSON value, given to the decoder either decode to a valid
   model or raise exactly one of the codec's input errors, whose ``dlq_reason`` is
   one docs/contract.md names: never another exception.
3. ``payload_hash`` ignores key order and sees every change of value.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from chimera import defaults as d
from chimera.codec import decode_event, encode, limits_from, payload_hash
from chimera.errors import (
    EventTooLarge,
    InputError,
    InvalidJSON,
    SchemaInvalid,
    TombstoneEvent,
    UndecodableEvent,
    UnsupportedSchemaVersion,
)
from chimera.llm.catalog import catalog_for
from chimera.models import (
    ANALYSIS_KINDS,
    PROVIDERS,
    AnalysisTask,
    ConversationRequest,
)
from chimera.settings import Settings, load_settings

SETTINGS = load_settings()
#: The same with the smallest size limit, so `too_large` is reached too.
SMALL = load_settings(max_event_bytes=1_024)
LIMITS = limits_from(SETTINGS)

#: What the decoder may raise, and the reason each dead-letters with.
CODEC_ERRORS: dict[type[InputError], str] = {
    TombstoneEvent: "tombstone",
    UndecodableEvent: "undecodable",
    InvalidJSON: "invalid_json",
    SchemaInvalid: "schema_invalid",
    UnsupportedSchemaVersion: "unsupported_version",
    EventTooLarge: "too_large",
}
#: The x-dlq-reason values (docs/contract.md) for input that cannot be read.
DESIGN_REASONS = {
    "tombstone",
    "undecodable",
    "invalid_json",
    "schema_invalid",
    "unsupported_version",
    "too_large",
}
FEW = settings(max_examples=60)

# --- strategies built from the models -----------------------------------------------------------

#: Text a store can hold: any Unicode scalar value but NUL (no surrogates).
text_char = st.characters(codec="utf-8", exclude_characters="\x00")
#: An id: 1-128 characters, none of them ASCII control or space (``EventId``, ``Identifier``).
id_char = st.characters(codec="utf-8", exclude_characters="\x7f", min_codepoint=0x21)
ids = st.text(id_char, min_size=1, max_size=40) | st.text(id_char, min_size=120, max_size=128)


def texts(min_size: int = 0, max_size: int = 60) -> st.SearchStrategy[str]:
    return st.text(text_char, min_size=min_size, max_size=max_size)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(texts(max_size=10), children, max_size=4)
    ),
    max_leaves=15,
)

#: A participant names a model the session configures (any other is refused).
participants = st.sampled_from(PROVIDERS).flatmap(
    lambda provider: st.fixed_dictionaries(
        {
            "provider": st.just(provider),
            "model": st.sampled_from(sorted(catalog_for(SETTINGS).models[provider])),
        },
        optional={
            "persona": texts(max_size=200),
            "name": texts(min_size=1, max_size=100),
        },
    )
)


@st.composite
def conversation_requests(draw: st.DrawFn) -> ConversationRequest:
    max_turns = draw(st.integers(1, LIMITS.max_turns))
    topic: Any = draw(
        texts(1, 500).filter(str.strip)
        | st.fixed_dictionaries(
            {"title": texts(1, 500).filter(str.strip)},
            optional={"id": ids, "description": texts(max_size=300)},
        )
    )
    body: dict[str, Any] = {"event_id": draw(ids), "topic": topic}
    optional = {
        "max_turns": st.just(max_turns),
        "min_turns": st.integers(1, max_turns),
        # Explicit names are the speakers' labels: two participants never share one.
        "participants": st.lists(
            participants,
            min_size=2,
            max_size=LIMITS.max_participants,
            unique_by=lambda p: ("name", p["name"]) if "name" in p else ("unnamed", id(p)),
        ),
        "metadata": st.dictionaries(texts(max_size=10), json_values, max_size=4),
        "schema_version": st.just(1),
        "event_type": st.just("conversation.requested"),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            body[name] = draw(strategy)
    if "min_turns" in body and "max_turns" not in body:
        body["max_turns"] = max_turns
    return ConversationRequest.model_validate(body, context={"limits": LIMITS})


languages = st.from_regex(r"\A[A-Za-z]{2,3}(-[A-Za-z0-9]{2,6})?\Z")


@st.composite
def analysis_tasks(draw: st.DrawFn) -> AnalysisTask:
    body: dict[str, Any] = {"event_id": draw(ids), "context_id": draw(ids)}
    if draw(st.booleans()):
        segment = st.fixed_dictionaries({"speaker": texts(1, 200), "text": texts(1, 400)})
        body["segments"] = draw(st.lists(segment, min_size=1, max_size=6))
    if draw(st.booleans()):
        body["language"] = draw(languages)
    if draw(st.booleans()):
        prompt_id = st.text(
            st.characters(codec="utf-8").filter(str.isprintable), min_size=1, max_size=64
        )
        body["prompt_ids"] = draw(st.dictionaries(st.sampled_from(ANALYSIS_KINDS), prompt_id))
    return AnalysisTask.model_validate(body)


# --- 1. round trip ----------------------------------------------------------------------------------


@FEW
@given(conversation_requests())
def test_any_valid_conversation_request_round_trips(request: ConversationRequest) -> None:
    raw = encode(request)
    decoded, digest = decode_event(raw, "conversation", SETTINGS)
    assert decoded == request
    assert encode(decoded) == raw
    assert digest == payload_hash(json.loads(raw))


@FEW
@given(analysis_tasks())
def test_any_valid_analysis_task_round_trips(task: AnalysisTask) -> None:
    raw = encode(task)
    decoded, digest = decode_event(raw, "analysis", SETTINGS)
    assert decoded == task
    assert encode(decoded) == raw
    assert digest == payload_hash(json.loads(raw))


# --- 2. anything else: a model, or exactly one named input error ---------------------------------------


def decode_or_error(raw: bytes | None, kind: Any, cfg: Settings = SETTINGS) -> Any:
    """The decoded model, or the codec's input error; anything else fails the test."""
    try:
        event, digest = decode_event(raw, kind, cfg)
    except InputError as exc:
        assert type(exc) in CODEC_ERRORS, type(exc)
        assert exc.dlq_reason == CODEC_ERRORS[type(exc)] and exc.dlq_reason in DESIGN_REASONS
        assert not exc.retryable
        assert exc.message
        if isinstance(exc, SchemaInvalid):
            assert exc.errors and all(e["field"] and e["message"] for e in exc.errors)
        return exc
    # A decoded event is whole: it encodes and decodes again to itself.
    assert decode_event(encode(event), kind, cfg)[0] == event
    assert len(digest) == 64
    return event


kinds = st.sampled_from(["conversation", "analysis"])


@FEW
@given(st.binary(max_size=300) | st.none(), kinds)
@example(None, "analysis")
@example(b"\xef\xbb\xbf{}", "conversation")
@example(b'{"event_id": "e", "topic": "t", "schema_version": 2.0}', "conversation")
@example(b'{"event_id": "e", "topic": "t", "max_turns": true}', "conversation")
@example(b'{"event_id": "e", "context_id": "c", "language": "en-abcdefgh-abc"}', "analysis")
def test_arbitrary_bytes_decode_or_raise_one_named_error(raw: bytes | None, kind: Any) -> None:
    decode_or_error(raw, kind)


#: JSON values a producer might send, unpaired surrogates and NUL included.
wild_text = st.text(st.characters() | st.characters(categories=["Cs"]), max_size=20)
wild_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | wild_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(wild_text, children, max_size=4)
    ),
    max_leaves=20,
)
KEYS = [
    "event_id",
    "schema_version",
    "event_type",
    "topic",
    "min_turns",
    "max_turns",
    "participants",
    "metadata",
    "context_id",
    "language",
    "segments",
    "prompt_ids",
]


def dumps(value: Any, ascii_only: bool) -> bytes:
    """JSON bytes as various producers write them (NaN allowed; surrogates raw or escaped)."""
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@FEW
@given(wild_values, st.booleans(), kinds)
def test_any_json_value_decodes_or_raises_one_named_error(
    value: Any, ascii_only: bool, kind: Any
) -> None:
    decode_or_error(dumps(value, ascii_only), kind)


@FEW
@given(
    st.dictionaries(st.sampled_from(KEYS), wild_values, max_size=6),
    st.booleans(),
    kinds,
    st.sampled_from([SETTINGS, SMALL]),
)
def test_any_object_with_the_models_keys_is_an_event_or_a_named_error(
    obj: dict[str, Any], ascii_only: bool, kind: Any, cfg: Settings
) -> None:
    result = decode_or_error(dumps(obj, ascii_only), kind, cfg)
    if isinstance(result, ConversationRequest):
        assert 1 <= result.min_turns <= result.max_turns <= cfg.max_conversation_turns
        assert 2 <= len(result.participants) <= cfg.max_participants


@FEW
@given(conversation_requests() | analysis_tasks(), st.data())
def test_a_damaged_valid_event_decodes_or_raises_one_named_error(
    event: ConversationRequest | AnalysisTask, data: st.DataObject
) -> None:
    raw = bytearray(encode(event))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw)))
        action = data.draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
        if action == "flip" and at < len(raw):
            raw[at] ^= 1 << data.draw(st.integers(0, 7))
        elif action == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=3))
        elif action == "delete":
            del raw[at : at + 1]
        else:
            del raw[at:]
    kind = "conversation" if isinstance(event, ConversationRequest) else "analysis"
    decode_or_error(bytes(raw), kind)


@settings(max_examples=25)
@given(st.integers(1, 3_000), st.sampled_from([b"[", b'{"a": ']))
def test_nesting_is_accepted_to_its_limit_and_refused_past_it(depth: int, opener: bytes) -> None:
    closer = b"]" if opener == b"[" else b"}"
    raw = b'{"event_id": "e", "topic": "t", "metadata": {"k": ' + opener * depth
    raw += (b"1" if opener != b"[" else b"") + closer * depth + b"}}"
    result = decode_or_error(raw, "conversation", SETTINGS)
    # The event object and metadata are two levels; the limit counts every container.
    if depth + 2 <= d.MAX_JSON_DEPTH:
        assert isinstance(result, ConversationRequest)
    else:
        assert isinstance(result, InvalidJSON) and "nested too deeply" in result.message


# --- 3. the payload hash ---------------------------------------------------------------------------


def reordered(value: Any, data: st.DataObject) -> Any:
    """``value`` with the keys of every object in another order."""
    if isinstance(value, dict):
        keys = data.draw(st.permutations(list(value)))
        return {k: reordered(value[k], data) for k in keys}
    if isinstance(value, list):
        return [reordered(v, data) for v in value]
    return value


objects = st.dictionaries(texts(max_size=8), json_values, min_size=1, max_size=6)


@FEW
@given(objects, st.data())
def test_payload_hash_ignores_key_order(obj: dict[str, Any], data: st.DataObject) -> None:
    again = reordered(obj, data)
    assert payload_hash(again) == payload_hash(obj)
    # ... as it reaches the bridge: the same bytes whatever the producer's key order.
    assert payload_hash(json.loads(json.dumps(again))) == payload_hash(obj)


@FEW
@given(objects, st.data())
def test_payload_hash_sees_every_change_of_value(obj: dict[str, Any], data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(sorted(obj)))
    new = data.draw(json_values)
    # Another value as JSON (so 1 and 1.0, or 0.0 and -0.0, count as changes too).
    assume(json.dumps(new, sort_keys=True) != json.dumps(obj[key], sort_keys=True))
    assert payload_hash(obj | {key: new}) != payload_hash(obj)
    # A new key, even one that looks like an existing one, is a change as well.
    look_alike = key + "\u0301"
    assume(look_alike not in obj)
    assert payload_hash(obj | {look_alike: obj[key]}) != payload_hash(obj)
