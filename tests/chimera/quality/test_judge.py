"""The LLM judge on real Redis and Postgres, its calls through the real SDK clients to the
simulator: the sample, the rubric and its cost to the job, the family rule, pairwise
checks in both orders, paying once, and the per-job agreement."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, select

from chimera.db.tables import (
    Conversation,
    ConversationComparison,
    ConversationJudgement,
    ConversationTurn,
    LLMCall,
)
from chimera.decisions import RetryLLM
from chimera.jobs.budget import NANO, JobBudgets
from chimera.jobs.control import JobControl
from chimera.jobs.figures import figures
from chimera.jobs.repository import JobRepository
from chimera.llm.registry import build_client
from chimera.quality.judge import (
    Judge,
    Judged,
    Target,
    attempt_judgement,
    combine,
    sampled,
    to_judge,
)
from chimera.quality.judge_agreement import judge_figures, spearman
from chimera.quality.judge_prompts import Subject
from chimera.quality.judge_store import JudgeStore
from chimera.redis_client import make_redis

OPENAI = {"provider": "openai", "model": "llama-3.3-70b", "name": "Ana", "persona": "a planner"}
GOOGLE = {"provider": "google", "model": "gemini-3.5-flash", "name": "Ben", "persona": "a grocer"}
ANTHROPIC = {"provider": "anthropic", "model": "claude-haiku-5-5", "name": "Cy"}
TEXTS = (
    "Cars make the centre loud and the air dirty; a ban on Sundays would let us measure it.",
    "My shop lives on drivers. A ban without parking at the edge would cost me half my trade.",
    "Then pair the ban with a park-and-ride and cheaper buses, paid from the parking fees.",
    "That I could live with, if deliveries before ten stay allowed. Good talk, thank you.",
)


def add_conversation(
    db: Any,
    job_id: str | None,
    participants: tuple[dict[str, Any], ...] = (OPENAI, GOOGLE),
    *,
    quality: float = 0.8,
    texts: tuple[str, ...] = TEXTS,
) -> str:
    """A completed conversation row and its turns, stored the way finalise stores them."""
    cid = f"conv-{uuid.uuid4().hex[:24]}"
    speakers = [participants[i % len(participants)] for i in range(len(texts))]
    with db.begin() as conn:
        conn.execute(
            insert(Conversation).values(
                id=cid,
                event_id=f"evt-{cid}",
                topic_title="Should cities ban cars?",
                topic={"title": "Should cities ban cars?", "description": "Urban policy"},
                participants=list(participants),
                min_turns=1,
                max_turns=4,
                status="completed",
                turn_count=len(texts),
                quality_score=quality,
                job_id=job_id,
            )
        )
        conn.execute(
            insert(ConversationTurn),
            [
                {
                    "conversation_id": cid,
                    "turn_index": i,
                    "speaker": p["name"],
                    "provider": p["provider"],
                    "model": p["model"],
                    "content": text,
                }
                for i, (p, text) in enumerate(zip(speakers, texts, strict=True))
            ],
        )
    return cid


def judge_calls(db: Any, llm: Any, cid: str) -> list[Any]:
    """The judge's ``llm_calls`` rows owned by ``cid`` (after ``llm``'s pending writes)."""
    llm.flush()
    with db.connect() as conn:
        return list(
            conn.execute(
                select(LLMCall.__table__)
                .where(
                    LLMCall.owner_type == "conversation",
                    LLMCall.owner_id == cid,
                    LLMCall.task == "judge",
                )
                .order_by(LLMCall.id)
            ).all()
        )


def judgements(db: Any, cid: str) -> list[Any]:
    with db.connect() as conn:
        return list(
            conn.execute(
                select(ConversationJudgement.__table__).where(
                    ConversationJudgement.conversation_id == cid
                )
            ).all()
        )


class Env:
    """A judge on this test's keys and the session's database, held to job budgets."""

    def __init__(self, settings: Any, db: Any, redis: Any) -> None:
        self.settings = settings
        self.db = db
        self.jobs = JobRepository(db)
        self.llm = build_client(settings, redis_client=redis, engine=db)
        self.budgets = JobBudgets(
            redis,
            settings,
            JobControl(redis, settings, self.jobs.control_row),
            self.llm.accountant.prices,
            self.jobs.spent,
        )
        self.llm.spend = self.budgets
        self.judge = Judge(settings, llm=self.llm, store=JudgeStore(db))

    def job(self, budget_usd: float | None = None) -> str:
        job_id = f"job-judge-{uuid.uuid4().hex[:8]}"
        spec: dict[str, Any] = {"name": "j", "participants": [], "min_turns": 1, "max_turns": 4}
        if budget_usd is not None:
            spec["budget_usd"] = budget_usd
        assert self.jobs.create(job_id, spec, [{"title": "Cars"}], 1)
        return job_id

    def conversation(self, job_id: str | None, *args: Any, **kwargs: Any) -> str:
        return add_conversation(self.db, job_id, *args, **kwargs)

    def judge_calls(self, cid: str) -> list[Any]:
        return judge_calls(self.db, self.llm, cid)

    def judgements(self, cid: str) -> list[Any]:
        return judgements(self.db, cid)


@pytest.fixture
def make_env(redis_ns: Any, db: Any, sim_calls: Any) -> Iterator[Callable[..., Env]]:
    made: list[Env] = []
    clients: list[Any] = []

    def make(**overrides: Any) -> Env:
        settings = redis_ns.model_copy(update={"judge_sample_rate": 1.0} | overrides)
        redis = make_redis(settings)
        clients.append(redis)
        env = Env(settings, db, redis)
        made.append(env)
        return env

    yield make
    for env in made:
        env.llm.close()
    for client in clients:
        client.close()


# --- the sample ---------------------------------------------------------------------------------


def test_the_sample_is_a_deterministic_choice_by_conversation_id_at_the_rate(
    redis_ns: Any,
) -> None:
    ids = [f"conv-{i:024x}" for i in range(4_000)]
    assert not any(sampled(c, 0.0) for c in ids)
    assert all(sampled(c, 1.0) for c in ids)
    at_30 = [c for c in ids if sampled(c, 0.3)]
    assert 0.27 < len(at_30) / len(ids) < 0.33
    assert at_30 == [c for c in ids if sampled(c, 0.3)]  # the same choice every time
    assert set(at_30) <= {c for c in ids if sampled(c, 0.5)}  # a higher rate keeps them
    # Finalise asks only when sampled, then whether it is stored completed.
    asked: list[str] = []

    def completed(cid: str) -> bool:
        asked.append(cid)
        return True

    off = redis_ns.model_copy(update={"judge_sample_rate": 0.0})
    on = redis_ns.model_copy(update={"judge_sample_rate": 1.0})
    assert not to_judge(off, ids[0], completed) and asked == []
    assert to_judge(on, ids[0], completed) and asked == [ids[0]]


# --- one judgement ------------------------------------------------------------------------------


def test_a_judged_conversation_gets_a_rubric_and_its_calls_count_to_its_job(
    make_env: Callable[..., Env], sim_calls: Any
) -> None:
    env = make_env()
    job = env.job(budget_usd=5.0)
    cid = env.conversation(job)

    decision = attempt_judgement(env.judge, cid)

    assert isinstance(decision, Judged) and decision.judgement is not None
    (row,) = env.judgements(cid)
    # Participants openai and google: the judge is the first configured other family.
    assert (row.judge_provider, row.judge_model, row.status) == (
        "anthropic",
        "claude-sonnet-5-5",
        "judged",
    )
    assert row.job_id == job and row.prompt_ref == "judge.rubric.v1"
    assert 1 <= row.overall <= 5 and row.rubric["overall_score"] == row.overall
    for key in ("helpfulness_score", "coherence_score", "faithfulness_score"):
        assert 1 <= row.rubric[key] <= 5
    assert row.rubric["rationale"]
    calls = env.judge_calls(cid)
    assert calls and all(c.status == "ok" and c.provider == "anthropic" for c in calls)
    assert sim_calls.calls().count(provider="anthropic") == len(calls)
    cost = sum((c.cost_usd for c in calls), Decimal(0))
    assert cost > 0
    # The job's spend is its conversations' llm_calls: the judge's are among them.
    with env.db.connect() as conn:
        fig = figures(conn, job)
    assert fig.cost_usd == cost and fig.llm_calls == len(calls)
    assert fig.judge is not None and fig.judge.judged == 1
    assert fig.judge.cost_usd == pytest.approx(float(cost))
    assert fig.as_dict()["judge"]["mean_overall"] == row.overall
    # ... and its budget guard held and settled them.
    spend = env.budgets.figures(job)
    assert spend is not None and spend.reserved == 0
    assert Decimal(spend.spent) / NANO == pytest.approx(cost, abs=Decimal("0.000001"))


def test_a_job_without_budget_left_gets_no_judge_call(
    make_env: Callable[..., Env], sim_calls: Any
) -> None:
    env = make_env()
    job = env.job(budget_usd=0.000001)
    cid = env.conversation(job)

    attempt_judgement(env.judge, cid)

    (row,) = env.judgements(cid)
    assert row.status == "refused" and row.reason.startswith("budget_exhausted")
    assert sim_calls.calls().count() == 0 and env.judge_calls(cid) == []


# --- the family rule ----------------------------------------------------------------------------


def test_a_configured_judge_of_a_participants_family_is_refused_with_its_reason(
    make_env: Callable[..., Env], sim_calls: Any
) -> None:
    env = make_env(judge_provider="google", judge_model="gemini-3.1-flash-lite")
    cid = env.conversation(env.job())  # openai and google take part

    assert isinstance(attempt_judgement(env.judge, cid), Judged)

    (row,) = env.judgements(cid)
    assert (row.status, row.judge_provider, row.judge_model) == (
        "refused",
        "google",
        "gemini-3.1-flash-lite",
    )
    assert "of the google family, as a participant" in row.reason
    assert "CHIMERA_JUDGE_PROVIDER" in row.reason
    assert row.overall is None and row.rubric is None
    assert sim_calls.calls().count() == 0 and env.judge_calls(cid) == []


def test_with_every_family_taking_part_no_judge_is_chosen(
    make_env: Callable[..., Env], sim_calls: Any
) -> None:
    env = make_env()
    cid = env.conversation(env.job(), (OPENAI, GOOGLE, ANTHROPIC))

    attempt_judgement(env.judge, cid)

    (row,) = env.judgements(cid)
    assert row.status == "refused" and (row.judge_provider, row.judge_model) == ("", "")
    assert "no configured provider of another family" in row.reason
    assert sim_calls.calls().count() == 0


def test_a_configured_judge_of_another_family_is_used(
    make_env: Callable[..., Env], sim_calls: Any
) -> None:
    env = make_env(judge_provider="anthropic", judge_model="claude-haiku-5-5")
    cid = env.conversation(env.job())

    attempt_judgement(env.judge, cid)

    (row,) = env.judgements(cid)
    assert (row.status, row.judge_model) == ("judged", "claude-haiku-5-5")
    assert sim_calls.calls().count(model="claude-haiku-5-5") == len(env.judge_calls(cid)) >= 1


# --- pairwise -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("asked_ab", "asked_ba", "verdict", "bias"),
    [
        ("A", "B", "a", None),  # a both times
        ("B", "A", "b", None),  # b both times
        ("tie", "tie", "tie", None),
        ("A", "A", "inconsistent", "first"),  # whichever came first
        ("B", "B", "inconsistent", "second"),
        ("A", "tie", "inconsistent", None),
    ],
)
def test_a_pairwise_verdict_counts_only_when_both_orders_agree(
    asked_ab: str, asked_ba: str, verdict: str, bias: str | None
) -> None:
    found = combine(asked_ab, asked_ba)
    assert (found.verdict, found.position_bias) == (verdict, bias)


def test_pairwise_checks_ask_both_orders_and_feed_the_jobs_agreement(
    make_env: Callable[..., Env], sim_calls: Any
) -> None:
    env = make_env(judge_pairwise=True)
    job = env.job()
    first = env.conversation(job, quality=0.9)
    second = env.conversation(job, quality=0.4, texts=TEXTS[:2])

    attempt_judgement(env.judge, first)  # nothing earlier to compare with
    attempt_judgement(env.judge, second)

    steps = [c.step for c in env.judge_calls(second)]
    assert steps.count("pairwise:ab") == 1 and steps.count("pairwise:ba") == 1  # both orders
    assert [c.step for c in env.judge_calls(first)] == ["rubric"]
    # Two rubrics and one pairwise check of two calls.
    assert sim_calls.calls().count(model="claude-sonnet-5-5") == 4
    with env.db.connect() as conn:
        (cmp,) = conn.execute(select(ConversationComparison.__table__)).all()
        fig = judge_figures(conn, job)
    assert (cmp.conversation_a, cmp.conversation_b, cmp.job_id) == (first, second, job)
    assert cmp.verdict == combine(*_answers(cmp)).verdict
    assert fig is not None and fig.judged == 2 and fig.pairwise_checks == 1
    assert fig.pairwise_consistent == (1 if cmp.verdict in ("a", "b") else 0)
    if cmp.verdict in ("a", "b"):
        assert fig.pairwise_agreement == (1.0 if cmp.verdict == "a" else 0.0)
    else:
        assert fig.pairwise_agreement is None

    # Asked again (a retried task): nothing new is paid for.
    before = sim_calls.calls().count()
    attempt_judgement(env.judge, second)
    assert sim_calls.calls().count() == before


def _answers(cmp: Any) -> tuple[str, str]:
    """The raw answers (A/B/tie) behind a stored comparison's per-order choices."""
    ab = {"a": "A", "b": "B"}.get(cmp.first, "tie")
    ba = {"b": "A", "a": "B"}.get(cmp.second, "tie")
    return ab, ba


