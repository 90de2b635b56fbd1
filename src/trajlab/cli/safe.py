"""`trajlab safe train-unsafe | train-oracle | unlearn | eval | relearn | probe` (trajlab.commands.safe)."""

from __future__ import annotations

from pathlib import Path

import typer

from trajlab.cli import options
from trajlab.cli.options import JSON, ConfigDocs, emit, nested_overrides, on_interrupt

app = typer.Typer(no_args_is_help=True,
                  help="Remove an unsafe behaviour from a trained policy (SafetyPointGoal1-v0): an unsafe PPO "
                       "expert, a PPO-Lagrangian oracle, concept / decremental / repedit unlearning, the policy "
                       "suite, the relearn test and hazard probes.")

TRAIN = ConfigDocs("trajlab.commands.safe", "SafeTrainConfig")
UNLEARN = ConfigDocs("trajlab.commands.safe", "SafeUnlearnConfig")
EVAL = ConfigDocs("trajlab.commands.safe", "SafeEvalConfig")
RELEARN = ConfigDocs("trajlab.commands.safe", "SafeRelearnConfig")
PROBE = ConfigDocs("trajlab.commands.safe", "SafeProbeConfig")
HINT = "the run directory was not written; rerun the command"
SET_OPTION = typer.Option([], "--set", help=TRAIN["overrides"])


def _train(role: str, env: str | None, preset: str, updates: int | None, target_cost: float | None, seed: int,
           out: Path, overwrite: bool, threads: int | None, set_options: list[str], as_json: bool) -> None:
    from trajlab.commands.safe import SafeTrainConfig, train

    config = SafeTrainConfig(role=role, preset=preset, env_id=env, updates=updates, target_cost=target_cost,
                             seed=seed, out=str(out), overwrite=overwrite, num_threads=threads,
                             overrides=nested_overrides(set_options))
    with on_interrupt(HINT):
        emit(train(config), as_json, ("updates", "env_steps", "final_lagrange"))


@app.command("train-unsafe")
def train_unsafe(
    env: str | None = typer.Option(None, "--env", help=TRAIN["env_id"]),
    preset: str = options.preset(TRAIN),
    updates: int | None = typer.Option(None, "--updates", help=TRAIN["updates"]),
    seed: int = options.seed(TRAIN),
    out: Path = typer.Option(Path("runs/safe_unsafe"), "--out", help=TRAIN["out"]),
    overwrite: bool = options.overwrite(TRAIN),
    threads: int | None = typer.Option(1, "--threads", help=TRAIN["num_threads"]),
    set_options: list[str] = SET_OPTION,
    as_json: bool = JSON,
) -> None:
    """Train the unsafe expert: PPO on reward alone (lambda fixed at 0).

    Example:

      trajlab safe train-unsafe --out runs/safe_unsafe
    """
    _train("unsafe", env, preset, updates, None, seed, out, overwrite, threads, set_options, as_json)


@app.command("train-oracle")
def train_oracle(
    env: str | None = typer.Option(None, "--env", help=TRAIN["env_id"]),
    preset: str = options.preset(TRAIN),
    updates: int | None = typer.Option(None, "--updates", help=TRAIN["updates"]),
    target_cost: float | None = typer.Option(None, "--target-cost", help=TRAIN["target_cost"]),
    seed: int = options.seed(TRAIN),
    out: Path = typer.Option(Path("runs/safe_oracle"), "--out", help=TRAIN["out"]),
    overwrite: bool = options.overwrite(TRAIN),
    threads: int | None = typer.Option(1, "--threads", help=TRAIN["num_threads"]),
    set_options: list[str] = SET_OPTION,
    as_json: bool = JSON,
) -> None:
    """Train the oracle: PPO-Lagrangian from scratch with the PID controller and the target cost.

    Example:

      trajlab safe train-oracle --out runs/safe_oracle
    """
    _train("oracle", env, preset, updates, target_cost, seed, out, overwrite, threads, set_options, as_json)


@app.command("unlearn")
def unlearn(
    agent: Path = typer.Option(..., "--agent", help=UNLEARN["agent"]),
    method: str = typer.Option("concept", "--method", help=UNLEARN["method"]),
    preset: str = options.preset(UNLEARN),
    updates: int | None = typer.Option(None, "--updates", help=UNLEARN["updates"]),
    forget: str | None = typer.Option(None, "--forget", help=UNLEARN["forget_episode_ids"]),
    seed: int = options.seed(UNLEARN),
    out: Path = typer.Option(Path("runs/safe_unlearned"), "--out", help=UNLEARN["out"]),
    overwrite: bool = options.overwrite(UNLEARN),
    threads: int | None = typer.Option(1, "--threads", help=UNLEARN["num_threads"]),
    set_options: list[str] = SET_OPTION,
    as_json: bool = JSON,
) -> None:
    """Remove the unsafe behaviour from the expert in --agent with one method.

    Examples:

      trajlab safe unlearn --agent runs/safe_unsafe --method concept --out runs/safe_concept

      trajlab safe unlearn --agent runs/safe_unsafe --method repedit --out runs/safe_repedit

      trajlab safe unlearn --agent runs/safe_unsafe --set concept.lr=1e-3 --out runs/safe_concept_lr
    """
    from trajlab.commands.safe import SafeUnlearnConfig
    from trajlab.commands.safe import unlearn as run_unlearn

    config = SafeUnlearnConfig(agent=str(agent), method=method, preset=preset, updates=updates,
                               forget_episode_ids=_ints(forget), seed=seed, out=str(out), overwrite=overwrite,
                               num_threads=threads, overrides=nested_overrides(set_options))
    with on_interrupt(HINT):
        emit(run_unlearn(config), as_json, ("method", "updates", "wall_time_s"))


