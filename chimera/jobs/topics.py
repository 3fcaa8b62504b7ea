"""Reading a job's topics from a file: JSONL objects, CSV with a ``title`` column, or
plain lines (one title each).

Files are read a line at a time and topics handed out one by one (a generator), so a
file of any size is never held whole; standard input is spooled to a temporary file
first, since creating a job reads its topics twice (once to derive the job id, once
to store them).
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal

from chimera.errors import SchemaInvalid
from chimera.jobs.spec import job_topic

Format = Literal["jsonl", "csv", "lines"]
FORMATS: tuple[str, ...] = ("auto", "jsonl", "csv", "lines")
_SUFFIXES: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".txt": "lines",
}


def topic_error(name: str, line: int | None, message: str) -> SchemaInvalid:
    """The error of a topics file that cannot be read, or of one of its lines: it names
    the file and the line."""
    where = f"{name} line {line}" if line is not None else name
    return SchemaInvalid(f"{where}: {message}", [{"field": where, "message": message}])


def detect(path: Path) -> Format:
    """The format of ``path``: by its suffix, else JSONL if its first non-blank line
    starts with ``{``, else plain lines."""
    by_suffix = _SUFFIXES.get(path.suffix.lower())
    if by_suffix is not None:
        return by_suffix
    with _open(path, str(path)) as f:
        for raw in f:
            if raw.strip():
                return "jsonl" if raw.lstrip().startswith("{") else "lines"
    return "lines"


def _open(path: Path, name: str) -> IO[str]:
    try:
        return path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise topic_error(name, None, f"cannot open: {exc.strerror}") from None


def read_topics(
    path: Path, fmt: str = "auto", *, name: str | None = None
) -> Iterator[dict[str, Any]]:
    """The topics of ``path`` in order, each as ``job_topic`` makes it; a bad line is a
    ``SchemaInvalid`` naming the file and the line.  Lazy: one line at a time."""
    shown = name or str(path)
    chosen: Format = detect(path) if fmt == "auto" else fmt  # type: ignore[assignment]
    if chosen not in ("jsonl", "csv", "lines"):
        raise topic_error(shown, None, f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    with _open(path, shown) as f:
        try:
            if chosen == "csv":
                yield from _csv(f, shown)
            else:
                yield from _lines(f, shown, jsonl=chosen == "jsonl")
        except UnicodeDecodeError as exc:
            raise topic_error(shown, None, f"not UTF-8 text ({exc.reason})") from None


def _lines(f: IO[str], name: str, *, jsonl: bool) -> Iterator[dict[str, Any]]:
    for number, raw in enumerate(f, start=1):
        text = raw.strip()
        if not text:
            continue
        obj: Any = text
        if jsonl:
            try:
                obj = json.loads(text)
            except ValueError as exc:
                raise topic_error(name, number, f"not JSON: {exc}") from None
            except RecursionError:
                raise topic_error(name, number, "nested too deeply") from None
            if not isinstance(obj, dict):
                raise topic_error(name, number, "expected a JSON object with a title")
        yield _topic(obj, name, number)


def _csv(f: IO[str], name: str) -> Iterator[dict[str, Any]]:
    reader = csv.DictReader(f)
    if reader.fieldnames is None or "title" not in reader.fieldnames:
        raise topic_error(name, 1, "a CSV topics file needs a 'title' column")
    for row in reader:
        if None in row:
            raise topic_error(name, reader.line_num, "more cells than the header has columns")
        obj = {k: v for k, v in row.items() if v not in (None, "") or k == "title"}
        yield _topic(obj, name, reader.line_num)


def _topic(obj: Any, name: str, number: int) -> dict[str, Any]:
    try:
        return job_topic(obj)
    except ValueError as exc:
        raise topic_error(name, number, str(exc)) from None


def spool(stream: IO[bytes], directory: str | None = None) -> Path:
    """Copy ``stream`` (standard input) to a temporary file, in chunks; the caller
    removes it."""
    with tempfile.NamedTemporaryFile("wb", delete=False, suffix=".topics", dir=directory) as out:
        shutil.copyfileobj(stream, out, length=1 << 20)
    return Path(out.name)
