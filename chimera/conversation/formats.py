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
``metadata.turns``, so nothing is lost and ``score`` reads the same transcript back.  A
job's export adds ``metadata.lineage`` (job, models, prompt versions, personas, rotation,
cost, score: ``chimera.jobs.export``).

Reading them back (either format, or anyone's) is ``chimera.conversation.parsing``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from chimera.models.conversation import TopicSpec
from chimera.models.participants import Participant
from chimera.models.transcript import TranscriptTurn

Format = Literal["openai", "sharegpt"]
FORMATS: Final[tuple[Format, ...]] = ("openai", "sharegpt")
#: Stamped into every exported line's metadata; bump it when the layout changes.
SCHEMA: Final = "chimera.conversation.v1"

_NAME_RE = re.compile(r"[^A-Za-z0-9_-]")
#: The per-turn fields kept in ``metadata.turns`` (and read back from it).
TURN_META_FIELDS: Final = (
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
    #: Where a job's conversation came from (``chimera.jobs.export``); None otherwise.
    lineage: dict[str, Any] | None = None
    #: ``accepted``, ``rejection_reasons``, ``duplicate_of`` (an export that includes
    #: rejected conversations); None otherwise.
    verdict: dict[str, Any] | None = None


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

    out: dict[str, Any] = {
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
        "turns": [t.model_dump(mode="json", include=set(TURN_META_FIELDS)) for t in record.turns],
        "conversation_metadata": record.metadata,
    }
    if record.verdict is not None:
        out.update(record.verdict)
    if record.lineage is not None:
        out["lineage"] = record.lineage
    return out


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
