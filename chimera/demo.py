"""The demo: sample topics and texts through Kafka, live progress, then what came out.

It drives the running stack exactly as a producer would (events on
`conversation.new` and `analysis.tasks`) and reads the results where users read
them (Postgres, the export).  Progress is read from the stores, so it shows what
the workers really did: conversations done, LLM calls, tokens and cost.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from chimera.codec import encode
from chimera.conversation.export import export_conversations
from chimera.events.ids import conversation_id, run_id
from chimera.kafka.clients import make_producer, publish
from chimera.models import AnalysisTask, ConversationRequest
from chimera.settings import Settings

SAMPLES = Path(__file__).resolve().parent / "data" / "demo"

Echo = Callable[[str], None]

#: Speaker names for the default participants (the transcript reads better than model ids).
NAMES = {"anthropic": "Claude", "google": "Gemini", "openai": "GPT"}


def load_samples() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The topics and texts shipped with the project."""
    topics = json.loads((SAMPLES / "topics.json").read_text(encoding="utf-8"))
    texts = json.loads((SAMPLES / "texts.json").read_text(encoding="utf-8"))
    return topics, texts


@dataclass
class Progress:
    total: int
    completed: int = 0
    failed: int = 0
    turns: int = 0
    llm_calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    llm_failures: int = 0
    analyses: int = 0
    analyses_total: int = 0

    @property
    def finished(self) -> int:
        return self.completed + self.failed

    def line(self, width: int = 24) -> str:
        filled = round(width * self.finished / self.total) if self.total else width
        bar = "#" * filled + "-" * (width - filled)
        return (
            f"[{bar}] {self.finished}/{self.total} conversations"
            f" | {self.turns} turns | {self.llm_calls} LLM calls | {self.tokens:,} tokens"
            f" | ${self.cost_usd:.4f} | {self.failed + self.llm_failures} failures"
            f" | analyses {self.analyses}/{self.analyses_total}"
        )


@dataclass
class Submitted:
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    conversations: dict[str, str] = field(default_factory=dict)  # id -> title
    runs: dict[str, str] = field(default_factory=dict)  # run id -> context id

    @property
    def owners(self) -> list[str]:
        return [*self.conversations, *self.runs]


