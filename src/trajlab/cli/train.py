"""`trajlab train`, `trajlab eval` and `trajlab train-online` (trajlab.commands.train)."""

from __future__ import annotations

from pathlib import Path

import typer

from trajlab.cli import options
from trajlab.cli.options import JSON, ConfigDocs, emit, on_interrupt, parse_overrides

app = typer.Typer()

TRAIN = ConfigDocs("trajlab.training.offline", "TrainConfig")
ONLINE = ConfigDocs(
    "trajlab.training.online", "OnlineTrainConfig",
    out="Run directory (default: runs/<algo>_<env>_seed<seed>).",
    resume="Continue the interrupted run in --out from its latest checkpoint.",
    overwrite="Replace a finished or interrupted run in --out.",
)
RESUME_HINT = "rerun with --resume to continue"
DROQ_OPTIONS = {"critic_dropout": 0.01, "critic_layer_norm": True, "utd_ratio": 20}
"""What --droq sets (Hiraoka et al. 2022): dropout and layer norm in the critics, 20 updates per env step."""


@app.command("train")
def train(
    algo: str = typer.Option(..., "--algo", help=TRAIN["algo"]),
    dataset: Path = typer.Option(..., "--dataset", help=TRAIN["dataset"]),
    steps: int = typer.Option(..., "--steps", help=TRAIN["steps"]),
    preset: str = options.preset(TRAIN),
    seed: int = options.seed(TRAIN),
    device: str = options.device(TRAIN),
    env: str | None = typer.Option(None, "--env", help=TRAIN["env_id"]),
    eval_every: int = typer.Option(0, "--eval-every", help=TRAIN["eval_every"]),
    eval_episodes: int = typer.Option(10, "--eval-episodes", help=TRAIN["eval_episodes"]),
    log_every: int = typer.Option(1000, "--log-every", help=TRAIN["log_every"]),
    checkpoint_every: int = typer.Option(10_000, "--checkpoint-every", help=TRAIN["checkpoint_every"]),
    out: Path | None = options.out(TRAIN, default=None),
    set_options: list[str] = typer.Option([], "--set", help="Override an algorithm option: KEY=VALUE (repeatable)."),
    threads: int | None = options.threads(TRAIN),
    resume: bool = options.resume(TRAIN),
    overwrite: bool = options.overwrite(TRAIN),
    as_json: bool = JSON,
) -> None:
    """Train an offline RL agent on a dataset; writes a run directory with checkpoints and result.json.

    Algorithm options come from configs/offline/<algo>/<preset>.yaml; --set changes single ones.
    Rerun an interrupted command with --resume to continue from its latest checkpoint.
    Online algorithms (sac) train with `trajlab train-online`.

    Examples:

      trajlab train --algo iql --dataset hopper-medium.hdf5 --steps 5000

      trajlab train --algo cql --dataset hopper-medium.hdf5 --steps 1000000 --preset paper --eval-every 10000

      trajlab train --algo td3_bc --dataset data.hdf5 --steps 20000 --set alpha=5.0 --out runs/td3bc-a5

      trajlab train --algo iql --dataset imported.hdf5 --steps 5000 --env Hopper-v5 --eval-every 1000
    """
    from trajlab.commands.algorithms import check_offline_algorithm
    from trajlab.commands.train import TrainConfig, run_offline

    check_offline_algorithm(algo)
    config = TrainConfig(
        algo=algo, dataset=str(dataset), steps=steps, preset=preset, overrides=parse_overrides(set_options),
        seed=seed, device=device, env_id=env, eval_every=eval_every, eval_episodes=eval_episodes, log_every=log_every,
        checkpoint_every=checkpoint_every, out=None if out is None else str(out), resume=resume,
        overwrite=overwrite, threads=threads,
    )
    with on_interrupt(RESUME_HINT):
        emit(run_offline(config), as_json)


