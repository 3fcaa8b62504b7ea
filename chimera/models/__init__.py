"""Domain and event models (pydantic v2).  Pure data: no I/O, no settings."""

from chimera.models.analysis import (
    ANALYSIS_KINDS,
    AnalysisKind,
    AnalysisTask,
    AnalyzeRequest,
    Segment,
)
from chimera.models.base import SUPPORTED_SCHEMA_VERSIONS, InputEvent
from chimera.models.conversation import (
    ConversationLimits,
    ConversationRequest,
    TopicSpec,
)
from chimera.models.events import (
    AnalysisCompleted,
    ConversationCompleted,
    ConversationFailed,
    ConversationStarted,
    OutputEvent,
    TurnCompleted,
    TurnFailed,
    TurnRequested,
    output_event_adapter,
)
from chimera.models.participants import PROVIDERS, Participant, Provider
from chimera.models.transcript import TranscriptTurn

__all__ = [
    "ANALYSIS_KINDS",
    "PROVIDERS",
    "SUPPORTED_SCHEMA_VERSIONS",
    "AnalysisCompleted",
    "AnalysisKind",
    "AnalysisTask",
    "AnalyzeRequest",
    "ConversationCompleted",
    "ConversationFailed",
    "ConversationLimits",
    "ConversationRequest",
    "ConversationStarted",
    "InputEvent",
    "OutputEvent",
    "Participant",
    "Provider",
    "Segment",
    "TopicSpec",
    "TranscriptTurn",
    "TurnCompleted",
    "TurnFailed",
    "TurnRequested",
    "output_event_adapter",
]
