"""`python -m chimera ...` as a user runs it: exit codes, messages, effects."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from sqlalchemy import create_engine, inspect

from tests.conftest import PROJECT_ROOT
from tests.helpers import free_port


def chimera(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chimera", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=os.environ | (env or {}),
        timeout=timeout,
        check=False,
    )


def test_help_lists_the_commands() -> None:
    result = chimera("--help")
    assert result.returncode == 0
    for command in ("db", "stack", "kafka", "config"):
        assert command in result.stdout


def test_db_upgrade_creates_a_missing_database_with_the_five_tables(scratch_db_url: str) -> None:
    result = chimera("db", "upgrade", env={"DATABASE_URL": scratch_db_url})
    assert result.returncode == 0, result.stderr
    assert "database at revision 0006" in result.stdout  # the newest migration
    engine = create_engine(scratch_db_url.replace("postgresql://", "postgresql+psycopg2://"))
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"events", "conversations", "conversation_turns", "analysis_runs", "llm_calls"} <= tables
    current = chimera("db", "current", env={"DATABASE_URL": scratch_db_url})
    assert current.stdout.strip() == "0006 (head is 0006)"
    down = chimera("db", "downgrade", "base", env={"DATABASE_URL": scratch_db_url})
    assert down.returncode == 0 and "revision base" in down.stdout


def test_missing_argument_is_a_usage_error() -> None:
    result = chimera("db", "downgrade")
    assert result.returncode == 2
    assert "Missing argument 'REVISION'" in result.stderr


def test_unknown_command_is_a_usage_error() -> None:
    result = chimera("launch")
    assert result.returncode == 2
    assert "No such command 'launch'" in result.stderr


def test_malformed_setting_fails_before_doing_anything() -> None:
    result = chimera("db", "upgrade", env={"REDIS_PORT": "sixty"})
    assert result.returncode == 2
    assert "REDIS_PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_postgres_is_one_clear_line() -> None:
    result = chimera(
        "db", "upgrade", env={"DATABASE_URL": f"postgresql://postgres:pw@127.0.0.1:{free_port()}/x"}
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot reach Postgres")
    assert "Traceback" not in result.stderr
    assert ":pw@" not in result.stderr


def test_unreachable_kafka_is_one_clear_line() -> None:
    result = chimera("kafka", "topics", env={"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"})
    assert result.returncode == 1
    assert "is unreachable" in result.stderr
    assert "Traceback" not in result.stderr


def test_kafka_commands_create_and_list_topics(kafka_broker: Any) -> None:
    suffix = os.urandom(3).hex()
    env = {
        f"CHIMERA_TOPIC_{role.replace('.', '_').upper()}": f"{name}.cli{suffix}"
        for role, name in kafka_broker.topics.items()
    }
    first = chimera("kafka", "create-topics", env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count(f".cli{suffix}") == 8
    again = chimera("kafka", "create-topics", env=env)
    assert "none (all present)" in again.stdout
    listed = chimera("kafka", "topics").stdout.split()
    assert set(env.values()) <= set(listed)


def test_config_masks_secrets() -> None:
    result = chimera(
        "config",
        env={"ANTHROPIC_API_KEY": "sk-ant-hidden", "DATABASE_URL": "postgresql://u:dbpw@h/d"},
    )
    assert result.returncode == 0
    assert "sk-ant-hidden" not in result.stdout and "dbpw" not in result.stdout
    assert "ANTHROPIC_API_KEY=***" in result.stdout
    assert "DATABASE_URL=postgresql+psycopg2://u:***@h/d" in result.stdout
