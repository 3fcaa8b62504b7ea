"""Conversations as JSON lines: the OpenAI chat format and ShareGPT, out and back in.

One conversation per line, with its metadata::

    {"messages": [{"role": "system", "content": "Topic: ..."},
                  {"role": "user", "content": "...", "name": "claude-sonnet-5-5"},
                  {"role": "assistant", "content": "...", "name": "gemini-3_5-flash"}, ...],
     "metadata": {...}}
    {"conversations": [{"from": "system", "value": "..."}, {"from": "human", "value": "..."},
                       {"from": "gpt", "value": "..."}, ...],
     "metadata": {...}}

**Roles.**  A multi-party transcript is seen from one participant, the *assistant*: the
first speaker who answers the opening turn (``assistant_speaker``).  Its turns are
``assistant``/``gpt``; everyone else's are ``user``/``human``.  With two participants the
messages alternate user, assistant, user, ... from an opening user turn, the shape chat
fine-tuning expects, and every assistant turn is a real reply to what came before.  A
transcript with one speaker is all ``assistant``.  The system message states the topic and
the assistant's persona, i.e. what that model was told.  OpenAI ``name`` carries the speaker
(characters outside ``[A-Za-z0-9_-]`` become ``_``, as the API requires); ShareGPT has no
such field.  Exact speakers, providers, models, tokens and latency are kept per turn in
``metadata.turns``, so nothing is lost and ``score`` reads the same transcript back.

**Reading** (:func:`read_jsonl`) detects the format per line (``messages``: OpenAI,
``conversations``: ShareGPT) and tolerates data from elsewhere: extra keys, no metadata,
``"from": "user"/"assistant"``, OpenAI content as a list of text parts, ``developer``
messages (as system); tool messages are skipped.  Without ``metadata.turns`` a speaker is the
message's ``name``, else its role (``from``), and the provider is guessed from that label
(``claude`` -> anthropic, ``gemini``/``gemma`` -> google, anything else -> openai).  A
malformed line becomes a :class:`LineError` naming the line and the problem; the rest of
the file is still read.  That includes lines no one should have written: JSON nested
deeper than the parser goes, an unpaired surrogate escape (``"\\ud800"``: valid JSON, but
no text), a number of thousands of digits.  A problem quotes at most
``CHIMERA_MAX_QUOTED_CHARS`` of what the line holds (``chimera.untrusted``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chimera.models.conversation import TopicSpec
from chimera.models.participants import Participant, Provider
from chimera.models.transcript import TranscriptTurn
from chimera.untrusted import clip

Format = Literal["openai", "sharegpt"]
FORMATS: Final[tuple[Format, ...]] = ("openai", "sharegpt")
#: Stamped into every exported line's metadata; bump it when the layout changes.
SCHEMA: Final = "chimera.conversation.v1"

_NAME_RE = re.compile(r"[^A-Za-z0-9_-]")
#: A surrogate code point, or the JSON escape of one: a line without either (almost
#: every line) is not walked to look for an unpaired one.
_SURROGATE_HINT = re.compile(r"[\ud800-\udfff]|\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
#: A ``min_turns``/``max_turns`` above this is no conversation's (and would overflow the
#: floating point of the length score): read as absent.
MAX_TURN_LIMIT: Final = 1_000_000
_OPENAI_ROLES: Final = {"user": "user", "assistant": "assistant"}
_OPENAI_SYSTEM: Final = frozenset({"system", "developer"})
_OPENAI_SKIP: Final = frozenset({"tool", "function"})
_SHAREGPT_ROLES: Final = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
}
_SHAREGPT_SYSTEM: Final = frozenset({"system"})
_SHAREGPT_SKIP: Final = frozenset({"function_call", "observation", "tool", "function"})
_TURN_META_FIELDS: Final = (
    "speaker",
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "latency_ms",
)


class ExportedConversation(BaseModel):
    """A completed conversation with what a training set needs to know about it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    topic: TopicSpec
    participants: tuple[Participant, ...] = ()
    turns: tuple[TranscriptTurn, ...]
    quality_score: float | None = None
    quality_breakdown: dict[str, float] = Field(default_factory=dict)
    quality_version: str | None = None
    ended_reason: str | None = None
    min_turns: int | None = None
    max_turns: int | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


# --- writing ------------------------------------------------------------------------------------


def assistant_speaker(turns: Iterable[TranscriptTurn]) -> str | None:
    """The speaker whose turns are ``assistant``: the first who answers the opener."""
    opener: str | None = None
    for turn in turns:
        if opener is None:
            opener = turn.speaker
        elif turn.speaker != opener:
            return turn.speaker
    return opener


def _system_prompt(record: ExportedConversation, assistant: str | None) -> str:
    parts = [f"Topic: {record.topic.title}"]
    if record.topic.description:
        parts.append(record.topic.description)
    persona = next(
        (p.persona for p in record.participants if p.speaker == assistant and p.persona), None
    )
    if persona:
        parts.append(persona)
    return "\n\n".join(parts)


