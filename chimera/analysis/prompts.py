"""Analysis prompts, addressed by id (``summary.v1``): instructions plus output schema.

A request may pick other versions per analysis (``prompt_ids``); an id that does
not exist, or that belongs to another analysis, is an ``UnknownPrompt``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from chimera.analysis.schemas import ArgumentsV1, ImplicationSentimentV1, LogicBiasV1, SummaryV1
from chimera.errors import UnknownPrompt
from chimera.models.analysis import ANALYSIS_KINDS, AnalysisKind

_COMMON = (
    "You analyse a text for a data pipeline. The text is a transcript: each paragraph starts "
    "with its speaker's name and a colon. Base every statement on the text alone; do not "
    "invent speakers, facts or quotes. Answer in {language}."
)


@dataclass(frozen=True)
class PromptSpec:
    id: str
    kind: AnalysisKind
    instructions: str
    schema: type[BaseModel]

    def system(self, language: str) -> str:
        return f"{_COMMON.format(language=language)}\n\n{self.instructions}"


PROMPTS: Mapping[str, PromptSpec] = {
    p.id: p
    for p in (
        PromptSpec(
            "summary.v1",
            "summary",
            "Summarise the text in a few sentences and list its key points, one point each.",
            SummaryV1,
        ),
        PromptSpec(
            "argument.v1",
            "argument",
            "Mine the arguments: for each claim give its stance on the question discussed "
            "(for, against or neutral), the premises offered for it, and the speaker who made it.",
            ArgumentsV1,
        ),
        PromptSpec(
            "implication_sentiment.v1",
            "implication_sentiment",
            "List the implications of what is said (consequences, risks, predictions), then "
            "rate the sentiment: an overall label and score from -1 to 1, and one per speaker.",
            ImplicationSentimentV1,
        ),
        PromptSpec(
            "logic_bias.v1",
            "logic_bias",
            "Find logical fallacies and cognitive biases. For each give its type, the exact "
            "words of the text it rests on (copied verbatim, a sentence or less) and a short "
            "explanation. Report none rather than stretch.",
            LogicBiasV1,
        ),
    )
}

DEFAULT_PROMPTS: Mapping[AnalysisKind, str] = {k: f"{k}.v1" for k in ANALYSIS_KINDS}


def resolve(kind: AnalysisKind, prompt_ids: Mapping[Any, str] | None = None) -> PromptSpec:
    """The prompt an analysis uses: the request's choice, else the default."""
    prompt_id = (prompt_ids or {}).get(kind) or DEFAULT_PROMPTS[kind]
    spec = PROMPTS.get(prompt_id)
    if spec is None or spec.kind != kind:
        known = ", ".join(sorted(p.id for p in PROMPTS.values() if p.kind == kind))
        raise UnknownPrompt(f"no prompt {prompt_id!r} for {kind} (known: {known})")
    return spec


def resolve_all(prompt_ids: Mapping[Any, str] | None = None) -> dict[str, PromptSpec]:
    """Every analysis's prompt; raises at the first unknown id."""
    return {kind: resolve(kind, prompt_ids) for kind in ANALYSIS_KINDS}
