"""`chimera jobs create|list|status|update|pause|resume|drain|cancel`: datasets of a
chosen size."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from typing import Any

import click

from chimera.cli.job_spec import SpecOptions, spec_options, topics_file
from chimera.cli.output import shown, table
from chimera.cli.types import FiniteFloatRange
from chimera.db.engine import make_engine
from chimera.errors import InputError, JobConflict, NotFound
from chimera.jobs.control import CONTROLS, JobControl
from chimera.jobs.estimate import estimate_job
from chimera.jobs.progress import FINAL
from chimera.jobs.progress import line as progress_line
from chimera.jobs.repository import JobRepository, StoredJob
from chimera.jobs.service import control_job, create_job, feeder_wake, update_budget
from chimera.jobs.topics import read_topics
from chimera.kafka.clients import make_producer
from chimera.redis_client import make_redis
from chimera.settings import get_settings
from chimera.stack.checks import celery_client


@click.group("jobs")
def jobs_group() -> None:
    """Jobs: datasets of a chosen size, fed to `conversation.new` a batch at a time."""


@jobs_group.command("create")
@spec_options
def jobs_create(options: SpecOptions) -> None:
    """Create a job (or find the same one) and publish its first conversations.

    Prints the job id alone on the last line.
    """
    settings = get_settings()
    spec = options.spec()
    engine = make_engine(settings)
    producer = None
    try:
        with topics_file(options.topics_path) as (path, shown_name):
            producer = make_producer(settings)
            made = create_job(
                JobRepository(engine),
                producer,
                settings,
                spec,
                lambda: read_topics(path, options.fmt, name=shown_name),
            )
    except InputError as exc:
        raise click.UsageError(str(exc)) from None
    finally:
        if producer is not None:
            producer.close(timeout=5)
        engine.dispose()
    job = made.job
    verb = "created" if made.created else "exists already:"
    click.echo(
        f"{verb} job {shown(job.name)} with {job.topic_count} topics "
        f"({made.feed.published} conversations published, status {job.status})"
    )
    click.echo(job.id)


@jobs_group.command("estimate")
@spec_options
@click.option("--json", "as_json", is_flag=True, help="Print the estimate as JSON.")
def jobs_estimate(
    options: SpecOptions,
    as_json: bool,
) -> None:
    """What `jobs create` with the same arguments would cost, before spending anything.

    Nothing is stored or published; the database is read for history (mean output
    tokens per model, the yield under the quality bar).
    """
    settings = get_settings()
    spec = options.spec()
    engine = make_engine(settings)
    try:
        with topics_file(options.topics_path) as (path, shown_name):
            est = estimate_job(
                engine, settings, spec, read_topics(path, options.fmt, name=shown_name)
            )
    except InputError as exc:
        raise click.UsageError(str(exc)) from None
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps(est.as_dict(), indent=2))
        return
    click.echo(
        f"estimate: {est.cost_usd:.4f} USD (range {est.low_usd:.4f} to {est.high_usd:.4f}),"
        f" {est.per_conversation_usd:.6f} USD a conversation"
    )
    click.echo(
        f"basis: {est.conversations} conversations (yield {est.expected_yield:.2f},"
        f" {est.yield_source}), {est.min_turns}-{est.max_turns} turns,"
        f" {est.input_tokens} input and {est.output_tokens} output tokens,"
        f" prices {est.price_version}"
    )
    for m in est.models:
        price = "" if m.priced else ", not in the price table: counted as 0"
        tokens = f"{m.output_tokens:.0f} output tokens a turn"
        click.echo(f"  {m.provider}/{m.model}: {tokens} ({m.source}{price})")


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
@click.option(
    "--watch", is_flag=True, help="Show a live progress line until the job reaches its end."
)
@click.option(
    "--interval",
    type=FiniteFloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Seconds between refreshes of --watch.",
)
def jobs_status(job_id: str, as_json: bool, watch: bool, interval: float) -> None:
    """A job's status and figures (--watch: a progress line refreshed every --interval
    seconds, one plain line per refresh when stdout is not a terminal)."""
    engine = make_engine(get_settings())
    try:
        repo = JobRepository(engine)
        job = repo.get(job_id)
        if job is not None and watch:
            watch_job(repo, job, interval)
            return
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


def watch_job(repo: JobRepository, job: StoredJob, interval: float) -> None:
    """Print ``job``'s progress every ``interval`` seconds until its status is final
    (or Ctrl-C): rewritten in place on a terminal, one line a refresh otherwise.

    Ctrl-C only sets a flag, read between refreshes: an interrupt raised inside a
    database read could leave the connection mid-query and the exit hanging on it.
    """
    tty = sys.stdout.isatty()
    width = 0
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        while True:
            text = f"{job.id} {progress_line(job.as_dict())}"
            if tty:
                click.echo("\r" + text.ljust(width), nl=False)
                width = len(text)
            else:
                click.echo(text)
            if job.status in FINAL or _stopped(stop, interval):
                break
            job = repo.get(job.id) or job
    finally:
        signal.signal(signal.SIGINT, previous)
    if tty:
        click.echo()


def _stopped(stop: threading.Event, wait_s: float) -> bool:
    """Wait ``wait_s`` seconds, in short sleeps; True as soon as ``stop`` is set."""
    deadline = time.monotonic() + wait_s
    while not stop.is_set() and time.monotonic() < deadline:
        time.sleep(min(0.05, wait_s))
    return stop.is_set()


@jobs_group.command("update")
@click.argument("job_id")
@click.option(
    "--budget",
    type=FiniteFloatRange(min=0, min_open=True),
    required=True,
    help="The new budget in USD (a job out of budget with room again runs).",
)
def jobs_update(job_id: str, budget: float) -> None:
    """Change a job's budget (a job out of budget with room again is fed at once)."""
    _controlled(job_id, lambda repo, ctl, wake: update_budget(repo, ctl, job_id, budget, wake))


def _control_command(action: str, help_text: str) -> None:
    @jobs_group.command(action, help=help_text)
    @click.argument("job_id")
    def command(job_id: str) -> None:
        _controlled(job_id, lambda repo, ctl, wake: control_job(repo, ctl, job_id, action, wake))


for _action, _help in (
    ("pause", "Pause a job: its conversations stop at their next turn, nothing is fed."),
    ("resume", "Resume a paused job: its parked conversations go on at once."),
    ("drain", "Drain a job: no new conversation starts; those running finish; completed."),
    ("cancel", "Cancel a job: its conversations end at their next turn (cancelled)."),
):
    assert _action in CONTROLS
    _control_command(_action, _help)


def _controlled(job_id: str, act: Any) -> None:
    """Run a control; exit 1 for an unknown job, 3 for one not allowed from its status.
    A job whose parked conversations go on is fed at once (``chimera.jobs.feed`` sent by
    name to the workers)."""
    settings = get_settings()
    engine = make_engine(settings)
    client = make_redis(settings)
    celery = celery_client(settings)
    try:
        repo = JobRepository(engine)
        control = JobControl(client, settings, repo.control_row)
        job: StoredJob = act(repo, control, feeder_wake(celery, settings))
    except NotFound:
        click.echo(f"no such job: {shown(job_id, 80)}", err=True)
        sys.exit(1)
    except JobConflict as exc:
        click.echo(f"refused: {exc.message}", err=True)
        sys.exit(3)
    finally:
        celery.close()
        client.close()
        engine.dispose()
    click.echo(f"job {job.id}: {job.status} (budget_usd {job.spec.get('budget_usd', '-')})")


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
