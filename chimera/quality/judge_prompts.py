"""What the LLM judge is asked and must answer: the rubric, the pairwise question, and a
stored conversation written out for them.

Field names are plain English on purpose: models (and the simulator) fill a field by
what its name says.  A new version gets new classes and a new prompt id; stored
judgements keep the ``prompt_ref`` they were made with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RUBRIC_PROMPT = "judge.rubric.v1"
PAIRWISE_PROMPT = "judge.pairwise.v1"
#: A longer transcript is cut (at a turn) before the judge reads it.
MAX_TRANSCRIPT_CHARS = 60_000
#: Output tokens a judge call may ask for.
MAX_OUTPUT_TOKENS = 1_024

Score = int


def _score(what: str) -> Any:
    return Field(ge=1, le=5, description=f"1 (very poor) .. 5 (excellent): {what}")


class RubricV1(BaseModel):
    """The judge's rubric of one conversation."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    helpfulness_score: Score = _score("substance: does each turn add information or reasons?")
    coherence_score: Score = _score("does each turn follow from the one before?")
    faithfulness_score: Score = _score("does it stay on the topic and keep each persona?")
    naturalness_score: Score = _score("does it read like people talking, not a template?")
    defects: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="Defects seen, a few words each: refusal, prompt leakage, role confusion, "
        "truncation, language switch, repetition, empty turns, sycophancy.",
    )
    overall_score: Score = _score("the conversation as training data, all things considered")
    rationale: str = Field(min_length=1, max_length=2_000, description="Why, in two sentences.")

    def as_stored(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class PairwiseV1(BaseModel):
    """The judge's choice between two conversations shown as A and B."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    better: Literal["A", "B", "tie"] = Field(
        description="The better conversation as training data: A, B, or tie."
    )
    rationale: str = Field(min_length=1, max_length=2_000, description="Why, in one sentence.")


RUBRIC_SYSTEM = (
    "You are a strict reviewer of synthetic conversations used as training data. Read the "
    "conversation and rate it on each criterion from 1 (very poor) to 5 (excellent): "
    "helpfulness (substance), coherence, faithfulness to the topic and to each speaker's "
    "persona, naturalness. List the defects you see (refusals, leaked prompts or scaffolding, "
    "a speaker answering as the other, turns cut off, a switch of language, repetition, empty "
    "or pleasantry-only turns, agreement without content), then give an overall score and a "
    "short rationale. Judge the text only; ignore who produced it."
)

PAIRWISE_SYSTEM = (
    "You are a strict reviewer of synthetic conversations used as training data. Two "
    "conversations follow, A and B. Say which is better as training data (substance, "
    "coherence, faithfulness to topic and personas, naturalness, no defects), or tie if "
    "neither is. The order in which they are shown means nothing."
)


@dataclass(frozen=True)
class Subject:
    """A stored conversation as the judge reads it."""

    id: str
    job_id: str | None
    topic: Mapping[str, Any]
    participants: Sequence[Mapping[str, Any]]
    #: (speaker, text) in order.
    turns: Sequence[tuple[str, str]]
    #: The routes its turns were produced on (``provider`` of ``conversation_turns``).
    turn_routes: frozenset[str] = frozenset()
    quality_score: float | None = None

    def render(self, limit: int = MAX_TRANSCRIPT_CHARS) -> str:
        """The topic, the participants' personas and the transcript, cut at a turn past
        ``limit`` characters (said so)."""
        lines = [f"Topic: {self.topic.get('title', '')}"]
        if self.topic.get("description"):
            lines.append(f"About: {self.topic['description']}")
        for p in self.participants:
            name = p.get("name") or p.get("model") or "speaker"
            if p.get("persona"):
                lines.append(f"Persona of {name}: {p['persona']}")
        lines.append("Transcript:")
        used = sum(len(line) + 1 for line in lines)
        for i, (speaker, text) in enumerate(self.turns):
            line = f"{speaker}: {text}"
            if used + len(line) > limit and i > 0:
                lines.append(f"[{len(self.turns) - i} more turns not shown]")
                break
            lines.append(line)
            used += len(line) + 1
        return "\n".join(lines)


def rubric_question(subject: Subject) -> str:
    return f"The conversation to review:\n\n{subject.render()}"


def pairwise_question(first: Subject, second: Subject) -> str:
    half = MAX_TRANSCRIPT_CHARS // 2
    return (
        f"Conversation A:\n\n{first.render(half)}\n\n---\n\n"
        f"Conversation B:\n\n{second.render(half)}"
    )
