"""Each quality.v2 detector's precision and recall on defects the simulator plants, measured
through the real pipeline: a real worker runs the conversations against the simulator, whose
call log names the defect planted in each answer (the ground truth), and the flags are the
ones of the quality.v2 reports finalise stored.

Mapping a planted call to its stored turn: the simulator keeps each request's body, and the
request of turn ``i`` is rebuilt from the stored conversation with the pipeline's own prompt
code (``chimera.conversation.prompts.turn_request``: its system prompt and its messages, which
hold every turn before ``i``).  Equal requests are the same turn: topics differ per
conversation, so no two turns share a request, and a retried request is answered with the same
text and the same planted defect.

What counts: a detector's recall is the share of the turns planted with its defect that it
flags; its precision the share of the turns it flags that genuinely carry the defect: planted
with it, or planted as a repetition of a turn that carries it (repeating a refusal verbatim
repeats the refusal).  Anything else it flags counts against it, including turns that merely
react to a spoiled one.  Repetition is found by either of v2's copying flags (``repetition``:
an earlier turn or the turn itself; ``echo``: the turn just before).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from chimera.conversation.prompts import turn_request
from chimera.conversation.state import ConversationState
from chimera.db.tables import Conversation
from chimera.models.conversation import TopicSpec
from chimera.models.participants import Participant
from chimera.models.transcript import TranscriptTurn
from chimera.quality.score import VERSION
from llmsim.defects import DEFECT_KINDS
from tests.tasks.conftest import Flow
from tests.tasks.test_admission_flow import _forget_admissions
from tests.tasks.test_conversation_faults import accept, start_on

TURNS = 6
RATE = 0.08  # each of the six: about half the turns stay clean
MIN_PLANTED = 15
TARGET = 0.9
#: Which v2 flags find each planted defect.
FLAGS = {kind: (kind,) for kind in DEFECT_KINDS} | {"repetition": ("repetition", "echo")}
_SUBJECTS = (
    "cities",
    "schools",
    "hospitals",
    "airlines",
    "farmers",
    "libraries",
    "banks",
    "museums",
)
_ACTIONS = (
    "ban cars from their centres",
    "switch to a four-day week",
    "charge for plastic bags",
    "publish every salary",
    "stop using paper",
    "require remote work on Fridays",
)
TOPICS = [f"Should {s} {a}?" for s in _SUBJECTS for a in _ACTIONS]  # 48, one per conversation
PAIRS = (
    (("Ana", "an urban planner"), ("Ben", "a shop owner")),
    (("Chloe", "a retired teacher"), ("Dev", "a software engineer")),
    (("Elena", "an economist"), ("Femi", "a nurse on night shifts")),
)
#: The simulator's "As I said, …" near copy, and the label of a turn in another's prompt.
_AS_I_SAID = "As I said, "
_LABEL = re.compile(r"^[A-Z][\w.'-]*(?: [A-Z][\w.'-]*){0,2}: ")


@pytest.mark.subprocess_worker
def test_each_detector_finds_the_planted_defects(
    flow: Flow,
    sim_calls: Any,
    worker_process: Any,
    settings: Any,
    record_property: Any,
) -> None:
    sim_calls.configure(record_bodies=True, defects=dict.fromkeys(DEFECT_KINDS, RATE))
    _forget_admissions(settings)  # earlier tests' running entries would count
    worker = worker_process(
        env={
            "CHIMERA_MAX_RUNNING_CONVERSATIONS": str(len(TOPICS)),
            "CHIMERA_CELERY_CONCURRENCY": "16",
        }
    )
    events = [
        flow.event(
            topic=topic,
            min_turns=TURNS,
            max_turns=TURNS,
            participants=[
                {"provider": provider, "model": model, "name": name, "persona": persona}
                for (provider, model), (name, persona) in zip(
                    (("anthropic", "claude-sonnet-5-5"), ("google", "gemini-3.5-flash")),
                    PAIRS[n % len(PAIRS)],
                    strict=True,
                )
            ],
        )
        for n, topic in enumerate(TOPICS)
    ]
    cids = [accept(flow, event) for event in events]
    for event in events:
        start_on(flow, worker, event)
    for cid in cids:
        flow.wait(cid, timeout_s=150)

    planted_by_request = _planted_by_request(sim_calls.calls().calls)
    with flow.engine.connect() as conn:
        rows = conn.execute(select(Conversation).where(Conversation.id.in_(cids))).all()
    turns: list[Judged] = []
    for row in rows:
        state = _state(row, flow.turns(row.id))
        assert len(state.turns) == TURNS
        planted = []
        for i in range(TURNS):
            request = turn_request(state, i, max_output_tokens=settings.turn_max_output_tokens)
            key = _key(request.system, [(m.role, m.content) for m in request.messages])
            assert key in planted_by_request, f"{row.id} turn {i}: no call with its request"
            found = planted_by_request[key]
            assert len(found) == 1, f"{row.id} turn {i}: one request, several defects {found}"
            planted.append(next(iter(found)))
        genuine = _genuine(state.turns, planted)
        flags = _turn_flags(row)
        turns += [
            Judged(f"{row.id}#{i}", state.turns[i].content, planted[i], genuine[i], flags[i])
            for i in range(TURNS)
        ]

    table, figures = _figures(turns)
    print(f"\n{table}")
    record_property("planted_defects", table)
    for kind, (planted_n, precision, recall) in figures.items():
        record_property(f"{kind}_planted", planted_n)
        record_property(f"{kind}_precision", round(precision, 3))
        record_property(f"{kind}_recall", round(recall, 3))
    for kind, (planted_n, precision, recall) in figures.items():
        assert planted_n >= MIN_PLANTED, f"{kind} planted only {planted_n} times\n{table}"
        assert precision >= TARGET, f"{kind} precision {precision:.2f}\n{table}"
        assert recall >= TARGET, f"{kind} recall {recall:.2f}\n{table}"


@dataclass(frozen=True)
class Judged:
    """One stored turn: what was planted, what it genuinely carries, what v2 flagged."""

    ref: str  # conversation#turn
    text: str
    planted: str | None
    genuine: set[str]
    flags: set[str]


def _planted_by_request(calls: list[Any]) -> dict[tuple[Any, ...], set[str | None]]:
    """Request (system prompt, messages) -> the defects planted in its answers."""
    out: dict[tuple[Any, ...], set[str | None]] = {}
    for call in calls:
        if call.status == 200 and call.body is not None:
            out.setdefault(_request_of(call.provider, call.body), set()).add(call.planted)
    return out


def _request_of(provider: str, body: dict[str, Any]) -> tuple[Any, ...]:
    """The system prompt and messages of a logged request, whatever its wire format."""
    if provider == "google":
        system = body.get("systemInstruction") or body.get("system_instruction") or {}
        messages = [
            ("assistant" if c.get("role") == "model" else "user", _text(c.get("parts")))
            for c in body.get("contents", [])
        ]
        return _key(_text(system.get("parts")), messages)
    assert provider == "anthropic", provider
    messages = [(m["role"], _text(m["content"])) for m in body.get("messages", [])]
    return _key(_text(body.get("system")), messages)


def _text(value: Any) -> str:
    """A string, or the text of a list of content blocks or parts."""
    if isinstance(value, str):
        return value
    return "".join(p.get("text", "") for p in value or [] if isinstance(p, dict))


def _key(system: str, messages: list[tuple[str, str]]) -> tuple[Any, ...]:
    return (system, tuple(messages))


def _state(row: Any, turn_rows: list[Any]) -> ConversationState:
    """The conversation as its turn tasks saw it, rebuilt from its stored rows."""
    return ConversationState(
        conversation_id=row.id,
        event_id=row.event_id,
        topic=TopicSpec.model_validate(row.topic),
        participants=tuple(Participant.model_validate(p) for p in row.participants),
        min_turns=row.min_turns,
        max_turns=row.max_turns,
        metadata=row._mapping["metadata"],
        turns=[
            TranscriptTurn(
                turn_index=t.turn_index,
                speaker=t.speaker,
                provider=t.provider,
                model=t.model,
                content=t.content,
            )
            for t in turn_rows
        ],
    )


def _turn_flags(row: Any) -> list[set[str]]:
    """Each turn's v2 flags, from the report finalise stored with the conversation."""
    stored = row.quality_breakdown or {}
    assert stored.get("version") == VERSION, f"{row.id}: stored {stored.get('version')}"
    return [set(turn["flags"]) for turn in stored["turns"]]


