"""`trajlab data import|export|info|subset` as importable commands: each takes one config and returns a summary.

Outputs are replaced only on request, and every check happens before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trajlab.core.errors import TrajlabError

FORMATS = ("d4rl", "minari")


@dataclass(frozen=True)
class ImportConfig:
    """Import a D4RL file or a local Minari dataset as a trajlab dataset."""

    source: str
    """A D4RL .hdf5 file, or a Minari dataset id or folder."""
    out: str
    """trajlab dataset file to write (.hdf5)."""
    format: str | None = None
    """d4rl or minari (default: a file is D4RL, anything else a Minari dataset)."""
    env_id: str | None = None
    """Environment id to record in the dataset (D4RL files name none)."""
    minari_root: str | None = None
    """Minari datasets folder (default: $MINARI_DATASETS_PATH, else ~/.minari/datasets)."""
    overwrite: bool = False
    """Replace an existing output file (default: refuse)."""


@dataclass(frozen=True)
class ExportConfig:
    """Export a dataset as a plain D4RL file or a local Minari dataset."""

    path: str
    """trajlab dataset file (a D4RL file works too)."""
    format: str
    """d4rl or minari."""
    out: str
    """D4RL: a file path. Minari: a dataset id (name-v0) or a ./path."""
    minari_root: str | None = None
    """Minari datasets folder (default: $MINARI_DATASETS_PATH, else ~/.minari/datasets)."""
    overwrite: bool = False
    """Replace an existing output (default: refuse)."""


@dataclass(frozen=True)
class SubsetConfig:
    """Keep or drop episodes of a dataset by id."""

    path: str
    """trajlab dataset file."""
    out: str
    """Dataset file to write."""
    episodes: tuple[int, ...] | None = None
    """Episode ids to keep, e.g. 3,17,42."""
    without: tuple[int, ...] | None = None
    """Episode ids to drop, e.g. 3,17,42."""
    overwrite: bool = False
    """Replace an existing output file (default: refuse)."""


def import_dataset(config: ImportConfig) -> dict[str, Any]:
    """Read the source, give its episodes and transitions ids, write `out`; returns a summary."""
    from trajlab.envs.registry import env_info

    refuse_existing(Path(config.out), config.overwrite)
    if config.env_id is not None:
        env_info(config.env_id)
    kind = config.format or ("d4rl" if Path(config.source).is_file() else "minari")
    if kind == "d4rl":
        from trajlab.data.d4rl import import_d4rl

        dataset = import_d4rl(config.source, env_id=config.env_id)
    elif kind == "minari":
        from trajlab.data.minari_io import import_minari

        dataset = import_minari(config.source, root=config.minari_root)
        dataset = dataset if config.env_id is None else dataset.with_metadata(env_id=config.env_id)
    else:
        raise TrajlabError(f"unknown format {config.format!r}; use {' or '.join(FORMATS)}")
    dataset.save(config.out)
    return {"out": str(config.out), "format": kind, **_dataset_line(dataset)}


def export_dataset(config: ExportConfig) -> dict[str, Any]:
    """Write the dataset in the requested format; returns a summary."""
    from trajlab.data.d4rl import export_d4rl, open_dataset

    if config.format not in FORMATS:
        raise TrajlabError(f"unknown format {config.format!r}; use {' or '.join(FORMATS)}")
    if config.format == "d4rl":
        refuse_existing(Path(config.out), config.overwrite)
    dataset = open_dataset(config.path)
    if config.format == "d4rl":
        written = export_d4rl(dataset, config.out)
    else:
        from trajlab.data.minari_io import export_minari

        written = export_minari(dataset, config.out, root=config.minari_root, overwrite=config.overwrite)
    return {"out": str(written), "format": config.format, **_dataset_line(dataset)}


def dataset_info(path: str | Path) -> dict[str, Any]:
    """Counts, dimensions, return statistics and metadata of a dataset, with its mean return normalised by
    D4RL's references (normalized_return_mean) and by its behaviour policies' (behaviour_normalized_return_mean)."""
    from trajlab.data.d4rl import open_dataset
    from trajlab.eval.scores import behaviour_normalized_score, normalized_score

    summary = open_dataset(path).summary()
    metadata = summary["metadata"]
    summary["normalized_return_mean"] = normalized_score(summary["return_mean"], metadata.get("env_id"))
    summary["behaviour_normalized_return_mean"] = behaviour_normalized_score(summary["return_mean"], metadata)
    return summary


def subset_dataset(config: SubsetConfig) -> dict[str, Any]:
    """Write the chosen episodes, every id unchanged; returns a summary."""
    from trajlab.data import TransitionDataset

    if (config.episodes is None) == (config.without is None):
        raise TrajlabError("give exactly one of --episodes and --without")
    refuse_existing(Path(config.out), config.overwrite)
    dataset = TransitionDataset.load(config.path)
    chosen = dataset.subset(list(config.episodes)) if config.episodes is not None else \
        dataset.without(list(config.without or ()))
    chosen.save(config.out)
    return {"out": str(config.out), **_dataset_line(chosen)}


def refuse_existing(path: Path, overwrite: bool) -> None:
    """Fail before any work when an output is already there (outputs are replaced only on request)."""
    if path.is_dir():
        raise TrajlabError(f"{path}: is a folder; give a file path for the output")
    if path.exists() and not overwrite:
        raise TrajlabError(f"{path}: already exists (use --overwrite to replace it)")


def _dataset_line(dataset: Any) -> dict[str, Any]:
    summary = dataset.summary()
    return {key: summary[key] for key in ("episodes", "transitions", "observation_dim", "action_dim", "return_mean")}
