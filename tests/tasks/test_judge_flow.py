"""The LLM judge through a real worker: every sampled conversation a finalise completes is
judged once by a model of another family (its calls owned by the conversation and seen
by the simulator as structured output requests to that model), the job's next one is
compared with it in both orders, a re-delivered judge task pays nothing more, and a
judge of a participant's family is refused without a call."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import insert, select

from chimera.db.tables import ConversationComparison, ConversationJudgement, Job, LLMCall
from chimera.events.ids import job_event_id
from chimera.jobs.figures import figures
from chimera.quality.judge import judge_task_id
from tests.helpers import wait_for
from tests.tasks.conftest import Flow
from tests.tasks.test_conversation_faults import accept, start_on

TURNS = 2
PARTICIPANTS = [
    {"provider": "anthropic", "model": "claude-sonnet-5-5", "name": "Ana", "persona": "a planner"},
    {"provider": "google", "model": "gemini-3.5-flash", "name": "Ben", "persona": "a grocer"},
]
JUDGE = ("openai", "llama-3.3-70b")
RUBRIC_KEYS = {
    "helpfulness_score",
    "coherence_score",
    "faithfulness_score",
    "naturalness_score",
    "defects",
    "overall_score",
    "rationale",
}


def judge_env(provider: str, model: str, *, pairwise: bool) -> dict[str, str]:
    return {
        "CHIMERA_JUDGE_SAMPLE_RATE": "1",
        "CHIMERA_JUDGE_PROVIDER": provider,
        "CHIMERA_JUDGE_MODEL": model,
        "CHIMERA_JUDGE_PAIRWISE": "true" if pairwise else "false",
    }


def judgements(flow: Flow, cid: str) -> list[Any]:
    with flow.engine.connect() as conn:
        return list(
            conn.execute(
                select(ConversationJudgement.__table__).where(
                    ConversationJudgement.conversation_id == cid
                )
            )
        )


def comparisons(flow: Flow) -> list[Any]:
    with flow.engine.connect() as conn:
        return list(conn.execute(select(ConversationComparison.__table__)))


def judge_calls(flow: Flow, cid: str) -> list[Any]:
    with flow.engine.connect() as conn:
        return list(
            conn.execute(
                select(LLMCall.__table__)
                .where(LLMCall.owner_id == cid, LLMCall.task == "judge")
                .order_by(LLMCall.id)
            )
        )


def judged(flow: Flow, cid: str) -> Any:
    """The conversation's one judgement, once its judge task recorded it."""
    rows = wait_for(lambda: judgements(flow, cid), timeout_s=60, what=f"{cid}'s judgement")
    (row,) = rows
    return row


def structured_requests(sim_calls: Any, provider: str, model: str) -> list[Any]:
    """The simulator's requests to ``model`` that asked for structured output."""
    return [
        c
        for c in sim_calls.calls().calls
        if c.provider == provider
        and c.model == model
        and c.body is not None
        and c.body.get("response_format", {}).get("type") == "json_schema"
    ]


def job_event(flow: Flow, job: str, position: int) -> dict[str, Any]:
    return flow.event(
        event_id=job_event_id(job, position),
        job_id=job,
        metadata={"job_id": job},
        participants=PARTICIPANTS,
        min_turns=TURNS,
        max_turns=TURNS,
    )


def successes(worker: Any, task_id: str) -> int:
    """How many runs of the task ``task_id`` the worker logged as succeeded."""
    return sum(
        1
        for line in worker.log().splitlines()
        if f"chimera.quality.judge[{task_id}]" in line and "succeeded" in line
    )


