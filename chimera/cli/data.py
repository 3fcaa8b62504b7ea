"""`chimera export` and `chimera score`: conversations as training data.

``export`` writes completed conversations from Postgres as JSON lines (OpenAI messages or
ShareGPT); a file is written to a temporary name beside it and renamed when complete, so a
failed export never leaves half a file.  The file is created like any other, with the mode
the umask allows (an operator's umask 077 keeps the transcripts private).  ``score`` rates
the conversations of any such file (ours or from elsewhere) with the quality model: one
line per conversation on stdout, a summary and every malformed line on stderr, exit status
1 if any line was malformed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, TextIO

import click

from chimera.cli.output import shown
from chimera.cli.types import FiniteFloatRange
from chimera.conversation.ending import ending_of
from chimera.conversation.export import export_conversations
from chimera.conversation.formats import FORMATS, Format
from chimera.conversation.parsing import LineError, ParsedConversation, read_jsonl
from chimera.conversation.quality import QualityReport, score_conversation
from chimera.db.engine import make_engine
from chimera.jobs.export import export_job
from chimera.settings import get_settings
from chimera.untrusted import printable

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
def export_command(
    fmt: Format,
    min_quality: float | None,
    limit: int | None,
    since: datetime | None,
    out_path: str,
    job_id: str | None,
    include_all: bool,
) -> None:
    """Export completed conversations as JSON lines, one conversation per line.

    With --job, a job's dataset: its accepted conversations (--all: every finished one)
    in --out FILE and its card in FILE's name with .card.md; exit status 1 if any
    conversation was skipped for another reason than not being accepted.
    """
    if job_id is not None:
        others = {"--min-quality": min_quality, "--limit": limit, "--since": since}
        given = [name for name, value in others.items() if value is not None]
        if given:
            raise click.UsageError(f"--job cannot be combined with {', '.join(given)}")
        _export_job(job_id, fmt, out_path, include_all)
        return
    if include_all:
        raise click.UsageError("--all goes with --job")
    settings = get_settings()
    with _output(out_path) as out:
        engine = make_engine(settings)
        try:
            count = export_conversations(
                engine, out, fmt=fmt, min_quality=min_quality, limit=limit, since=since
            )
        finally:
            engine.dispose()
    where = "stdout" if out_path == "-" else out_path
    click.echo(f"wrote {count} conversation{_s(count)} ({fmt}) to {where}", err=True)


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
@click.option("--json", "as_json", is_flag=True, help="One JSON object per conversation.")
def score_command(source: BinaryIO, as_json: bool) -> None:
    """Score the quality of each conversation in a JSONL file.

    The ending reason comes from each line's metadata; when it is absent it is judged from
    the transcript's last turns.  Exit status 1 if any line was malformed.
    """
    scores: list[float] = []
    malformed = 0
    for item in read_jsonl(source):
        if isinstance(item, LineError):
            malformed += 1
            click.echo(printable(str(item)), err=True)
            continue
        report, ended = _score(item)
        scores.append(report.score)
        click.echo(_line(item, report, ended, as_json))
    name = getattr(source, "name", "-")
    name = "stdin" if not isinstance(name, str) or name in ("-", "<stdin>") else name
    summary = f"scored {len(scores)} conversation{_s(len(scores))} from {name}"
    if scores:
        mean = sum(scores) / len(scores)
        summary += f": mean {mean:.3f}, min {min(scores):.3f}, max {max(scores):.3f}"
    if malformed:
        summary += f"; {malformed} malformed line{_s(malformed)}"
    click.echo(summary, err=True)
    if malformed:
        sys.exit(1)


def _score(item: ParsedConversation) -> tuple[QualityReport, str | None]:
    ended = item.ended_reason
    if ended is None:
        decision = ending_of(item.turns)
        ended = decision.reason if decision else None
    min_turns = item.turn_limit("min_turns") or _DEFAULT_MIN_TURNS
    max_turns = max(item.turn_limit("max_turns") or _DEFAULT_MAX_TURNS, min_turns)
    report = score_conversation(
        item.turns, ended_reason=ended, min_turns=min_turns, max_turns=max_turns
    )
    return report, ended


def _line(item: ParsedConversation, report: QualityReport, ended: str | None, as_json: bool) -> str:
    if as_json:
        return json.dumps(
            {
                "line": item.line_no,
                "id": item.id,
                "format": item.format,
                "turns": len(item.turns),
                "ended_reason": ended,
                "score": report.score,
                "breakdown": report.breakdown,
                "version": report.version,
            },
            ensure_ascii=True,  # the id is the file's: escaped, no control reaches a terminal
        )
    parts = " ".join(f"{k}={v:.2f}" for k, v in report.breakdown.items())
    label = f"\t{shown(item.id)}" if item.id else ""  # the file's author chose it
    return f"{item.line_no}\t{report.score:.3f}\t{parts}{label}"


def _s(n: int) -> str:
    return "" if n == 1 else "s"
