"""Real D4RL .hdf5 files in and out.

A D4RL file holds `observations`, `actions`, `rewards`, `terminals` (and usually `timeouts`,
`next_observations`) at its root, `infos/*` arrays, and `metadata/*` entries; it has no ids. Import derives
episodes from terminals and timeouts and keeps a last episode that ends with neither. Export writes the plain
layout, plus pieces D4RL readers ignore (a `trajlab/` group with the ids, a JSON attribute with the metadata)
so that a trajlab -> D4RL -> trajlab round trip loses nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from trajlab.core.errors import TrajlabError
from trajlab.core.io import atomic_path
from trajlab.data.dataset import TransitionDataset
from trajlab.data.schema import METADATA_ATTR

REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals")
OPTIONAL_KEYS = ("timeouts", "next_observations", "costs", "episode_ids", "transition_ids")
IDS_GROUP = "trajlab"
# file-name prefixes of D4RL's locomotion datasets and the trajlab env whose reference returns apply
_D4RL_ENV_PREFIXES = {"halfcheetah": "HalfCheetah-v5", "hopper": "Hopper-v5", "walker2d": "Walker2d-v5"}
_MAX_METADATA_VECTOR = 64


def import_d4rl(path: str | Path, *, env_id: str | None = None) -> TransitionDataset:
    """A TransitionDataset from a D4RL-layout .hdf5 file (a trajlab file works too and keeps its ids).

    `env_id` sets the environment; without it, a trajlab file's own metadata or, for D4RL's locomotion files,
    the file name (hopper_medium-v2.hdf5 -> Hopper-v5, when the observation size matches) provides it.
    """
    source = Path(path)
    arrays, metadata = _read(source)
    missing = [key for key in REQUIRED_KEYS if key not in arrays]
    if missing:
        raise TrajlabError(f"{source}: missing required key(s) {', '.join(missing)}")
    if env_id is not None:
        metadata["env_id"] = env_id
    elif "env_id" not in metadata:
        guessed = _guess_env_id(source.name, arrays["observations"])
        if guessed is not None:
            metadata.update(env_id=guessed, env_id_from="file name")
    try:
        return TransitionDataset.from_arrays(**arrays, metadata=metadata)
    except TrajlabError as error:
        raise TrajlabError(f"{source}: {error}") from None


def open_dataset(path: str | Path) -> TransitionDataset:
    """Read a trajlab dataset file, or import a D4RL one (a file without ids) on the fly."""
    source = Path(path)
    if _has_root_ids(source):
        return TransitionDataset.load(source)
    return import_d4rl(source)


def export_d4rl(dataset: TransitionDataset, path: str | Path) -> Path:
    """Write `dataset` as a plain D4RL .hdf5 file (atomically).

    D4RL readers find episodes at terminals and timeouts only, so an unfinished episode that is not the last
    one is marked as a timeout; otherwise it would run into the next episode.
    """
    target = Path(path)
    root = {
        "observations": dataset.observations, "actions": dataset.actions, "rewards": dataset.rewards,
        "next_observations": dataset.next_observations, "terminals": dataset.terminals,
        "timeouts": dataset.timeouts | _inner_unfinished_ends(dataset), "costs": dataset.costs,
    }
    with atomic_path(target) as temp, h5py.File(temp, "w") as handle:
        for name, values in root.items():
            if values is not None:
                handle.create_dataset(name, data=values, compression="gzip", compression_opts=1, fletcher32=True)
        for key, value in _plain_metadata(dataset.metadata).items():
            handle.create_dataset(f"metadata/{key}", data=value)
        handle.create_dataset(f"{IDS_GROUP}/episode_ids", data=dataset.episode_ids)
        handle.create_dataset(f"{IDS_GROUP}/transition_ids", data=dataset.transition_ids)
        handle.attrs[METADATA_ATTR] = json.dumps(dataset.metadata, default=str)
    return target


# --- reading ---------------------------------------------------------------------------------------------
def _read(source: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    if not source.is_file():
        raise TrajlabError(f"{source}: file not found")
    try:
        with h5py.File(source, "r") as handle:
            arrays = _read_arrays(source, handle)
            metadata = _read_metadata(source, handle)
    except TrajlabError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TrajlabError(f"{source}: not a readable HDF5 file ({reason})") from None
    return arrays, metadata


def _read_arrays(source: Path, handle: h5py.File) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for key in (*REQUIRED_KEYS, *OPTIONAL_KEYS):
        node = handle.get(key)
        if node is None and key in ("episode_ids", "transition_ids"):
            node = handle.get(f"{IDS_GROUP}/{key}")
        if node is None:
            continue
        if not isinstance(node, h5py.Dataset) or node.dtype.kind not in "biuf" or node.ndim == 0:
            raise TrajlabError(f"{source}: {key!r} is not a numeric array")
        arrays[key] = node[()]
    return arrays


def _read_metadata(source: Path, handle: h5py.File) -> dict[str, Any]:
    """The trajlab metadata attribute when present; else D4RL's scalar `metadata/*` entries."""
    if METADATA_ATTR in handle.attrs:
        raw = handle.attrs[METADATA_ATTR]
        try:
            stored = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        except (json.JSONDecodeError, TypeError):
            stored = None
        if not isinstance(stored, dict):
            raise TrajlabError(f"{source}: metadata attribute is not a JSON object")
        return stored
    metadata: dict[str, Any] = {}
    group = handle.get("metadata")
    if isinstance(group, h5py.Group):
        for key, node in group.items():
            value = _small_value(node)
            if value is not None:
                metadata[key] = value
    return {**metadata, "source": metadata.get("source", "d4rl import"), "imported_from": source.name}