def _genuine(turns: list[TranscriptTurn], planted: list[str | None]) -> list[set[str]]:
    """The defects each turn carries: its planted one, and a repetition's source's."""
    out: list[set[str]] = []
    for i, turn in enumerate(turns):
        kinds = {planted[i]} if planted[i] else set()
        if planted[i] == "repetition":
            source = _source(turn.content, turns[:i])
            if source is not None:
                kinds |= out[source]
        out.append(kinds)
    return out


def _source(text: str, earlier: list[TranscriptTurn]) -> int | None:
    """The earlier turn that ``text`` repeats (verbatim, or after "As I said, "), if any."""
    said = text.removeprefix(_AS_I_SAID)
    for j in range(len(earlier) - 1, -1, -1):
        content = earlier[j].content
        paragraphs = [_LABEL.sub("", p.strip()) for p in content.split("\n\n")]
        if any(_same(said, c) for c in (content, *paragraphs)):
            return j
    return None


def _same(a: str, b: str) -> bool:
    return bool(a) and a[:1].lower() + a[1:] == b[:1].lower() + b[1:]


def _figures(turns: list[Judged]) -> tuple[str, dict[str, tuple[int, float, float]]]:
    """The table (with the turns each detector got wrong), and per defect: times planted,
    precision, recall."""
    planted: Counter[str] = Counter()
    flagged: Counter[str] = Counter()
    found: Counter[str] = Counter()  # planted and flagged
    right: Counter[str] = Counter()  # flagged and genuinely carrying it
    wrong: list[str] = []
    for turn in turns:
        for kind in DEFECT_KINDS:
            hit = bool(turn.flags & set(FLAGS[kind]))
            planted[kind] += turn.planted == kind
            flagged[kind] += hit
            found[kind] += hit and turn.planted == kind
            right[kind] += hit and kind in turn.genuine
            if hit != (kind in turn.genuine) and (hit or turn.planted == kind):
                what = "flagged, not carried" if hit else "missed"
                wrong.append(
                    f"  {kind} {what}: {turn.ref} planted={turn.planted} "
                    f"flags={sorted(turn.flags)} {turn.text[:160]!r}"
                )
    figures = {
        kind: (
            planted[kind],
            right[kind] / flagged[kind] if flagged[kind] else 0.0,
            found[kind] / planted[kind] if planted[kind] else 0.0,
        )
        for kind in DEFECT_KINDS
    }
    clean = sum(1 for t in turns if t.planted is None)
    lines = [
        f"planted defects: {len(turns)} turns, {clean} clean",
        f"{'detector':<16} {'planted':>7} {'flagged':>7} {'precision':>9} {'recall':>6}",
    ]
    lines += [
        f"{kind:<16} {planted[kind]:>7} {flagged[kind]:>7} {p:>9.2f} {r:>6.2f}"
        for kind, (_, p, r) in figures.items()
    ]
    return "\n".join(lines + wrong), figures
