"""Typed, versioned outputs of the four analyses (what the model must answer).

Field names are plain English on purpose: models (and the simulator) fill a
field by what its name says.  A new version of an analysis gets new classes
here and a new prompt id; stored bundles keep the version they were made with.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Output(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# --- summary.v1 ------------------------------------------------------------------------------


class SummaryV1(_Output):
    summary: str = Field(min_length=1, description="A faithful summary in a few sentences.")
    key_points: list[str] = Field(default_factory=list, description="The main points, one each.")


# --- argument.v1 -----------------------------------------------------------------------------


class Claim(_Output):
    claim: str = Field(min_length=1, description="The claim as its speaker made it.")
    stance: Literal["for", "against", "neutral"] = Field(
        description="The claim's stance on the question under discussion."
    )
    premises: list[str] = Field(default_factory=list, description="What supports the claim.")
    speaker: str = Field(min_length=1, description="Who made the claim.")


class ArgumentsV1(_Output):
    claims: list[Claim] = Field(default_factory=list)


# --- implication_sentiment.v1 ----------------------------------------------------------------

SentimentLabel = Literal["positive", "negative", "neutral", "mixed"]


class SpeakerSentiment(_Output):
    speaker: str = Field(min_length=1)
    label: SentimentLabel
    score: float = Field(ge=-1, le=1, description="-1 very negative .. 1 very positive")


class Sentiment(_Output):
    overall_label: SentimentLabel
    overall_score: float = Field(ge=-1, le=1, description="-1 very negative .. 1 very positive")
    per_speaker: list[SpeakerSentiment] = Field(default_factory=list)


class ImplicationSentimentV1(_Output):
    implications: list[str] = Field(
        default_factory=list, description="Consequences that follow from what was said."
    )
    sentiment: Sentiment


# --- logic_bias.v1 ---------------------------------------------------------------------------

FallacyType = Literal[
    "ad_hominem",
    "straw_man",
    "false_dilemma",
    "slippery_slope",
    "hasty_generalization",
    "appeal_to_authority",
    "appeal_to_emotion",
    "circular_reasoning",
    "red_herring",
    "other",
]
BiasType = Literal[
    "confirmation_bias",
    "anchoring",
    "availability",
    "framing",
    "overconfidence",
    "in_group_bias",
    "status_quo_bias",
    "other",
]


class Fallacy(_Output):
    type: FallacyType
    quote: str = Field(min_length=1, description="The exact words of the text it rests on.")
    explanation: str = Field(min_length=1)


class Bias(_Output):
    type: BiasType
    quote: str = Field(min_length=1, description="The exact words of the text it rests on.")
    explanation: str = Field(min_length=1)


class LogicBiasV1(_Output):
    fallacies: list[Fallacy] = Field(default_factory=list)
    biases: list[Bias] = Field(default_factory=list)
