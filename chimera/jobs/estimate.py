"""What a job will cost, before it spends anything (``chimera jobs estimate``).

The model:

- **conversations**: one per topic; with a target, ``ceil(target / yield)``, the yield
  being that of the finished conversations in the database (the latest
  ``HISTORY_CONVERSATIONS``): completed, accepted by their stored verdict (rows from before
  verdicts count as accepted) and at or above the job's quality bar if it sets one; or
  ``DEFAULT_YIELD`` without history;
- **turns**: ``max_turns`` for the point estimate (conversations end at their limit
  unless they end themselves; measured, the mean of the turn range fell 30 % short), the
  range running from all at ``min_turns`` to all at ``max_turns``;
- **output tokens per turn**, per model: the mean of its successful turn calls in
  ``llm_calls`` when it has at least ``HISTORY_MIN_CALLS``, else ``DEFAULT_OUTPUT_TOKENS``;
  capped by the participant's ``max_tokens`` and ``CHIMERA_TURN_MAX_OUTPUT_TOKENS``;
- **input tokens per turn**: the very request ``chimera.conversation.prompts`` builds (the
  persona/system prompt, the opener and the transcript so far, a topic of the job's mean
  title and description length) at ``CHARS_PER_TOKEN`` characters a token;
- **prices**: the price table (``chimera.llm.pricing``); a model it does not price costs 0
  and is named in the basis.

The range widens the output tokens by ``OUTPUT_SPREAD`` either way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import Engine, and_, func, select

from chimera.codec import limits_from
from chimera.conversation.prompts import turn_request
from chimera.conversation.state import ConversationState
from chimera.db.errors import database_errors
from chimera.db.tables import Conversation, LLMCall
from chimera.jobs.spec import JobSpec, parse_spec
from chimera.llm.pricing import PriceTable
from chimera.models import Participant, TopicSpec, TranscriptTurn
from chimera.settings import Settings

#: Characters per token when counting a request's input (English text, roughly).
CHARS_PER_TOKEN: Final = 4
#: Output tokens of a turn for a model with no history.
DEFAULT_OUTPUT_TOKENS: Final = 80
#: Successful turn calls a model needs before its own mean output is used.
HISTORY_MIN_CALLS: Final = 5
#: Finished conversations the expected yield is read from (the latest).
HISTORY_CONVERSATIONS: Final = 1_000
#: Expected yield without history (every conversation gets a verdict, bar or no bar).
DEFAULT_YIELD: Final = 0.8
#: How far the range moves the output tokens per turn, either way.
OUTPUT_SPREAD: Final = 0.25


@dataclass(frozen=True)
class ModelBasis:
    provider: str
    model: str
    output_tokens: float
    source: str
    priced: bool


@dataclass(frozen=True)
class Estimate:
    conversations: int
    expected_yield: float
    yield_source: str
    min_turns: int
    max_turns: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    low_usd: Decimal
    high_usd: Decimal
    price_version: str
    models: list[ModelBasis] = field(default_factory=list)

    @property
    def per_conversation_usd(self) -> Decimal:
        return self.cost_usd / self.conversations if self.conversations else Decimal(0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "conversations": self.conversations,
            "expected_yield": self.expected_yield,
            "yield_source": self.yield_source,
            "turns": {"min": self.min_turns, "max": self.max_turns},
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": float(self.cost_usd),
            "low_usd": float(self.low_usd),
            "high_usd": float(self.high_usd),
            "per_conversation_usd": float(self.per_conversation_usd),
            "price_version": self.price_version,
            "models": [m.__dict__ for m in self.models],
        }


@dataclass
class TopicShape:
    """How many topics, and their mean title and description lengths (read once)."""

    count: int = 0
    title_chars: int = 0
    description_chars: int = 0

    @classmethod
    def of(cls, topics: Iterable[dict[str, Any]]) -> TopicShape:
        shape = cls()
        for t in topics:
            shape.count += 1
            shape.title_chars += len(str(t.get("title", "")))
            shape.description_chars += len(str(t.get("description") or ""))
        return shape

    def typical(self) -> TopicSpec:
        n = max(1, self.count)
        title = "x" * max(1, round(self.title_chars / n))
        chars = round(self.description_chars / n)
        return TopicSpec(title=title, description="x" * chars if chars else None)


def estimate_job(
    engine: Engine | None,
    settings: Settings,
    spec_obj: dict[str, Any],
    topics: Iterator[dict[str, Any]],
    prices: PriceTable | None = None,
) -> Estimate:
    """The estimate of a job as ``create_job`` would take it (``SchemaInvalid`` likewise);
    ``engine`` None: no history read."""
    spec = parse_spec(spec_obj, limits_from(settings))
    shape = TopicShape.of(topics)
    prices = prices or PriceTable.load(settings.price_table_path)
    history = _output_history(engine, spec.participants) if engine is not None else {}
    basis: list[ModelBasis] = []
    outputs: dict[tuple[str, str], float] = {}
    for p in spec.participants:
        key = (p.provider, p.model)
        if key in outputs:
            continue
        mean, n = history.get(key, (0.0, 0))
        out, source = (
            (mean, f"history ({n} calls)")
            if n >= HISTORY_MIN_CALLS
            else (
                float(DEFAULT_OUTPUT_TOKENS),
                "default",
            )
        )
        cap = min(p.max_tokens or settings.turn_max_output_tokens, settings.turn_max_output_tokens)
        outputs[key] = min(out, float(cap))
        priced = p.model in prices.models_of(p.provider)
        basis.append(ModelBasis(p.provider, p.model, outputs[key], source, priced))
    yld, yield_source = _expected_yield(engine, spec.min_quality)
    count = shape.count if spec.target is None else math.ceil(spec.target / yld)
    rotations = 1 if spec.target is None else len(spec.participants)

    def run(scale: float, lengths: list[int]) -> tuple[Decimal, int, int]:
        cost, tin, tout = Decimal(0), 0, 0
        for r in range(rotations):
            seats = spec.participants[r:] + spec.participants[:r]
            c, i, o = _conversation(
                spec,
                seats=seats,
                topic=shape.typical(),
                outputs=outputs,
                scale=scale,
                prices=prices,
                lengths=lengths,
            )
            cost, tin, tout = cost + c, tin + i, tout + o
        return cost / rotations, tin // rotations, tout // rotations

    # Conversations measured on the simulator run to their max_turns (every one of them
    # in tests/chimera/jobs/test_estimate.py): the point estimate takes max_turns, and
    # the range runs down to min_turns.
    mid, tin, tout = run(1.0, [spec.max_turns])
    low, _, _ = run(1 - OUTPUT_SPREAD, [spec.min_turns])
    high, _, _ = run(1 + OUTPUT_SPREAD, [spec.max_turns])
    return Estimate(
        conversations=count,
        expected_yield=yld,
        yield_source=yield_source,
        min_turns=spec.min_turns,
        max_turns=spec.max_turns,
        input_tokens=tin * count,
        output_tokens=tout * count,
        cost_usd=mid * count,
        low_usd=low * count,
        high_usd=high * count,
        price_version=prices.version,
        models=basis,
    )


def _conversation(
    spec: JobSpec,
    *,
    seats: tuple[Participant, ...],
    topic: TopicSpec,
    outputs: dict[tuple[str, str], float],
    scale: float,
    prices: PriceTable,
    lengths: list[int],
) -> tuple[Decimal, int, int]:
    """Mean cost and tokens of one conversation over ``lengths`` (turn counts)."""
    state = ConversationState(
        conversation_id="estimate",
        event_id="estimate",
        topic=topic,
        participants=seats,
        min_turns=spec.min_turns,
        max_turns=spec.max_turns,
    )
    cost, tin, tout = Decimal(0), 0, 0
    per_turn: list[tuple[Decimal, int, int]] = []
    for i in range(max(lengths)):
        p = state.speaker_for(i)
        out = max(1, round(outputs[(p.provider, p.model)] * scale))
        request = turn_request(state, i, max_output_tokens=out)
        texts = [request.system or "", *(m.content for m in request.messages)]
        inp = sum(math.ceil(len(t) / CHARS_PER_TOKEN) for t in texts)
        per_turn.append((prices.cost(p.provider, p.model, inp, out), inp, out))
        content = "x" * (out * CHARS_PER_TOKEN)
        state.turns.append(
            TranscriptTurn(
                turn_index=i, speaker=p.speaker, provider=p.provider, model=p.model, content=content
            )
        )
    for n in lengths:
        for turn_cost, turn_in, turn_out in per_turn[:n]:
            cost += turn_cost
            tin += turn_in
            tout += turn_out
    k = len(lengths)
    return cost / k, tin // k, tout // k


def _output_history(
    engine: Engine, participants: Iterable[Participant]
) -> dict[tuple[str, str], tuple[float, int]]:
    """Mean output tokens and number of the successful turn calls, per (provider, model)."""
    keys = {(p.provider, p.model) for p in participants}
    with database_errors("cannot read the LLM call history"), engine.connect() as conn:
        rows = conn.execute(
            select(LLMCall.provider, LLMCall.model, func.avg(LLMCall.output_tokens), func.count())
            .where(LLMCall.task == "turn", LLMCall.status == "ok")
            .group_by(LLMCall.provider, LLMCall.model)
        ).all()
    return {(p, m): (float(avg), int(n)) for p, m, avg, n in rows if (p, m) in keys}


def _expected_yield(engine: Engine | None, min_quality: float | None) -> tuple[float, str]:
    """Accepted / finished over the latest finished conversations, or the default."""
    default = DEFAULT_YIELD
    if engine is None:
        return default, "default"
    c = Conversation
    latest = (
        select(c.status, c.quality_score, c.accepted)
        .where(c.status.in_(("completed", "failed")))
        .order_by(c.created_at.desc())
        .limit(HISTORY_CONVERSATIONS)
        .subquery()
    )
    good = and_(latest.c.status == "completed", func.coalesce(latest.c.accepted, True))
    if min_quality is not None:
        good = and_(good, latest.c.quality_score >= min_quality)
    with database_errors("cannot read the conversation history"), engine.connect() as conn:
        finished, accepted = conn.execute(
            select(func.count(), func.count().filter(good)).select_from(latest)
        ).one()
    if not finished or not accepted:
        return default, "default"
    return accepted / finished, f"history ({finished} conversations)"
