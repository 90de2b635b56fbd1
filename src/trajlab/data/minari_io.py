"""Local Minari datasets in and out (minari 0.5.4, HDF5 storage; no jax needed).

A Minari episode stores T+1 observations and T actions; a TransitionDataset stores each transition's
observation and next observation, so import splits the observations and export joins them back (which needs
whole episodes). Minari numbers its episodes 0, 1, ...; export keeps trajlab's episode and transition ids as
per-episode attributes and the metadata as JSON, and import restores them, so ids survive a round trip.

The Minari root is an explicit `root` argument, else `MINARI_DATASETS_PATH`, else ~/.minari/datasets.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from trajlab.core.errors import TrajlabError
from trajlab.data.dataset import Episode, TransitionDataset

ROOT_VARIABLE = "MINARI_DATASETS_PATH"
METADATA_KEY = "trajlab_metadata"
EPISODE_ID_ATTR = "trajlab_episode_id"
TRANSITION_IDS_ATTR = "trajlab_transition_ids"


def minari_root(root: str | Path | None = None) -> Path:
    """The folder that holds local Minari datasets."""
    if root is not None:
        return Path(root)
    configured = os.environ.get(ROOT_VARIABLE)
    return Path(configured) if configured else Path.home() / ".minari" / "datasets"


def find_minari_dataset(source: str | Path, *, root: str | Path | None = None) -> Path:
    """The `data` folder of a Minari dataset given by path (dataset or data folder) or by id in the root."""
    path = Path(source)
    for candidate in (path / "data", path, minari_root(root) / str(source) / "data"):
        if (candidate / "metadata.json").is_file():
            return candidate
    raise TrajlabError(
        f"no Minari dataset {str(source)!r}: not a dataset folder, and not in the Minari root {minari_root(root)}"
    )


# --- import ----------------------------------------------------------------------------------------------
def import_minari(source: str | Path, *, root: str | Path | None = None) -> TransitionDataset:
    """A TransitionDataset from a local Minari dataset (by id in the Minari root, or by path)."""
    data_path = find_minari_dataset(source, root=root)
    minari_dataset = _open(data_path)
    _check_spaces(data_path, minari_dataset.observation_space, minari_dataset.action_space)
    try:
        episodes = list(minari_dataset.iterate_episodes())
        attributes = list(minari_dataset.storage.get_episode_metadata(range(minari_dataset.total_episodes)))
    except (OSError, KeyError, ValueError, AssertionError) as error:
        raise TrajlabError(f"{data_path}: unreadable Minari episodes ({_reason(error)})") from None
    if not episodes:
        raise TrajlabError(f"{data_path}: the Minari dataset has no episodes")
    arrays = _join_episodes(data_path, episodes, attributes)
    try:
        return TransitionDataset(**arrays, metadata=_imported_metadata(minari_dataset))
    except TrajlabError as error:
        raise TrajlabError(f"{data_path}: {error}") from None


def _open(data_path: Path) -> Any:
    import minari

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return minari.MinariDataset(data_path)
    except (OSError, KeyError, ValueError, TypeError, AssertionError, json.JSONDecodeError) as error:
        raise TrajlabError(f"{data_path}: not a readable Minari dataset ({_reason(error)})") from None


def _check_spaces(where: Path, observation_space: Any, action_space: Any) -> None:
    from gymnasium import spaces

    if not isinstance(observation_space, spaces.Box):
        raise TrajlabError(f"{where}: observation space {type(observation_space).__name__} is not supported "
                           "(trajlab datasets hold Box observations)")
    if not isinstance(action_space, (spaces.Box, spaces.Discrete)):
        raise TrajlabError(f"{where}: action space {type(action_space).__name__} is not supported (Box or Discrete)")


def _join_episodes(where: Path, episodes: list[Any], attributes: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {key: [] for key in (
        "observations", "next_observations", "actions", "rewards", "terminals", "timeouts", "episode_ids",
        "transition_ids")}
    next_transition_id = 0
    for episode, attrs in zip(episodes, attributes):
        steps = len(episode.rewards)
        observations = np.asarray(episode.observations).reshape(len(episode.observations), -1)
        if len(observations) != steps + 1 or len(episode.actions) != steps:
            raise TrajlabError(f"{where}: episode {episode.id} has {len(observations)} observations and "
                               f"{len(episode.actions)} actions for {steps} steps (expected T+1 and T)")
        stored_ids = attrs.get(TRANSITION_IDS_ATTR)
        transition_ids = np.arange(next_transition_id, next_transition_id + steps) if stored_ids is None else stored_ids
        next_transition_id += steps
        parts["observations"].append(observations[:-1])
        parts["next_observations"].append(observations[1:])
        parts["actions"].append(np.asarray(episode.actions))
        parts["rewards"].append(np.asarray(episode.rewards, dtype=np.float32))
        parts["terminals"].append(np.asarray(episode.terminations, dtype=bool))
        parts["timeouts"].append(np.asarray(episode.truncations, dtype=bool))
        parts["episode_ids"].append(np.full(steps, int(attrs.get(EPISODE_ID_ATTR, episode.id)), dtype=np.int64))
        parts["transition_ids"].append(np.asarray(transition_ids, dtype=np.int64).reshape(-1))
    try:
        return {key: np.concatenate(values) for key, values in parts.items()}
    except ValueError as error:
        raise TrajlabError(f"{where}: episodes have inconsistent shapes ({_reason(error)})") from None


def _imported_metadata(minari_dataset: Any) -> dict[str, Any]:
    from gymnasium import spaces

    stored = minari_dataset.storage.metadata
    metadata: dict[str, Any] = {}
    if isinstance(stored.get(METADATA_KEY), str):
        with contextlib.suppress(json.JSONDecodeError):
            metadata = dict(json.loads(stored[METADATA_KEY]))
    metadata.setdefault("source", "minari import")
    metadata["minari_dataset_id"] = minari_dataset.id
    if minari_dataset.env_spec is not None:
        metadata.setdefault("env_id", minari_dataset.env_spec.id)
    for key in ("ref_min_score", "ref_max_score", "algorithm_name"):
        if stored.get(key) is not None:
            metadata[f"minari_{key}"] = stored[key]
    action_space = minari_dataset.action_space
    if isinstance(action_space, spaces.Discrete):
        metadata.setdefault("num_actions", int(action_space.n))
    else:
        metadata.setdefault("action_low", [float(x) for x in np.asarray(action_space.low).ravel()])
        metadata.setdefault("action_high", [float(x) for x in np.asarray(action_space.high).ravel()])
    return metadata


# --- export ----------------------------------------------------------------------------------------------
def export_minari(dataset: TransitionDataset, destination: str | Path, *, root: str | Path | None = None,
                  overwrite: bool = False) -> Path:
    """Write `dataset` as a local Minari dataset; returns its folder.

    `destination` is a dataset id (`name-v0` or `namespace/name-v0`) created in the Minari root, or a path
    (absolute, or starting with `.`) whose last part is the id. The dataset's metadata must name its env_id.
    The dataset is built in a hidden folder of the root and moved into place when complete.
    """
    target_root, dataset_id = _destination(destination, root)
    final = target_root / dataset_id
    if final.exists() and not overwrite:
        raise TrajlabError(f"{final}: a Minari dataset is already there (use --overwrite)")
    env = _matching_env(dataset)
    try:
        buffers = [_episode_buffer(index, episode) for index, episode in enumerate(dataset.episodes())]
        target_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".trajlab-minari-", dir=target_root))
        try:
            with _root_variable(staging), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _write(dataset, dataset_id, buffers, env)
            _move_into_place(staging, target_root, dataset_id, overwrite)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        env.close()
    return final


def _destination(destination: str | Path, root: str | Path | None) -> tuple[Path, str]:
    from minari.dataset.minari_dataset import parse_dataset_id

    text = str(destination)
    target_root, dataset_id = minari_root(root), text
    if os.path.isabs(text) or text.startswith("."):
        target_root, dataset_id = Path(text).parent, Path(text).name
    try:
        parse_dataset_id(dataset_id)
    except (ValueError, TypeError):
        raise TrajlabError(
            f"{dataset_id!r} is not a Minari dataset id (name-v0 or namespace/name-v0)"
        ) from None
    return target_root, dataset_id


def _matching_env(dataset: TransitionDataset) -> Any:
    """The dataset's environment, after checking that its spaces fit the data."""
    from gymnasium import spaces

    from trajlab.envs.registry import make

    env_id = dataset.metadata.get("env_id")
    if not env_id:
        raise TrajlabError("the dataset's metadata has no env_id, which Minari needs (import it with --env)")
    env = make(str(env_id))
    observation_size = int(np.prod(env.observation_space.shape))
    discrete = isinstance(env.action_space, spaces.Discrete)
    action_size = int(env.action_space.n) if discrete else int(np.prod(env.action_space.shape))
    if (observation_size, action_size, discrete) != (dataset.observation_dim, dataset.action_dim, dataset.discrete):
        env.close()
        raise TrajlabError(
            f"the dataset (observations {dataset.observation_dim}, actions {dataset.action_dim}) does not fit "
            f"{env_id} (observations {observation_size}, actions {action_size})"
        )
    return env