class Demo:
    def __init__(self, settings: Settings, engine: Engine, *, echo: Echo = print) -> None:
        self.settings = settings
        self.engine = engine
        self.echo = echo
        self.tag = secrets.token_hex(3)
        self.submitted = Submitted()

    # --- input -------------------------------------------------------------------------

    def submit(self, topics: list[dict[str, Any]], texts: list[dict[str, Any]]) -> None:
        """Publish one conversation per topic and one analysis per text, through Kafka."""
        s = self.settings
        producer = make_producer(s)
        try:
            futures = []
            participants = [
                p.model_dump(exclude_none=True) | {"name": p.name or NAMES.get(p.provider, p.model)}
                for p in s.default_participants
            ]
            for i, topic in enumerate(topics):
                request = ConversationRequest.model_validate(
                    {
                        "event_id": f"demo-{self.tag}-c{i}",
                        "topic": topic,
                        "min_turns": 5,
                        "participants": participants,
                    }
                )
                cid = conversation_id(request.event_id)
                self.submitted.conversations[cid] = request.topic.title
                futures.append(
                    publish(producer, s.topic_conversation_new, request.event_id, encode(request))
                )
            for i, item in enumerate(texts):
                task = AnalysisTask.model_validate({"event_id": f"demo-{self.tag}-a{i}"} | item)
                self.submitted.runs[run_id(task.event_id)] = task.context_id
                futures.append(
                    publish(producer, s.topic_analysis_tasks, task.context_id, encode(task))
                )
            for future in futures:
                future.get(timeout=30)
        finally:
            producer.close(timeout=10)

    def submit_context_analysis(self, cid: str) -> str:
        """Analyse a stored conversation by its id (no segments); returns the run id."""
        producer = make_producer(self.settings)
        try:
            task = AnalysisTask(event_id=f"demo-{self.tag}-ctx", context_id=cid)
            publish(producer, self.settings.topic_analysis_tasks, cid, encode(task)).get(timeout=30)
        finally:
            producer.close(timeout=10)
        rid = run_id(task.event_id)
        self.submitted.runs[rid] = cid
        return rid

    # --- progress ----------------------------------------------------------------------

    def progress(self) -> Progress:
        cids = list(self.submitted.conversations)
        p = Progress(total=len(cids), analyses_total=len(self.submitted.runs))
        with self.engine.connect() as conn:
            for status, n in conn.execute(
                text("SELECT status, count(*) FROM conversations WHERE id = ANY(:ids) GROUP BY 1"),
                {"ids": cids},
            ):
                if status == "completed":
                    p.completed = n
                elif status == "failed":
                    p.failed = n
            calls = conn.execute(
                text(
                    "SELECT count(*) FILTER (WHERE owner_type = 'conversation' AND status = 'ok'),"
                    " count(*), coalesce(sum(input_tokens + output_tokens), 0),"
                    " coalesce(sum(cost_usd), 0), count(*) FILTER (WHERE status <> 'ok')"
                    " FROM llm_calls WHERE owner_id = ANY(:ids)"
                ),
                {"ids": self.submitted.owners},
            ).one()
            p.turns, p.llm_calls, p.tokens, cost, p.llm_failures = calls
            p.cost_usd = float(cost)
            p.analyses = conn.execute(
                text("SELECT count(*) FROM analysis_runs WHERE id = ANY(:ids)"),
                {"ids": list(self.submitted.runs)},
            ).scalar_one()
        return p

    def wait(self, done: Callable[[Progress], bool], *, timeout_s: float) -> Progress:
        """Show progress until ``done`` or the timeout; one line, redrawn on a terminal."""
        tty = sys.stdout.isatty()
        deadline = time.monotonic() + timeout_s
        last_print = 0.0
        while True:
            progress = self.progress()
            finished = done(progress)
            now = time.monotonic()
            if tty:
                sys.stdout.write("\r" + progress.line() + ("\n" if finished else ""))
                sys.stdout.flush()
            elif finished or now - last_print >= 5:
                self.echo(progress.line())
                last_print = now
            if finished:
                return progress
            if now > deadline:
                if tty:
                    sys.stdout.write("\n")
                self.echo(f"timed out after {timeout_s:.0f}s; showing what finished")
                return progress
            time.sleep(0.5)

    # --- output ------------------------------------------------------------------------

    def conversations(self) -> list[Any]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    text(
                        "SELECT id, topic_title, turn_count, quality_score, accepted,"
                        " rejection_reasons, status"
                        " FROM conversations WHERE id = ANY(:ids) ORDER BY created_at, id"
                    ),
                    {"ids": list(self.submitted.conversations)},
                )
            )

    def transcript(self, cid: str) -> list[Any]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    text(
                        "SELECT turn_index, speaker, model, content FROM conversation_turns"
                        " WHERE conversation_id = :cid ORDER BY turn_index"
                    ),
                    {"cid": cid},
                )
            )

    def run(self, rid: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(
                text("SELECT id, context_id, status, bundle FROM analysis_runs WHERE id = :id"),
                {"id": rid},
            ).one_or_none()

    def export(self, directory: Path) -> tuple[Path, int]:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"conversations-{self.tag}.jsonl"
        tmp = path.with_suffix(".jsonl.tmp")
        with tmp.open("w", encoding="utf-8") as out:
            count = export_conversations(
                self.engine, out, fmt="openai", since=self.submitted.started_at
            )
        tmp.replace(path)
        return path, count


def conversation_table(rows: list[Any]) -> list[str]:
    width = max([len(r.topic_title) for r in rows] + [5])
    width = min(width, 60)
    head = f"{'conversation':<29} {'topic':<{width}} {'turns':>5} {'quality':>7}  {'verdict':<30}"
    lines = [f"{head}  status"]
    for r in rows:
        title = r.topic_title if len(r.topic_title) <= width else r.topic_title[: width - 1] + "…"
        quality = "-" if r.quality_score is None else f"{r.quality_score:.2f}"
        verdict = _verdict(r.accepted, r.rejection_reasons)
        lines.append(
            f"{r.id:<29} {title:<{width}} {r.turn_count:>5} {quality:>7}  {verdict:<30}  {r.status}"
        )
    return lines


def _verdict(accepted: bool | None, reasons: list[str] | None) -> str:
    """``accepted``, ``rejected: <reasons>`` (cut to the column) or ``-`` (no verdict)."""
    if accepted is None:
        return "-"
    if accepted:
        return "accepted"
    text = "rejected: " + ",".join(reasons or [])
    return text if len(text) <= 30 else text[:29] + "…"


def bundle_lines(run: Any) -> list[str]:
    """The analysis bundle of one run, short."""
    b = run.bundle
    lines = [f"analysis {run.id} of {run.context_id}: {run.status}"]
    lines.append("  statuses: " + ", ".join(f"{k} {v}" for k, v in b["worker_statuses"].items()))
    if b.get("summary"):
        lines += textwrap.wrap(
            b["summary"]["summary"], 96, initial_indent="  summary: ", subsequent_indent="    "
        )
        for point in b["summary"].get("key_points", [])[:4]:
            lines += textwrap.wrap(point, 96, initial_indent="    - ", subsequent_indent="      ")
    if b.get("arguments") is not None:
        stances = [c["stance"] for c in b["arguments"]]
        lines.append(
            f"  arguments: {len(stances)} claims"
            f" ({stances.count('for')} for, {stances.count('against')} against)"
        )
    if b.get("sentiment"):
        s = b["sentiment"]
        lines.append(f"  sentiment: {s['overall_label']} ({s['overall_score']:+.2f})")
    if b.get("implications") is not None:
        lines.append(f"  implications: {len(b['implications'])}")
    if b.get("logic_bias") is not None:
        lb = b["logic_bias"]
        found = [f["type"] for f in lb["fallacies"] + lb["biases"]]
        lines.append(f"  fallacies and biases: {', '.join(found) or 'none found'}")
    return lines


def transcript_lines(turns: list[Any]) -> list[str]:
    width = min(100, shutil.get_terminal_size((100, 20)).columns)
    lines = []
    for t in turns:
        head = f"[{t.turn_index}] {t.speaker} ({t.model}): "
        lines += textwrap.wrap(
            t.content, width, initial_indent=head, subsequent_indent=" " * 4
        ) or [head]
    return lines
