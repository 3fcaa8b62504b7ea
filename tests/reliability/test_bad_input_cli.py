"""Bad input at the command line: exit 2 and one line naming what is wrong; an unreachable
service is exit 1 and one line; never a traceback, never half-written output.

Bad arguments run in-process through ``chimera.cli.main`` (the entry point, with its
error handling) while every service points at a closed port: a command that got past
its checks would fail to connect and exit 1, so exit 2 also proves nothing was
attempted.  Unreachable services are checked in real processes too, where library
logging would show on stderr.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from chimera.cli import main
from chimera.conversation.topic_queue import TopicQueue
from chimera.events.inbox import Inbox
from chimera.redis_client import make_redis
from chimera.settings import get_settings
from tests.conftest import PROJECT_ROOT
from tests.helpers import free_port

CLOSED = free_port()
#: Every service at a closed port; a Kafka client gives up after a second, not thirty.
DEAD: dict[str, str | None] = {
    "DATABASE_URL": f"postgresql://postgres:db-secret@127.0.0.1:{CLOSED}/chimera",
    "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{CLOSED}",
    "REDIS_URL": f"redis://:redis-secret@127.0.0.1:{CLOSED}/0",
    "CHIMERA_KAFKA_REQUEST_TIMEOUT_MS": "1000",
}


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def error_line(self, prefix: str) -> str:
        """The one line of stderr starting with ``prefix`` (click's usage lines aside)."""
        assert "Traceback" not in self.err, self.err
        lines = [line for line in self.err.splitlines() if line.strip()]
        found = [line for line in lines if line.startswith(prefix)]
        assert len(found) == 1, self.err
        noise = [line for line in lines if not line.startswith(("Usage:", "Try ", prefix))]
        assert noise == [], self.err
        return found[0]


def run(*argv: str, env: dict[str, str | None] | None = None, stdin: str | None = None) -> Run:
    """``chimera ARGV`` in this process, through the real entry point.

    The process's settings are read afresh from this environment, and forgotten
    after, so the rest of the session reads its own again.
    """
    get_settings.cache_clear()
    try:
        with CliRunner().isolation(input=stdin, env=DEAD | (env or {})) as (out, err, _):
            try:
                main(list(argv))
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        get_settings.cache_clear()
    return Run(code, out.getvalue().decode(), err.getvalue().decode())


def run_process(*argv: str, env: dict[str, str] | None = None) -> Run:
    """``python -m chimera ARGV`` as a user runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "chimera", *argv],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={k: v for k, v in (os.environ | DEAD | (env or {})).items() if v is not None},
        timeout=120,
        check=False,
    )
    return Run(result.returncode, result.stdout, result.stderr)


# --- bad arguments: exit 2, naming what is wrong -------------------------------------------------

Files = dict[str, Path]


@pytest.fixture
def files(tmp_path: Path) -> Files:
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Ana: café crème\n".encode("latin-1"))
    bad_json = tmp_path / "topics.txt"
    bad_json.write_text('Plain topic\n{"title": "ok"}\n{"title": \n', encoding="utf-8")
    nul = tmp_path / "nul.txt"
    nul.write_text("Ana: cars\x00bikes\n", encoding="utf-8")
    nested = tmp_path / "nested.jsonl"  # deep enough for the JSON parser's RecursionError
    nested.write_text(
        'Plain topic\n{"title": "t", "metadata": {"x": ' + "[" * 30_000 + "]" * 30_000 + "}}\n"
    )
    oversize = tmp_path / "oversize.jsonl"  # one line over CHIMERA_TOPICS_MAX_ITEM_BYTES
    oversize.write_text(json.dumps({"title": "t", "metadata": {"pad": "x" * 70_000}}) + "\n")
    endless = tmp_path / "endless.txt"  # one line that never ends, far over any limit
    endless.write_bytes(b"x" * 4_000_000)
    huge = tmp_path / "huge.txt"  # a segments file over CHIMERA_MAX_EVENT_BYTES
    huge.write_bytes(b"Ana: " + b"y" * (1 << 20))
    return {
        "latin1": latin1,
        "bad_json": bad_json,
        "nul": nul,
        "nested": nested,
        "oversize": oversize,
        "endless": endless,
        "huge": huge,
        "dir": tmp_path,
    }


def fill(arg: str, files: Files) -> str:
    """``{name}`` -> the path of the fixture's file ``name``."""
    name = arg[1:-1]
    return str(files[name]) if arg == f"{{{name}}}" and name in files else arg


TOPIC = ("submit", "conversation", "--topic", "Should cities ban cars?")
ANALYSIS = ("submit", "analysis", "--context-id", "doc-1")

BAD_ARGUMENTS: list[tuple[str, tuple[str, ...], str]] = [
    # (name, argv ({name} is a file of the fixture above), what the error line must say)
    ("unknown command", ("launch",), "No such command 'launch'"),
    ("unknown option", ("--verbose", "config"), "No such option '--verbose'"),
    ("config: extra argument", ("config", "all"), "unexpected extra argument (all)"),
    ("db: unknown command", ("db", "migrate"), "No such command 'migrate'"),
    (
        "db upgrade: option without value",
        ("db", "upgrade", "--revision"),
        "'--revision' requires an argument",
    ),
    ("db upgrade: extra argument", ("db", "upgrade", "head"), "unexpected extra argument (head)"),
    ("db downgrade: no revision", ("db", "downgrade"), "Missing argument 'REVISION'"),
    ("kafka: unknown option", ("kafka", "create-topics", "--all"), "No such option '--all'"),
    ("stack: unknown command", ("stack", "restart"), "No such command 'restart'"),
    (
        "stack up: flag with a value",
        ("stack", "up", "--attach=yes"),
        "'--attach' does not take a value",
    ),
    ("submit: no kind", ("submit", "poem"), "No such command 'poem'"),
    ("conversation: no topic", ("submit", "conversation"), "Missing option '--topic'"),
    (
        "conversation: topic without value",
        ("submit", "conversation", "--topic"),
        "'--topic' requires an argument",
    ),
    (
        "conversation: blank topic",
        ("submit", "conversation", "--topic", "   "),
        "topic.title: must not be blank",
    ),
    (
        "conversation: topic too long",
        ("submit", "conversation", "--topic", "t" * 501),
        "topic.title",
    ),
    (
        "conversation: min-turns 0",
        (*TOPIC, "--min-turns", "0"),
        "Invalid value for '--min-turns': 0 is not in the range x>=1",
    ),
    (
        "conversation: max-turns a word",
        (*TOPIC, "--max-turns", "ten"),
        "'ten' is not a valid integer",
    ),
    (
        "conversation: max-turns over the cap",
        (*TOPIC, "--max-turns", "1000"),
        "max_turns: must be between 1 and",
    ),
    (
        "conversation: min over max",
        (*TOPIC, "--min-turns", "5", "--max-turns", "3"),
        "min_turns: must not exceed max_turns (3)",
    ),
    (
        "conversation: participant without model",
        (*TOPIC, "--participant", "openai"),
        "'openai' is not provider:model[:name]",
    ),
    (
        "conversation: participant without provider",
        (*TOPIC, "--participant", ":gpt"),
        "':gpt' is not provider:model[:name]",
    ),
    (
        "conversation: one participant",
        (*TOPIC, "--participant", "openai:m"),
        "participants: must list 2 to",
    ),
    (
        "conversation: unknown provider",
        (*TOPIC, "--participant", "mistral:m", "--participant", "openai:g"),
        "participants.0.provider",
    ),
    (
        "conversation: model with a space",
        (*TOPIC, "--participant", "openai:a b", "--participant", "openai:g"),
        "participants.0.model",
    ),
    ("conversation: metadata not JSON", (*TOPIC, "--metadata", "{bad"), "--metadata"),
    (
        "conversation: metadata not an object",
        (*TOPIC, "--metadata", "[1]"),
        "metadata: Input should be a valid dictionary",
    ),
    ("conversation: event id with a space", (*TOPIC, "--event-id", "evt 1"), "event_id"),
    ("conversation: event id too long", (*TOPIC, "--event-id", "e" * 129), "event_id"),
    (
        "conversation: NUL in the metadata",
        (*TOPIC, "--metadata", '{"k": "a\\u0000b"}'),
        "metadata.k: must not contain NUL characters",
    ),
    (
        "conversation: metadata past the parser's recursion limit",
        (*TOPIC, "--metadata", "[" * 100_000),
        "Invalid value for --metadata: nested too deeply",
    ),
    (
        "conversation: metadata nested 200 deep",
        (*TOPIC, "--metadata", '{"x": ' + "[" * 200 + "]" * 200 + "}"),
        "nested too deeply (more than 100 levels)",
    ),
    (
        "conversation: lone surrogate in the metadata",
        (*TOPIC, "--metadata", '{"k": "\\udfff"}'),
        "unpaired surrogate",
    ),
    ("analysis: no context id", ("submit", "analysis"), "Missing option '--context-id'"),
    (
        "analysis: context id with a space",
        ("submit", "analysis", "--context-id", "doc 1"),
        "context_id",
    ),
    (
        "analysis: segment without speaker",
        (*ANALYSIS, "--segment", "no speaker here"),
        "is not 'SPEAKER: TEXT'",
    ),
    (
        "analysis: segment without text",
        (*ANALYSIS, "--segment", "Ana:   "),
        "is not 'SPEAKER: TEXT'",
    ),
    (
        "analysis: missing segments file",
        (*ANALYSIS, "--segments-file", "/no/such/file"),
        "No such file or directory",
    ),
    (
        "analysis: segments file not UTF-8",
        (*ANALYSIS, "--segments-file", "{latin1}"),
        "is not UTF-8 text",
    ),
    ("analysis: NUL in a segments file", (*ANALYSIS, "--segments-file", "{nul}"), "NUL"),
    (
        "analysis: segments file over the event limit",
        (*ANALYSIS, "--segments-file", "{huge}"),
        "is larger than 1048576 bytes, more than an event may hold",
    ),
    (
        "analysis: segments file a directory",
        (*ANALYSIS, "--segments-file", "{dir}"),
        "--segments-file",
    ),
    (
        "analysis: prompt without id",
        (*ANALYSIS, "--prompt", "summary"),
        "is not ANALYSIS=PROMPT_ID",
    ),
    (
        "analysis: unknown prompt",
        (*ANALYSIS, "--prompt", "summary=summary.v7"),
        "no prompt 'summary.v7' for summary",
    ),
    (
        "analysis: another analysis's prompt",
        (*ANALYSIS, "--prompt", "summary=argument.v1"),
        "argument.v1",
    ),
    ("analysis: unknown analysis", (*ANALYSIS, "--prompt", "poetry=p.v1"), "prompt_ids"),
    ("analysis: language not a tag", (*ANALYSIS, "--language", "english!"), "language"),
    ("analysis: language too long", (*ANALYSIS, "--language", "en-abcdefgh-abcdefgh"), "language"),
    ("topics push: no file", ("topics", "push"), "Missing argument 'SOURCE'"),
    ("topics push: missing file", ("topics", "push", "/no/such/file"), "No such file or directory"),
    ("topics push: a directory", ("topics", "push", "{dir}"), "Is a directory"),
    (
        "topics push: bad JSON line",
        ("topics", "push", "{bad_json}"),
        "line 3: message is not valid JSON",
    ),
    ("topics push: not UTF-8", ("topics", "push", "{latin1}"), "line 1: topic item is not UTF-8"),
    (
        "topics push: nested too deeply",
        ("topics", "push", "{nested}"),
        "line 2: message is nested too deeply",
    ),
    (
        "topics push: a line over the item limit",
        ("topics", "push", "{oversize}"),
        "line 1 is larger than 65536 bytes (CHIMERA_TOPICS_MAX_ITEM_BYTES)",
    ),
    (
        "topics push: a line that never ends",
        ("topics", "push", "{endless}"),
        "line 1 is larger than 65536 bytes (CHIMERA_TOPICS_MAX_ITEM_BYTES)",
    ),
    (
        "topics push: NUL",
        ("topics", "push", "{nul}"),
        "line 1: topic.title: must not contain NUL characters",
    ),
    ("topics dead: limit 0", ("topics", "dead", "--limit", "0"), "0 is not in the range x>=1"),
    (
        "export: unknown format",
        ("export", "--format", "csv"),
        "'csv' is not one of 'openai', 'sharegpt'",
    ),
    ("export: limit 0", ("export", "--limit", "0"), "0 is not in the range x>=1"),
    (
        "export: quality over 1",
        ("export", "--min-quality", "1.5"),
        "1.5 is not in the range 0.0<=x<=1.0",
    ),
    ("export: quality NaN", ("export", "--min-quality", "nan"), "'nan' is not a finite number"),
    ("export: quality a word", ("export", "--min-quality", "high"), "'high' is not a valid float"),
    (
        "export: since a word",
        ("export", "--since", "yesterday"),
        "'yesterday' does not match the formats",
    ),
    (
        "export: out in a missing directory",
        ("export", "--out", "/no/such/dir/x.jsonl"),
        "/no/such/dir does not exist",
    ),
    ("export: out a directory", ("export", "--out", "{dir}"), "is a directory"),
    ("score: missing file", ("score", "--in", "/no/such/file"), "No such file or directory"),
    ("score: flag with a value", ("score", "--json=yes"), "'--json' does not take a value"),
    ("dlq: unknown command", ("dlq", "purge"), "No such command 'purge'"),
    ("dlq list: no topic", ("dlq", "list"), "Missing option '--topic'"),
    (
        "dlq list: unknown topic",
        ("dlq", "list", "--topic", "nope"),
        "choose one of conversation.dlq",
    ),
    (
        "dlq list: an input topic",
        ("dlq", "list", "--topic", "conversation.new"),
        "is not a dead-letter topic",
    ),
    (
        "dlq replay: an output topic",
        ("dlq", "replay", "--topic", "conversation.completed"),
        "is not a dead-letter topic",
    ),
    (
        "dlq replay: limit negative",
        ("dlq", "replay", "--topic", "analysis.dlq", "--limit", "-1"),
        "Invalid value for '--limit'",
    ),
    ("demo: timeout too short", ("demo", "--timeout", "5"), "5.0 is not in the range x>=10"),
    ("demo: timeout infinite", ("demo", "--timeout", "inf"), "'inf' is not a finite number"),
    ("demo: timeout a word", ("demo", "--timeout", "soon"), "'soon' is not a valid float"),
    (
        "demo: flag with a value",
        ("demo", "--keep-running=1"),
        "'--keep-running' does not take a value",
    ),
]


@pytest.mark.parametrize(
    ("argv", "says"), [c[1:] for c in BAD_ARGUMENTS], ids=[c[0] for c in BAD_ARGUMENTS]
)
def test_bad_arguments_exit_2_naming_what_is_wrong(
    files: Files, argv: tuple[str, ...], says: str
) -> None:
    result = run(*(fill(arg, files) for arg in argv))
    assert result.code == 2, result
    line = result.error_line("Error:")
    assert says in line, line
    assert result.out == ""


BAD_SETTINGS: list[tuple[str, dict[str, str | None], str]] = [
    ("port not a number", {"REDIS_PORT": "sixty"}, "REDIS_PORT"),
    ("unknown security protocol", {"KAFKA_SECURITY_PROTOCOL": "TLS9"}, "KAFKA_SECURITY_PROTOCOL"),
    ("Redis URL of another scheme", {"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL"),
    ("event limit below the floor", {"CHIMERA_MAX_EVENT_BYTES": "10"}, "MAX_EVENT_BYTES"),
    ("a list that is not JSON", {"CHIMERA_DEFAULT_PARTICIPANTS": "[nope"}, "DEFAULT_PARTICIPANTS"),
]


@pytest.mark.parametrize(
    ("env", "says"), [c[1:] for c in BAD_SETTINGS], ids=[c[0] for c in BAD_SETTINGS]
)
def test_bad_settings_exit_2_naming_the_variable(env: dict[str, str | None], says: str) -> None:
    result = run(*TOPIC, env=env)
    assert result.code == 2, result
    line = result.error_line("error:")
    assert says in line.upper(), line
    assert "secret" not in result.err


# --- unreachable services: exit 1, one line, nothing half-written ------------------------------


def test_submitting_to_an_unreachable_kafka_is_one_line(files: Files) -> None:
    for argv in (TOPIC, (*ANALYSIS, "--segment", "Ana: Cars are loud.")):
        result = run(*argv)
        assert result.code == 1, result
        assert "Kafka" in result.error_line("error:")
        assert result.out == ""


def test_pushing_topics_to_an_unreachable_redis_is_one_line(
    files: Files, redis_ns: Any, tmp_path: Path
) -> None:
    source = tmp_path / "one-topic.txt"
    source.write_text("Should cities ban cars?\n", encoding="utf-8")
    # The test's own queue, under its own key prefix.
    queue = f"{redis_ns.redis_key_prefix}topics:queue"
    result = run("topics", "push", str(source), env={"CHIMERA_TOPICS_QUEUE_KEY": queue})
    assert result.code == 1, result
    assert result.error_line("error:").startswith("error: cannot push topics")
    assert "redis-secret" not in result.err
    # Pointed at the real Redis, a file with a bad line is refused whole: nothing queued.
    real: dict[str, str | None] = {"REDIS_URL": None, "CHIMERA_TOPICS_QUEUE_KEY": queue}
    refused = run("topics", "push", str(files["bad_json"]), env=real)
    assert refused.code == 2, refused
    assert "line 3: message is not valid JSON" in refused.error_line("Error:")
    client = make_redis(redis_ns)
    try:
        assert client.exists(queue) == 0
    finally:
        client.close()


def test_topics_dead_shows_what_the_drain_could_not_read_escaped(redis_ns: Any, db: Any) -> None:
    """An item with a terminal escape sequence in it, dead-lettered by a drain, is listed
    as text (table and JSON), and ``--clear`` empties the list."""
    key = f"{redis_ns.redis_key_prefix}topics:queue"
    settings = redis_ns.model_copy(update={"topics_queue_key": key})
    hostile = '{"title": "\x1b]0;owned\x07\x1b[2J'  # an escape sequence, and not JSON
    client = make_redis(settings)
    try:
        queue = TopicQueue(client, settings)
        queue.push([hostile, "A good topic"])
        assert queue.drain(Inbox(db), lambda event_id: None, running=0).started == 1
    finally:
        client.close()
    env: dict[str, str | None] = {
        "REDIS_URL": None,
        "CHIMERA_TOPICS_QUEUE_KEY": key,
        "CHIMERA_REDIS_KEY_PREFIX": redis_ns.redis_key_prefix,
    }

    table = run("topics", "dead", env=env)
    assert table.code == 0, table
    header, row, total = table.out.splitlines()
    assert header.split() == ["AT", "REASON", "BYTES", "ERROR", "ITEM"]
    assert row.split()[1:3] == ["invalid_json", str(len(hostile))]
    assert row.endswith('{"title": "\\x1b]0;owned\\x07\\x1b[2J')
    assert total == f"1 dead letter in {queue.dead_key}"
    as_json = run("topics", "dead", "--json", env=env)
    assert as_json.code == 0, as_json
    (entry,) = json.loads(as_json.out)["dead_letters"]
    assert entry["item"] == hostile and entry["reason"] == "invalid_json"
    for result in (table, as_json):
        assert "\x1b" not in result.out and "\x07" not in result.out
    cleared = run("topics", "dead", "--clear", env=env)
    assert cleared.out == f"deleted 1 dead letter from {queue.dead_key}\n"
    assert run("topics", "dead", env=env).out == f"0 dead letters in {queue.dead_key}\n"


@pytest.mark.parametrize(("umask", "mode"), [(0o077, 0o600), (0o022, 0o644)])
def test_an_export_file_gets_the_mode_the_umask_allows(
    settings: Any, db: Any, tmp_path: Path, umask: int, mode: int
) -> None:
    target = tmp_path / "train.jsonl"
    database = settings.database_url.get_secret_value()
    previous = os.umask(umask)
    try:
        result = run("export", "--out", str(target), env={"DATABASE_URL": database})
    finally:
        os.umask(previous)
    assert result.code == 0, result
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.jsonl"]  # no temporary


def test_an_export_that_cannot_reach_postgres_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "train.jsonl"
    target.write_text("the previous export\n", encoding="utf-8")
    result = run("export", "--out", str(target))
    assert result.code == 1, result
    line = result.error_line("error:")
    assert line.startswith("error: cannot read conversations") and "Connection refused" in line
    assert "db-secret" not in result.err
    assert target.read_text(encoding="utf-8") == "the previous export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.jsonl"]  # no temporary
    to_stdout = run("export")
    assert to_stdout.code == 1 and to_stdout.out == ""


def test_a_bad_input_file_to_score_names_each_line_and_exits_1(tmp_path: Path) -> None:
    source = tmp_path / "mixed.jsonl"
    source.write_bytes(b'{"messages": 5}\n\xff\xfe\n[1]\n')
    result = run("score", "--in", str(source))
    assert result.code == 1, result
    assert "Traceback" not in result.err
    lines = result.err.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == ["line 1", "line 2", "line 3"]
    assert "not UTF-8" in lines[1]
    assert lines[-1] == f"scored 0 conversations from {source}; 3 malformed lines"
    assert result.out == ""


ProcessCase = tuple[str, tuple[str, ...], dict[str, str], str]

PROCESSES: list[ProcessCase] = [
    # (name, argv, extra env, how the error line starts)
    ("db current", ("db", "current"), {}, "error: cannot read the schema revision"),
    ("db upgrade", ("db", "upgrade"), {}, "error: cannot reach Postgres"),
    ("kafka create-topics", ("kafka", "create-topics"), {}, "error: Kafka at"),
    ("submit conversation", TOPIC, {}, "error: cannot create a Kafka producer"),
    ("export", ("export",), {}, "error: cannot read conversations"),
    ("stack up", ("stack", "up"), {}, "error: Redis at"),
]


@pytest.mark.parametrize(
    ("argv", "env", "starts"), [c[1:] for c in PROCESSES], ids=[c[0] for c in PROCESSES]
)
def test_an_unreachable_service_is_one_line_from_a_real_process(
    tmp_path: Path, argv: tuple[str, ...], env: dict[str, str], starts: str
) -> None:
    state = tmp_path / "state"
    result = run_process(*argv, env=env | {"CHIMERA_STATE_DIR": str(state)})
    assert result.code == 1, result
    line = result.error_line("error:")
    assert line.startswith(starts), line
    assert "db-secret" not in result.err and "redis-secret" not in result.err
    # Nothing started or left behind by a stack that could not come up.
    run_dir = state / "run"
    assert not run_dir.exists() or list(run_dir.iterdir()) == []
