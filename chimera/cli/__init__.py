"""The `chimera` command line (`python -m chimera ...`)."""

from __future__ import annotations

import sys

import click

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
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except ChimeraError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


__all__ = ["cli", "main"]
