"""The `trajlab` command line: a root Typer app with one module per subsystem (`data` is a sub-app; the others
register top-level commands). A command parses its options into a config and calls an importable `run(config)`
from `trajlab.commands`; user mistakes (`TrajlabError`) become one line on stderr and exit code 2.

Imports of the heavy parts happen inside the commands, so `trajlab --help` stays fast.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import typer

from trajlab.cli import critical, data, forgetting, influence, quickstart, safe, synth, train
from trajlab.cli.options import Interrupted

app = typer.Typer(name="trajlab", no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
app.add_typer(data.app, name="data")
app.add_typer(influence.app, name="influence")
app.add_typer(synth.app, name="synth")
app.add_typer(safe.app, name="safe")
app.add_typer(critical.app, name="critical")
for subsystem in (train, forgetting, quickstart):
    app.add_typer(subsystem.app)


def _print_version(requested: bool) -> None:
    if requested:
        from trajlab import __version__

        typer.echo(f"trajlab {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print trajlab's version and exit."),
) -> None:
    """Work on the data behind RL agents: datasets whose transitions keep stable ids, offline and online agents
    trained on them, forgetting chosen trajectories (TrajDeleter), auditing that they are gone (TrajAuditor),
    backdoor experiments (poison), which experiences shaped an agent (influence), sharing transitions as
    differentially private synthetic data (synth), removing an unsafe behaviour from a safe-RL policy (safe), and
    finding the critical states of episodes from their videos (critical)."""


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning user mistakes into a one-line error and exit code 2."""
    try:
        # without standalone mode typer returns an exit code instead of exiting (130 for Ctrl-C)
        code = app(args=argv, standalone_mode=False)
    except Interrupted as interrupted:
        _exit(f"interrupted; {interrupted.hint}", 130)
    except Exception as error:
        _exit_for(error)
    if code == 130:
        typer.echo("interrupted", err=True)
    if isinstance(code, int) and code != 0:
        sys.exit(code)


def run(*args: object) -> int:
    """Run a trajlab command in this process, as `trajlab ARGS` would (each argument through str), and return its
    exit code instead of exiting: for scripts, notebooks and tests."""
    try:
        main([str(arg) for arg in args])
    except SystemExit as stopped:
        return int(stopped.code or 0)
    return 0


def _exit_for(error: Exception) -> NoReturn:
    """User mistakes and typer's usage errors end the command with their exit code; anything else is a bug."""
    # imported only here: trajlab.core imports torch, which `trajlab --help` and `--version` need not wait for
    from typer._click.exceptions import ClickException

    from trajlab.core.errors import TrajlabError

    if isinstance(error, TrajlabError):
        _exit(f"error: {error}", 2)
    if isinstance(error, ClickException):
        error.show()
        sys.exit(error.exit_code)
    if isinstance(error, typer.Exit):
        sys.exit(error.exit_code)
    if isinstance(error, typer.Abort):
        sys.exit(1)
    raise error


def _exit(message: str, code: int) -> NoReturn:
    typer.echo(message, err=True)
    sys.exit(code)
