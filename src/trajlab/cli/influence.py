"""`trajlab influence train | estimate | amend` (trajlab.commands.influence): PIToD experience influence."""

from __future__ import annotations

from pathlib import Path

import typer

from trajlab.cli import options
from trajlab.cli.options import JSON, ConfigDocs, emit, on_interrupt, parse_overrides

app = typer.Typer(no_args_is_help=True,
                  help="Which experience groups shaped an agent (PIToD): influence from one masked SAC run, and "
                       "switching a harmful group off without retraining.")

TRAIN = ConfigDocs("trajlab.commands.influence", "InfluenceTrainConfig",
                   out="Run directory (default: runs/influence_<env>_seed<seed>).",
                   resume="Continue the interrupted run in --out from its latest checkpoint.",
                   overwrite="Replace a finished or interrupted run in --out.")
ESTIMATE = ConfigDocs("trajlab.commands.influence", "InfluenceEstimateConfig")
AMEND = ConfigDocs("trajlab.commands.influence", "InfluenceAmendConfig")
ESTIMATE_HEADLINE = ("base.*", "most_harmful", "most_helpful")
AMEND_HEADLINE = ("group", "return_before", "return_after")


def _int_list(text: str | None, option: str) -> tuple[int, ...] | None:
    """'3,7' -> (3, 7); anything but integers is a user error."""
    if text is None:
        return None
    from trajlab.core.errors import TrajlabError

    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise TrajlabError(f"{option} expects comma-separated integers, got {text!r}") from None


@app.command("train")
def train(
    env: str | None = typer.Option(None, "--env", help=TRAIN["env_id"]),
    preset: str = options.preset(TRAIN),
    dataset: Path | None = typer.Option(None, "--dataset", help=TRAIN["dataset"]),
    algo: str = typer.Option("masked_td3_bc", "--algo", help=TRAIN["algo"]),
    steps: int | None = typer.Option(None, "--steps", help=TRAIN["steps"]),
    learning_starts: int | None = typer.Option(None, "--learning-starts", help=TRAIN["learning_starts"]),
    group_size: int | None = typer.Option(None, "--group-size", help=TRAIN["group_size"]),
    members: int | None = typer.Option(None, "--members", help=TRAIN["ensemble_size"]),
    seed: int = options.seed(TRAIN),
    device: str = options.device(TRAIN),
    threads: int | None = options.threads(TRAIN, field="num_threads"),
    estimate_every: int = typer.Option(0, "--estimate-every", help=TRAIN["estimate_every"]),
    plant_group: int | None = typer.Option(None, "--plant-group", help=TRAIN["plant_group"]),
    plant_reward_scale: float = typer.Option(-100.0, "--plant-reward-scale", help=TRAIN["plant_reward_scale"]),
    set_options: list[str] = typer.Option([], "--set", help=TRAIN["overrides"]),
    out: Path | None = options.out(TRAIN, default=None),
    resume: bool = options.resume(TRAIN),
    overwrite: bool = options.overwrite(TRAIN),
    as_json: bool = JSON,
) -> None:
    """Train SAC with turn-over dropout masks (masked_sac), or with --dataset a masked offline agent.

    The online run keeps its replay buffer for `estimate`; an offline run gives every group of episodes a mask.

    Examples:

      trajlab influence train --out runs/pitod

      trajlab influence train --env Hopper-v5 --preset paper --out runs/pitod-hopper

      trajlab influence train --dataset hopper.hdf5 --algo masked_td3_bc --out runs/pitod-td3

      trajlab influence train --plant-group 3 --out runs/pitod-planted    # rewards of group 3 x -100
    """
    from trajlab.commands.influence import InfluenceTrainConfig
    from trajlab.commands.influence import train as run_train

    config = InfluenceTrainConfig(env_id=env, preset=preset, dataset=None if dataset is None else str(dataset),
                                  algo=algo, steps=steps, learning_starts=learning_starts,
                                  group_size=group_size,
                                  ensemble_size=members, seed=seed, device=device, num_threads=threads,
                                  estimate_every=estimate_every, plant_group=plant_group,
                                  plant_reward_scale=plant_reward_scale, overrides=parse_overrides(set_options))
    with on_interrupt("rerun with --resume to continue"):
        emit(run_train(config, out=out, resume=resume, overwrite=overwrite), as_json)


