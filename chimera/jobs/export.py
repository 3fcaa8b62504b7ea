"""Exporting a job as a dataset: its conversations as JSON lines, each with its lineage,
and the figures for its card (``chimera.jobs.card``).

The job's conversations stream in ``(created_at, id)`` order, one keyset page at a time
(``PAGE_SIZE`` conversations, their turns and their LLM calls' sums per round trip), so
a job of any size is never held whole.  Each conversation is exported or skipped, and a
skip is counted by its reason:

- ``rejected``, ``failed``: not accepted (the verdict finalise stored; ``include_all``
  exports every finished conversation instead, failed and rejected ones included, each
  line's ``metadata.lineage`` carrying ``accepted``, ``rejection_reasons`` and
  ``duplicate_of``);
- ``not_finished``: still pending or running (the job has not settled);
- ``unreadable``: its stored form no longer validates, the driver cannot decode it (JSON
  nested too deeply, a number of too many digits: the rest of its page is still read) or
  it holds no Unicode text (logged, with the reason).

Whatever text a row holds (line breaks in an id, control characters), each record is one
line of valid UTF-8 JSON (``chimera.conversation.export.jsonl_line``).

``ExportReport.incomplete`` names the skips that are not the acceptance filter: the
command exits 1 when there are any (the file then lacks conversations it should hold).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, TextIO

from sqlalchemy import Connection, Engine, Row, func, select, tuple_

from chimera.conversation.export import (
    UNREADABLE,
    UnreadableRow,
    jsonl_line,
    read_page,
    read_turns,
    record_of,
)
from chimera.conversation.formats import FORMATS, Format
from chimera.db.errors import database_errors
from chimera.db.tables import Conversation, LLMCall
from chimera.errors import NotFound
from chimera.jobs.card import CardHeader, CardStats, render
from chimera.jobs.figures import FAILED
from chimera.jobs.repository import JobRepository, StoredJob

log = logging.getLogger(__name__)

#: Conversations fetched per round trip.
PAGE_SIZE: Final = 200
NOT_FINISHED: Final = "not_finished"
#: A completed conversation that was not accepted (its reasons are in the job's figures).
REJECTED: Final = "rejected"
#: Skips that are the acceptance filter at work, not a gap in the export.
ACCEPTANCE_FILTER: Final = frozenset({REJECTED, FAILED})


@dataclass
class ExportReport:
    job: StoredJob
    fmt: str
    include_all: bool
    written: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    stats: CardStats = field(default_factory=CardStats)

    @property
    def incomplete(self) -> dict[str, int]:
        """Skips for a reason other than the acceptance filter."""
        return {r: n for r, n in self.skipped.items() if r not in ACCEPTANCE_FILTER}

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def card(self) -> str:
        """The dataset card (Markdown)."""
        job = self.job
        head = CardHeader(
            job_id=job.id,
            name=job.name,
            status=job.status,
            spec=job.spec,
            created_at=job.created_at,
            figures=job.figures,
            fmt=self.fmt,
            include_all=self.include_all,
            skipped=dict(self.skipped),
        )
        return render(head, self.stats)


@dataclass(frozen=True)
class _Calls:
    cost_usd: Decimal
    count: int
    prompt_versions: list[str]


def export_job(
    engine: Engine,
    job_id: str,
    out: TextIO,
    *,
    fmt: Format,
    include_all: bool = False,
    page_size: int = PAGE_SIZE,
) -> ExportReport:
    """Write ``job_id``'s accepted conversations (every finished one with ``include_all``)
    to ``out``, one JSON line each with ``metadata.lineage``; ``NotFound`` if no such job."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if page_size < 1:
        raise ValueError(f"page_size must be positive, got {page_size}")
    # Read first: conversations finishing during the export are skipped as not finished,
    # and the card's figures are those of this moment.
    job = JobRepository(engine).get(job_id)
    if job is None:
        raise NotFound(f"no such job: {job_id[:80]!r}")
    report = ExportReport(job, fmt, include_all)
    after: tuple[datetime, str] | None = None
    while True:
        rows, turns, calls = _page(engine, job_id, after, page_size)
        for row in rows:
            if isinstance(row, UnreadableRow):
                report.skip(UNREADABLE)
                continue
            reason = _skip_reason(row, include_all)
            if reason is not None:
                report.skip(reason)
                continue
            _export_one(report, out, row, turns.get(row.id, []), calls.get(row.id))
        if len(rows) < page_size:
            return report
        after = (rows[-1].created_at, rows[-1].id)


