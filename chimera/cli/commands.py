"""Command groups.  Each command parses arguments and calls one chimera function."""

from __future__ import annotations

import signal
import sys
import time
from types import FrameType

import click

from chimera import stack
from chimera.cli.data import export_command, score_command
from chimera.cli.demo import demo_command
from chimera.cli.dlq import dlq_group
from chimera.cli.jobs import jobs_group
from chimera.cli.submit import submit_group
from chimera.cli.topics import topics_group
from chimera.db import admin
from chimera.kafka.topics import ensure_topics, list_topics
from chimera.logs import configure_logging
from chimera.settings import Settings, get_settings
from chimera.settings_env import describe


def _settings() -> Settings:
    settings = get_settings()
    configure_logging(settings)
    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Chimera: orchestrate LLMs to produce conversation and analysis data."""


# --- db -------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Database schema (Alembic)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def db_upgrade(revision: str) -> None:
    """Create the database if it is missing and migrate it."""
    now = admin.upgrade(_settings(), revision)
    click.echo(f"database at revision {now}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Migrate down to REVISION (`base` removes every table)."""
    now = admin.downgrade(_settings(), revision)
    click.echo(f"database at revision {now}")


@db.command("current")
def db_current() -> None:
    """Show the schema revision of the database."""
    settings = _settings()
    rev = admin.current_revision(settings.database_url.get_secret_value())
    click.echo(f"{rev or 'base'} (head is {admin.head_revision()})")


# --- kafka -------------------------------------------------------------------------------


@cli.group()
def kafka() -> None:
    """Kafka topics."""


@kafka.command("create-topics")
def kafka_create_topics() -> None:
    """Create every configured topic that is missing."""
    settings = _settings()
    created = ensure_topics(settings)
    click.echo(f"created: {', '.join(created) or 'none (all present)'}")


@kafka.command("topics")
def kafka_topics() -> None:
    """List the cluster's topics."""
    for name in list_topics(_settings()):
        click.echo(name)


# --- stack --------------------------------------------------------------------------------


@cli.group("stack")
def stack_group() -> None:
    """The local stack: simulator, Kafka broker, Celery worker, Flower, beat, bridge, web app."""


@stack_group.command("up")
@click.option("--attach", is_flag=True, help="Stay in the foreground; Ctrl-C stops the stack.")
def stack_up(attach: bool) -> None:
    """Start every missing component and wait until each is ready."""
    settings = _settings()
    stack.up(settings, echo=click.echo)
    click.echo(f"logs in {settings.log_dir}; `chimera stack status` to check, `down` to stop")
    if attach:
        _wait_for_signal()
        click.echo("stopping the stack ...")
        stack.down(settings, echo=click.echo)


def _wait_for_signal() -> None:
    stopping = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    while not stopping:
        time.sleep(0.2)


@stack_group.command("down")
def stack_down() -> None:
    """Stop every component the stack started."""
    stack.down(_settings(), echo=click.echo)


@stack_group.command("status")
def stack_status() -> None:
    """One line per component; exit 1 unless all are healthy."""
    statuses = stack.status(_settings())
    for st in statuses:
        click.echo(st.line())
    sys.exit(0 if all(s.healthy for s in statuses) else 1)


# --- the other groups ---------------------------------------------------------------------------

cli.add_command(submit_group)
cli.add_command(topics_group)
cli.add_command(export_command)
cli.add_command(score_command)
cli.add_command(dlq_group)
cli.add_command(demo_command)
cli.add_command(jobs_group)


# --- config ----------------------------------------------------------------------------------


@cli.command("config")
def config() -> None:
    """Show the effective settings (secrets masked)."""
    for name, value in sorted(describe(_settings()).items()):
        click.echo(f"{name}={value}")