@pytest.mark.subprocess_worker
def test_a_job_s_conversations_are_judged_once_by_another_family_and_compared(
    flow: Flow, sim_calls: Any, worker_process: Any
) -> None:
    sim_calls.configure(record_bodies=True)
    worker = worker_process(env=judge_env(*JUDGE, pairwise=True))
    job = f"job-{uuid.uuid4().hex[:24]}"
    with flow.engine.begin() as conn:
        conn.execute(insert(Job).values(id=job, name="judged", spec={}, status="running"))

    # One after the other: the second is compared with the first, judged before it.
    cids = []
    for position in range(2):
        event = job_event(flow, job, position)
        cids.append(accept(flow, event))
        start_on(flow, worker, event)
        flow.wait(cids[-1])
        judged(flow, cids[-1])
    first, second = cids
    (comparison,) = wait_for(lambda: comparisons(flow), timeout_s=60, what="the pairwise check")

    for cid in cids:
        row = judged(flow, cid)
        assert (row.judge_provider, row.judge_model) == JUDGE
        assert row.status == "judged" and row.job_id == job and row.reason is None
        assert 1 <= row.overall <= 5 and row.rubric["overall_score"] == row.overall
        assert set(row.rubric) >= RUBRIC_KEYS
    assert (comparison.conversation_a, comparison.conversation_b) == (first, second)
    assert (comparison.judge_provider, comparison.judge_model) == JUDGE
    assert comparison.job_id == job
    assert comparison.verdict in {"a", "b", "tie", "inconsistent"}

    # The judge's calls: the first's rubric; the second's rubric and the check both ways,
    # owned by the later conversation.
    flow.llm_calls(first, count=TURNS + 1)
    flow.llm_calls(second, count=TURNS + 3)
    assert [c.step for c in judge_calls(flow, first)] == ["rubric"]
    steps = sorted(c.step for c in judge_calls(flow, second))
    assert steps == ["pairwise:ab", "pairwise:ba", "rubric"]
    for call in judge_calls(flow, first) + judge_calls(flow, second):
        assert (call.provider, call.model, call.status) == (*JUDGE, "ok")
        assert call.owner_type == "conversation" and call.prompt_ref.startswith("judge.")
    # ... and count to the job (its figures derive from its conversations' calls).
    with flow.engine.connect() as conn:
        fig = figures(conn, job)
    assert fig.llm_calls == 2 * TURNS + 4
    assert fig.judge is not None and (fig.judge.judged, fig.judge.pairwise_checks) == (2, 1)
    # The simulator saw those four structured requests to the judge's model and no more.
    calls = sim_calls.calls()
    assert len(structured_requests(sim_calls, *JUDGE)) == calls.count(*JUDGE) == 4
    assert calls.total == 2 * TURNS + 4

    # A re-delivered judge task (same id, same args) pays nothing more.
    task_id = judge_task_id(second)
    wait_for(lambda: successes(worker, task_id) == 1, timeout_s=30, what="the judge's log line")
    flow.app.send_task(
        "chimera.quality.judge",
        args=[second],
        task_id=task_id,
        queue=worker.settings.celery_queue,
        ignore_result=True,
    )
    wait_for(lambda: successes(worker, task_id) == 2, timeout_s=60, what="the re-delivered judge")
    assert sim_calls.calls().total == 2 * TURNS + 4
    assert len(judge_calls(flow, second)) == 3
    assert len(judgements(flow, second)) == 1 and len(comparisons(flow)) == 1


@pytest.mark.subprocess_worker
def test_a_judge_of_a_participant_s_family_is_refused_without_a_call(
    flow: Flow, sim_calls: Any, worker_process: Any
) -> None:
    worker = worker_process(env=judge_env("google", "gemini-3.5-flash", pairwise=False))
    event = flow.event(participants=PARTICIPANTS, min_turns=TURNS, max_turns=TURNS)
    cid = accept(flow, event)
    start_on(flow, worker, event)
    flow.wait(cid)

    row = judged(flow, cid)
    assert (row.judge_provider, row.judge_model) == ("google", "gemini-3.5-flash")
    assert row.status == "refused" and row.overall is None and row.rubric is None
    assert "google family" in row.reason and "CHIMERA_JUDGE_PROVIDER" in row.reason
    flow.llm_calls(cid, count=TURNS)
    assert judge_calls(flow, cid) == []
    assert sim_calls.calls().total == TURNS
