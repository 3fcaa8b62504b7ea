"""`chimera export` and `chimera score`: conversations as training data.

``export`` writes completed conversations from Postgres as JSON lines (OpenAI messages or
ShareGPT); a file is written to a temporary name beside it and renamed when complete, so a
failed export never leaves half a file.  The file is created like any other, with the mode
the umask allows (an operator's umask 077 keeps the transcripts private).  ``score`` rates
the conversations of any such file (ours or from elsewhere) with the quality model, line by
line: one line per conversation on stdout (``--json``: one record per non-blank input line,
errors included), a summary and every malformed line on stderr, exit status 1 if any line
was malformed or the input holds no line at all.  A line is read only up to
``CHIMERA_SCORE_MAX_LINE_BYTES``; a line that cannot be scored is that line's error and the
next is read.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import click

from chimera.cli.output import shown
from chimera.cli.types import FiniteFloatRange
from chimera.conversation.ending import ending_of
from chimera.conversation.export import export_conversations
from chimera.conversation.formats import FORMATS, Format
from chimera.conversation.parsing import ENDED_REASONS, JsonlReader, LineError, ParsedConversation
from chimera.conversation.quality import VERSION as V1
from chimera.conversation.quality import QualityReport, score_conversation
from chimera.db.engine import make_engine
from chimera.jobs.export import export_job
from chimera.quality.lines import inputs_of
from chimera.quality.score import DEFAULT_MIN_QUALITY, VERSION, QualityV2Report, score_v2
from chimera.settings import get_settings
from chimera.untrusted import clip, printable

#: The request defaults, for files whose metadata does not say.
_DEFAULT_MIN_TURNS = 5
_DEFAULT_MAX_TURNS = 10


@click.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="openai",
    show_default=True,
    help="OpenAI chat messages or ShareGPT.",
)
@click.option(
    "--min-quality",
    type=FiniteFloatRange(0.0, 1.0),
    default=None,
    help="Only conversations scored at least this (0-1).",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N conversations.")
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    default=None,
    help="Only conversations created at or after this time (UTC).",
)
@click.option(
    "--out",
    "out_path",
    default="-",
    show_default=True,
    metavar="FILE",
    help="Where to write the JSON lines; - for stdout.",
)
@click.option(
    "--job",
    "job_id",
    default=None,
    metavar="ID",
    help="Export this job's conversations, with their lineage, and a card beside --out.",
)
@click.option(
    "--all",
    "include_all",
    is_flag=True,
    help="With --job: every finished conversation, not only the accepted ones.",
)
@click.option(
    "--include-rejected",
    is_flag=True,
    help="Every completed conversation, not only the accepted ones, each with accepted, "
    "rejection_reasons and duplicate_of in its metadata (with --job: as --all).",
)
def export_command(
    fmt: Format,
    min_quality: float | None,
    limit: int | None,
    since: datetime | None,
    out_path: str,
    job_id: str | None,
    include_all: bool,
    include_rejected: bool,
) -> None:
    """Export accepted conversations as JSON lines, one conversation per line
    (--include-rejected: every completed one, with its verdict).

    A stored conversation that cannot be written is skipped and counted by its reason on
    stderr (exit status 1).  With --job, a job's dataset: its accepted conversations
    (--all: every finished one) in --out FILE and its card in FILE's name with .card.md;
    exit status 1 if any conversation was skipped for another reason than not being
    accepted.
    """
    if job_id is not None:
        others = {"--min-quality": min_quality, "--limit": limit, "--since": since}
        given = [name for name, value in others.items() if value is not None]
        if given:
            raise click.UsageError(f"--job cannot be combined with {', '.join(given)}")
        _export_job(job_id, fmt, out_path, include_all or include_rejected)
        return
    if include_all:
        raise click.UsageError("--all goes with --job")
    settings = get_settings()
    skipped: dict[str, int] = {}
    with _output(out_path) as out:
        engine = make_engine(settings)
        try:
            count = export_conversations(
                engine,
                out,
                fmt=fmt,
                min_quality=min_quality,
                limit=limit,
                since=since,
                skipped=skipped,
                include_rejected=include_rejected,
            )
        finally:
            engine.dispose()
    where = "stdout" if out_path == "-" else out_path
    click.echo(f"wrote {count} conversation{_s(count)} ({fmt}) to {where}", err=True)
    for reason, n in sorted(skipped.items()):
        click.echo(f"skipped {n} ({reason})", err=True)
    if skipped:
        sys.exit(1)


def card_path(out_path: str) -> Path:
    """Where the card of an export to ``out_path`` goes: ``x.jsonl`` -> ``x.card.md``."""
    target = Path(out_path)
    return target.with_name(f"{target.stem if target.suffix else target.name}.card.md")


def _export_job(job_id: str, fmt: Format, out_path: str, include_all: bool) -> None:
    if out_path == "-":
        raise click.UsageError("--job writes a file and its card: give --out FILE")
    card = card_path(out_path)
    engine = make_engine(get_settings())
    try:
        with _output(out_path) as out:
            report = export_job(engine, job_id, out, fmt=fmt, include_all=include_all)
    finally:
        engine.dispose()
    with _output(str(card)) as f:
        f.write(report.card())
    n = report.written
    click.echo(f"wrote {n} conversation{_s(n)} ({fmt}) to {out_path}, card {card}", err=True)
    for reason, count in sorted(report.skipped.items()):
        click.echo(f"skipped {count} ({reason})", err=True)
    if report.incomplete:
        sys.exit(1)


@contextlib.contextmanager
def _output(out_path: str) -> Iterator[TextIO]:
    """stdout, or a temporary file beside ``out_path`` that replaces it on success."""
    if out_path == "-":
        yield sys.stdout
        return
    target = Path(out_path)
    if target.is_dir():
        raise click.BadParameter(f"{out_path} is a directory", param_hint="'--out'")
    directory = target.parent
    if not directory.is_dir():
        problem = "is not a directory" if directory.exists() else "does not exist"
        raise click.BadParameter(f"{directory} {problem}", param_hint="'--out'")
    try:
        fd, tmp_name = _create_beside(target)
    except OSError as exc:
        raise click.BadParameter(
            f"cannot write to {directory}: {exc.strerror}", param_hint="'--out'"
        ) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as tmp:
            yield tmp
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _create_beside(target: Path) -> tuple[int, Path]:
    """A new, empty file beside ``target`` under a name no one else holds.

    Created with mode 0666 less the umask, as any program's output file is (mkstemp
    would force 0600, and a chmod after it would override the umask the other way).
    O_EXCL refuses a name that exists, a planted symlink included.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    for _ in range(100):
        path = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(target.parent))


