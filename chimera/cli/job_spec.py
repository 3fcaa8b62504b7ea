"""The job spec as `chimera jobs create` and `chimera jobs estimate` take it: the same
options, the same spec, the same topics file (stdin spooled to a temporary file)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from chimera.cli.submit import parse_participant
from chimera.cli.types import FiniteFloatRange
from chimera.jobs.topics import FORMATS, spool

F = TypeVar("F", bound=Callable[..., Any])


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


_SPEC_OPTIONS = (
    click.option("--name", required=True, help="What the job is called."),
    click.option(
        "--topics",
        "topics_path",
        required=True,
        metavar="FILE",
        help="JSONL topic objects, CSV with a title column, or one title a line; - for stdin.",
    ),
    click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="auto",
        show_default=True,
        help="The topics file's format (auto: by suffix, else by its first line).",
    ),
    click.option(
        "--participant",
        "participants",
        multiple=True,
        metavar="PROVIDER:MODEL[:NAME[:PERSONA]]",
        help="Repeat for each participant (default: the configured pair).",
    ),
    click.option("--turns", help="MIN-MAX turns per conversation, e.g. 5-8."),
    click.option("--target", type=click.IntRange(min=1), help="Accepted conversations wanted."),
    click.option("--budget", type=FiniteFloatRange(min=0, min_open=True), help="Budget in USD."),
    click.option(
        "--min-quality",
        type=FiniteFloatRange(min=0, max=1),
        help="Quality score from which a conversation is accepted.",
    ),
    click.option("--priority", type=int, default=0, show_default=True),
)


def spec_options(command: F) -> F:
    """The job spec's options, in the order `--help` shows them."""
    for option in reversed(_SPEC_OPTIONS):
        command = option(command)
    return command


def build_spec(
    *,
    name: str,
    participants: tuple[str, ...],
    turns: str | None,
    target: int | None,
    budget: float | None,
    min_quality: float | None,
    priority: int,
) -> dict[str, Any]:
    """The spec object the options describe (checked later, by ``JobSpec``)."""
    spec: dict[str, Any] = {"name": name, "priority": priority}
    if participants:
        spec["participants"] = [parse_job_participant(p) for p in participants]
    if turns:
        spec["min_turns"], spec["max_turns"] = parse_turns(turns)
    for key, value in (("target", target), ("budget_usd", budget), ("min_quality", min_quality)):
        if value is not None:
            spec[key] = value
    return spec


@contextmanager
def topics_file(topics_path: str) -> Iterator[tuple[Path, str]]:
    """(the file to read, the name errors show); ``-`` is stdin, spooled and removed after."""
    spooled = spool(sys.stdin.buffer) if topics_path == "-" else None
    try:
        yield (spooled or Path(topics_path)), ("<stdin>" if spooled else topics_path)
    finally:
        if spooled is not None:
            spooled.unlink(missing_ok=True)
