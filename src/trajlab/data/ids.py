"""Episode ids as users give them (lists, comma-separated text, files) and as the data layer checks them.

Forgetting, auditing and influence all take episode ids from the command line or a file; the parsing and the
checks that a dataset fits an agent live here, below every method, so none of them imports another for it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from trajlab.core.errors import TrajlabError
from trajlab.data.dataset import Episode, TransitionDataset


def forget_ids_array(episode_ids: Iterable[int]) -> np.ndarray:
    """Sorted unique episode ids as int64 (non-integers are a user error)."""
    values = list(episode_ids)
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TrajlabError(f"episode ids must be integers, got {values[:5]}") from None
    if array.size and not np.all(np.isfinite(array) & (array == np.round(array))):
        raise TrajlabError(f"episode ids must be integers, got {values[:5]}")
    return np.unique(array.astype(np.int64))


def check_dataset_matches(agent: Any, dataset: TransitionDataset, *, expected_env: str | None = None) -> None:
    """The dataset must have the agent's observation/action spaces and, when both are known, its environment."""
    spec = getattr(agent, "spec", None)
    if spec is not None:
        found = (dataset.observation_dim, dataset.action_dim, dataset.discrete)
        wanted = (spec.observation_dim, spec.action_dim, spec.discrete)
        if found != wanted:
            raise TrajlabError(
                f"dataset does not match the agent: observations {found[0]}-d, actions {found[1]}"
                f"{' discrete' if found[2] else '-d'}; the agent has observations {wanted[0]}-d, actions "
                f"{wanted[1]}{' discrete' if wanted[2] else '-d'}")
    env_id = dataset.metadata.get("env_id")
    if expected_env and env_id and env_id != expected_env:
        raise TrajlabError(f"dataset is from {env_id} but the agent was trained on {expected_env}")


def read_episodes_file(path: str | Path) -> list[int]:
    """Episode ids from a JSON list or a text file of ids separated by commas or whitespace (# comments)."""
    source = Path(path)
    if not source.is_file():
        raise TrajlabError(f"{source}: episodes file not found")
    text = source.read_text()
    if text.lstrip().startswith("["):
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise TrajlabError(f"{source}: not a valid JSON list ({error.msg})") from None
        return [int(v) for v in forget_ids_array(values)]
    tokens = [token for line in text.splitlines() for token in line.split("#")[0].replace(",", " ").split()]
    return parse_episode_ids(tokens, where=str(source))


def parse_episode_ids(tokens: Any, *, where: str = "--episodes") -> list[int]:
    """Integers from '3,17,42', a list of strings or a list of ints."""
    if isinstance(tokens, str):
        tokens = [t for t in tokens.replace(",", " ").split()]
    ids = []
    for token in tokens:
        try:
            ids.append(int(token))
        except (TypeError, ValueError):
            raise TrajlabError(f"{where}: {token!r} is not an episode id (an integer)") from None
    return ids


HASHED_FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")


def trajectory_hash(episode: Episode) -> str:
    """sha256 over each array's name, dtype, shape and bytes (C order), in a fixed field order."""
    digest = hashlib.sha256()
    for name in HASHED_FIELDS:
        array = np.ascontiguousarray(getattr(episode, name))
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def trajectory_hashes(dataset: TransitionDataset, episode_ids: Iterable[int]) -> dict[str, str]:
    """Episode id (as a string, for JSON) -> content hash."""
    return {str(int(i)): trajectory_hash(dataset.episode(int(i))) for i in episode_ids}
