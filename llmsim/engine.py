"""Turn a :class:`Prompt` into a :class:`Completion`: dialogue or structured JSON, a planted
defect if the rates call for one, then token counts, stop sequences and ``max_tokens``.

The random generator is seeded from the simulator seed, the model and the whole prompt, so the
same (seed, request) always gives the same answer and a different turn or model a different one;
the planted defect is drawn from the same material (see :mod:`llmsim.defects`).
"""

from __future__ import annotations

import hashlib
import json
import random

from llmsim import defects, dialogue
from llmsim.calls import Completion, Prompt, StopReason
from llmsim.source import SourceText, pick_source
from llmsim.structured import generate, schema_from_prompt
from llmsim.textstats import CHARS_PER_TOKEN, count_tokens


def input_tokens(prompt: Prompt) -> int:
    """Input tokens: every text of the request (system, turns, tools and schemas), ~4 chars each."""
    texts = [prompt.system, prompt.extra_input, *(t.text for t in prompt.turns)]
    return sum(count_tokens(t) for t in texts)


def complete(
    prompt: Prompt,
    *,
    model: str,
    seed: int,
    pacing: dialogue.Pacing,
    defect_rates: defects.DefectRates | None = None,
) -> Completion:
    material = _material(prompt, model, seed)
    rng = random.Random(_seed(material))  # noqa: S311 - reproducible text, not secrets
    value = None
    planted: defects.DefectKind | None = None
    if prompt.schema is not None or prompt.json_mode:
        users = [t.text for t in prompt.turns if t.role == "user"]
        schema = prompt.schema
        if schema is None:
            schema = schema_from_prompt(prompt.system + "\n" + (users[-1] if users else ""))
        value = generate(schema, SourceText(pick_source(users)), rng)
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = dialogue.reply(
            system=prompt.system, turns=prompt.turns, model=model, rng=rng, pacing=pacing
        )
        planted = defect_rates.choose(material) if defect_rates is not None else None
        if planted is not None:
            text = defects.plant(planted, text, system=prompt.system, turns=prompt.turns, rng=rng)
    stop_reason: StopReason = "end_turn"
    stop_sequence = None
    hits = [(text.find(s), s) for s in prompt.stop if s and s in text]
    if hits:
        at, stop_sequence = min(hits)
        text, stop_reason = text[:at], "stop_sequence"
    if prompt.max_tokens is not None and count_tokens(text) > prompt.max_tokens:
        text, stop_reason, stop_sequence = _cut(text, prompt.max_tokens), "max_tokens", None
    if stop_reason != "end_turn":
        value = None
    return Completion(
        text,
        value,
        stop_reason,
        stop_sequence,
        input_tokens(prompt),
        count_tokens(text),
        planted,
    )


def _cut(text: str, max_tokens: int) -> str:
    """At most ``max_tokens`` worth of text, ending at a word boundary when one is near."""
    limit = max_tokens * CHARS_PER_TOKEN
    cut = text.rfind(" ", 0, limit + 1)
    return text[:cut] if cut > limit // 2 else text[:limit]


def _material(prompt: Prompt, model: str, seed: int) -> str:
    """What makes a request itself: the simulator seed, the model and the whole prompt."""
    return json.dumps(
        [
            seed,
            model,
            prompt.system,
            [[t.role, t.text] for t in prompt.turns],
            prompt.schema,
            prompt.json_mode,
        ],
        sort_keys=True,
        default=str,
    )


def _seed(material: str) -> int:
    return int.from_bytes(hashlib.sha256(material.encode()).digest()[:8], "big")
