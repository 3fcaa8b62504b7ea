"""The LLM judge: a rubric per sampled conversation, and pairwise checks in both orders.

quality.v2 scores every conversation cheaply; the judge is the expensive check on a
sample (``CHIMERA_JUDGE_SAMPLE_RATE``), chosen by a hash of the conversation id so a
retried finalise makes the same choice.  Its answers are native structured output
(``LLMClient.complete_structured``: one repair attempt).  Its calls are owned by the
conversation judged (``llm_calls``: owner ``conversation``, task ``judge``) and held to
its job's budget, so they count to the job's spend.

A judge never shares a family with a participant: the family of a route is its provider
(``anthropic``, ``google`` for Gemini, ``openai`` for OpenAI and every OpenAI-compatible
endpoint).  A configured judge of a participant's family is refused for that
conversation, with the reason recorded; an unset one is the first configured provider
of another family.

Once per conversation and judge model: the row (``conversation_judgements``) is looked
for before any call, so a retried task pays nothing again for what is recorded.  A task
passes its ids to ``attempt_judgement``, which decides (done, retry, wait), as
``chimera.decisions`` does for turns and analyses.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from chimera.crashes import CrashCounter
from chimera.decisions import RetryLLM, RetryPlumbing, RetryWait, llm_again
from chimera.errors import (
    BudgetExhausted,
    ChimeraError,
    CrashLoop,
    LLMPermanent,
    LLMRetryable,
    ServiceUnavailable,
)
from chimera.llm.client import LLMClient
from chimera.llm.types import CallMeta, LLMRequest, Message
from chimera.models.participants import ModelCatalog, route_of
from chimera.quality import judge_prompts as prompts
from chimera.quality.judge_prompts import PairwiseV1, RubricV1, Subject
from chimera.quality.judge_store import Judgement, JudgeStore
from chimera.settings import Settings

log = logging.getLogger(__name__)

#: The ``task`` of the judge's ``llm_calls`` rows.
JUDGE_TASK = "judge"
#: The route and model recorded when no judge could be chosen.
NO_JUDGE = ""
#: The longest pause before a judge call is tried again.
RETRY_CAP_S = 60.0


def family(route: str) -> str:
    """A route's model family: its provider (every OpenAI-compatible endpoint is ``openai``)."""
    return route.split(":", 1)[0]


