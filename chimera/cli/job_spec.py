"""The job spec as `chimera jobs create` and `chimera jobs estimate` take it: the same
options, the same spec, the same topics file (stdin spooled to a temporary file)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import click

from chimera.cli.submit import parse_participant
from chimera.cli.types import FiniteFloatRange
from chimera.jobs.topics import FORMATS, spool


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


@dataclass(frozen=True)
class SpecOptions:
    """The job spec's options as one value (what `spec_options` passes the command)."""

    name: str
    topics_path: str
    fmt: str
    participants: tuple[str, ...]
    turns: str | None
    target: int | None
    budget: float | None
    min_quality: float | None
    priority: int

    def spec(self) -> dict[str, Any]:
        """The spec object the options describe (checked later, by ``JobSpec``)."""
        spec: dict[str, Any] = {"name": self.name, "priority": self.priority}
        if self.participants:
            spec["participants"] = [parse_job_participant(p) for p in self.participants]
        if self.turns:
            spec["min_turns"], spec["max_turns"] = parse_turns(self.turns)
        optional = (
            ("target", self.target),
            ("budget_usd", self.budget),
            ("min_quality", self.min_quality),
        )
        for key, value in optional:
            if value is not None:
                spec[key] = value
        return spec


_SPEC_FIELDS = tuple(f.name for f in fields(SpecOptions))


def spec_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The job spec's options, in the order `--help` shows them, passed to ``command`` as
    its first argument, one ``SpecOptions``."""

    @functools.wraps(command)
    def with_options(**kwargs: Any) -> Any:
        options = SpecOptions(**{k: kwargs.pop(k) for k in _SPEC_FIELDS})
        return command(options, **kwargs)

    wrapped: Callable[..., Any] = with_options
    for option in reversed(_SPEC_OPTIONS):
        wrapped = option(wrapped)
    return wrapped


@contextmanager
def topics_file(topics_path: str) -> Iterator[tuple[Path, str]]:
    """(the file to read, the name errors show); ``-`` is stdin, spooled and removed after."""
    spooled = spool(sys.stdin.buffer) if topics_path == "-" else None
    try:
        yield (spooled or Path(topics_path)), ("<stdin>" if spooled else topics_path)
    finally:
        if spooled is not None:
            spooled.unlink(missing_ok=True)