@app.command("eval")
def evaluate(
    run_dir: Path = typer.Argument(..., help="Run directory written by `trajlab train`."),
    episodes: int = typer.Option(10, "--episodes", help="Evaluation episodes."),
    seed: int = typer.Option(0, "--seed", help="Seed of the first episode (episode i uses seed + i)."),
    env: str | None = typer.Option(None, "--env", help="Environment id (default: the dataset's env_id)."),
    as_json: bool = JSON,
) -> None:
    """Evaluate a trained agent: mean return and normalised score over episodes; writes RUN/eval.json.

    Examples:

      trajlab eval runs/iql_hopper-medium_seed0 --episodes 10

      trajlab eval runs/cql-hopper --episodes 20 --seed 100 --json
    """
    from trajlab.commands.train import evaluate_run

    emit(evaluate_run(run_dir, episodes=episodes, seed=seed, env_id=env), as_json)


@app.command("train-online")
def train_online(
    algo: str = typer.Option("sac", "--algo", help=ONLINE["algo"]),
    env: str = typer.Option(..., "--env", help=ONLINE["env_id"]),
    steps: int | None = typer.Option(None, "--steps", help=ONLINE["total_steps"]),
    preset: str = options.preset(ONLINE),
    seed: int = options.seed(ONLINE),
    device: str = options.device(ONLINE),
    eval_every: int | None = typer.Option(None, "--eval-every", help=ONLINE["eval_every"]),
    eval_episodes: int | None = typer.Option(None, "--eval-episodes", help=ONLINE["eval_episodes"]),
    learning_starts: int | None = typer.Option(None, "--learning-starts", help=ONLINE["learning_starts"]),
    checkpoint_every: int | None = typer.Option(None, "--checkpoint-every", help=ONLINE["checkpoint_every"]),
    log_every: int | None = typer.Option(None, "--log-every", help=ONLINE["log_every"]),
    droq: bool = typer.Option(False, "--droq", help="DroQ: critic dropout 0.01 + layer norm, 20 updates/step."),
    utd: int | None = typer.Option(None, "--utd", help=ONLINE["utd_ratio"]),
    set_options: list[str] = typer.Option([], "--set", help="Override an agent option: KEY=VALUE (repeatable)."),
    threads: int | None = options.threads(ONLINE, field="num_threads"),
    out: Path | None = options.out(ONLINE, default=None),
    resume: bool = options.resume(ONLINE),
    overwrite: bool = options.overwrite(ONLINE),
    as_json: bool = JSON,
) -> None:
    """Train an agent online (SAC, with DroQ and reset options); writes a run directory with a learning curve.

    Trainer settings and agent options come from configs/online/<algo>/<preset>.yaml; options here change
    single ones. Rerun an interrupted command with --resume to continue from its latest checkpoint.

    Examples:

      trajlab train-online --algo sac --env Hopper-v5

      trajlab train-online --algo sac --env Hopper-v5 --preset paper --seed 1 --out runs/sac-hopper-s1

      trajlab train-online --algo sac --env Hopper-v5 --droq --steps 50000 --set reset_every=100000

      trajlab train-online --algo sac --env Pendulum-v1 --steps 8000 --set hidden=[64,64] --json
    """
    from trajlab.commands.train import run_online
    from trajlab.training.online import load_online_config

    overrides = {**(DROQ_OPTIONS if droq else {}), **({"utd_ratio": utd} if utd is not None else {})}
    overrides.update(parse_overrides(set_options))
    config = load_online_config(
        algo, preset, env_id=env, total_steps=steps, seed=seed, device=device, eval_every=eval_every,
        eval_episodes=eval_episodes, learning_starts=learning_starts, checkpoint_every=checkpoint_every,
        log_every=log_every, num_threads=threads, overrides=overrides,
    )
    with on_interrupt(RESUME_HINT):
        emit(run_online(config, out=out, resume=resume, overwrite=overwrite), as_json,
             headline=("final_eval.*",))