@app.command("estimate")
def estimate(
    run: Path = typer.Argument(..., help=ESTIMATE["run"]),
    out: Path | None = typer.Option(None, "--out", help=ESTIMATE["out"]),
    preset: str = options.preset(ESTIMATE),
    n_eval: int | None = typer.Option(None, "--n-eval", help=ESTIMATE["n_eval"]),
    groups: str | None = typer.Option(None, "--groups", help=ESTIMATE["groups"]),
    scores: str | None = typer.Option(None, "--scores", help=ESTIMATE["scores"]),
    seed: int = options.seed(ESTIMATE),
    baseline: str | None = typer.Option(None, "--baseline", help=ESTIMATE["baseline"]),
    overwrite: bool = options.overwrite(ESTIMATE),
    as_json: bool = JSON,
) -> None:
    """Influence of every experience group on return, Q bias, TD error and policy loss; writes RUN/influence.

    Examples:

      trajlab influence estimate runs/pitod

      trajlab influence estimate runs/pitod --scores return --groups 2,3 --out runs/pitod-est
    """
    from trajlab.commands.influence import InfluenceEstimateConfig
    from trajlab.commands.influence import estimate as run_estimate

    config = InfluenceEstimateConfig(
        run=str(run), out=None if out is None else str(out), preset=preset, n_eval=n_eval,
        groups=_int_list(groups, "--groups"),
        scores=None if scores is None else tuple(part.strip() for part in scores.split(",") if part.strip()),
        seed=seed, baseline=baseline, overwrite=overwrite)
    emit(run_estimate(config), as_json, ESTIMATE_HEADLINE)


@app.command("amend")
def amend(
    run: Path = typer.Argument(..., help=AMEND["run"]),
    out: Path = options.out(AMEND),
    estimate_dir: Path | None = typer.Option(None, "--estimate", help=AMEND["estimate"]),
    by: str = typer.Option("return", "--by", help=AMEND["by"]),
    group: int | None = typer.Option(None, "--group", help=AMEND["group"]),
    n_eval: int = typer.Option(10, "--n-eval", help=AMEND["n_eval"]),
    seed: int = options.seed(AMEND),
    overwrite: bool = options.overwrite(AMEND),
    as_json: bool = JSON,
) -> None:
    """Write the agent with the most harmful group switched off (its flipped mask) as a normal checkpoint.

    Examples:

      trajlab influence amend runs/pitod --out runs/pitod-amended

      trajlab influence amend runs/pitod --group 3 --out runs/pitod-without-3
    """
    from trajlab.commands.influence import InfluenceAmendConfig
    from trajlab.commands.influence import amend as run_amend

    config = InfluenceAmendConfig(run=str(run), out=str(out),
                                  estimate=None if estimate_dir is None else str(estimate_dir), by=by, group=group,
                                  n_eval=n_eval, seed=seed, overwrite=overwrite)
    emit(run_amend(config), as_json, AMEND_HEADLINE)


LOO = ConfigDocs("trajlab.commands.influence", "InfluenceLooConfig")


@app.command("loo")
def loo(
    run: Path = typer.Argument(..., help=LOO["run"]),
    out: Path | None = typer.Option(None, "--out", help=LOO["out"]),
    estimate_dir: Path | None = typer.Option(None, "--estimate", help=LOO["estimate"]),
    groups: str | None = typer.Option(None, "--groups", help=LOO["groups"]),
    updates: int = typer.Option(75_000, "--updates", help=LOO["updates"]),
    n_eval: int = typer.Option(10, "--n-eval", help=LOO["n_eval"]),
    seed: int = options.seed(LOO),
    executor: str = typer.Option("local", "--executor", help=LOO["executor"]),
    repeats: int = typer.Option(1, "--repeats", help=LOO["repeats"]),
    overwrite: bool = options.overwrite(LOO),
    as_json: bool = JSON,
) -> None:
    """Leave-one-out reference: retrain a fresh agent without each group; Spearman correlation with PIToD.

    Examples:

      trajlab influence loo runs/pitod --updates 20000

      trajlab influence loo runs/pitod --groups 0,3 --executor ray
    """
    from trajlab.commands.influence import InfluenceLooConfig
    from trajlab.commands.influence import loo as run_loo

    config = InfluenceLooConfig(run=str(run), out=None if out is None else str(out),
                                estimate=None if estimate_dir is None else str(estimate_dir),
                                groups=_int_list(groups, "--groups"), updates=updates, n_eval=n_eval, seed=seed,
                                executor=executor, repeats=repeats, overwrite=overwrite)
    with on_interrupt("nothing was kept; rerun with --overwrite"):
        emit(run_loo(config), as_json, ("reference_return", "spearman"))