def _episode_buffer(index: int, episode: Episode) -> Any:
    from minari.data_collector import EpisodeBuffer

    if not np.array_equal(episode.next_observations[:-1], episode.observations[1:]):
        raise TrajlabError(f"episode {episode.episode_id}: next observations do not continue its observations "
                           "(were rows removed?); Minari stores whole episodes")
    return EpisodeBuffer(
        id=index,
        observations=np.concatenate([episode.observations, episode.next_observations[-1:]]),
        actions=np.asarray(episode.actions),
        rewards=np.asarray(episode.rewards),
        terminations=np.asarray(episode.terminals),
        truncations=np.asarray(episode.timeouts),
    )


def _write(dataset: TransitionDataset, dataset_id: str, buffers: list[Any], env: Any) -> None:
    from minari import create_dataset_from_buffers

    from trajlab.eval.scores import reference_returns

    reference = reference_returns(dataset.metadata.get("env_id"), dataset.metadata)
    created = create_dataset_from_buffers(
        dataset_id, buffers, env=env,
        algorithm_name=str(dataset.metadata.get("source", "trajlab")),
        description=f"exported by trajlab ({dataset.metadata.get('quality', 'dataset')})",
        ref_min_score=None if reference is None else reference[0],
        ref_max_score=None if reference is None else reference[1],
    )
    created.storage.update_metadata({METADATA_KEY: json.dumps(dataset.metadata, default=str)})
    created.storage.update_episode_metadata(
        {EPISODE_ID_ATTR: episode.episode_id, TRANSITION_IDS_ATTR: episode.transition_ids}
        for episode in dataset.episodes()
    )


def _move_into_place(staging: Path, target_root: Path, dataset_id: str, overwrite: bool) -> None:
    final = target_root / dataset_id
    final.parent.mkdir(parents=True, exist_ok=True)
    # namespaces are folders with a metadata file; bring along the ones the root does not have yet
    for namespace_file in staging.rglob("namespace_metadata.json"):
        wanted = target_root / namespace_file.relative_to(staging)
        if not wanted.exists():
            shutil.copyfile(namespace_file, wanted)
    old = None
    if final.exists() and overwrite:
        old = final.with_name(f".{final.name}.replaced")
        os.replace(final, old)
    os.replace(staging / dataset_id, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _root_variable(path: Path) -> Iterator[None]:
    """Point Minari at `path` (it reads the variable on every call) and restore the previous value."""
    previous = os.environ.get(ROOT_VARIABLE)
    os.environ[ROOT_VARIABLE] = str(path)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(ROOT_VARIABLE, None)
        else:
            os.environ[ROOT_VARIABLE] = previous


def _reason(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