def sampled(cid: str, rate: float) -> bool:
    """Whether ``cid`` is in the judged sample: a hash of the id below ``rate``, the same
    answer every time."""
    if rate <= 0:
        return False
    digest = hashlib.sha256(cid.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def to_judge(settings: Settings, cid: str, completed: Callable[[str], bool]) -> bool:
    """Whether the finalised ``cid`` is to be judged: sampled and stored completed."""
    return sampled(cid, settings.judge_sample_rate) and completed(cid)


def judge_task_id(cid: str) -> str:
    """The judge task's id for ``cid``: a re-sent one is the same task."""
    return f"{cid}:judge"


# --- choosing the judge ---------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The judge: a route (``provider`` or ``openai:<endpoint>``) and a model."""

    route: str
    model: str

    @property
    def provider(self) -> str:
        return family(self.route)

    @property
    def endpoint(self) -> str | None:
        return self.route.split(":", 1)[1] if ":" in self.route else None


@dataclass(frozen=True)
class Refusal:
    """No judge for this conversation, and why (recorded as the judgement's reason)."""

    reason: str
    target: Target = Target(NO_JUDGE, NO_JUDGE)


def participant_routes(subject: Subject) -> set[str]:
    """The routes of the conversation's participants and of the turns it holds."""
    routes = {
        route_of(str(p.get("provider")), p.get("endpoint"))
        for p in subject.participants
        if p.get("provider")
    }
    return routes | set(subject.turn_routes)


def default_model(settings: Settings, catalog: ModelCatalog, route: str) -> str | None:
    """The model a judge on ``route`` uses when none is set: the one the settings already
    use there (analysis, then default participants), else the first its catalog allows."""
    if settings.analysis_provider == route:
        return settings.analysis_model
    for p in settings.default_participants:
        if route_of(p.provider, p.endpoint) == route:
            return p.model
    allowed = sorted(catalog.models.get(route, ()))
    return allowed[0] if allowed else None


def choose(settings: Settings, catalog: ModelCatalog, subject: Subject) -> Target | Refusal:
    """The judge of ``subject``: the configured one unless it shares a participant's
    family, else the first configured provider of another family; or why there is none."""
    families = sorted({family(r) for r in participant_routes(subject)})
    if settings.judge_provider is not None:
        route = settings.judge_provider
        model = settings.judge_model or default_model(settings, catalog, route)
        if model is None:
            return Refusal(f"no model for the judge on {route}: set CHIMERA_JUDGE_MODEL")
        target = Target(route, model)
        if family(route) in families:
            return Refusal(
                f"the judge {route}/{model} is of the {family(route)} family, as a participant "
                f"is (participants' families: {', '.join(families)}); a judge must be of "
                "another family: change CHIMERA_JUDGE_PROVIDER",
                target,
            )
        return target
    if settings.judge_model is not None:
        return Refusal("CHIMERA_JUDGE_MODEL is set without CHIMERA_JUDGE_PROVIDER")
    for route in settings.configured_providers:
        if family(route) in families:
            continue
        model = default_model(settings, catalog, route)
        if model is not None:
            return Target(route, model)
    configured = ", ".join(settings.configured_providers) or "none"
    return Refusal(
        f"no configured provider of another family than the participants' "
        f"({', '.join(families)}; configured: {configured}); set CHIMERA_JUDGE_PROVIDER"
    )


# --- pairwise -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """A pairwise check: the better one when asked (a, b) and when asked (b, a), each
    ``a``/``b``/``tie``; the verdict counts only when both agree (else ``inconsistent``),
    and then ``position_bias`` says which position both answers favoured, if one."""

    first: str
    second: str
    verdict: str
    position_bias: str | None


def combine(asked_ab: str, asked_ba: str) -> Comparison:
    """The verdict of the answers (``A``/``B``/``tie``) to the two orders: shown (a, b),
    then shown (b, a)."""
    first = {"A": "a", "B": "b"}.get(asked_ab, "tie")
    second = {"A": "b", "B": "a"}.get(asked_ba, "tie")
    if first == second:
        return Comparison(first, second, first, None)
    bias = {("A", "A"): "first", ("B", "B"): "second"}.get((asked_ab, asked_ba))
    return Comparison(first, second, "inconsistent", bias)


# --- the judge ------------------------------------------------------------------------------


class Judge:
    """Judges stored conversations through the LLM layer and records the verdicts."""

    def __init__(self, settings: Settings, *, llm: LLMClient, store: JudgeStore) -> None:
        self.settings = settings
        self.llm = llm
        self.store = store

    def choose(self, subject: Subject) -> Target | Refusal:
        return choose(self.settings, self.llm.catalog, subject)

    def rubric(self, subject: Subject, target: Target, *, attempt: int = 1) -> RubricV1:
        """The judge's rubric of ``subject`` (one call, or two with the repair)."""
        request = self._request(
            target,
            prompts.RUBRIC_SYSTEM,
            prompts.rubric_question(subject),
            owner=subject,
            step="rubric",
            prompt_ref=prompts.RUBRIC_PROMPT,
        )
        _, answer = self.llm.complete_structured(request, RubricV1, attempt=attempt)
        return answer

    def compare(self, a: Subject, b: Subject, target: Target, *, attempt: int = 1) -> Comparison:
        """Which of ``a`` and ``b`` is better, asked in both orders (two calls, owned by
        ``b``'s conversation and held to its job)."""
        answers = []
        for step, (x, y) in (("pairwise:ab", (a, b)), ("pairwise:ba", (b, a))):
            request = self._request(
                target,
                prompts.PAIRWISE_SYSTEM,
                prompts.pairwise_question(x, y),
                owner=b,
                step=step,
                prompt_ref=prompts.PAIRWISE_PROMPT,
            )
            _, answer = self.llm.complete_structured(request, PairwiseV1, attempt=attempt)
            answers.append(answer.better)
        return combine(answers[0], answers[1])

    def run(self, cid: str, *, attempt: int = 1) -> Judgement | None:
        """Judge the stored conversation ``cid`` once (and compare it with its job's
        previous one when ``CHIMERA_JUDGE_PAIRWISE``); its judgement, or None if it is not
        stored completed.  ``LLMRetryable`` and ``ServiceUnavailable`` propagate."""
        subject = self.store.subject(cid)
        if subject is None:
            log.warning("conversation %s is not stored completed: not judged", cid)
            return None
        choice = self.choose(subject)
        if isinstance(choice, Refusal):
            log.warning("conversation %s not judged: %s", cid, choice.reason)
            return self._record(subject, choice.target, "refused", choice.reason)
        judged = self.store.judgement(cid, choice.route, choice.model)
        if judged is None:
            try:
                rubric = self.rubric(subject, choice, attempt=attempt)
            except BudgetExhausted as exc:
                return self._record(subject, choice, "refused", f"budget_exhausted: {exc}")
            except LLMPermanent as exc:
                return self._record(subject, choice, "failed", f"{type(exc).__name__}: {exc}")
            judged = self.store.record(
                subject,
                choice.route,
                choice.model,
                status="judged",
                prompt_ref=prompts.RUBRIC_PROMPT,
                rubric=rubric.as_stored(),
                overall=rubric.overall_score,
            )
            log.info(
                "conversation %s judged %d/5 by %s/%s",
                cid,
                rubric.overall_score,
                choice.route,
                choice.model,
            )
        if self.settings.judge_pairwise and judged.status == "judged" and subject.job_id:
            self._pairwise(subject, subject.job_id, judged, choice, attempt)
        return judged

    def give_up(self, cid: str, error: ChimeraError) -> Judgement | None:
        """Record the judgement of ``cid`` failed with ``error`` (the first record wins)."""
        subject = self.store.subject(cid)
        if subject is None:
            return None
        choice = self.choose(subject)
        target = choice.target if isinstance(choice, Refusal) else choice
        return self._record(subject, target, "failed", f"{type(error).__name__}: {error}")

    def _pairwise(
        self, subject: Subject, job_id: str, judged: Judgement, target: Target, attempt: int
    ) -> None:
        """Compare ``subject`` with the conversation of its job judged just before it."""
        partner_id = self.store.partner(judged, job_id)
        if partner_id is None:
            return
        if self.store.compared(partner_id, subject.id, target.route, target.model) is not None:
            return
        partner = self.store.subject(partner_id)
        if partner is None:
            return
        try:
            found = self.compare(partner, subject, target, attempt=attempt)
        except (LLMPermanent, BudgetExhausted) as exc:
            log.warning("conversation %s: pairwise check not made: %s", subject.id, exc)
            return
        self.store.record_comparison(
            {
                "conversation_a": partner.id,
                "conversation_b": subject.id,
                "job_id": job_id,
                "judge_provider": target.route,
                "judge_model": target.model,
                "first": found.first,
                "second": found.second,
                "verdict": found.verdict,
                "position_bias": found.position_bias,
            }
        )

    def _record(self, subject: Subject, target: Target, status: str, reason: str) -> Judgement:
        return self.store.record(subject, target.route, target.model, status=status, reason=reason)

    def _request(
        self,
        target: Target,
        system: str,
        question: str,
        *,
        owner: Subject,
        step: str,
        prompt_ref: str,
    ) -> LLMRequest:
        return LLMRequest(
            provider=target.provider,  # type: ignore[arg-type]
            endpoint=target.endpoint,
            model=target.model,
            system=system,
            messages=(Message(role="user", content=question),),
            max_output_tokens=prompts.MAX_OUTPUT_TOKENS,
            meta=CallMeta(
                task=JUDGE_TASK,
                owner_type="conversation",
                owner_id=owner.id,
                step=step,
                prompt_ref=prompt_ref,
                job_id=owner.job_id,
            ),
        )


# --- what a task does next ------------------------------------------------------------------


@dataclass(frozen=True)
class Judged:
    """Done: the judgement recorded (None: the conversation is not stored completed)."""

    judgement: Judgement | None


JudgeDecision = Judged | RetryLLM | RetryWait | RetryPlumbing


def attempt_judgement(
    judge: Judge, cid: str, *, attempt: int = 1, waits: int = 0, crashes: int = 0
) -> JudgeDecision:
    """Judge ``cid`` once (LLM attempt ``attempt``): done, or a retry of what may pass
    (``chimera.decisions.llm_again``, bounded by ``CHIMERA_JUDGE_MAX_RETRIES``; waits are
    no attempt), or plumbing trouble to retry; then the judgement is recorded failed."""
    if CrashCounter.exhausted(crashes):
        crash = CrashLoop(f"the judge of {cid} died with its worker {crashes} times")
        return _give_up(judge, cid, crash)
    try:
        return Judged(judge.run(cid, attempt=attempt))
    except LLMRetryable as exc:
        again = llm_again(
            exc,
            attempt=attempt,
            waits=waits,
            max_retries=judge.settings.judge_max_retries,
            cap_s=RETRY_CAP_S,
            settings=judge.settings,
            subject=f"judge of {cid}",
        )
        return again if again is not None else _give_up(judge, cid, exc)
    except ServiceUnavailable as exc:
        return RetryPlumbing(exc)


def _give_up(judge: Judge, cid: str, error: ChimeraError) -> JudgeDecision:
    try:
        return Judged(judge.give_up(cid, error))
    except ServiceUnavailable as exc:
        return RetryPlumbing(exc)
