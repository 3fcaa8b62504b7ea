"""The LLM judge's task: one conversation's rubric (and pairwise check), once.

An adapter: the conversation id in, one call to ``chimera.quality.judge.attempt_judgement``
that decides, Celery out.  Its id is derived from the conversation
(``judge_task_id``), and the judgement row is looked for before any call, so a re-sent
or retried task pays nothing again for what is recorded.
"""

from __future__ import annotations

from celery import Celery, Task, shared_task

from chimera.decisions import RetryLLM, RetryPlumbing, RetryWait
from chimera.quality.judge import Judge, Judged, attempt_judgement, judge_task_id
from chimera.quality.judge_store import JudgeStore
from tasks.policy import counted_run, llm_task_retry, plumbing_retry
from tasks.runtime import runtime


# max_retries=None: CHIMERA_JUDGE_MAX_RETRIES bounds the LLM retries, not Celery's 3.
@shared_task(
    name="chimera.quality.judge",
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=None,
)
def judge(self: Task, conversation_id: str, attempt: int = 1, waits: int = 0) -> None:
    """Judge one stored conversation and record the verdict."""
    rt = runtime()
    with counted_run(self, rt.crashes) as crashes:
        decision = attempt_judgement(
            Judge(rt.settings, llm=rt.llm, store=JudgeStore(rt.engine)),
            conversation_id,
            attempt=attempt,
            waits=waits,
            crashes=crashes,
        )
        match decision:
            case Judged():
                return
            case RetryLLM() | RetryWait():
                retry = llm_task_retry(
                    self, decision, (conversation_id,), attempt=attempt, waits=waits
                )
                raise retry from decision.error
            case RetryPlumbing(error=exc):
                raise plumbing_retry(self, exc) from exc


def send_judge(app: Celery, conversation_id: str) -> None:
    """Enqueue the judge of ``conversation_id`` (the same task id every time)."""
    app.send_task(
        "chimera.quality.judge",
        args=[conversation_id],
        task_id=judge_task_id(conversation_id),
        ignore_result=True,
    )
