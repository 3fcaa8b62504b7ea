"""Bad input to `chimera score` and `chimera export`, line by line, through the commands.

`score`: every bad line (too deep, a lone surrogate, not UTF-8, over the size limit) is
that line's error, named on stderr and, with ``--json``, one record of its own; every other
line is scored as it would be alone; an empty or blank input is an error (exit 1); an
unknown ``ended_reason`` is a warning naming it, the ending judged from the transcript.
`export`: whatever text a stored row holds, the output is one valid UTF-8 JSON line per
record; a row the driver cannot decode is skipped, counted by its reason, exit 1.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, insert, text, update
from sqlalchemy.exc import DataError, StatementError

from chimera.cli.data import export_command, score_command
from chimera.conversation.formats import ExportedConversation, to_jsonl
from chimera.conversation.parsing import JsonlReader, LineError, ParsedConversation
from chimera.db.tables import Conversation, Job
from chimera.models import TopicSpec
from chimera.settings import get_settings
from tests.chimera.conversation import transcripts as tx
from tests.chimera.conversation.stored import T0, add_conversation

LIMIT = 8_192


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Settings read from each test's environment, and forgotten after it."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def score(*args: str, data: bytes | None = None, limit: int = LIMIT) -> Result:
    env = {"CHIMERA_SCORE_MAX_LINE_BYTES": str(limit)}
    return CliRunner().invoke(score_command, list(args), input=data, env=env)


def _line(texts: list[str], **metadata: Any) -> str:
    record = ExportedConversation(id="x", topic=TopicSpec(title="Cars"), turns=tx.transcript(texts))
    obj = json.loads(to_jsonl(record, "openai"))
    obj["metadata"] = {"min_turns": 5, "max_turns": 10, **metadata}
    return json.dumps(obj)


GOOD = _line(tx.CARS, id="c-good", ended_reason="natural_close")
LOOP = _line(tx.LOOPING, id="c-loop", ended_reason="repetition")


def _alone(line: str, *args: str) -> dict[str, Any]:
    """The --json record of ``line`` scored in a file of its own."""
    result = score("--json", *args, data=(line + "\n").encode())
    assert result.exit_code == 0, result.output
    (record,) = [json.loads(x) for x in result.stdout.splitlines()]
    return record


def _records(result: Result) -> list[dict[str, Any]]:
    return [json.loads(x) for x in result.stdout.splitlines()]


# --- score: one record per line --------------------------------------------------------


HOSTILE: list[tuple[bytes, str | None]] = [
    # (the line, what its error names; None: it is scored)
    (GOOD.encode(), None),
    (b'{"messages": ' + b"[" * 1_000 + b"]" * 1_000 + b"}", "nested too deeply"),
    (b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "longer than the limit"),
    (b'{"messages": ' + b"[" * 2_000 + b"]" * 2_000 + b"}", "nested too deeply"),
    (_line(tx.CARS, id="bad \ud800 id").encode(), "unpaired surrogate"),
    (_line(["Hi \udfff there."] * 4).encode(), "unpaired surrogate"),
    (LOOP.encode(), None),
    (b"\xed\xa0\x80 raw surrogate bytes", "not UTF-8"),
    (_line(tx.CARS, id="two\nlines\tand a tab\x1b[2J").encode(), None),
    (b"   ", None),  # blank: no record
    (_line(tx.CARS, note="x" * (LIMIT - 100)).encode(), "longer than the limit of 8192 bytes"),
    (b'{"messages": [], "n": ' + b"9" * 5_000 + b"}", "too many digits"),
    (b"[1, 2]", "expected a JSON object"),
    (GOOD.encode(), None),
]


def test_every_line_is_its_score_or_its_error_and_the_rest_is_scored(tmp_path: Path) -> None:
    source = tmp_path / "hostile.jsonl"
    source.write_bytes(b"\n".join(line for line, _ in HOSTILE))  # no final line break
    result = score("--in", str(source), "--json")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    records = _records(result)
    expected_lines = [n for n, (line, _) in enumerate(HOSTILE, 1) if line.strip()]
    assert [r["line"] for r in records] == expected_lines
    bad = {n: error for n, (_, error) in enumerate(HOSTILE, 1) if error is not None}
    for record in records:
        n = record["line"]
        if n in bad:
            assert set(record) == {"line", "error"}, record
            assert bad[n] in record["error"], record
            assert "score" not in record
        else:
            assert {"line", "id", "score", "breakdown", "version"} <= set(record), record
    scored = {r["line"]: r for r in records if "score" in r}
    # Each good line scores exactly as it does alone.
    for n, line in ((1, GOOD), (7, LOOP), (14, GOOD)):
        alone = _alone(line)
        assert scored[n]["score"] == alone["score"] and scored[n]["breakdown"] == alone["breakdown"]
    assert scored[9]["id"] == "two\nlines\tand a tab\x1b[2J"
    # stderr: each bad line named, then the summary.
    errors = result.stderr.splitlines()
    assert [e.split(":")[0] for e in errors[:-1]] == [f"line {n}" for n in sorted(bad)]
    assert errors[-1].startswith(f"scored 4 conversations from {source}: mean ")
    assert errors[-1].endswith(f"; {len(bad)} malformed lines")
    assert "CHIMERA_SCORE_MAX_LINE_BYTES" in errors[[*sorted(bad)].index(11)]


def test_the_text_output_is_one_line_per_conversation_whatever_its_id() -> None:
    lines = [_line(tx.CARS, id="two\nlines\tand\x1b[2J\u202e"), GOOD]
    result = score(data="\n".join(lines).encode())
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert [row.split("\t")[0] for row in out] == ["1", "2"]
    # line, score, verdict, breakdown, id: the id is the last column
    assert out[0].split("\t")[-1] == "two\\nlines\\tand\\x1b[2J\\u202e"
    assert out[1].split("\t")[-1] == "c-good"
    assert all(len(row.split("\t")) == 5 for row in out)


def test_a_line_at_the_limit_is_read_and_one_byte_more_is_not() -> None:
    base = _line(tx.CARS, id="c-edge", note="")
    at_limit = _line(tx.CARS, id="c-edge", note="x" * (LIMIT - len(base.encode())))
    over = _line(tx.CARS, id="c-over", note="x" * (LIMIT - len(base.encode()) + 1))
    assert len(at_limit.encode()) == LIMIT
    for ending in ("\n", "\r\n"):
        result = score("--json", data=f"{at_limit}{ending}{over}{ending}{GOOD}".encode())
        assert result.exit_code == 1, result.output
        first, second, third = _records(result)
        assert first["id"] == "c-edge" and "score" in first
        assert second == {
            "line": 2,
            "error": "longer than the limit of 8192 bytes (CHIMERA_SCORE_MAX_LINE_BYTES); not read",
        }
        assert third["id"] == "c-good"


def test_an_over_size_line_is_read_in_bounded_pieces() -> None:
    class Watched(io.BytesIO):
        largest = 0

        def readline(self, size: int | None = -1, /) -> bytes:
            chunk = super().readline(size)
            Watched.largest = max(Watched.largest, len(chunk))
            return chunk

    huge = b'{"messages": "' + b"x" * 3_000_000 + b'"}'
    stream = Watched(b"\n".join([GOOD.encode(), huge, GOOD.encode()]) + b"\n")
    items = list(JsonlReader(stream, LIMIT))
    assert [type(i) for i in items] == [ParsedConversation, LineError, ParsedConversation]
    assert [i.line_no for i in items] == [1, 2, 3]
    assert Watched.largest <= 65_536


# --- score: empty input ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "what"),
    [(b"", "is empty"), (b"\n  \n\r\n\t\n", "holds only blank lines")],
)
def test_an_empty_or_blank_input_is_an_error(tmp_path: Path, data: bytes, what: str) -> None:
    source = tmp_path / "empty.jsonl"
    source.write_bytes(data)
    for args in (["--in", str(source)], ["--in", str(source), "--json"]):
        result = score(*args)
        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr == f"error: no conversations to score: {source} {what}\n"
    from_stdin = score(data=data)
    assert from_stdin.exit_code == 1
    assert from_stdin.stderr == f"error: no conversations to score: stdin {what}\n"


def test_a_file_of_bad_lines_only_is_not_empty(tmp_path: Path) -> None:
    result = score("--json", data=b"{nope\n\n[]\n")
    assert result.exit_code == 1
    assert [r["line"] for r in _records(result)] == [1, 3]
    assert result.stderr.splitlines()[-1] == "scored 0 conversations from stdin; 2 malformed lines"


# --- score: unknown ended_reason -------------------------------------------------------


@pytest.mark.parametrize("version", ["quality.v2", "quality.v1"])
def test_an_unknown_ended_reason_is_a_warning_not_a_silent_zero(version: str) -> None:
    """quality.v2 leaves an ending it is not told neutral (as if absent); quality.v1 judges
    it from the transcript.  Either way the unknown value is named in a warning."""
    given = _alone(_line(tx.CARS, id="c-1"), "--version", version)  # no reason given
    assert given["ended_reason"] == (None if version == "quality.v2" else "natural_close")
    lines = [
        _line(tx.CARS, id="c-1", ended_reason="exploded\x1b[2J"),
        _line(tx.CARS, id="c-2", ended_reason=7),
        GOOD,
    ]
    result = score("--json", "--version", version, data="\n".join(lines).encode())
    assert result.exit_code == 0, result.output
    first, second, third = _records(result)
    for record in (first, second):
        assert record["score"] == given["score"] > 0
        assert record["breakdown"] == given["breakdown"]
        assert record["ended_reason"] == given["ended_reason"]
    assert "exploded" in first["warnings"][0] and "7" in second["warnings"][0]
    assert "warnings" not in third
    warnings = result.stderr.splitlines()[:2]
    assert warnings[0].startswith("line 1: warning: unknown ended_reason 'exploded\\x1b[2J'")
    assert warnings[1].startswith("line 2: warning: unknown ended_reason '7'")
    said = "the ending is not judged" if version == "quality.v2" else "judged from the transcript"
    assert all(said in w for w in warnings)


# --- export ----------------------------------------------------------------------------

HOSTILE_ID = "conv-\n\t\x1b[2J\u2028\u2029\u202e\x7f"
HOSTILE_META = {"id": "line\nbreak", "note": "\u2028\u2029\x00\x1b]0;title\x07", "é": "ü"}


def _stored_rows(db: Engine, job_id: str | None = None) -> None:
    """Two good conversations, one with hostile text, two the driver cannot decode."""
    if job_id is not None:
        with db.begin() as conn:
            conn.execute(insert(Job).values(id=job_id, name="j", spec={}, status="completed"))
    ids: list[str] = []
    for cid in ("c-1", HOSTILE_ID, "c-deep", "c-digits", "c-2"):
        add_conversation(db, cid, created_at=T0 + timedelta(minutes=len(ids)))
        ids.append(cid)
    meta = {**HOSTILE_META, "note": HOSTILE_META["note"].replace("\x00", "")}
    with db.begin() as conn:
        conn.execute(update(Conversation).values(job_id=job_id))
        conn.execute(
            update(Conversation).where(Conversation.id == HOSTILE_ID).values(metadata_=meta)
        )
        for cid, value in (
            ("c-deep", '{"a": ' + "[" * 5_000 + "]" * 5_000 + "}"),
            ("c-digits", '{"a": ' + "9" * 5_000 + "}"),
        ):
            conn.execute(
                text("UPDATE conversations SET metadata = CAST(:v AS jsonb) WHERE id = :id"),
                {"v": value, "id": cid},
            )


def _valid_jsonl(data: bytes) -> list[dict[str, Any]]:
    text_ = data.decode("utf-8")  # valid UTF-8, or this raises
    assert text_.endswith("\n")
    lines = text_[:-1].split("\n")
    assert all("\r" not in line and "\u2028" not in line for line in lines)
    return [json.loads(line) for line in lines]


def test_export_writes_hostile_text_as_valid_jsonl_and_skips_undecodable_rows(
    db: Engine, tmp_path: Path
) -> None:
    _stored_rows(db)
    out = tmp_path / "train.jsonl"
    for fmt in ("openai", "sharegpt"):
        result = CliRunner().invoke(export_command, ["--out", str(out), "--format", fmt])
        assert result.exit_code == 1, result.output
        records = _valid_jsonl(out.read_bytes())
        assert [r["metadata"]["id"] for r in records] == ["c-1", HOSTILE_ID, "c-2"]
        assert records[1]["metadata"]["conversation_metadata"] == {
            **HOSTILE_META,
            "note": "\u2028\u2029\x1b]0;title\x07",
        }
        assert result.stderr.splitlines()[-2:] == [
            f"wrote 3 conversations ({fmt}) to {out}",
            "skipped 2 (unreadable)",
        ]


def test_export_to_stdout_is_valid_jsonl_too(db: Engine) -> None:
    _stored_rows(db)
    result = CliRunner().invoke(export_command, [])
    assert result.exit_code == 1
    assert [r["metadata"]["id"] for r in _valid_jsonl(result.stdout_bytes)] == [
        "c-1",
        HOSTILE_ID,
        "c-2",
    ]
    assert "skipped 2 (unreadable)" in result.stderr


def test_a_job_export_skips_undecodable_rows_and_names_why(db: Engine, tmp_path: Path) -> None:
    _stored_rows(db, job_id="job-hostile")
    out = tmp_path / "job.jsonl"
    result = CliRunner().invoke(export_command, ["--job", "job-hostile", "--out", str(out)])
    assert result.exit_code == 1, result.output
    records = _valid_jsonl(out.read_bytes())
    assert [r["metadata"]["lineage"]["conversation_id"] for r in records] == [
        "c-1",
        HOSTILE_ID,
        "c-2",
    ]
    assert "skipped 2 (unreadable)" in result.stderr
    assert "unreadable" in (tmp_path / "job.card.md").read_text(encoding="utf-8")


def test_postgres_stores_no_lone_surrogate_nor_nul(db: Engine) -> None:
    """Why an export never meets text that UTF-8 cannot carry: it cannot be stored."""
    add_conversation(db, "c-1")
    for values in ({"metadata_": {"id": "\ud800"}}, {"metadata_": {"id": "a\x00b"}}):
        with pytest.raises((DataError, StatementError, UnicodeEncodeError)), db.begin() as conn:
            conn.execute(update(Conversation).values(**values))
    for raw in ('{"id": "\\ud800"}', '{"id": "\\u0000"}'):
        with pytest.raises(DataError), db.begin() as conn:
            conn.execute(text("UPDATE conversations SET metadata = CAST(:v AS jsonb)"), {"v": raw})