def test_compare_makes_two_calls_owned_by_the_second_conversation(
    make_env: Callable[..., Env], sim_calls: Any
) -> None:
    env = make_env()
    job = env.job()
    a, b = env.conversation(job), env.conversation(job, texts=TEXTS[1:])
    store = JudgeStore(env.db)
    sa, sb = store.subject(a), store.subject(b)
    assert isinstance(sa, Subject) and isinstance(sb, Subject)
    target = env.judge.choose(sb)
    assert isinstance(target, Target)

    found = env.judge.compare(sa, sb, target)

    assert found.verdict in ("a", "b", "tie", "inconsistent")
    assert [c.step for c in env.judge_calls(b)] == ["pairwise:ab", "pairwise:ba"]
    assert env.judge_calls(a) == []
    assert sim_calls.calls().count() == 2


# --- paying once --------------------------------------------------------------------------------


def test_a_retried_judge_pays_once(make_env: Callable[..., Env], sim_calls: Any) -> None:
    env = make_env()
    cid = env.conversation(env.job())
    sim_calls.add_fault("server_error", count=1, provider="anthropic")

    retry = attempt_judgement(env.judge, cid, attempt=1)
    assert isinstance(retry, RetryLLM)  # the LLM may answer next time
    assert env.judgements(cid) == []

    done = attempt_judgement(env.judge, cid, attempt=2)
    again = attempt_judgement(env.judge, cid, attempt=2)  # a duplicate delivery

    assert isinstance(done, Judged) and isinstance(again, Judged)
    assert len(env.judgements(cid)) == 1
    calls = env.judge_calls(cid)
    assert [c.status for c in calls] == ["error", "ok"]  # the failed try, then one paid call
    assert calls[0].cost_usd == 0
    assert sim_calls.calls().count(provider="anthropic") == 2


