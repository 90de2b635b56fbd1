"""`trajlab data generate|import|export|info|subset` (trajlab.commands.generate, trajlab.commands.datasets)."""

from __future__ import annotations

from pathlib import Path

import typer

from trajlab.cli import options
from trajlab.cli.options import JSON, ConfigDocs, emit, on_interrupt

app = typer.Typer(help="Create, import, export and inspect transition datasets.", no_args_is_help=True)

GENERATE = ConfigDocs("trajlab.commands.generate", "GenerateConfig")
IMPORT = ConfigDocs("trajlab.commands.datasets", "ImportConfig")
EXPORT = ConfigDocs("trajlab.commands.datasets", "ExportConfig")
SUBSET = ConfigDocs("trajlab.commands.datasets", "SubsetConfig")


@app.command("generate")
def generate(
    env: str = typer.Option(..., "--env", help=GENERATE["env_id"]),
    quality: str = typer.Option(..., "--quality", help=GENERATE["quality"]),
    out: Path = options.out(GENERATE),
    preset: str = options.preset(GENERATE),
    seed: int = options.seed(GENERATE),
    sac_steps: int | None = typer.Option(None, "--sac-steps", help=GENERATE["sac_steps"]),
    dataset_size: int | None = typer.Option(None, "--dataset-size", help=GENERATE["dataset_size"]),
    snapshot_every: int | None = typer.Option(None, "--snapshot-every", help=GENERATE["snapshot_every"]),
    learning_starts: int | None = typer.Option(None, "--learning-starts", help=GENERATE["learning_starts"]),
    work_dir: Path | None = typer.Option(None, "--work-dir", help=GENERATE["work_dir"]),
    device: str | None = options.device(GENERATE, default=None),
    threads: int | None = options.threads(GENERATE, field="num_threads"),
    overwrite: bool = options.overwrite(GENERATE),
    as_json: bool = JSON,
) -> None:
    """Train a SAC behaviour policy and collect a D4RL-style dataset of the given quality.

    Behaviour policies stay in a work folder: other qualities of the same env, preset and seed reuse them.
    Options left out keep the preset's values.

    An interrupted run continues where it stopped when run again (there is no --resume to give).

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
    with on_interrupt("run the same command again to continue"):
        emit(run(replace(config, preset=preset)), as_json)


@app.command("import")
def import_(
    source: str = typer.Argument(..., help=IMPORT["source"]),
    out: Path = options.out(IMPORT),
    format: str | None = typer.Option(None, "--format", help=IMPORT["format"]),
    env: str | None = typer.Option(None, "--env", help=IMPORT["env_id"]),
    minari_root: Path | None = typer.Option(None, "--minari-root", help=IMPORT["minari_root"]),
    overwrite: bool = options.overwrite(IMPORT),
    as_json: bool = JSON,
) -> None:
    """Import a D4RL .hdf5 file or a local Minari dataset; episodes and transitions get stable ids.

    D4RL episodes end at terminals and timeouts; a last episode that ends with neither is kept.

    Examples:

      trajlab data import hopper_medium-v2.hdf5 --out hopper-medium.hdf5

      trajlab data import mujoco/hopper/medium-v0 --format minari --out hopper-medium.hdf5
    """
    from trajlab.commands.datasets import ImportConfig, import_dataset

    emit(import_dataset(ImportConfig(source=source, out=str(out), format=format, env_id=env,
                                     minari_root=_optional(minari_root), overwrite=overwrite)), as_json)


@app.command("export")
def export(
    path: Path = typer.Argument(..., help=EXPORT["path"]),
    format: str = typer.Option(..., "--format", help=EXPORT["format"]),
    out: str = options.out(EXPORT),
    minari_root: Path | None = typer.Option(None, "--minari-root", help=EXPORT["minari_root"]),
    overwrite: bool = options.overwrite(EXPORT),
    as_json: bool = JSON,
) -> None:
    """Export a dataset as a plain D4RL .hdf5 file or as a local Minari dataset.

    Minari needs the dataset's env_id (set it at import with --env) and whole episodes.

    Examples:

      trajlab data export hopper-medium.hdf5 --format d4rl --out hopper_medium-d4rl.hdf5

      trajlab data export hopper-medium.hdf5 --format minari --out trajlab/hopper-medium-v0
    """
    from trajlab.commands.datasets import ExportConfig, export_dataset

    emit(export_dataset(ExportConfig(path=str(path), format=format, out=out, minari_root=_optional(minari_root),
                                     overwrite=overwrite)), as_json)


@app.command("info")
def info(
    path: Path = typer.Argument(..., help=EXPORT["path"]),
    as_json: bool = JSON,
) -> None:
    """Episodes, transitions, return statistics, dimensions and metadata of a dataset. normalized_return_mean
    is D4RL's normalised score of the mean return (empty where D4RL has no reference);
    behaviour_normalized_return_mean the score against the dataset's own behaviour policies.

    Example:

      trajlab data info hopper-medium.hdf5
    """
    from trajlab.commands.datasets import dataset_info

    emit(dataset_info(path), as_json, headline=("metadata.*",))


@app.command("subset")
def subset(
    path: Path = typer.Argument(..., help=SUBSET["path"]),
    out: Path = options.out(SUBSET),
    episodes: str | None = typer.Option(None, "--episodes", help=SUBSET["episodes"]),
    without: str | None = typer.Option(None, "--without", help=SUBSET["without"]),
    overwrite: bool = options.overwrite(SUBSET),
    as_json: bool = JSON,
) -> None:
    """Keep (--episodes) or drop (--without) episodes by id; every id stays as it was.

    Example:

      trajlab data subset hopper-medium.hdf5 --without 3,17,42 --out hopper-medium-forget.hdf5
    """
    from trajlab.commands.datasets import SubsetConfig, subset_dataset

    config = SubsetConfig(path=str(path), out=str(out), episodes=_episode_ids(episodes), without=_episode_ids(without),
                          overwrite=overwrite)
    emit(subset_dataset(config), as_json)


def _episode_ids(text: str | None) -> tuple[int, ...] | None:
    from trajlab.core.errors import TrajlabError

    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise TrajlabError(f"episode ids must be comma-separated integers, got {text!r}") from None


def _optional(path: Path | None) -> str | None:
    return None if path is None else str(path)