@click.command("score")
@click.option(
    "--in",
    "source",
    type=click.File("rb"),
    default="-",
    show_default=True,
    metavar="FILE",
    help="JSON lines (OpenAI messages or ShareGPT); - for stdin.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per line: its score or its error."
)
@click.option(
    "--version",
    "scorer",
    type=click.Choice([VERSION, V1]),
    default=VERSION,
    show_default=True,
    help=f"The quality model ({V1} for comparison with old rows).",
)
@click.option(
    "--min-quality",
    type=FiniteFloatRange(min=0, max=1),
    default=DEFAULT_MIN_QUALITY,
    show_default=True,
    help=f"{VERSION}: the score from which a conversation is accepted.",
)
def score_command(source: BinaryIO, as_json: bool, scorer: str, min_quality: float) -> None:
    """Score the quality of each conversation in a JSONL file.

    With quality.v2 (the default) each line gets its score, ``accepted`` and the reasons,
    and per-turn defect flags; what a line does not carry (ending, turn range, personas,
    topic) is neutral.  With quality.v1 the ending reason comes from each line's metadata
    or, when absent (or one Chimera does not record, with a warning), is judged from the
    transcript's last turns.  Exit status 1 if any line was malformed, or if the input is
    empty or blank.
    """
    reader = JsonlReader(source, get_settings().score_max_line_bytes)
    scores: list[float] = []
    malformed = 0
    for parsed in reader:
        item = (
            _scored(parsed, scorer, min_quality)
            if isinstance(parsed, ParsedConversation)
            else parsed
        )
        if isinstance(item, LineError):
            malformed += 1
            click.echo(printable(str(item)), err=True)
            if as_json:
                click.echo(_json({"line": item.line_no, "error": item.message}))
            continue
        for warning in item.warnings:
            click.echo(printable(f"line {item.conversation.line_no}: warning: {warning}"), err=True)
        scores.append(item.report.score)
        click.echo(_line(item, as_json))
    name = getattr(source, "name", "-")
    name = "stdin" if not isinstance(name, str) or name in ("-", "<stdin>") else name
    if reader.non_blank == 0:
        what = "is empty" if reader.lines == 0 else "holds only blank lines"
        click.echo(f"error: no conversations to score: {printable(clip(name))} {what}", err=True)
        sys.exit(1)
    summary = f"scored {len(scores)} conversation{_s(len(scores))} from {name}"
    if scores:
        mean = sum(scores) / len(scores)
        summary += f": mean {mean:.3f}, min {min(scores):.3f}, max {max(scores):.3f}"
    if malformed:
        summary += f"; {malformed} malformed line{_s(malformed)}"
    click.echo(summary, err=True)
    if malformed:
        sys.exit(1)


