"""The `trajlab` command line: a thin Typer app. Each command parses options into a config and calls an
importable `run(config)`; user mistakes (`TrajlabError`) become one line on stderr and exit code 2.

Imports of the heavy parts happen inside the commands, so `trajlab --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

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


# ---- data: generate, import, export, info, subset (trajlab.data) -------------------------------------------
OverwriteOption = typer.Option(False, "--overwrite", help="Replace an existing output (default: refuse).")
MinariRootOption = typer.Option(
    None, "--minari-root", help="Minari datasets folder (default: $MINARI_DATASETS_PATH, else ~/.minari/datasets)."
)


def _refuse_existing(path: Path, overwrite: bool) -> None:
    """Fail before any work when an output is already there (outputs are replaced only on request)."""
    from trajlab.core.errors import TrajlabError

    if path.is_dir():
        raise TrajlabError(f"{path}: is a folder; give a file path for the output")
    if path.exists() and not overwrite:
        raise TrajlabError(f"{path}: already exists (use --overwrite to replace it)")


def _dataset_line(dataset: Any) -> dict[str, Any]:
    summary = dataset.summary()
    return {key: summary[key] for key in ("episodes", "transitions", "observation_dim", "action_dim", "return_mean")}


@data_app.command("generate")
def data_generate(
    env: str = typer.Option(..., "--env", help="Environment id, e.g. Hopper-v5 (see the envs registry)."),
    quality: str = typer.Option(..., "--quality", help="random, medium, expert, medium-replay or medium-expert."),
    out: Path = typer.Option(..., "--out", help="Dataset file to write (.hdf5)."),
    preset: str = typer.Option("quick", "--preset", help="quick (minutes on 2 CPU cores) or paper (D4RL sizes)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the behaviour training and the collection."),
    sac_steps: int | None = typer.Option(None, "--sac-steps", help="Override the preset's SAC env steps."),
    dataset_size: int | None = typer.Option(None, "--dataset-size", help="Override the transitions collected."),
    snapshot_every: int | None = typer.Option(None, "--snapshot-every", help="Override the snapshot interval."),
    learning_starts: int | None = typer.Option(
        None, "--learning-starts", help="Override the random steps before SAC updates start."
    ),
    work_dir: Path | None = typer.Option(
        None, "--work-dir", help="Behaviour-policy folder (default: next to --out, shared by every quality)."
    ),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda for SAC training."),
    threads: int | None = typer.Option(None, "--threads", help="Torch CPU threads (default: torch's choice)."),
    overwrite: bool = OverwriteOption,
    as_json: bool = JsonOption,
) -> None:
    """Train a SAC behaviour policy and collect a D4RL-style dataset of the given quality.

    Behaviour policies stay in a work folder: other qualities of the same env, preset and seed reuse them.

    An interrupted run continues where it stopped when run again.

    Examples:

      trajlab data generate --env Hopper-v5 --quality medium --out hopper-medium.hdf5

      trajlab data generate --env Hopper-v5 --quality medium-replay --out hopper-mr.hdf5 --preset paper --seed 1
    """
    from trajlab.commands.generate import GenerateConfig, run
    from trajlab.core.config import load_preset, replace

    config = load_preset(
        GenerateConfig, "data", preset, env_id=env, quality=quality, out=str(out), seed=seed,
        sac_steps=sac_steps, dataset_size=dataset_size, snapshot_every=snapshot_every, device=device,
        learning_starts=learning_starts, work_dir=None if work_dir is None else str(work_dir), overwrite=overwrite,
        num_threads=threads,
    )
    emit(run(replace(config, preset=preset)), as_json)


@data_app.command("import")
def data_import(
    source: str = typer.Argument(..., help="A D4RL .hdf5 file, or a Minari dataset id or folder."),
    out: Path = typer.Option(..., "--out", help="trajlab dataset file to write (.hdf5)."),
    format: str | None = typer.Option(None, "--format", help="d4rl or minari (default: a file is D4RL)."),
    env: str | None = typer.Option(None, "--env", help="Environment id to record (D4RL files name none)."),
    minari_root: Path | None = MinariRootOption,
    overwrite: bool = OverwriteOption,
    as_json: bool = JsonOption,
) -> None:
    """Import a D4RL .hdf5 file or a local Minari dataset; episodes and transitions get stable ids.

    D4RL episodes end at terminals and timeouts; a last episode that ends with neither is kept.

    Examples:

      trajlab data import hopper_medium-v2.hdf5 --out hopper-medium.hdf5

      trajlab data import mujoco/hopper/medium-v0 --format minari --out hopper-medium.hdf5
    """
    from trajlab.core.errors import TrajlabError
    from trajlab.envs.registry import env_info

    _refuse_existing(out, overwrite)
    if env is not None:
        env_info(env)
    kind = format or ("d4rl" if Path(source).is_file() else "minari")
    if kind == "d4rl":
        from trajlab.data.d4rl import import_d4rl

        dataset = import_d4rl(source, env_id=env)
    elif kind == "minari":
        from trajlab.data.minari_io import import_minari

        dataset = import_minari(source, root=minari_root)
        dataset = dataset if env is None else dataset.with_metadata(env_id=env)
    else:
        raise TrajlabError(f"unknown format {format!r}; use d4rl or minari")
    dataset.save(out)
    emit({"out": str(out), "format": kind, **_dataset_line(dataset)}, as_json)


@data_app.command("export")
def data_export(
    path: Path = typer.Argument(..., help="trajlab dataset file (a D4RL file works too)."),
    format: str = typer.Option(..., "--format", help="minari or d4rl."),
    out: str = typer.Option(..., "--out", help="D4RL: a file path. Minari: a dataset id (name-v0) or a ./path."),
    minari_root: Path | None = MinariRootOption,
    overwrite: bool = OverwriteOption,
    as_json: bool = JsonOption,
) -> None:
    """Export a dataset as a plain D4RL .hdf5 file or as a local Minari dataset.

    Minari needs the dataset's env_id (set it at import with --env) and whole episodes.

    Examples:

      trajlab data export hopper-medium.hdf5 --format d4rl --out hopper_medium-d4rl.hdf5

      trajlab data export hopper-medium.hdf5 --format minari --out trajlab/hopper-medium-v0
    """
    from trajlab.core.errors import TrajlabError
    from trajlab.data.d4rl import export_d4rl, open_dataset

    if format not in ("d4rl", "minari"):
        raise TrajlabError(f"unknown format {format!r}; use d4rl or minari")
    if format == "d4rl":
        _refuse_existing(Path(out), overwrite)
    dataset = open_dataset(path)
    if format == "d4rl":
        written = export_d4rl(dataset, out)
    else:
        from trajlab.data.minari_io import export_minari

        written = export_minari(dataset, out, root=minari_root, overwrite=overwrite)
    emit({"out": str(written), "format": format, **_dataset_line(dataset)}, as_json)


@data_app.command("info")
def data_info(
    path: Path = typer.Argument(..., help="trajlab dataset file (a D4RL file works too)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Episodes, transitions, return statistics, dimensions and metadata of a dataset.

    Example:

      trajlab data info hopper-medium.hdf5
    """
    from trajlab.data.d4rl import open_dataset
    from trajlab.eval.scores import normalized_score

    summary = open_dataset(path).summary()
    env_id = summary["metadata"].get("env_id")
    summary["normalized_return_mean"] = normalized_score(summary["return_mean"], env_id, summary["metadata"])
    if as_json:
        typer.echo(json.dumps(summary, indent=2, sort_keys=True, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=str(path), show_header=False)
    for key, value in summary.items():
        if key != "metadata" and value is not None:
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    for key, value in sorted(summary["metadata"].items()):
        table.add_row(f"metadata.{key}", str(value), style="dim")
    Console().print(table)


@data_app.command("subset")
def data_subset(
    path: Path = typer.Argument(..., help="trajlab dataset file."),
    out: Path = typer.Option(..., "--out", help="Dataset file to write."),
    episodes: str | None = typer.Option(None, "--episodes", help="Comma-separated episode ids to keep."),
    without: str | None = typer.Option(None, "--without", help="Comma-separated episode ids to drop."),
    overwrite: bool = OverwriteOption,
    as_json: bool = JsonOption,
) -> None:
    """Keep (--episodes) or drop (--without) episodes by id; every id stays as it was.

    Example:

      trajlab data subset hopper-medium.hdf5 --without 3,17,42 --out hopper-medium-forget.hdf5
    """
    from trajlab.core.errors import TrajlabError
    from trajlab.data import TransitionDataset

    if (episodes is None) == (without is None):
        raise TrajlabError("give exactly one of --episodes and --without")
    _refuse_existing(out, overwrite)
    ids = _episode_id_list(episodes if episodes is not None else without or "")
    dataset = TransitionDataset.load(path)
    chosen = dataset.subset(ids) if episodes is not None else dataset.without(ids)
    chosen.save(out)
    emit({"out": str(out), **_dataset_line(chosen)}, as_json)


def _episode_id_list(text: str) -> list[int]:
    from trajlab.core.errors import TrajlabError

    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise TrajlabError(f"episode ids must be comma-separated integers, got {text!r}") from None


# ---- offline training and evaluation: train, eval (trajlab.training.offline) ---------------------------
def _parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """KEY=VALUE strings -> {key: YAML-parsed value} (so 0.5 is a float, [64, 64] a list, true a bool)."""
    import yaml

    from trajlab.core.errors import TrajlabError

    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise TrajlabError(f"--set expects KEY=VALUE, got {pair!r}")
        try:
            overrides[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise TrajlabError(f"--set {key}: cannot parse value {text!r}") from None
    return overrides


@app.command("train")
def offline_train(
    algo: str = typer.Option(..., "--algo", help="Offline algorithm: bc, td3_bc, iql, awac, cql, bcq, bear, ..."),
    dataset: Path = typer.Option(..., "--dataset", help="trajlab HDF5 dataset (see `trajlab data`)."),
    steps: int = typer.Option(..., "--steps", help="Gradient updates."),
    preset: str = typer.Option("quick", "--preset", help="quick (small nets, CPU minutes) or paper (published)."),
    seed: int = typer.Option(0, "--seed", help="Seed of networks, batches and noise."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    eval_every: int = typer.Option(0, "--eval-every", help="Evaluate every N updates and at the end (0: never)."),
    eval_episodes: int = typer.Option(10, "--eval-episodes", help="Episodes per evaluation."),
    log_every: int = typer.Option(1000, "--log-every", help="Write metrics.csv rows every N updates."),
    checkpoint_every: int = typer.Option(10_000, "--checkpoint-every", help="Step checkpoint every N updates."),
    out: Path | None = typer.Option(None, "--out", help="Run directory (default runs/<algo>_<dataset>_seed<S>)."),
    set_options: list[str] = typer.Option([], "--set", help="Override an algorithm option: KEY=VALUE (repeatable)."),
    threads: int | None = typer.Option(None, "--threads", help="Torch CPU threads (default: torch's choice)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run in --out."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the run already in --out."),
    as_json: bool = JsonOption,
) -> None:
    """Train an offline RL agent on a dataset; writes a run directory with checkpoints and result.json.

    Algorithm options come from configs/offline/<algo>/<preset>.yaml; --set changes single ones.
    Rerun an interrupted command with --resume to continue from its latest checkpoint.

    Examples:

      trajlab train --algo iql --dataset hopper-medium.hdf5 --steps 5000

      trajlab train --algo cql --dataset hopper-medium.hdf5 --steps 1000000 --preset paper --eval-every 10000

      trajlab train --algo td3_bc --dataset data.hdf5 --steps 20000 --set alpha=5.0 --out runs/td3bc-a5
    """
    from trajlab.training.offline import TrainConfig, run

    config = TrainConfig(
        algo=algo, dataset=str(dataset), steps=steps, preset=preset, overrides=_parse_overrides(set_options),
        seed=seed, device=device, eval_every=eval_every, eval_episodes=eval_episodes, log_every=log_every,
        checkpoint_every=checkpoint_every, out=None if out is None else str(out), resume=resume,
        overwrite=overwrite, threads=threads,
    )
    emit(run(config), as_json)


@app.command("eval")
def offline_eval(
    run_dir: Path = typer.Argument(..., help="Run directory written by `trajlab train`."),
    episodes: int = typer.Option(10, "--episodes", help="Evaluation episodes."),
    seed: int = typer.Option(0, "--seed", help="Seed of the first episode (episode i uses seed + i)."),
    env: str | None = typer.Option(None, "--env", help="Environment id (default: the dataset's env_id)."),
    as_json: bool = JsonOption,
) -> None:
    """Evaluate a trained agent: mean return and normalised score over episodes; writes RUN/eval.json.

    Examples:

      trajlab eval runs/iql_hopper-medium_seed0 --episodes 10

      trajlab eval runs/cql-hopper --episodes 20 --seed 100 --json
    """
    from trajlab.training.offline import evaluate_run

    emit(evaluate_run(run_dir, episodes=episodes, seed=seed, env_id=env), as_json)


# ---- online training: train-online (trajlab.training.online) -----------------------------------------
DROQ_OPTIONS = {"critic_dropout": 0.01, "critic_layer_norm": True, "utd_ratio": 20}
"""What --droq sets (Hiraoka et al. 2022): dropout and layer norm in the critics, 20 updates per env step."""


@app.command("train-online")
def train_online_command(
    algo: str = typer.Option("sac", "--algo", help="Online algorithm (sac)."),
    env: str = typer.Option(..., "--env", help="Environment id, e.g. Hopper-v5 or Pendulum-v1."),
    steps: int | None = typer.Option(None, "--steps", help="Environment steps (default: the preset's)."),
    preset: str = typer.Option("quick", "--preset", help="quick (small nets, CPU minutes) or paper (published)."),
    seed: int = typer.Option(0, "--seed", help="Seed of networks, environment, exploration and minibatches."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    eval_every: int | None = typer.Option(None, "--eval-every", help="Evaluate every N env steps (0: never)."),
    eval_episodes: int | None = typer.Option(None, "--eval-episodes", help="Episodes per evaluation."),
    learning_starts: int | None = typer.Option(None, "--learning-starts", help="Random-action steps first."),
    checkpoint_every: int | None = typer.Option(
        None, "--checkpoint-every", help="Checkpoint at the first episode end after every N steps (0: never)."
    ),
    log_every: int | None = typer.Option(None, "--log-every", help="Write metrics.csv rows every N steps."),
    droq: bool = typer.Option(False, "--droq", help="DroQ: critic dropout 0.01 + layer norm, 20 updates/step."),
    utd: int | None = typer.Option(None, "--utd", help="Updates per env step (update-to-data ratio)."),
    set_options: list[str] = typer.Option([], "--set", help="Override an agent option: KEY=VALUE (repeatable)."),
    threads: int | None = typer.Option(None, "--threads", help="Torch CPU threads (default: the preset's)."),
    out: Path | None = typer.Option(None, "--out", help="Run directory (default runs/<algo>_<env>_seed<S>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run in --out."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the run already in --out."),
    as_json: bool = JsonOption,
) -> None:
    """Train an agent online (SAC, with DroQ and reset options); writes a run directory with a learning curve.

    Trainer settings and agent options come from configs/online/<algo>/<preset>.yaml; options here change
    single ones. Rerun an interrupted command with --resume to continue from its latest checkpoint.

    Examples:

      trajlab train-online --algo sac --env Hopper-v5

      trajlab train-online --algo sac --env Hopper-v5 --preset paper --seed 1 --out runs/sac-hopper-s1

      trajlab train-online --algo sac --env Hopper-v5 --droq --steps 50000 --set reset_every=100000

      trajlab train-online --algo sac --env Pendulum-v1 --steps 5000 --set hidden=[64,64] --json
    """
    from trajlab.commands.train import run_online as run
    from trajlab.training.online import load_online_config

    overrides = {**(DROQ_OPTIONS if droq else {}), **({"utd_ratio": utd} if utd is not None else {})}
    overrides.update(_parse_overrides(set_options))
    config = load_online_config(
        algo, preset, env_id=env, total_steps=steps, seed=seed, device=device, eval_every=eval_every,
        eval_episodes=eval_episodes, learning_starts=learning_starts, checkpoint_every=checkpoint_every,
        log_every=log_every, num_threads=threads, overrides=overrides,
    )
    emit(run(config, out=out, resume=resume, overwrite=overwrite), as_json)


# ---- trajectory forgetting and auditing: forget, audit, poison (trajlab.unlearning, trajlab.audit) --------
def _episode_list(text: str | None) -> tuple[int, ...] | None:
    """'3,17,42' -> (3, 17, 42) (None when not given); non-integers are a user error."""
    if text is None:
        return None
    from trajlab.data.ids import parse_episode_ids

    return tuple(parse_episode_ids(text))


def _nested_overrides(pairs: list[str]) -> dict[str, Any]:
    """--set trajdeleter.forget_steps=400 -> {"trajdeleter": {"forget_steps": 400}} (values parsed as YAML)."""
    nested: dict[str, Any] = {}
    for key, value in _parse_overrides(pairs).items():
        section, _, field = key.rpartition(".")
        if section:
            nested.setdefault(section, {})[field] = value
        else:
            nested[key] = value
    return nested


SetOption = typer.Option([], "--set", help="Override a preset value: SECTION.KEY=VALUE, e.g. finetune.steps=500.")
ShadowsOption = typer.Option(None, "--shadows", help="Shadow agents K of TrajAuditor (default 5).")
ExecutorOption = typer.Option(None, "--executor", help="Shadow training: in-process|local|ray|serial.")
ControlsOption = typer.Option(
    None, "--controls", help="Remaining episodes audited as a control group (default: as many as audited).")


def _auditor_overrides(set_options: list[str], shadows: int | None, executor: str | None,
                       controls: int | None) -> dict[str, Any]:
    """--set overrides with the auditor's own options merged into its section."""
    overrides = _nested_overrides(set_options)
    overrides["auditor"] = {**overrides.get("auditor", {}), "num_shadows": shadows, "executor": executor,
                           "control_episodes": controls}
    return overrides


@app.command("forget")
def forget_command(
    agent: Path = typer.Option(..., "--agent", help="Trained agent: a run directory or a checkpoint file."),
    dataset: Path = typer.Option(..., "--dataset", help="The dataset the agent was trained on."),
    out: Path = typer.Option(..., "--out", help="New run directory (the original run is never modified)."),
    method: str = typer.Option("trajdeleter", "--method", help="trajdeleter, finetune, random-reward or retrain."),
    episodes: str | None = typer.Option(None, "--episodes", help="Episode ids to forget, e.g. 3,17,42."),
    episodes_file: Path | None = typer.Option(None, "--episodes-file", help="File of episode ids to forget."),
    fraction: float | None = typer.Option(None, "--fraction", help="Forget a random fraction of episodes."),
    seed: int = typer.Option(0, "--seed", help="Seed of --fraction's choice and of the method's sampling."),
    preset: str = typer.Option("quick", "--preset", help="quick (CPU minutes) or paper (the paper's steps)."),
    audit: bool = typer.Option(False, "--audit", help="Audit the forgotten trajectories with TrajAuditor."),
    evaluate: bool = typer.Option(False, "--evaluate", help="Returns of original and unlearned agents."),
    retrain: bool = typer.Option(False, "--retrain", help="With --evaluate: also retrain, for return and time."),
    shadows: int | None = ShadowsOption,
    executor: str | None = ExecutorOption,
    controls: int | None = ControlsOption,
    eval_episodes: int | None = typer.Option(None, "--eval-episodes", help="Episodes per evaluation."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    threads: int | None = typer.Option(None, "--threads", help="Torch CPU threads (default: torch's choice)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run already in --out."),
    set_options: list[str] = SetOption,
    as_json: bool = JsonOption,
) -> None:
    """Make a trained offline agent forget trajectories; writes a new run with a deletion certificate.

    Exactly one of --episodes, --episodes-file and --fraction says what to forget. Bad requests (unknown ids,
    an empty set, the whole dataset, a dataset that does not match the agent) stop before anything is written.

    Examples:

      trajlab forget --agent runs/td3 --dataset hopper.hdf5 --episodes 3,17,42 --out runs/td3-forget

      trajlab forget --agent runs/td3 --dataset hopper.hdf5 --fraction 0.01 --audit --evaluate --out runs/f1

      trajlab forget --agent runs/iql --dataset hopper.hdf5 --method finetune --episodes-file ids.txt --out runs/f2

      trajlab forget --agent runs/td3 --dataset hopper.hdf5 --episodes 7 --set trajdeleter.balance=0.5 --out runs/f3
    """
    from trajlab.commands.forget import load_forget_config, run

    overrides = _auditor_overrides(set_options, shadows, executor, controls)
    config = load_forget_config(
        preset, **{**overrides, **dict(
            agent=str(agent), dataset=str(dataset), out=str(out), method=method,
            episodes=_episode_list(episodes), episodes_file=None if episodes_file is None else str(episodes_file),
            fraction=fraction, seed=seed, audit=audit, evaluate=evaluate, compare_retrain=retrain,
            eval_episodes=eval_episodes, device=device, threads=threads, overwrite=overwrite)},
    )
    emit(run(config), as_json)


@app.command("audit")
def audit_command(
    agent: Path = typer.Option(..., "--agent", help="Audited agent: a run directory or a checkpoint file."),
    dataset: Path = typer.Option(..., "--dataset", help="Dataset holding the audited trajectories."),
    episodes: str | None = typer.Option(None, "--episodes", help="Episode ids to audit, e.g. 3,17,42."),
    episodes_file: Path | None = typer.Option(None, "--episodes-file", help="File of episode ids to audit."),
    reference_dataset: Path | None = typer.Option(
        None, "--reference-dataset", help="D_r for the shadows (default: dataset minus audited/forgotten)."),
    original: Path | None = typer.Option(
        None, "--original", help="Original agent (default: from the run's certificate, else --agent)."),
    shadows: int | None = ShadowsOption,
    executor: str | None = ExecutorOption,
    controls: int | None = ControlsOption,
    preset: str = typer.Option("quick", "--preset", help="quick (CPU minutes) or paper (the paper's settings)."),
    out: Path | None = typer.Option(None, "--out", help="Run directory (default runs/audit_<agent run>)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    threads: int | None = typer.Option(None, "--threads", help="Torch CPU threads (default: torch's choice)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run already in --out."),
    set_options: list[str] = SetOption,
    as_json: bool = JsonOption,
) -> None:
    """Judge, per trajectory, whether an agent was trained on it (TrajAuditor: shadows + Grubbs test).

    Examples:

      trajlab audit --agent runs/td3-forget --dataset hopper.hdf5 --episodes 3,17,42

      trajlab audit --agent runs/td3 --dataset hopper.hdf5 --episodes-file ids.txt --shadows 5 --executor local --json
    """
    from trajlab.commands.audit import load_audit_config, run

    overrides = _auditor_overrides(set_options, shadows, executor, controls)
    config = load_audit_config(
        preset, **{**overrides, **dict(
            agent=str(agent), dataset=str(dataset), episodes=_episode_list(episodes),
            episodes_file=None if episodes_file is None else str(episodes_file),
            reference_dataset=None if reference_dataset is None else str(reference_dataset),
            original=None if original is None else str(original), out=None if out is None else str(out),
            device=device, threads=threads, overwrite=overwrite)},
    )
    emit(run(config), as_json)


@app.command("poison")
def poison_command(
    dataset: Path = typer.Option(..., "--dataset", help="Clean dataset of a known environment."),
    out: Path = typer.Option(..., "--out", help="Run directory to write."),
    algo: str | None = typer.Option(None, "--algo", help="Offline algorithm (default: the preset's, td3_bc)."),
    fraction: float | None = typer.Option(None, "--fraction", help="Fraction of episodes poisoned."),
    train_steps: int | None = typer.Option(None, "--train-steps", help="Updates of the poisoned agent."),
    methods: str | None = typer.Option(None, "--methods", help="Comma-separated unlearning methods."),
    seed: int = typer.Option(0, "--seed", help="Seed of poisoning, training, unlearning and evaluation."),
    preset: str = typer.Option("quick", "--preset", help="quick (CPU minutes) or paper (the paper's scale)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    threads: int | None = typer.Option(None, "--threads", help="Torch CPU threads (default: torch's choice)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run already in --out."),
    set_options: list[str] = SetOption,
    as_json: bool = JsonOption,
) -> None:
    """Plant a backdoor (trigger + bad actions) in some trajectories, train an agent on them, measure its return
    with and without the trigger, then unlearn the poisoned trajectories with each method and measure recovery.

    Examples:

      trajlab poison --dataset hopper-mr.hdf5 --out runs/poison

      trajlab poison --dataset hopper-mr.hdf5 --algo iql --fraction 0.05 --methods trajdeleter,retrain --out runs/p2
    """
    from trajlab.commands.poison import load_poison_config, run

    overrides = _nested_overrides(set_options)
    overrides["poison"] = {**overrides.get("poison", {}), "fraction": fraction}
    chosen = None if methods is None else tuple(name.strip() for name in methods.split(",") if name.strip())
    config = load_poison_config(
        preset, **{**overrides, **dict(
            dataset=str(dataset), out=str(out), algo=algo, train_steps=train_steps, methods=chosen, seed=seed,
            device=device, threads=threads, overwrite=overwrite)},
    )
    emit(run(config), as_json)


# ---- quickstart (trajlab.commands.quickstart) ----------------------------------------------------------------------
@app.command("quickstart")
def quickstart(
    out: Path = typer.Option(Path("runs/quickstart"), "--out", help="Folder of the runs and report.html (replaced)."),
    seed: int = typer.Option(0, "--seed", help="Seed of every step."),
    train_steps: int | None = typer.Option(None, "--train-steps", help="Override the agent's gradient updates."),
    as_json: bool = JsonOption,
) -> None:
    """The whole story on the default: generate a small Hopper dataset (cached after the first run), train an
    offline agent, evaluate it, forget 1% of its trajectories with TrajDeleter, audit them, write report.html.

    About ten minutes on 2 CPU cores the first time.

    Examples:

      trajlab quickstart

      trajlab quickstart --out runs/demo --seed 1
    """
    from trajlab.commands.quickstart import QuickstartConfig, run
    from trajlab.core.config import load_preset

    config = load_preset(QuickstartConfig, "quickstart", "default", out=str(out), seed=seed,
                         train_steps=train_steps)
    emit(run(config, say=lambda line: typer.echo(line, err=True)), as_json)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning user mistakes into a one-line error and exit code 2."""
    from trajlab.core.errors import TrajlabError

    try:
        # without standalone mode typer returns an exit code instead of exiting (130 for Ctrl-C)
        code = app(args=argv, standalone_mode=False)
    except TrajlabError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted; rerun with --resume to continue", err=True)
        sys.exit(130)
    except Exception as error:  # usage errors of typer's own (vendored) click
        from typer._click.exceptions import ClickException

        if isinstance(error, ClickException):
            error.show()
            sys.exit(error.exit_code)
        if isinstance(error, typer.Exit):
            sys.exit(error.exit_code)
        if isinstance(error, typer.Abort):
            sys.exit(1)
        raise
    if code == 130:
        typer.echo("interrupted; rerun with --resume to continue", err=True)
    if isinstance(code, int) and code != 0:
        sys.exit(code)


if __name__ == "__main__":
    main()
