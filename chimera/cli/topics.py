"""`chimera topics push|dead`: filling the topic queue, and what it could not read."""

from __future__ import annotations

import json
from typing import BinaryIO

import click

from chimera.cli.output import shown, table
from chimera.conversation.topic_queue import TopicQueue, read_item
from chimera.errors import InputError
from chimera.redis_client import make_redis
from chimera.settings import Settings, get_settings

#: How much of a dead letter's error and item a table row shows (``--json`` has it all).
_CELL_CHARS = 60


@click.group("topics")
def topics_group() -> None:
    """The topic queue that beat drains into conversations."""


@topics_group.command("push")
@click.argument("source", type=click.File("rb"))
def topics_push(source: BinaryIO) -> None:
    """Push topics from SOURCE (JSON objects or plain strings, one per line; - for stdin).

    Each line is read as the drain reads it; a file with a line that could never
    become a conversation is refused whole (nothing is pushed), naming the line.
    """
    settings = get_settings()
    items = read_topics(source, settings)
    client = make_redis(settings)
    try:
        length = TopicQueue(client, settings).push(items)
    finally:
        client.close()
    click.echo(f"pushed {len(items)} topics to {settings.topics_queue_key} ({length} queued)")


def read_topics(source: BinaryIO, settings: Settings) -> list[str]:
    """The non-blank lines of ``source``, each checked as the drain will read it.

    A line is read no further than the item limit: a file that is one endless line
    is refused without being held in memory.
    """
    limit = settings.topics_max_item_bytes
    items: list[str] = []
    line_no = 0
    while line := source.readline(limit + 3):  # room for the limit, CR LF and one byte more
        line_no += 1
        item = line.strip()
        cut = len(line) == limit + 3 and not line.endswith(b"\n")
        if cut or len(item) > limit:
            raise click.UsageError(
                f"line {line_no} is larger than {limit} bytes (CHIMERA_TOPICS_MAX_ITEM_BYTES)"
            )
        if not item:
            continue
        try:
            read_item(item, settings)
        except InputError as exc:
            raise click.UsageError(f"line {line_no}: {shown(str(exc))}") from None
        items.append(item.decode())
    return items


@topics_group.command("dead")
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="The newest N."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document, entries in full.")
@click.option("--clear", is_flag=True, help="Delete every dead letter (after reading them).")
def topics_dead(limit: int, as_json: bool, clear: bool) -> None:
    """Show the items the drain could not read, newest first, and why.

    Each was moved out of the queue whole: the reason (invalid_json, too_large,
    schema_invalid, ...), the error, the start of the item, its size and when.
    """
    settings = get_settings()
    client = make_redis(settings)
    try:
        queue = TopicQueue(client, settings)
        if clear:
            cleared = queue.clear_dead()
            click.echo(f"deleted {cleared} dead letter{_s(cleared)} from {queue.dead_key}")
            return
        total, entries = queue.dead_letters(limit)
    finally:
        client.close()
    if as_json:
        document = {"key": queue.dead_key, "total": total, "dead_letters": entries}
        click.echo(json.dumps(document, ensure_ascii=True, indent=2))
        return
    if entries:
        header = ("AT", "REASON", "BYTES", "ERROR", "ITEM")
        for line in table([header, *(_row(entry) for entry in entries)]):
            click.echo(line)
    of = f"{len(entries)} of " if len(entries) < total else ""
    click.echo(f"{of}{total} dead letter{_s(total)} in {queue.dead_key}")


def _row(entry: dict[str, object]) -> tuple[str, ...]:
    return (
        shown(str(entry.get("at", ""))),
        shown(str(entry.get("reason", ""))),
        shown(str(entry.get("bytes", ""))),
        shown(str(entry.get("error", "")), _CELL_CHARS),
        shown(str(entry.get("item", "")), _CELL_CHARS),
    )


def _s(n: int) -> str:
    return "" if n == 1 else "s"
