"""`trajlab critical data|train|evaluate|explain|attack|improve` (trajlab.commands.critical)."""

from __future__ import annotations

from pathlib import Path

import typer

from trajlab.cli import options
from trajlab.cli.options import JSON, NO_RESUME_HINT, ConfigDocs, emit, nested_overrides, on_interrupt, with_options

app = typer.Typer(help="Critical states from episode videos (Deep State Identifier): a return predictor and a "
                       "per-frame mask learned from outcome labels only, scored by F1 at a tolerance.",
                  no_args_is_help=True)

DATA = ConfigDocs("trajlab.commands.critical", "DataConfig")
TRAIN = ConfigDocs("trajlab.commands.critical", "TrainConfig")
EVALUATE = ConfigDocs("trajlab.commands.critical", "EvaluateConfig")
EXPLAIN = ConfigDocs("trajlab.commands.critical", "ExplainConfig")
DSI = ConfigDocs("trajlab.explain.dsi", "DSIConfig")
ATTACK = ConfigDocs("trajlab.commands.critical", "AttackRunConfig")
ATTACKER = ConfigDocs("trajlab.explain.attack", "AttackConfig")
IMPROVE = ConfigDocs("trajlab.commands.critical", "ImproveConfig")
LEARNER = ConfigDocs("trajlab.explain.improve", "LearnerConfig")
SET_OPTION = typer.Option([], "--set", help="Override a preset value: KEY=VALUE or SECTION.KEY=VALUE, e.g. "
                                            "dsi.epochs=5 or model.hidden=64.")


@app.command("data")
def data(
    out: Path = options.out(DATA),
    env: str | None = typer.Option(None, "--env", help=DATA["env"]),
    episodes: int | None = typer.Option(None, "--episodes", help=DATA["episodes"]),
    test_episodes: int | None = typer.Option(None, "--test-episodes", help=DATA["test_episodes"]),
    preset: str = options.preset(DATA),
    seed: int = options.seed(DATA),
    overwrite: bool = options.overwrite(DATA),
    set_options: list[str] = SET_OPTION,
    as_json: bool = JSON,
) -> None:
    """Collect labelled episode videos with their ground-truth critical frames (HDF5, uint8 frames).

    Examples:

      trajlab critical data --env minigrid-keycorridor --episodes 600 --out runs/critical-data

      trajlab critical data --preset paper --out runs/critical-data-paper

      trajlab critical data --episodes 600 --set val_fraction=0.2 --set gridworld.positive_fraction=0.6 --out D
    """
    from trajlab.commands.critical import DataConfig, load_critical_config, run_data

    config = load_critical_config(DataConfig, "data", preset, **with_options(
        nested_overrides(set_options), out=str(out), env=env, episodes=episodes, test_episodes=test_episodes,
        seed=seed, overwrite=overwrite))
    with on_interrupt(NO_RESUME_HINT):
        emit(run_data(config), as_json, headline=("episodes.*",))


@app.command("train")
def train(
    data: Path = typer.Argument(..., help=TRAIN["data"]),
    out: Path = options.out(TRAIN),
    epochs: int | None = typer.Option(None, "--epochs", help=DSI["epochs"]),
    preset: str = options.preset(TRAIN),
    seed: int = options.seed(TRAIN),
    threads: int | None = options.threads(TRAIN),
    device: str = options.device(TRAIN),
    overwrite: bool = options.overwrite(TRAIN),
    resume: bool = options.resume(TRAIN),
    select: str | None = typer.Option(None, "--select", help=TRAIN["select"]),
    set_options: list[str] = SET_OPTION,
    as_json: bool = JSON,
) -> None:
    """Train the critical-state detector and the return predictor in alternating steps.

    Examples:

      trajlab critical train runs/critical-data --out runs/critical

      trajlab critical train runs/critical-data --out runs/critical --epochs 5 --set dsi.rev=1.0

      trajlab critical train runs/critical-data --out runs/critical --resume
    """
    from trajlab.commands.critical import TrainConfig, load_critical_config, run_train

    config = load_critical_config(TrainConfig, "train", preset, **with_options(
        nested_overrides(set_options), data=str(data), out=str(out), seed=seed, threads=threads, device=device,
        overwrite=overwrite, resume=resume, select=select, dsi={"epochs": epochs}))
    with on_interrupt("rerun with --resume to continue from the last finished epoch"):
        emit(run_train(config), as_json)


