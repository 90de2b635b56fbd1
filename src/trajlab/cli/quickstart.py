"""`trajlab quickstart` (trajlab.commands.quickstart)."""

from __future__ import annotations

from pathlib import Path

import typer

from trajlab.cli import options
from trajlab.cli.options import JSON, ConfigDocs, emit, on_interrupt

app = typer.Typer()

QUICKSTART = ConfigDocs("trajlab.commands.quickstart", "QuickstartConfig")


@app.command("quickstart")
def quickstart(
    out: Path = options.out(QUICKSTART, default=Path("runs/quickstart")),
    seed: int = options.seed(QUICKSTART),
    train_steps: int | None = typer.Option(None, "--train-steps", help=QUICKSTART["train_steps"]),
    test: str | None = typer.Option(None, "--test", help=QUICKSTART["forget_test"]),
    tours: str | None = typer.Option(None, "--tours", help=QUICKSTART["tours"]),
    as_json: bool = JSON,
) -> None:
    """The whole story on the default: generate a small Hopper dataset (cached after the first run), train an
    offline agent, evaluate it, forget 1% of its trajectories with TrajDeleter, audit them with a membership test
    (LiRA by default: its error rates are measured on shadow agents), then one quick tour per system (influence,
    synth, safe, critical), and write report.html.

    About 25 minutes on 2 CPU cores the first time (the forgetting story about 17); --tours chooses the tours.

    Examples:

      trajlab quickstart

      trajlab quickstart --out runs/demo --seed 1

      trajlab quickstart --tours influence      # the forgetting story, then only the influence tour
    """
    from trajlab.commands.quickstart import QuickstartConfig, run
    from trajlab.core.config import load_preset

    config = load_preset(QuickstartConfig, "quickstart", "default", out=str(out), seed=seed,
                         train_steps=train_steps, forget_test=test,
                         tours=None if tours is None else tuple(t.strip() for t in tours.split(",") if t.strip()))
    with on_interrupt("rerun to start again (a dataset generation continues where it stopped)"):
        emit(run(config, say=lambda line: typer.echo(line, err=True)), as_json)