def _metadata(record: ExportedConversation, assistant: str | None) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "schema": SCHEMA,
        "id": record.id,
        "topic": record.topic.model_dump(mode="json", exclude_none=True),
        "participants": [p.model_dump(mode="json", exclude_none=True) for p in record.participants],
        "assistant_speaker": assistant,
        "turn_count": len(record.turns),
        "min_turns": record.min_turns,
        "max_turns": record.max_turns,
        "ended_reason": record.ended_reason,
        "quality_score": record.quality_score,
        "quality_breakdown": record.quality_breakdown,
        "quality_version": record.quality_version,
        "created_at": iso(record.created_at),
        "completed_at": iso(record.completed_at),
        "turns": [t.model_dump(mode="json", include=set(_TURN_META_FIELDS)) for t in record.turns],
        "conversation_metadata": record.metadata,
    }


def openai_name(speaker: str) -> str:
    """``speaker`` as a valid OpenAI message ``name`` (``[A-Za-z0-9_-]{1,64}``)."""
    return _NAME_RE.sub("_", speaker)[:64] or "_"


def to_openai(record: ExportedConversation) -> dict[str, Any]:
    """The OpenAI chat fine-tuning form of ``record`` (see the module docstring for roles)."""
    assistant = assistant_speaker(record.turns)
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": _system_prompt(record, assistant)}
    ]
    for turn in record.turns:
        role = "assistant" if turn.speaker == assistant else "user"
        messages.append({"role": role, "content": turn.content, "name": openai_name(turn.speaker)})
    return {"messages": messages, "metadata": _metadata(record, assistant)}


def to_sharegpt(record: ExportedConversation) -> dict[str, Any]:
    """The ShareGPT form of ``record`` (see the module docstring for roles)."""
    assistant = assistant_speaker(record.turns)
    conversations = [{"from": "system", "value": _system_prompt(record, assistant)}]
    for turn in record.turns:
        conversations.append(
            {"from": "gpt" if turn.speaker == assistant else "human", "value": turn.content}
        )
    return {"conversations": conversations, "metadata": _metadata(record, assistant)}


def to_jsonl(record: ExportedConversation, fmt: Format) -> str:
    """One JSON line (no newline) of ``record`` in ``fmt``."""
    obj = to_openai(record) if fmt == "openai" else to_sharegpt(record)
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    # Valid JSON, but str.splitlines() and some editors break lines on them.
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedConversation:
    """A conversation read from one JSON line."""

    line_no: int
    format: Format
    turns: tuple[TranscriptTurn, ...]
    system: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str | None:
        value = self.metadata.get("id")
        return value if isinstance(value, str) else None

    @property
    def ended_reason(self) -> str | None:
        value = self.metadata.get("ended_reason")
        return value if isinstance(value, str) else None

    def turn_limit(self, name: Literal["min_turns", "max_turns"]) -> int | None:
        """``min_turns`` or ``max_turns`` from the metadata, when it holds a positive int
        (at most ``MAX_TURN_LIMIT``)."""
        value = self.metadata.get(name)
        ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_TURN_LIMIT
        return value if ok else None


@dataclass(frozen=True)
class LineError:
    """A line that is not a conversation in either format."""

    line_no: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line_no}: {self.message}"


class MalformedConversation(ValueError):
    """Raised when a decoded line is not a conversation in either format."""


