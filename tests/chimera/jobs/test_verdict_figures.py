"""A job's yield and rejections by reason are its rows' verdicts (``conversations.accepted``,
``rejection_reasons``), and its export keeps the accepted ones."""

from __future__ import annotations

import io
import json
from collections import Counter
from typing import Any

from sqlalchemy import insert, text

from chimera.db.tables import Job
from chimera.jobs.export import REJECTED, export_job
from chimera.jobs.figures import FAILED, NO_VERDICT
from chimera.jobs.repository import JobRepository
from tests.chimera.conversation.stored import add_conversation

JOB = "job-00112233445566778899aabb"

#: id -> (status, accepted, reasons, duplicate_of)
ROWS: dict[str, tuple[str, bool | None, list[str], str | None]] = {
    "c-1": ("completed", True, [], None),
    "c-2": ("completed", True, [], None),
    "c-3": ("completed", False, ["low_score"], None),
    "c-4": ("completed", False, ["low_score", "defect:refusal"], None),
    "c-5": ("completed", False, ["near_duplicate"], "c-1"),
    "c-6": ("completed", None, [], None),  # finished before verdicts were stored
    "c-7": ("failed", None, [], None),
    "c-8": ("running", None, [], None),
}


def _stock(db: Any) -> None:
    with db.begin() as conn:
        conn.execute(insert(Job).values(id=JOB, name="verdicts", spec={"min_quality": 0.5}))
    for cid, (status, accepted, reasons, dup) in ROWS.items():
        add_conversation(
            db,
            cid,
            status=status,
            version="quality.v2",
            accepted=accepted,
            reasons=reasons,
            duplicate_of=dup,
        )
    with db.begin() as conn:
        conn.execute(text("UPDATE conversations SET job_id = :j"), {"j": JOB})


def test_yield_and_rejections_by_reason_are_the_rows(db: Any) -> None:
    _stock(db)
    job = JobRepository(db).get(JOB)
    assert job is not None
    fig = job.figures
    with db.connect() as conn:
        rows = conn.execute(
            text("SELECT status, accepted, rejection_reasons FROM conversations WHERE job_id = :j"),
            {"j": JOB},
        ).all()
    accepted = sum(1 for r in rows if r.status == "completed" and r.accepted is True)
    finished = sum(1 for r in rows if r.status in ("completed", "failed"))
    by_reason: Counter[str] = Counter()
    for r in rows:
        if r.status == "completed" and r.accepted is False:
            by_reason.update(r.rejection_reasons)
        elif r.status == "completed" and r.accepted is None:
            by_reason[NO_VERDICT] += 1
        elif r.status == "failed":
            by_reason[FAILED] += 1
    assert fig.accepted == accepted == 2 and fig.finished == finished == 7
    assert fig.yield_ == accepted / finished
    assert fig.rejected == dict(by_reason)
    assert fig.rejected == {
        "low_score": 2,
        "defect:refusal": 1,
        "near_duplicate": 1,
        NO_VERDICT: 1,
        FAILED: 1,
    }
    assert job.as_dict()["figures"]["rejected"] == fig.rejected


def test_the_job_export_keeps_the_accepted_unless_all(db: Any) -> None:
    _stock(db)
    out = io.StringIO()
    report = export_job(db, JOB, out, fmt="openai")
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert sorted(x["metadata"]["id"] for x in lines) == ["c-1", "c-2"]
    assert report.skipped == {REJECTED: 4, FAILED: 1, "not_finished": 1}
    assert report.incomplete == {"not_finished": 1}

    out = io.StringIO()
    every = export_job(db, JOB, out, fmt="sharegpt", include_all=True)
    lineage = {
        (x := json.loads(line))["metadata"]["id"]: x["metadata"]["lineage"]
        for line in out.getvalue().splitlines()
    }
    assert every.written == len(lineage) == 7
    for cid, lin in lineage.items():
        _, accepted, reasons, dup = ROWS[cid]
        assert lin["accepted"] is (accepted is True)
        assert lin["rejection_reasons"] == reasons and lin["duplicate_of"] == dup
