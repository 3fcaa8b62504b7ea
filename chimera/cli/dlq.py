"""`chimera dlq list|replay`: look into a dead-letter topic and replay its records.

Whoever can write to a dead-letter topic chose its keys, values and headers: the
table shows them clipped and escaped (``output.shown``), ``--json`` escapes every
character that is not ASCII.
"""

from __future__ import annotations

import json
import time

import click

from chimera.cli.output import shown, table
from chimera.errors import NotFound
from chimera.events.letters import DeadLetterRecord, list_dead_letters, resolve_topic
from chimera.events.replay import replay
from chimera.events.replay_plan import Filters
from chimera.settings import get_settings

_COLUMNS = ("EVENT ID", "REASON", "ERROR CLASS", "ATTEMPTS", "AGE", "REPLAYS", "FROM", "AT")


def _topic(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """The configured topic ``--topic`` names (a role such as conversation.dlq, or its name)."""
    try:
        return resolve_topic(get_settings(), value)
    except NotFound as exc:
        raise click.BadParameter(exc.message) from None


topic_option = click.option(
    "--topic",
    required=True,
    callback=_topic,
    help="The dead-letter topic: conversation.dlq or analysis.dlq (or its configured name).",
)


@click.group("dlq")
def dlq_group() -> None:
    """Dead-letter topics: list their records, replay them."""


@dlq_group.command("list")
@topic_option
@click.option("--limit", type=click.IntRange(min=1), help="Show at most N records, oldest first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
def dlq_list(topic: str, limit: int | None, as_json: bool) -> None:
    """Show the records of a dead-letter topic (read without joining any consumer group)."""
    scan = list_dead_letters(get_settings(), topic)
    letters = sorted(scan.records, key=lambda r: (r.failed_at, r.partition, r.offset))
    picked = letters[:limit] if limit is not None else letters
    now = time.time()
    if as_json:
        document = {
            "topic": topic,
            "total": len(letters),
            "records": [letter.as_dict(now) for letter in picked],
        }
        click.echo(json.dumps(document, ensure_ascii=True, indent=2))
        return
    if picked:
        for line in table([_COLUMNS, *(_row(letter, now) for letter in picked)]):
            click.echo(line)
    of = f"{len(picked)} of " if len(picked) < len(letters) else ""
    click.echo(f"{of}{len(letters)} dead letter{'s' * (len(letters) != 1)} in {topic}")


def _row(letter: DeadLetterRecord, now: float) -> tuple[str, ...]:
    return (
        shown(letter.event_id),
        shown(letter.reason),
        shown(letter.error_class),
        "-" if letter.attempts is None else str(letter.attempts),
        _age(letter.age_s(now)),
        str(letter.replay_count),
        shown(letter.origin),
        shown(letter.where),
    )


def _age(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


@dlq_group.command("replay")
@topic_option
@click.option("--event-id", help="Only the dead letters of this event (searched from the start).")
@click.option(
    "--reason", help="Only dead letters with this x-dlq-reason (searched from the start)."
)
@click.option("--limit", type=click.IntRange(min=1), help="Replay at most N records.")
@click.option("--dry-run", is_flag=True, help="Show what would be replayed; change nothing.")
def dlq_replay(
    topic: str, event_id: str | None, reason: str | None, limit: int | None, dry_run: bool
) -> None:
    """Re-publish dead letters to their input topic, as they were first produced.

    Each dead-letter topic is replayed to one input topic (conversation.dlq to
    conversation.new, analysis.dlq to analysis.tasks, or CHIMERA_DLQ_ROUTES); a record
    whose x-original-topic names another is refused, never published.

    Without filters, the records no earlier replay dealt with; with --event-id or
    --reason, every matching record.  An event's inbox row goes back to
    `received` so it runs again; a done or in-flight event is skipped, as is a
    record replayed CHIMERA_DLQ_MAX_REPLAYS times already.
    """
    report = replay(
        get_settings(),
        topic,
        filters=Filters(event_id=event_id, reason=reason),
        limit=limit,
        dry_run=dry_run,
    )
    if report.outcomes:
        cells = [tuple(shown(c) for c in outcome.cells()) for outcome in report.outcomes]
        for line in table(cells):
            click.echo(line)
    click.echo(report.summary())
