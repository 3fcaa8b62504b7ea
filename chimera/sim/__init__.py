"""A local LLM simulator that the anthropic, google-genai and openai SDKs talk to unchanged.

It speaks Anthropic Messages, Gemini generateContent and OpenAI chat completions, answers with
deterministic topic-aware dialogue or schema-valid JSON drawn from the input, counts tokens,
paces answers like a real model, enforces per-model rate limits and injects faults on demand.

Layering rule: this package imports nothing from the rest of Chimera (no settings, no
``chimera.llm``), so it can run anywhere, and Chimera code never imports it outside tests, the
CLI and the demo.  See README.md in this folder for the module map.
"""

from chimera.sim.calllog import CallLogSnapshot, CallRecord
from chimera.sim.config import SimConfig
from chimera.sim.faults import FaultKind, FaultSpec
from chimera.sim.limits import Limits
from chimera.sim.simulator import Simulator

__all__ = [
    "CallLogSnapshot",
    "CallRecord",
    "FaultKind",
    "FaultSpec",
    "Limits",
    "SimConfig",
    "Simulator",
]
