"""`chimera submit conversation|analysis`: publishing input events.

What goes out is what the bridge will accept: checked against its model, and no
larger than ``CHIMERA_MAX_EVENT_BYTES``; a bad argument or file is one error line
and exit 2, with nothing published.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, BinaryIO

import click
from pydantic import BaseModel

from chimera.analysis.prompts import resolve_all
from chimera.codec import encode, limits_from, validate_event
from chimera.errors import InputError
from chimera.events.ids import conversation_id, run_id
from chimera.kafka.clients import make_producer, publish
from chimera.models import AnalysisTask, ConversationRequest
from chimera.settings import Settings, get_settings


def parse_participant(spec: str) -> dict[str, str]:
    """``provider:model[:name]`` -> a participant object."""
    parts = spec.split(":", 2)
    if len(parts) < 2 or not all(parts[:2]):
        raise click.BadParameter(
            f"{spec!r} is not provider:model[:name]", param_hint="--participant"
        )
    out = {"provider": parts[0], "model": parts[1]}
    if len(parts) == 3 and parts[2]:
        out["name"] = parts[2]
    return out


@click.group("submit")
def submit_group() -> None:
    """Publish input events to Kafka."""


@submit_group.command("conversation")
@click.option("--topic", "title", required=True, help="What the conversation is about.")
@click.option("--description", help="More context for the participants.")
@click.option("--min-turns", type=click.IntRange(min=1))
@click.option("--max-turns", type=click.IntRange(min=1))
@click.option(
    "--participant",
    "participants",
    multiple=True,
    metavar="PROVIDER:MODEL[:NAME]",
    help="Repeat for each participant (default: the configured pair).",
)
@click.option("--event-id", help="Idempotency key (default: a new random id).")
@click.option("--metadata", help="JSON object carried through to the result.")
def submit_conversation(
    title: str,
    description: str | None,
    min_turns: int | None,
    max_turns: int | None,
    participants: tuple[str, ...],
    event_id: str | None,
    metadata: str | None,
) -> None:
    """Publish one `conversation.new` event."""
    settings = get_settings()
    event: dict[str, Any] = {
        "event_id": event_id or f"cli-{uuid.uuid4().hex}",
        "topic": {"title": title, **({"description": description} if description else {})},
    }
    if min_turns is not None:
        event["min_turns"] = min_turns
    if max_turns is not None:
        event["max_turns"] = max_turns
    if participants:
        event["participants"] = [parse_participant(p) for p in participants]
    if metadata:
        try:
            event["metadata"] = json.loads(metadata)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--metadata") from None
        except RecursionError:
            raise click.BadParameter("nested too deeply", param_hint="--metadata") from None
    try:
        request = validate_event(
            ConversationRequest, event, context={"limits": limits_from(settings)}
        )
    except InputError as exc:
        raise click.UsageError(str(exc)) from None
    value = wire_form(request, settings)
    producer = make_producer(settings)
    try:
        publish(producer, settings.topic_conversation_new, request.event_id, value).get(timeout=10)
    finally:
        producer.close(timeout=5)
    click.echo(
        f"published {request.event_id} to {settings.topic_conversation_new} "
        f"(conversation {conversation_id(request.event_id)})"
    )


@submit_group.command("analysis")
@click.option(
    "--context-id",
    required=True,
    help="The conversation or document id (without segments: the stored conversation).",
)
@click.option(
    "--segment",
    "segments",
    multiple=True,
    metavar="SPEAKER: TEXT",
    help="Repeat for each segment, in order.",
)
@click.option(
    "--segments-file",
    type=click.File("rb"),
    help="A UTF-8 file of paragraphs, each 'SPEAKER: TEXT' (blank lines between them).",
)
@click.option("--language", help="Language of the answers (default en).")
@click.option(
    "--prompt",
    "prompts",
    multiple=True,
    metavar="ANALYSIS=PROMPT_ID",
    help="Another prompt version for one analysis, e.g. summary=summary.v1.",
)
@click.option("--event-id", help="Idempotency key (default: a new random id).")
def submit_analysis(
    context_id: str,
    segments: tuple[str, ...],
    segments_file: BinaryIO | None,
    language: str | None,
    prompts: tuple[str, ...],
    event_id: str | None,
) -> None:
    """Publish one `analysis.tasks` event."""
    settings = get_settings()
    paragraphs = list(segments)
    if segments_file is not None:
        text = read_text(segments_file, "--segments-file", max_bytes=settings.max_event_bytes)
        paragraphs += [p for p in text.split("\n\n") if p.strip()]
    event: dict[str, Any] = {
        "event_id": event_id or f"cli-{uuid.uuid4().hex}",
        "context_id": context_id,
    }
    if paragraphs:
        event["segments"] = [parse_segment(p) for p in paragraphs]
    if language:
        event["language"] = language
    if prompts:
        event["prompt_ids"] = dict(parse_prompt(p) for p in prompts)
    try:
        request = validate_event(AnalysisTask, event)
        resolve_all(request.prompt_ids)
    except InputError as exc:
        raise click.UsageError(str(exc)) from None
    value = wire_form(request, settings)
    producer = make_producer(settings)
    try:
        publish(producer, settings.topic_analysis_tasks, context_id, value).get(timeout=10)
    finally:
        producer.close(timeout=5)
    click.echo(
        f"published {request.event_id} to {settings.topic_analysis_tasks} "
        f"(analysis run {run_id(request.event_id)})"
    )


def read_text(source: BinaryIO, param: str, *, max_bytes: int) -> str:
    """The whole of ``source`` as text; a file larger than an event may be, or not
    UTF-8, is a usage error naming it (and only ``max_bytes`` of it are ever read)."""
    name = getattr(source, "name", "-")
    data = source.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise click.BadParameter(
            f"{name} is larger than {max_bytes} bytes, more than an event may hold "
            "(CHIMERA_MAX_EVENT_BYTES)",
            param_hint=param,
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise click.BadParameter(
            f"{name} is not UTF-8 text ({exc.reason} at byte {exc.start})", param_hint=param
        ) from None


def wire_form(request: BaseModel, settings: Settings) -> bytes:
    """``request`` as published; larger than the bridge accepts is a usage error."""
    value = encode(request)
    if len(value) > settings.max_event_bytes:
        raise click.UsageError(
            f"the event is {len(value)} bytes; the limit is {settings.max_event_bytes} "
            "(CHIMERA_MAX_EVENT_BYTES)"
        )
    return value


def parse_segment(text: str) -> dict[str, str]:
    """``SPEAKER: TEXT`` -> a segment."""
    speaker, sep, said = text.strip().partition(":")
    if not sep or not speaker.strip() or not said.strip():
        raise click.BadParameter(f"{text[:40]!r} is not 'SPEAKER: TEXT'", param_hint="--segment")
    return {"speaker": speaker.strip(), "text": said.strip()}


def parse_prompt(spec: str) -> tuple[str, str]:
    kind, sep, prompt_id = spec.partition("=")
    if not sep or not kind or not prompt_id:
        raise click.BadParameter(f"{spec!r} is not ANALYSIS=PROMPT_ID", param_hint="--prompt")
    return kind, prompt_id