def _small_value(node: Any) -> Any:
    """A scalar (or short numeric vector) metadata entry as a plain value; None for anything else."""
    if not isinstance(node, h5py.Dataset):
        return None
    if node.ndim == 0:
        value = node[()]
        if isinstance(value, bytes):
            return value.decode(errors="replace")
        return value.item() if isinstance(value, np.generic) and value.dtype.kind in "biuf" else None
    if node.ndim == 1 and node.dtype.kind in "biuf" and node.shape[0] <= _MAX_METADATA_VECTOR:
        return node[()].tolist()
    return None


def _has_root_ids(source: Path) -> bool:
    try:
        with h5py.File(source, "r") as handle:
            return "episode_ids" in handle and "transition_ids" in handle
    except (OSError, RuntimeError, ValueError, KeyError):
        return False  # the full reader reports what is wrong with the file


def _guess_env_id(file_name: str, observations: np.ndarray) -> str | None:
    name = file_name.lower()
    for prefix, env_id in _D4RL_ENV_PREFIXES.items():
        if name.startswith(prefix):
            return env_id if observations.ndim == 2 and observations.shape[1] == _observation_dim(env_id) else None
    return None


def _observation_dim(env_id: str) -> int | None:
    from trajlab.envs.registry import make

    try:
        env = make(env_id)
    except TrajlabError:
        return None
    try:
        return int(np.prod(env.observation_space.shape))
    finally:
        env.close()


# --- writing ---------------------------------------------------------------------------------------------
def _inner_unfinished_ends(dataset: TransitionDataset) -> np.ndarray:
    """Last rows of episodes that end with neither terminal nor timeout, except the dataset's last row."""
    ends = np.zeros(len(dataset), dtype=bool)
    if len(dataset) > 1:
        ends[:-1] = dataset.episode_ids[1:] != dataset.episode_ids[:-1]
    return ends & ~dataset.terminals & ~dataset.timeouts


def _plain_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Metadata entries that D4RL's `metadata/*` convention can hold: scalars and short numeric lists."""
    plain: dict[str, Any] = {}
    for key, value in metadata.items():
        if "/" in key or value is None:
            continue
        if isinstance(value, (bool, int, float, str)):
            plain[key] = value
        elif isinstance(value, (list, tuple)) and value and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
        ):
            plain[key] = np.asarray(value, dtype=np.float64)
    return plain