def read_jsonl(lines: Iterable[str | bytes]) -> Iterator[ParsedConversation | LineError]:
    """Parse each non-blank line of ``lines`` (1-based numbers), whatever its format."""
    for line_no, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as exc:
            yield LineError(line_no, f"not UTF-8 (byte {exc.start})")
            continue
        text = text.strip().removeprefix("\ufeff")
        if not text:
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            yield LineError(line_no, f"invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        except ValueError:  # an integer of more digits than Python converts (4300)
            yield LineError(line_no, "invalid JSON: a number has too many digits")
            continue
        except RecursionError:
            yield LineError(line_no, "invalid JSON: nested too deeply")
            continue
        if _SURROGATE_HINT.search(text) and _holds_surrogate(obj):
            yield LineError(line_no, "holds an unpaired surrogate escape (not Unicode text)")
            continue
        try:
            yield parse_conversation(obj, line_no)
        except MalformedConversation as exc:
            yield LineError(line_no, str(exc))


def _holds_surrogate(obj: Any) -> bool:
    """Whether a key or a string anywhere in ``obj`` holds an unpaired surrogate (paired
    escapes were joined into one character by the parser)."""
    stack = [obj]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                return True
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def parse_conversation(obj: Any, line_no: int = 1) -> ParsedConversation:
    """One decoded JSON line as a conversation, or MalformedConversation saying why not."""
    if not isinstance(obj, dict):
        raise MalformedConversation(f"expected a JSON object, got {_kind(obj)}")
    metadata = obj.get("metadata", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise MalformedConversation(f"'metadata' must be an object, got {_kind(metadata)}")
    if "id" not in metadata and isinstance(obj.get("id"), str):
        metadata = {**metadata, "id": obj["id"]}
    if "messages" in obj:
        fmt: Format = "openai"
        system, raw_turns = _openai_messages(obj["messages"])
    elif "conversations" in obj:
        fmt = "sharegpt"
        system, raw_turns = _sharegpt_messages(obj["conversations"])
    else:
        raise MalformedConversation("no 'messages' (openai) or 'conversations' (sharegpt) key")
    if not raw_turns:
        raise MalformedConversation("the conversation has no user or assistant turns")
    turns = _transcript(raw_turns, metadata.get("turns"))
    return ParsedConversation(line_no, fmt, turns, system, metadata)


_RawTurn = tuple[str, str]  # (speaker label, content)


def _openai_messages(messages: Any) -> tuple[str | None, list[_RawTurn]]:
    if not isinstance(messages, list):
        raise MalformedConversation(f"'messages' must be a list, got {_kind(messages)}")
    system: list[str] = []
    turns: list[_RawTurn] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise MalformedConversation(f"{where} must be an object, got {_kind(message)}")
        role = message.get("role")
        if not isinstance(role, str):
            raise MalformedConversation(f"{where} has no 'role'")
        if role in _OPENAI_SKIP or (message.get("content") is None and message.get("tool_calls")):
            continue
        content = _openai_content(message.get("content"), where)
        if role in _OPENAI_SYSTEM:
            system.append(content)
        elif role in _OPENAI_ROLES:
            name = message.get("name")
            turns.append((name if isinstance(name, str) and name else role, content))
        else:
            raise MalformedConversation(f"{where} has an unknown role {clip(role)!r}")
    return ("\n\n".join(system) or None), turns


def _openai_content(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
        return "\n".join(texts)
    if content is None:
        raise MalformedConversation(f"{where} has no 'content'")
    raise MalformedConversation(f"{where}.content must be a string, got {_kind(content)}")


def _sharegpt_messages(conversations: Any) -> tuple[str | None, list[_RawTurn]]:
    if not isinstance(conversations, list):
        raise MalformedConversation(f"'conversations' must be a list, got {_kind(conversations)}")
    system: list[str] = []
    turns: list[_RawTurn] = []
    for i, message in enumerate(conversations):
        where = f"conversations[{i}]"
        if not isinstance(message, dict):
            raise MalformedConversation(f"{where} must be an object, got {_kind(message)}")
        source = message.get("from", message.get("role"))
        if not isinstance(source, str):
            raise MalformedConversation(f"{where} has no 'from'")
        value = message.get("value", message.get("content"))
        if value is None:
            raise MalformedConversation(f"{where} has no 'value'")
        if not isinstance(value, str):
            raise MalformedConversation(f"{where}.value must be a string, got {_kind(value)}")
        low = source.lower()
        if low in _SHAREGPT_SKIP:
            continue
        if low in _SHAREGPT_SYSTEM:
            system.append(value)
        elif low in _SHAREGPT_ROLES:
            name = message.get("name")
            turns.append((name if isinstance(name, str) and name else source, value))
        else:
            raise MalformedConversation(f"{where} has an unknown 'from' {clip(source)!r}")
    return ("\n\n".join(system) or None), turns


def _transcript(raw: list[_RawTurn], turn_meta: Any) -> tuple[TranscriptTurn, ...]:
    aligned = isinstance(turn_meta, list) and len(turn_meta) == len(raw)
    turns = []
    for i, (label, content) in enumerate(raw):
        meta = turn_meta[i] if aligned and isinstance(turn_meta[i], dict) else {}
        turns.append(_turn(i, label, content, meta))
    return tuple(turns)


def _turn(index: int, label: str, content: str, meta: Mapping[str, Any]) -> TranscriptTurn:
    inferred: dict[str, Any] = {
        "turn_index": index,
        "content": content,
        "speaker": label,
        "provider": guess_provider(label),
        "model": label,
    }
    known = {k: meta[k] for k in _TURN_META_FIELDS if meta.get(k) is not None}
    try:
        return TranscriptTurn.model_validate(inferred | known)
    except ValidationError:
        # Metadata from elsewhere that does not fit: the message alone still makes a turn.
        return TranscriptTurn.model_validate(inferred)


def guess_provider(label: str) -> Provider:
    """The provider a speaker label or model name most likely belongs to."""
    low = label.lower()
    if "claude" in low or "anthropic" in low:
        return "anthropic"
    if "gemini" in low or "gemma" in low or "google" in low:
        return "google"
    return "openai"


def _kind(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number" if isinstance(value, int | float) else "value")