@dataclass(frozen=True)
class _Scored:
    """A conversation, its report, how it ended and what was odd about it."""

    conversation: ParsedConversation
    report: QualityReport | QualityV2Report
    ended: str | None
    warnings: list[str]


def _scored(item: ParsedConversation, scorer: str, min_quality: float) -> _Scored | LineError:
    """``item`` scored, or its line's error: no line's failure ends the file."""
    try:
        return _score(item, scorer, min_quality)
    except Exception as exc:  # a line that breaks the scorer is that line's error
        return LineError(item.line_no, f"cannot be scored: {type(exc).__name__}: {clip(str(exc))}")


def _score(item: ParsedConversation, scorer: str, min_quality: float) -> _Scored:
    # The scoring calls: the scorer is chosen here and nowhere else.
    if scorer == VERSION:
        known, warnings = _known_ending(item)
        inputs = inputs_of(item) | {"ended_reason": known}
        return _Scored(
            item, score_v2(item.turns, min_quality=min_quality, **inputs), known, warnings
        )
    ended, warnings = _ending(item)
    min_turns = item.turn_limit("min_turns") or _DEFAULT_MIN_TURNS
    max_turns = max(item.turn_limit("max_turns") or _DEFAULT_MAX_TURNS, min_turns)
    report = score_conversation(
        item.turns, ended_reason=ended, min_turns=min_turns, max_turns=max_turns
    )
    return _Scored(item, report, ended, warnings)


def _known_ending(item: ParsedConversation) -> tuple[str | None, list[str]]:
    """The metadata's ``ended_reason`` when it is one Chimera records; None (neutral) when
    absent, and with a warning naming it when unknown."""
    given = item.metadata.get("ended_reason")
    if given is None or (isinstance(given, str) and given in ENDED_REASONS):
        return given, []
    return None, [_unknown_ending(given) + "; the ending is not judged"]


def _unknown_ending(given: Any) -> str:
    shown_value = clip(given) if isinstance(given, str) else clip(json.dumps(given))
    return f"unknown ended_reason {shown_value!r} (known: {', '.join(sorted(ENDED_REASONS))})"


def _ending(item: ParsedConversation) -> tuple[str | None, list[str]]:
    """How the conversation ended: its metadata's ``ended_reason`` when it is one Chimera
    records, else judged from the transcript (an unknown one with a warning naming it)."""
    given = item.metadata.get("ended_reason")
    if isinstance(given, str) and given in ENDED_REASONS:
        return given, []
    warnings = []
    if given is not None:
        warnings.append(_unknown_ending(given) + "; judged from the transcript")
    decision = ending_of(item.turns)
    return (decision.reason if decision else None), warnings


def _line(scored: _Scored, as_json: bool) -> str:
    item, report = scored.conversation, scored.report
    if as_json:
        record: dict[str, Any] = {
            "line": item.line_no,
            "id": item.id,
            "format": item.format,
            "turns": len(item.turns),
            "ended_reason": scored.ended,
            "score": report.score,
            "breakdown": report.breakdown,
            "version": report.version,
        }
        if isinstance(report, QualityV2Report):
            record |= {
                "accepted": report.accepted,
                "reasons": report.reasons,
                "language": report.language,
                "defects": report.defects,
                "flags": report.flags,
                "turn_flags": [
                    {"turn": t.turn_index, "speaker": t.speaker, "flags": t.flags}
                    for t in report.turns
                    if t.flags
                ],
            }
        if scored.warnings:
            record["warnings"] = scored.warnings
        return _json(record)
    parts = " ".join(f"{k}={v:.2f}" for k, v in report.breakdown.items())
    # The file's author chose the id: clipped, and no control character, tab or line break
    # reaches the terminal or splits the line.
    label = f"\t{_one_field(shown(item.id))}" if item.id else ""
    if isinstance(report, QualityV2Report):
        verdict = "accepted" if report.accepted else "rejected:" + ",".join(report.reasons)
        return f"{item.line_no}\t{report.score:.3f}\t{verdict}\t{parts}{label}"
    return f"{item.line_no}\t{report.score:.3f}\t{parts}{label}"


def _one_field(text: str) -> str:
    return text.replace("\t", "\\t").replace("\n", "\\n")


def _json(record: dict[str, Any]) -> str:
    # ASCII: the file's text is escaped, no control character reaches a terminal, and a lone
    # surrogate (none gets this far) could not break the output's encoding.
    return json.dumps(record, ensure_ascii=True)


def _s(n: int) -> str:
    return "" if n == 1 else "s"