def _ints(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    from trajlab.core.errors import TrajlabError

    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise TrajlabError(f"--forget expects comma-separated episode ids, got {text!r}") from None


@app.command("eval")
def evaluate(
    runs: list[Path] = typer.Argument(..., help=EVAL["runs"]),
    oracle: Path | None = typer.Option(None, "--oracle", help=EVAL["oracle"]),
    preset: str = options.preset(EVAL),
    episodes: int | None = typer.Option(None, "--episodes", help=EVAL["episodes"]),
    seed: int = typer.Option(1000, "--seed", help=EVAL["seed"]),
    out: Path = typer.Option(Path("runs/safe_eval"), "--out", help=EVAL["out"]),
    overwrite: bool = options.overwrite(EVAL),
    gifs: bool = typer.Option(True, "--gifs/--no-gifs", help=EVAL["gifs"]),
    set_options: list[str] = SET_OPTION,
    as_json: bool = JSON,
) -> None:
    """The policy suite: return, cost, cost rate, goal reaches (and KL to --oracle) of every RUN.

    Example:

      trajlab safe eval runs/safe_unsafe runs/safe_oracle runs/safe_concept --oracle runs/safe_oracle
    """
    from trajlab.commands.safe import SafeEvalConfig
    from trajlab.commands.safe import evaluate as run_eval

    config = SafeEvalConfig(runs=tuple(str(r) for r in runs), oracle=None if oracle is None else str(oracle),
                            preset=preset, episodes=episodes, seed=seed, out=str(out), overwrite=overwrite,
                            gifs=gifs, overrides=nested_overrides(set_options))
    emit(run_eval(config), as_json, ("policies.*.return", "policies.*.cost", "policies.*.cost_rate"))


@app.command("relearn")
def relearn(
    run: Path = typer.Argument(..., help=RELEARN["run"]),
    expert: Path | None = typer.Option(None, "--expert", help=RELEARN["expert"]),
    compare: list[Path] = typer.Option([], "--compare", help=RELEARN["compare"]),
    random_init: bool = typer.Option(True, "--random-init/--no-random-init", help=RELEARN["random_init"]),
    preset: str = options.preset(RELEARN),
    max_updates: int | None = typer.Option(None, "--max-updates", help=RELEARN["max_updates"]),
    seed: int = options.seed(RELEARN),
    out: Path = typer.Option(Path("runs/safe_relearn"), "--out", help=RELEARN["out"]),
    overwrite: bool = options.overwrite(RELEARN),
    set_options: list[str] = SET_OPTION,
    as_json: bool = JSON,
) -> None:
    """Fine-tune RUN on reward alone; count iterations until its cost rate exceeds the expert-based threshold.

    Example:

      trajlab safe relearn runs/safe_concept --compare runs/safe_oracle
    """
    from trajlab.commands.safe import SafeRelearnConfig, relearn_test

    config = SafeRelearnConfig(run=str(run), expert=None if expert is None else str(expert),
                               compare=tuple(str(c) for c in compare), random_init=random_init, preset=preset,
                               max_updates=max_updates, seed=seed, out=str(out), overwrite=overwrite,
                               overrides=nested_overrides(set_options))
    with on_interrupt(HINT):
        emit(relearn_test(config), as_json, ("relearn.*.updates",))


@app.command("probe")
def probe(
    run: Path = typer.Argument(..., help=PROBE["run"]),
    expert: Path | None = typer.Option(None, "--expert", help=PROBE["expert"]),
    probe_file: Path | None = typer.Option(None, "--probe", help=PROBE["probe"]),
    compare: list[Path] = typer.Option([], "--compare", help=PROBE["compare"]),
    preset: str = options.preset(PROBE),
    seed: int = options.seed(PROBE),
    out: Path = typer.Option(Path("runs/safe_probe"), "--out", help=PROBE["out"]),
    overwrite: bool = options.overwrite(PROBE),
    set_options: list[str] = SET_OPTION,
    as_json: bool = JSON,
) -> None:
    """Hazard-probe accuracy, shift along the expert's hazard direction and CKA of RUN (and --compare runs).

    Example:

      trajlab safe probe runs/safe_repedit --compare runs/safe_concept
    """
    from trajlab.commands.safe import SafeProbeConfig
    from trajlab.commands.safe import probe as run_probe

    config = SafeProbeConfig(run=str(run), expert=None if expert is None else str(expert),
                             probe=None if probe_file is None else str(probe_file),
                             compare=tuple(str(c) for c in compare), preset=preset, seed=seed, out=str(out),
                             overwrite=overwrite, overrides=nested_overrides(set_options))
    emit(run_probe(config), as_json, ("models.*.probe_accuracy", "models.*.hazard_shift", "models.*.cka"))
