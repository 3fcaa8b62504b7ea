"""What quality.v2 reads from a conversation line besides its turns: the topic, the personas
and the ending fields, where the line carries them (absent ones stay None: neutral)."""

from __future__ import annotations

from typing import Any

from chimera.conversation.parsing import ParsedConversation

_TOPIC_PREFIX = "topic:"


def topic_of(item: ParsedConversation) -> str | None:
    """The stated topic: ``metadata.topic`` (title and description), else the first two
    paragraphs of the system message (exports write ``Topic: <title>`` then the description)."""
    topic = item.metadata.get("topic")
    if isinstance(topic, dict):
        parts = [topic.get("title"), topic.get("description")]
        text = "\n".join(p for p in parts if isinstance(p, str) and p)
        if text:
            return text
    elif isinstance(topic, str) and topic:
        return topic
    if item.system:
        paragraphs = [p.strip() for p in item.system.split("\n\n") if p.strip()]
        if paragraphs and paragraphs[0].casefold().startswith(_TOPIC_PREFIX):
            paragraphs[0] = paragraphs[0][len(_TOPIC_PREFIX) :].strip()
            return "\n".join(paragraphs[:2])
        return "\n".join(paragraphs[:1]) or None
    return None


def personas_of(item: ParsedConversation) -> dict[str, str]:
    """Speaker name -> persona, from ``metadata.participants``."""
    out: dict[str, str] = {}
    participants = item.metadata.get("participants")
    if isinstance(participants, list):
        for p in participants:
            if isinstance(p, dict):
                name, persona = p.get("name"), p.get("persona")
                if isinstance(name, str) and isinstance(persona, str) and persona:
                    out[name] = persona
    return out


def inputs_of(item: ParsedConversation) -> dict[str, Any]:
    """The keyword arguments of :func:`chimera.quality.score.score_v2` for ``item``."""
    return {
        "topic": topic_of(item),
        "ended_reason": item.ended_reason,
        "min_turns": item.turn_limit("min_turns"),
        "max_turns": item.turn_limit("max_turns"),
        "personas": personas_of(item),
    }