@app.command("evaluate")
def evaluate(
    model: Path = typer.Argument(..., help=EVALUATE["model"]),
    data: Path = typer.Option(..., "--data", help=EVALUATE["data"]),
    out: Path = options.out(EVALUATE),
    saliency: bool | None = typer.Option(None, "--saliency/--no-saliency", help=EVALUATE["saliency"]),
    preset: str = options.preset(EVALUATE),
    seed: int = options.seed(EVALUATE),
    device: str = options.device(EVALUATE),
    overwrite: bool = options.overwrite(EVALUATE),
    as_json: bool = JSON,
) -> None:
    """F1 at tolerance 1, 2, 3 on the test episodes under the paper's protocol (its per-frame counting, threshold
    chosen on test) and honestly (each labelled frame hit or missed, threshold chosen on validation), beside
    random and gradient-saliency baselines.

    Examples:

      trajlab critical evaluate runs/critical --data runs/critical-data --out runs/critical-eval
    """
    from trajlab.commands.critical import EvaluateConfig, load_critical_config, run_evaluate

    config = load_critical_config(EvaluateConfig, "evaluate", preset, model=str(model), data=str(data),
                                  out=str(out), saliency=saliency, seed=seed, device=device, overwrite=overwrite)
    emit(run_evaluate(config), as_json, headline=("methods.*.*.T=2.f1",))


@app.command("explain")
def explain(
    model: Path = typer.Argument(..., help=EXPLAIN["model"]),
    data: Path = typer.Option(..., "--data", help=EXPLAIN["data"]),
    episode: int = typer.Option(..., "--episode", help=EXPLAIN["episode"]),
    out: Path = options.out(EXPLAIN),
    threshold: float | None = typer.Option(None, "--threshold", help=EXPLAIN["threshold"]),
    preset: str = options.preset(EXPLAIN),
    overwrite: bool = options.overwrite(EXPLAIN),
    as_json: bool = JSON,
) -> None:
    """One episode's critical states: a GIF with the critical frames outlined and a per-step score plot.

    Examples:

      trajlab critical explain runs/critical --data runs/critical-data --episode 601 --out runs/critical-ep601
    """
    from trajlab.commands.critical import ExplainConfig, load_critical_config, run_explain

    config = load_critical_config(ExplainConfig, "explain", preset, model=str(model), data=str(data),
                                  episode=episode, out=str(out), threshold=threshold, overwrite=overwrite)
    emit(run_explain(config), as_json)


@app.command("attack")
def attack(
    model: Path = typer.Argument(..., help=ATTACK["model"]),
    out: Path = options.out(ATTACK),
    episodes: int | None = typer.Option(None, "--episodes", help=ATTACKER["episodes"]),
    steps: int | None = typer.Option(None, "--steps", help=ATTACKER["steps"]),
    preset: str = options.preset(ATTACK),
    seed: int = options.seed(ATTACK),
    threads: int | None = options.threads(ATTACK),
    overwrite: bool = options.overwrite(ATTACK),
    as_json: bool = JSON,
) -> None:
    """Replace the Pong victim's action at its top-scored steps with a random other one and replay the same
    points: the win-rate drop against as many random steps, with a 95% interval.

    Examples:

      trajlab critical attack runs/critical-pong --episodes 500 --steps 30 --out runs/critical-attack
    """
    from trajlab.commands.critical import AttackRunConfig, load_critical_config, run_attack

    config = load_critical_config(AttackRunConfig, "attack", preset, model=str(model), out=str(out), seed=seed,
                                  threads=threads, overwrite=overwrite,
                                  attack={"episodes": episodes, "steps": steps})
    with on_interrupt(NO_RESUME_HINT):
        emit(run_attack(config), as_json)


@app.command("improve")
def improve(
    model: Path = typer.Argument(..., help=IMPROVE["model"]),
    out: Path = options.out(IMPROVE),
    env: str | None = typer.Option(None, "--env", help=LEARNER["env"]),
    iterations: int | None = typer.Option(None, "--iterations", help=LEARNER["iterations"]),
    bonus: float | None = typer.Option(None, "--bonus", help=LEARNER["bonus"]),
    seeds: str | None = typer.Option(None, "--seeds", help=IMPROVE["seeds"]),
    arms: str | None = typer.Option(None, "--arms", help=IMPROVE["arms"]),
    preset: str = options.preset(IMPROVE),
    threads: int | None = options.threads(IMPROVE),
    overwrite: bool = options.overwrite(IMPROVE),
    set_options: list[str] = SET_OPTION,
    as_json: bool = JSON,
) -> None:
    """Train PPO on a MiniGrid task with a bonus where the detector marks each episode's critical frames,
    beside plain PPO and the same bonus at random frames, over seeds: learning curves and paired tests.

    Examples:

      trajlab critical improve runs/critical-run --out runs/critical-improve

      trajlab critical improve runs/critical-run --seeds 0,1,2,3,4 --bonus 0.2 --out runs/critical-improve
    """
    from trajlab.commands.critical import ImproveConfig, load_critical_config, run_improve

    def listed(text: str | None, kind: type) -> tuple | None:
        return None if text is None else tuple(kind(part) for part in text.split(",") if part.strip())

    config = load_critical_config(ImproveConfig, "improve", preset, model=str(model), out=str(out),
                                  threads=threads, overwrite=overwrite, seeds=listed(seeds, int),
                                  arms=listed(arms, str),
                                  learner={"env": env, "iterations": iterations, "bonus": bonus,
                                           **nested_overrides(set_options)})
    with on_interrupt(NO_RESUME_HINT):
        emit(run_improve(config), as_json, headline=("comparisons.*",))
