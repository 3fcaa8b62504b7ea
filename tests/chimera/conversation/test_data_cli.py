"""`export` and `score` as a user runs them (through click's runner)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from chimera.cli import data
from chimera.cli.data import export_command, score_command
from chimera.conversation.formats import ExportedConversation, to_jsonl, to_openai
from chimera.errors import DatabaseUnavailable
from chimera.models import TopicSpec
from tests.chimera.conversation import transcripts as tx
from tests.chimera.conversation.stored import add_conversation


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def stored(db: Engine) -> dict[str, float | None]:
    """Two completed conversations (scored as the engine scores them) and a failed one."""
    return {
        "c-cars": add_conversation(db, "c-cars"),
        "c-loop": add_conversation(db, "c-loop", texts=tx.LOOPING, ended_reason="repetition"),
        "c-failed": add_conversation(db, "c-failed", status="failed"),
    }


def test_export_to_a_file(runner: CliRunner, stored: Any, tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    result = runner.invoke(export_command, ["--out", str(out), "--format", "sharegpt"])
    assert result.exit_code == 0, result.output
    assert result.stderr == f"wrote 2 conversations (sharegpt) to {out}\n"
    assert result.stdout == ""
    lines = out.read_text().splitlines()
    assert [json.loads(line)["metadata"]["id"] for line in lines] == ["c-cars", "c-loop"]
    assert all("conversations" in json.loads(line) for line in lines)
    assert [p.name for p in tmp_path.iterdir()] == ["train.jsonl"]  # no temporary left over


def test_export_to_stdout_with_filters(runner: CliRunner, stored: Any) -> None:
    threshold = (stored["c-cars"] + stored["c-loop"]) / 2
    result = runner.invoke(export_command, ["--min-quality", f"{threshold:.4f}", "--limit", "5"])
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    assert json.loads(line)["metadata"]["id"] == "c-cars"
    assert "messages" in json.loads(line)
    assert result.stderr == "wrote 1 conversation (openai) to stdout\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-quality", "2"], "2.0 is not in the range 0.0<=x<=1.0"),
        (["--min-quality", "-0.1"], "is not in the range"),
        (["--limit", "0"], "0 is not in the range x>=1"),
        (["--format", "csv"], "'csv' is not one of 'openai', 'sharegpt'"),
        (["--out", "/no/such/dir/out.jsonl"], "/no/such/dir does not exist"),
        (["--out", "/etc/hostname/out.jsonl"], "/etc/hostname is not a directory"),
        (["--out", "/proc/chimera-export.jsonl"], "cannot write to /proc"),
        (["--since", "yesterday"], "'yesterday' does not match the formats"),
    ],
)
def test_export_refuses_bad_arguments(
    runner: CliRunner, db: Engine, args: list[str], message: str
) -> None:
    result = runner.invoke(export_command, args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_export_refuses_a_directory(runner: CliRunner, db: Engine, tmp_path: Path) -> None:
    result = runner.invoke(export_command, ["--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "is a directory" in result.stderr


def test_a_failed_export_leaves_no_partial_file(
    runner: CliRunner, db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def half_then_fail(engine: Engine, out: Any, **kwargs: Any) -> int:
        out.write('{"messages": []}\n')
        raise DatabaseUnavailable("cannot read conversations: connection lost")

    monkeypatch.setattr(data, "export_conversations", half_then_fail)
    target = tmp_path / "train.jsonl"
    target.write_text("the previous export\n")
    result = runner.invoke(export_command, ["--out", str(target)])
    assert isinstance(result.exception, DatabaseUnavailable)  # the main CLI prints it as one line
    assert target.read_text() == "the previous export\n"
    assert [p.name for p in tmp_path.iterdir()] == ["train.jsonl"]


def test_score_reproduces_the_stored_scores(runner: CliRunner, stored: Any, tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    assert runner.invoke(export_command, ["--out", str(out)]).exit_code == 0
    result = runner.invoke(score_command, ["--in", str(out), "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["line"], r["id"]) for r in rows] == [(1, "c-cars"), (2, "c-loop")]
    assert [r["score"] for r in rows] == [stored["c-cars"], stored["c-loop"]]
    assert [r["ended_reason"] for r in rows] == ["natural_close", "repetition"]
    assert set(rows[0]["breakdown"]) == {
        "length",
        "diversity",
        "relevance",
        "uptake",
        "progression",
        "ending",
        "development",
    }
    assert [r["version"] for r in rows] == ["quality.v2"] * 2
    assert [r["accepted"] for r in rows] == [True, False]
    assert result.stderr.startswith(f"scored 2 conversations from {out}: mean ")


def _record(texts: list[str]) -> ExportedConversation:
    return ExportedConversation(
        id="x", topic=TopicSpec(title="Cars"), turns=tuple(tx.transcript(texts))
    )


def test_score_reports_malformed_lines_and_exits_1(runner: CliRunner, tmp_path: Path) -> None:
    foreign = to_openai(_record(tx.CARS))
    foreign.pop("metadata")  # from elsewhere: no ending reason, no turn details
    lines = [
        json.dumps(foreign),
        "",
        "{not json",
        to_jsonl(_record(tx.OFF_TOPIC), "sharegpt"),
        '{"messages": [{"role": "narrator", "content": "x"}]}',
    ]
    source = tmp_path / "mixed.jsonl"
    source.write_text("\n".join(lines) + "\n")
    result = runner.invoke(score_command, ["--in", str(source)])
    assert result.exit_code == 1
    out = result.stdout.splitlines()
    assert [line.split("\t")[0] for line in out] == ["1", "4"]
    _, score, verdict, parts, *label = out[1].split("\t")
    assert 0 <= float(score) <= 1
    assert verdict.startswith("rejected:")  # the off-topic transcript
    assert parts.startswith("diversity=") and "relevance=" in parts
    assert label == ["x"]
    errors = result.stderr.splitlines()
    assert errors[0].startswith("line 3: invalid JSON")
    assert errors[1] == "line 5: messages[0] has an unknown role 'narrator'"
    assert errors[2].startswith(f"scored 2 conversations from {source}: mean ")
    assert errors[2].endswith("; 2 malformed lines")


def test_a_foreign_conversation_is_scored_on_what_it_carries(runner: CliRunner) -> None:
    """quality.v2 judges no ending it is not told (neutral); quality.v1 infers it."""
    foreign = to_openai(_record(tx.CARS))
    foreign.pop("metadata")
    line = json.dumps(foreign) + "\n"
    result = runner.invoke(score_command, ["--json"], input=line)
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert (row["ended_reason"], row["id"], row["accepted"]) == (None, None, True)
    assert "length" not in row["breakdown"]  # no turn range given: not judged
    assert row["score"] > 0.8
    assert result.stderr.startswith("scored 1 conversation from stdin: mean ")
    v1 = runner.invoke(score_command, ["--json", "--version", "quality.v1"], input=line)
    (row,) = [json.loads(line) for line in v1.stdout.splitlines()]
    assert row["ended_reason"] == "natural_close"
    assert row["score"] > 0.9


def test_score_an_empty_input(runner: CliRunner) -> None:
    result = runner.invoke(score_command, [], input="")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "error: no conversations to score: stdin is empty\n"


def test_score_a_missing_file(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(score_command, ["--in", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2
    assert "No such file or directory" in result.stderr
