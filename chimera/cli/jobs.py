"""`chimera jobs create|list|status`: datasets of a chosen size."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from chimera.cli.output import shown, table
from chimera.cli.submit import parse_participant
from chimera.cli.types import FiniteFloatRange
from chimera.db.engine import make_engine
from chimera.errors import InputError
from chimera.jobs.repository import JobRepository, StoredJob
from chimera.jobs.service import create_job
from chimera.jobs.topics import FORMATS, read_topics, spool
from chimera.kafka.clients import make_producer
from chimera.settings import get_settings


def parse_turns(text: str) -> tuple[int, int]:
    """``5-8`` -> (5, 8); ``6`` -> (6, 6)."""
    low, sep, high = text.partition("-")
    try:
        lo = int(low)
        hi = int(high) if sep else lo
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not MIN-MAX (e.g. 5-8)", param_hint="--turns"
        ) from None
    return lo, hi


def parse_job_participant(spec: str) -> dict[str, str]:
    """``provider:model[:name[:persona]]`` -> a participant object."""
    head, persona = spec, None
    parts = spec.split(":", 3)
    if len(parts) == 4:
        head, persona = ":".join(parts[:3]), parts[3]
    out = parse_participant(head)
    if persona:
        out["persona"] = persona
    return out


@click.group("jobs")
def jobs_group() -> None:
    """Jobs: datasets of a chosen size, fed to `conversation.new` a batch at a time."""


@jobs_group.command("create")
@click.option("--name", required=True, help="What the job is called.")
@click.option(
    "--topics",
    "topics_path",
    required=True,
    metavar="FILE",
    help="JSONL topic objects, CSV with a title column, or one title a line; - for stdin.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="auto",
    show_default=True,
    help="The topics file's format (auto: by suffix, else by its first line).",
)
@click.option(
    "--participant",
    "participants",
    multiple=True,
    metavar="PROVIDER:MODEL[:NAME[:PERSONA]]",
    help="Repeat for each participant (default: the configured pair).",
)
@click.option("--turns", help="MIN-MAX turns per conversation, e.g. 5-8.")
@click.option("--target", type=click.IntRange(min=1), help="Accepted conversations wanted.")
@click.option("--budget", type=FiniteFloatRange(min=0, min_open=True), help="Budget in USD.")
@click.option(
    "--min-quality",
    type=FiniteFloatRange(min=0, max=1),
    help="Quality score from which a conversation is accepted.",
)
@click.option("--priority", type=int, default=0, show_default=True)
def jobs_create(
    name: str,
    topics_path: str,
    fmt: str,
    participants: tuple[str, ...],
    turns: str | None,
    target: int | None,
    budget: float | None,
    min_quality: float | None,
    priority: int,
) -> None:
    """Create a job (or find the same one) and publish its first conversations.

    Prints the job id alone on the last line.
    """
    settings = get_settings()
    spec: dict[str, Any] = {"name": name, "priority": priority}
    if participants:
        spec["participants"] = [parse_job_participant(p) for p in participants]
    if turns:
        spec["min_turns"], spec["max_turns"] = parse_turns(turns)
    for key, value in (("target", target), ("budget_usd", budget), ("min_quality", min_quality)):
        if value is not None:
            spec[key] = value
    spooled = spool(sys.stdin.buffer) if topics_path == "-" else None
    path = spooled or Path(topics_path)
    shown_name = "<stdin>" if spooled else topics_path
    engine = make_engine(settings)
    producer = None
    try:
        producer = make_producer(settings)
        made = create_job(
            JobRepository(engine),
            producer,
            settings,
            spec,
            lambda: read_topics(path, fmt, name=shown_name),
        )
    except InputError as exc:
        raise click.UsageError(str(exc)) from None
    finally:
        if producer is not None:
            producer.close(timeout=5)
        engine.dispose()
        if spooled is not None:
            spooled.unlink(missing_ok=True)
    job = made.job
    verb = "created" if made.created else "exists already:"
    click.echo(
        f"{verb} job {shown(job.name)} with {job.topic_count} topics "
        f"({made.feed.published} conversations published, status {job.status})"
    )
    click.echo(job.id)


@jobs_group.command("list")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
def jobs_list(limit: int) -> None:
    """The jobs, newest first."""
    engine = make_engine(get_settings())
    try:
        jobs = JobRepository(engine).list_jobs(limit=limit)
    finally:
        engine.dispose()
    if not jobs:
        click.echo("no jobs")
        return
    rows = [["ID", "NAME", "STATUS", "PRIORITY", "TOPICS", "ACCEPTED", "TARGET", "COST_USD"]]
    for j in jobs:
        rows.append(
            [
                j.id,
                shown(j.name, 40),
                j.status,
                str(j.priority),
                str(j.topic_count),
                str(j.figures.accepted),
                str(j.spec.get("target", "-")),
                f"{j.figures.cost_usd:.4f}",
            ]
        )
    for line in table(rows):
        click.echo(line)


@jobs_group.command("status")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the job and its figures as JSON.")
def jobs_status(job_id: str, as_json: bool) -> None:
    """A job's status and figures."""
    engine = make_engine(get_settings())
    try:
        job = JobRepository(engine).get(job_id)
    finally:
        engine.dispose()
    if job is None:
        click.echo(f"no such job: {shown(job_id, 80)}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(job.as_dict(), indent=2))
        return
    for line in table(_status_rows(job)):
        click.echo(line)


def _status_rows(job: StoredJob) -> list[list[str]]:
    fig = job.figures.as_dict()
    rows = [
        ["job", job.id],
        ["name", shown(job.name, 80)],
        ["status", job.status],
        ["priority", str(job.priority)],
        ["topics", str(job.topic_count)],
        ["published", str(job.fed)],
        ["target", str(job.spec.get("target", "-"))],
        ["budget_usd", str(job.spec.get("budget_usd", "-"))],
        ["min_quality", str(job.spec.get("min_quality", "-"))],
    ]
    for key in ("started", "running", "completed", "failed", "accepted"):
        rows.append([key, str(fig[key])])
    for reason, n in sorted(fig["rejected"].items()):
        rows.append([f"rejected ({reason})", str(n)])
    rows += [
        ["tokens", f"{fig['input_tokens']} in, {fig['output_tokens']} out"],
        ["cost_usd", f"{fig['cost_usd']:.6f}"],
        ["usd_per_accepted", _num(fig["cost_per_accepted_usd"], 6)],
        ["yield", _num(fig["yield"], 3)],
    ]
    return rows


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
