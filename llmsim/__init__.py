"""A local LLM simulator that the anthropic, google-genai and openai SDKs talk to unchanged.

It speaks Anthropic Messages, Gemini generateContent and OpenAI chat completions, answers with
deterministic topic-aware dialogue or schema-valid JSON drawn from the input, counts tokens,
paces answers like a real model, enforces per-model rate limits, injects faults on demand and
plants dialogue defects at configured rates (recorded in its call log as ground truth).

Layering rule: this package imports nothing from Chimera (no settings, no ``chimera.llm``), so
it runs anywhere, and Chimera never imports it: the local stack and the demo start it as a
process (``python -m llmsim``), tests use it in-process.  It lives outside the ``chimera``
package so that the production image does not carry it.  See README.md in this folder.
"""

from llmsim.calllog import CallLogSnapshot, CallRecord
from llmsim.config import SimConfig
from llmsim.defects import DefectKind, DefectRates
from llmsim.faults import FaultKind, FaultSpec
from llmsim.limits import Limits
from llmsim.simulator import Simulator

__all__ = [
    "CallLogSnapshot",
    "CallRecord",
    "DefectKind",
    "DefectRates",
    "FaultKind",
    "FaultSpec",
    "Limits",
    "SimConfig",
    "Simulator",
]
