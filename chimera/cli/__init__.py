"""The `chimera` command line (`python -m chimera ...`)."""

from __future__ import annotations

import sys

import click

from chimera import redaction
from chimera.cli.commands import cli
from chimera.errors import ChimeraError, ConfigError


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a ChimeraError becomes one clear line on stderr and exit 1 (2 for config)."""
    try:
        cli.main(args=argv, prog_name="chimera", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        click.echo(f"error: {redaction.redact(one_line(exc))}", err=True)
        sys.exit(2)
    except ChimeraError as exc:  # may quote a driver's message, with a URL in it
        click.echo(f"error: {redaction.redact(one_line(exc))}", err=True)
        sys.exit(1)


#: Where SQLAlchemy's additions to a driver's message begin (the statement, its
#: parameters, a link): nothing from there on tells an operator more.
_NOISE = ("[SQL:", "[parameters:", "(Background on this error at:")


def one_line(exc: ChimeraError) -> str:
    """The error's message on one line, with the ids it concerns."""
    kept: list[str] = []
    for line in exc.message.splitlines():
        if line.strip().startswith(_NOISE):
            break
        kept.append(line.strip())
    return " ".join(filter(None, kept)) + str(exc).removeprefix(exc.message)


__all__ = ["cli", "main", "one_line"]