def _skip_reason(row: Row[Any], include_all: bool) -> str | None:
    if row.status not in ("completed", "failed"):
        return NOT_FINISHED
    if include_all:
        return None
    if row.status == "failed":
        return FAILED
    if row.accepted is not True:
        return REJECTED
    return None


def _export_one(
    report: ExportReport,
    out: TextIO,
    row: Row[Any],
    turns: list[dict[str, Any]],
    calls: _Calls | None,
) -> None:
    calls = calls or _Calls(Decimal(0), 0, [])
    lineage = lineage_of(report.job, row, calls)
    record = record_of(row, turns, lineage)
    line = None if record is None else jsonl_line(record, report.fmt)  # type: ignore[arg-type]
    if line is None:
        report.skip(UNREADABLE)
        return
    out.write(line)
    report.written += 1
    report.stats.add(
        turns=turns,
        participants=[p for p in row.participants or () if isinstance(p, dict)],
        prompt_versions=calls.prompt_versions,
        score=row.quality_score,
        cost_usd=calls.cost_usd,
        created_at=row.created_at,
    )


def lineage_of(job: StoredJob, row: Row[Any], calls: _Calls) -> dict[str, Any]:
    """Where one exported conversation came from (``metadata.lineage``)."""
    meta = row.metadata if isinstance(row.metadata, dict) else {}
    participants = [p for p in row.participants or () if isinstance(p, dict)]
    reasons = row.rejection_reasons if isinstance(row.rejection_reasons, list) else []
    out: dict[str, Any] = {
        "job_id": job.id,
        "job_name": job.name,
        "conversation_id": row.id,
        "status": row.status,
        "accepted": row.status == "completed" and row.accepted is True,
        "rejection_reasons": [str(r) for r in reasons],
        "duplicate_of": row.duplicate_of,
        "models": [f"{p.get('provider')}/{p.get('model')}" for p in participants],
        "personas": [p.get("persona") for p in participants],
        "prompt_versions": calls.prompt_versions,
        "cost_usd": float(calls.cost_usd),
        "llm_calls": calls.count,
        "quality_score": row.quality_score,
    }
    for key, name in (("job_position", "position"), ("job_cycle", "cycle"), ("seed", "seed")):
        if key in meta:
            out[name] = meta[key]
    return out


def _page(
    engine: Engine, job_id: str, after: tuple[datetime, str] | None, size: int
) -> tuple[Sequence[Row[Any] | UnreadableRow], dict[str, list[dict[str, Any]]], dict[str, _Calls]]:
    c = Conversation
    query = select(c.__table__).where(c.job_id == job_id)
    if after is not None:
        query = query.where(tuple_(c.created_at, c.id) > tuple_(*after))
    query = query.order_by(c.created_at, c.id).limit(size)
    with (
        database_errors("cannot read a job's conversations", job_id=job_id),
        engine.connect() as conn,
    ):
        rows = read_page(conn, query)
        ids = [r.id for r in rows if not isinstance(r, UnreadableRow)]
        return rows, read_turns(conn, ids), _calls(conn, ids)


def _calls(conn: Connection, ids: list[str]) -> dict[str, _Calls]:
    """Per conversation: the sum of its LLM calls' cost, their number, the prompt versions."""
    if not ids:
        return {}
    rows = conn.execute(
        select(
            LLMCall.owner_id,
            func.coalesce(func.sum(LLMCall.cost_usd), 0),
            func.count(),
            func.array_remove(func.array_agg(LLMCall.prompt_ref.distinct()), None),
        )
        .where(LLMCall.owner_type == "conversation", LLMCall.owner_id.in_(ids))
        .group_by(LLMCall.owner_id)
    ).all()
    return {
        str(owner): _Calls(Decimal(cost), int(n), sorted(refs or ()))
        for owner, cost, n, refs in rows
    }