def test_the_judge_task_run_twice_records_one_judgement_and_pays_once(
    db: Any, sim_calls: Any
) -> None:
    from tasks.judge import judge
    from tasks.runtime import runtime

    llm = runtime().llm  # the worker's own, on the session's settings
    cid = add_conversation(db, None)

    judge.apply(args=(cid,))
    first = [c.id for c in judge_calls(db, llm, cid)]
    judge.apply(args=(cid,))

    (row,) = judgements(db, cid)
    assert row.status == "judged"
    assert [c.id for c in judge_calls(db, llm, cid)] == first and len(first) >= 1
    assert sim_calls.calls().count() == len(first)


def test_a_conversation_not_stored_completed_is_not_judged(
    make_env: Callable[..., Env], sim_calls: Any
) -> None:
    env = make_env()
    assert attempt_judgement(env.judge, "conv-missing") == Judged(None)
    assert sim_calls.calls().count() == 0


# --- agreement ----------------------------------------------------------------------------------


def test_spearman_ranks_with_ties_and_needs_three_varied_pairs() -> None:
    assert spearman([1, 2, 3, 4], [0.1, 0.2, 0.3, 0.9]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [0.9, 0.5, 0.3, 0.1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [0.1, 0.3, 0.2, 0.4]) == pytest.approx(0.9486833)
    assert spearman([1, 2], [0.1, 0.2]) is None
    assert spearman([3, 3, 3], [0.1, 0.2, 0.3]) is None


def test_the_jobs_agreement_compares_the_judges_overall_with_the_stored_score(
    make_env: Callable[..., Env],
) -> None:
    env = make_env()
    job = env.job()
    store = JudgeStore(env.db)
    for overall, quality in ((2, 0.3), (3, 0.5), (5, 0.9), (4, 0.7)):
        subject = store.subject(env.conversation(job, quality=quality))
        assert subject is not None
        store.record(
            subject, "anthropic", "claude-sonnet-5-5", status="judged", rubric={}, overall=overall
        )
    refused = store.subject(env.conversation(job))
    assert refused is not None
    store.record(refused, "google", "g", status="refused", reason="same family")

    with env.db.connect() as conn:
        fig = judge_figures(conn, job)
        nothing = judge_figures(conn, env.job())

    assert fig is not None and nothing is None
    assert (fig.judged, fig.refused, fig.failed) == (4, 1, 0)
    assert fig.mean_overall == 3.5 and fig.spearman == pytest.approx(1.0)
    assert fig.pairwise_checks == 0 and fig.pairwise_agreement is None
