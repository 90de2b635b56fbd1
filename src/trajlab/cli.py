"""The `trajlab` command line: a thin Typer app. Each command parses options into a config and calls an
importable `run(config)`; user mistakes (`TrajlabError`) become one line on stderr and exit code 2.

Imports of the heavy parts happen inside the commands, so `trajlab --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer

app = typer.Typer(
    name="trajlab",
    help="Attribute, forget, audit, privatise and explain the data behind RL agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Create, import, export and inspect transition datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def emit(result: dict[str, Any], as_json: bool) -> None:
    """Print a command's result: JSON for `--json`, else a short human summary."""
    if as_json:
        typer.echo(json.dumps(result, indent=2, sort_keys=True, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False, box=None)
    for key, value in result.items():
        if not isinstance(value, (dict, list)):
            table.add_row(str(key), f"{value:.4g}" if isinstance(value, float) else str(value))
    Console(stderr=True).print(table)


JsonOption = typer.Option(False, "--json", help="Print result.json to stdout.")
# ---- commands are added below, one block per subsystem --------------------------------------------------


def main(argv: Optional[list[str]] = None) -> None:
    """Entry point: run the app, turning user mistakes into a one-line error and exit code 2."""
    from trajlab.core.errors import TrajlabError

    try:
        app(args=argv, standalone_mode=False)
    except TrajlabError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted; rerun with --resume to continue", err=True)
        sys.exit(130)
    except Exception as error:  # click's own usage errors
        import click

        if isinstance(error, click.exceptions.ClickException):
            error.show()
            sys.exit(error.exit_code)
        if isinstance(error, click.exceptions.Exit):
            sys.exit(error.exit_code)
        if isinstance(error, click.exceptions.Abort):
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
